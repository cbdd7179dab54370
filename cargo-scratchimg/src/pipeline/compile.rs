//! Step 2: one `cargo build` per platform, one after another in one target directory so
//! incremental builds stay warm, through this executable as rustc's wrapper (path remapping,
//! each binary's dependency list); then each binary read once and checked static.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Plan, PlatformPlan};
use crate::cargo::command::{Build, PackageBins, Running};
use crate::cargo::early::EarlyBuild;
use crate::cargo::remap::{BuildRoots, PathRemap};
use crate::cargo::wrapper::{BinFlags, Wrapper};
use crate::cargo::{BuiltBinary, elf};
use crate::env::Env;
use crate::image::sha256;
use crate::report::Reporter;
use crate::sbom::{CLibrary, CrateGraph, auditable, linked};
use crate::sink::PendingFile;
use crate::target::Target;

/// What one platform's `cargo build` gave.
pub(crate) struct PlatformBuild {
    pub target: Target,
    pub binaries: Vec<BuiltBinary>,
    /// The C libraries the build scripts of the target linked.
    pub c_libraries: Vec<CLibrary>,
}

impl PlatformBuild {
    /// The binaries of one image: its package's, those it asked for.
    pub(crate) fn binaries_of<'a>(
        &'a self,
        package: &'a str,
        bins: &'a [String],
    ) -> impl Iterator<Item = &'a BuiltBinary> {
        self.binaries
            .iter()
            .filter(move |b| b.package == package && bins.contains(&b.name))
    }
}

/// Compiles every platform of `plan` into `target_dir`. The first build is `early`'s when that
/// is the same one.
pub(crate) fn compile(
    plan: &Plan,
    env: &Env,
    target_dir: &Path,
    mut early: EarlyBuild,
    report: &dyn Reporter,
) -> Result<Vec<PlatformBuild>> {
    let mut builds = Vec::new();
    for platform in &plan.platforms {
        let target = platform.target();
        let lists = dependency_lists(plan, platform)?;
        let build = Build {
            request: plan.request.clone(),
            target: target.clone(),
            target_dir: target_dir.to_path_buf(),
            env: [&platform.toolchain.linker_env[..], &platform.cargo_env[..]].concat(),
            wrapper: wrapper(plan, platform, &lists, target_dir, env)?,
            zigbuild: plan.zigbuild.clone(),
        };
        if plan.multi_platform() {
            report.status("Building", &target.arch.platform());
        }
        let (running, adopted) = early.run(&build, env)?;
        if adopted {
            report.verbose("Building", &|| {
                "went on with the build started early: the plan is the last run's".into()
            });
        }
        let (mut binaries, mut scripts) = running.collect(&build)?;
        // cargo cannot see the link arguments the wrapper adds, so a binary it linked without
        // them (by an older cargo-scratchimg, say) stays "fresh". Such binaries are found by
        // their missing or different list, cleaned, and built once more.
        let stale = stale_lists(&lists, &binaries);
        if !stale.is_empty() {
            let names: Vec<&str> = stale.iter().map(|p| p.name.as_str()).collect();
            report.status(
                "Relinking",
                &format!("{}: the dependency list is out of date", names.join(", ")),
            );
            build.clean(&env.cargo, &stale)?;
            // Not held while the new ones are read.
            drop(std::mem::take(&mut binaries));
            (binaries, scripts) =
                Running::spawn(&build, &env.cargo, &env.terminal)?.collect(&build)?;
            if !stale_lists(&lists, &binaries).is_empty() {
                bail!(
                    "the binaries of {} do not carry their dependency list after relinking\nhelp: pass --no-auditable, and report this",
                    names.join(", ")
                );
            }
        }
        for binary in &binaries {
            elf::check_static(&binary.path, &binary.bytes, target)?;
            if binary.read_ahead {
                report.verbose("Read", &|| {
                    format!("{} while cargo found it up to date", binary.path.display())
                });
            }
        }
        builds.push(PlatformBuild {
            target: target.clone(),
            binaries,
            c_libraries: linked::libraries(&scripts),
        });
    }
    Ok(builds)
}

/// This executable as rustc's wrapper, with the path remapping, and each binary's dependency
/// list to link; `None` when the tool cannot be its own wrapper.
fn wrapper(
    plan: &Plan,
    platform: &PlatformPlan,
    lists: &[(&PackageBins, Vec<u8>)],
    target_dir: &Path,
    env: &Env,
) -> Result<Option<Wrapper>> {
    let Some(program) = &env.current_exe else {
        return Ok(None);
    };
    let remap = PathRemap::new(&BuildRoots {
        workspace: plan.workspace.root().to_path_buf(),
        target_dir: target_dir.to_path_buf(),
        cargo_home: env.cargo_home.clone(),
        rustup_home: env.rustup_home.clone(),
        sysroot: platform.toolchain.sysroot.clone(),
    });
    let mut bin_flags = Vec::new();
    let mut inputs = Vec::new();
    let dir = crate::tool_dir::ToolDir::new(target_dir).auditable();
    // Every binary of a package gets the package's list: they share its dependencies.
    for (package, list) in lists {
        let object = dependency_object(&package.name, list, platform.target(), &dir)?;
        for bin in &package.bins {
            bin_flags.push(BinFlags {
                package: package.name.clone(),
                bin: bin.clone(),
                flags: auditable::link_args(&object, platform.toolchain.linker),
            });
        }
        inputs.push(object);
    }
    Ok(Some(Wrapper {
        program: program.clone(),
        remap,
        bin_flags,
        inner: env.rustc_wrapper.clone(),
        inputs,
    }))
}

fn graph<'a>(platform: &'a PlatformPlan, package: &PackageBins) -> Result<&'a CrateGraph> {
    platform.graphs.get(&package.name).with_context(|| {
        format!(
            "no crate graph of package `{}` for {} (a bug in cargo-scratchimg)",
            package.name,
            platform.target().triple
        )
    })
}

/// Each package's dependency list as it is linked (compressed), when binaries carry one.
fn dependency_lists<'a>(
    plan: &'a Plan,
    platform: &PlatformPlan,
) -> Result<Vec<(&'a PackageBins, Vec<u8>)>> {
    if !plan.auditable {
        return Ok(Vec::new());
    }
    plan.request
        .packages
        .iter()
        .map(|package| Ok((package, auditable::compressed(graph(platform, package)?)?)))
        .collect()
}

/// Writes the object file with `package`'s dependency `list` into `dir`, named by its content,
/// so each package and platform links its own.
fn dependency_object(package: &str, list: &[u8], target: &Target, dir: &Path) -> Result<PathBuf> {
    let object = auditable::object_file(target, list)?;
    let path = dir.join(format!("{}-{}.o", package, &sha256(&object).digest()[..16]));
    if std::fs::read(&path).is_ok_and(|existing| existing == object) {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    PendingFile::create(&path)?.commit(&object)?;
    Ok(path)
}

/// The packages with a binary whose `.dep-v0` section is not the list it should link.
fn stale_lists<'a>(
    lists: &[(&'a PackageBins, Vec<u8>)],
    binaries: &[BuiltBinary],
) -> Vec<&'a PackageBins> {
    lists
        .iter()
        .filter(|(package, expected)| {
            binaries
                .iter()
                .filter(|b| b.package == package.name)
                .any(|b| auditable::section(&b.bytes).as_deref() != Some(expected.as_slice()))
        })
        .map(|(package, _)| *package)
        .collect()
}
