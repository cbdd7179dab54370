//! Each platform of the run: its toolchain made ready before the build (the target's standard
//! library installed, the linker chosen: [`Toolchain`]), then its plan with the crate graphs
//! ([`PlatformPlan`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::Given;
use super::background::Background;
use super::build::BuildPlan;
use crate::cargo::graph::Graphs;
use crate::cargo::toolchain::{self, Install, Probe};
use crate::cargo::workspace;
use crate::cargo::{linker, page_size};
use crate::env::Env;
use crate::pipeline::Options;
use crate::report::Reporter;
use crate::sbom::auditable::Linker;
use crate::target::{Arch, Target};

/// How one target builds: ready before cargo starts.
pub(crate) struct Toolchain {
    pub target: Target,
    /// The cross linker's variables, if any.
    pub linker_env: Vec<(String, String)>,
    /// How rustc runs the linker: the dependency list's flags are spelled for it.
    pub linker: Linker,
    /// The toolchain's sysroot, whose paths the remapping takes out of the binaries.
    pub sysroot: Option<PathBuf>,
}

/// One platform to build for.
pub(crate) struct PlatformPlan {
    pub toolchain: Toolchain,
    /// What this tool sets for cargo beside the linker's variables (jemalloc's page size).
    pub cargo_env: Vec<(String, String)>,
    /// Each package's crate graph for this target; empty without an SBOM or dependency list.
    pub graphs: Graphs,
}

impl Toolchain {
    /// Each target's toolchain, one after another: probed beside `cargo metadata` when the
    /// flags named the target.
    pub(super) fn prepare_all(
        build: &BuildPlan,
        background: &mut Background<'_>,
        given: &Given,
        options: &Options,
        env: &Env,
        report: &dyn Reporter,
    ) -> Result<Vec<Toolchain>> {
        build
            .targets
            .iter()
            .map(|target| {
                let probe = background.probe(target, &given.manifest_dir, env)?;
                Toolchain::prepare(target, probe, given, build.zig(), options, env, report)
            })
            .collect()
    }

    /// Makes sure `target`'s standard library is there, and chooses its linker.
    fn prepare(
        target: &Target,
        probe: Probe,
        given: &Given,
        zig: bool,
        options: &Options,
        env: &Env,
        report: &dyn Reporter,
    ) -> Result<Toolchain> {
        let libdir = probe.libdir.clone();
        let install = if options.cargo.network_allowed() {
            Install::Allowed
        } else {
            Install::Forbidden
        };
        toolchain::ensure_target(target, probe, &given.manifest_dir, install, report)?;
        let host = Arch::host();
        // cargo-zigbuild sets the C compiler and linker of every target itself.
        let linker_env = if host == Some(target.arch) || zig {
            Vec::new()
        } else {
            let context = linker::link_context(target, &libdir, env, || {
                workspace::c_packages(&env.cargo, &given.manifest, &target.triple, &options.cargo)
            })?;
            linker::cross_env(target, host, &context)?
        };
        for (var, value) in &linker_env {
            report.verbose("Linking", &|| {
                format!("{} with {var}={value}", target.triple)
            });
        }
        Ok(Toolchain {
            target: target.clone(),
            linker: linker::flavor(target, &linker_env, env),
            linker_env,
            // <sysroot>/lib/rustlib/<target>/lib
            sysroot: libdir.ancestors().nth(4).map(Path::to_path_buf),
        })
    }
}

impl PlatformPlan {
    /// Each toolchain's plan, with its target's crate graphs when the run needs them (for an
    /// SBOM or the binaries' dependency lists).
    pub(super) fn all(
        toolchains: Vec<Toolchain>,
        mut graphs: BTreeMap<Target, Graphs>,
        keep_graphs: bool,
        env: &Env,
        report: &dyn Reporter,
    ) -> Vec<PlatformPlan> {
        toolchains
            .into_iter()
            .map(|toolchain| {
                let graphs = graphs.remove(&toolchain.target).unwrap_or_default();
                let user_set = env.jemalloc_lg_page.is_some();
                let cargo_env = page_size::build_env(&toolchain.target, &graphs, user_set);
                for (var, value) in &cargo_env {
                    report.verbose("Configuring", &|| {
                        format!(
                            "{} with {var}={value}: jemalloc for pages up to 64 KiB, which arm64 hosts may have (set {var} to choose)",
                            toolchain.target.triple
                        )
                    });
                }
                PlatformPlan {
                    graphs: if keep_graphs { graphs } else { Graphs::default() },
                    cargo_env,
                    toolchain,
                }
            })
            .collect()
    }

    pub(crate) fn target(&self) -> &Target {
        &self.toolchain.target
    }
}
