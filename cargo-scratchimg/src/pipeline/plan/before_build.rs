//! The checks before the build ([`crate::checks`]) on what the plan knows: each image's crate
//! graph on each platform, the targets, and the cross C compilers.

use std::collections::BTreeMap;

use anyhow::Result;

use super::image::ImageRequest;
use crate::cargo::graph::Graphs;
use crate::checks::{self, CCompiler, Check, Finding, Severity};
use crate::env::Env;
use crate::report::Reporter;
use crate::target::{Arch, Target};

/// Runs every check; a finding is said unless every image turns it off with `allow`.
pub(super) fn check(
    images: &[ImageRequest],
    graphs: &BTreeMap<Target, Graphs>,
    zig: bool,
    env: &Env,
    report: &dyn Reporter,
) -> Result<()> {
    let allowed = |check: Check| images.iter().all(|i| i.settings.allow.contains(&check));
    let mut findings = Vec::new();
    for (target, graphs) in graphs {
        let rustflags: Vec<&str> = env
            .cargo_vars
            .iter()
            .filter(|(k, _)| k.contains("RUSTFLAGS"))
            .map(|(_, v)| v.as_str())
            .collect();
        findings.extend(checks::target_finding(target, &rustflags));
        let lookups = checks::lookups(target, env);
        // Each image's binaries: its package's graph.
        for image in images {
            if let Some(graph) = graphs.get(image.package.name.as_str()) {
                let package = checks::PackageFeatures::of(&image.package);
                let found = checks::graph_findings(&package, graph, &lookups);
                findings.extend(
                    found
                        .into_iter()
                        .filter(|f| !image.settings.allow.contains(&f.check)),
                );
            }
        }
        if Arch::host() != Some(target.arch) && !zig && !allowed(Check::CrossCCompiler) {
            let mut crates: Vec<String> =
                graphs.values().flat_map(checks::cross_c_crates).collect();
            crates.sort();
            crates.dedup();
            findings.extend(cross_compiler(target, &crates, env)?);
        }
    }
    checks::report(findings, allowed, report)
}

/// Whether the C compiler of a cross build can link, when `crates` link test programs.
fn cross_compiler(target: &Target, crates: &[String], env: &Env) -> Result<Option<Finding>> {
    if crates.is_empty() {
        return Ok(None);
    }
    let what = format!(
        "{} link{} C test programs while building",
        crates.join(", "),
        if crates.len() == 1 { "s" } else { "" }
    );
    let cc_var = target.cc_env();
    let fix = format!(
        "help: set {cc_var} to a musl cross compiler that links programs (musl-cross-make's {})\n\
         help: or pass --zig to compile C code with zig (pip install cargo-zigbuild ziglang)",
        target.musl_gcc()
    );
    let Some(compiler) = CCompiler::for_target(target, env) else {
        return Ok(Some(Finding {
            check: Check::CrossCCompiler,
            severity: Severity::Error,
            message: format!("no C compiler for {}, and {what}\n{fix}", target.triple),
        }));
    };
    Ok(match checks::probe_link(&compiler)? {
        Ok(()) => None,
        Err(said) => Some(Finding {
            check: Check::CrossCCompiler,
            severity: Severity::Error,
            message: format!(
                "the C compiler for {} (from {}) cannot link a program, and {what}: {said}\n{fix}",
                target.triple, compiler.origin
            ),
        }),
    })
}
