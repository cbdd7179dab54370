//! Running cargo: pick the package and binary, make sure the target is installed, build with
//! symbols stripped, and check that the result is static.

pub mod early;
pub mod elf;
pub mod linker;
pub mod remap;
pub mod toolchain;
pub mod workspace;
pub mod wrapper;

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Message, Package, PackageId, TargetKind};

use crate::shell::Verbosity;
use crate::target::Target;
pub use remap::{BuildRoots, PathRemap};
pub use workspace::{Workspace, c_packages, find_manifest, package_dir, select_bins};

/// What cargo-scratchimg adds to the user's build, through this executable as cargo's rustc
/// wrapper (see [`wrapper`]).
#[derive(Debug, Clone, Default)]
pub struct BuildExtras {
    /// This executable as cargo's rustc wrapper, adding these remaps to every crate.
    pub wrapper: Option<(PathBuf, PathRemap)>,
    /// rustc flags for one binary crate alone: `(package, bin, flags)`, e.g. the link arguments
    /// of the object with that binary's dependency list. Only the wrapper can add them, so they
    /// take effect only with `wrapper` set.
    pub bin_flags: Vec<(String, String, Vec<String>)>,
    /// Files the wrapper passes to rustc that cargo does not know of: the objects with the
    /// dependency lists.
    pub inputs: Vec<PathBuf>,
    /// Whether the binaries carry their dependency lists. cargo cannot see what the wrapper
    /// adds, so this goes into the profile name: turning it on or off relinks the binaries.
    pub auditable: bool,
}

/// cargo's own flags, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoOptions {
    pub manifest_path: Option<PathBuf>,
    pub package: Option<String>,
    pub bin: Option<String>,
    /// `--workspace`: an image of every binary package.
    pub workspace: bool,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    /// `--profile`; the `profile` setting, else `release`, when `None`.
    pub profile: Option<String>,
    pub target_dir: Option<PathBuf>,
    pub locked: bool,
    pub frozen: bool,
    pub offline: bool,
}

/// An executable cargo built, and what it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltBinary {
    pub path: PathBuf,
    /// The executable's bytes, read once: checked, hashed and packed from memory.
    pub bytes: std::sync::Arc<[u8]>,
    /// The binary target's name, e.g. `hello`.
    pub name: String,
    pub package: String,
    pub version: String,
    pub target: Target,
}

/// The cargo that invoked us (`$CARGO`), so `cargo +nightly scratchimg` builds with nightly.
pub fn cargo_program(env: Option<std::ffi::OsString>) -> PathBuf {
    env.map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"))
}

/// One cargo invocation: packages with the binaries to build of each, and the features and
/// profile resolved from flags and settings.
#[derive(Debug, Clone)]
pub struct BuildPlan<'a> {
    pub packages: Vec<(&'a Package, Vec<String>)>,
    /// `--features` values, already qualified `package/feature` when several packages build.
    pub features: Vec<String>,
    pub profile: String,
    /// Extra environment, e.g. the linker of a cross build.
    pub env: Vec<(String, String)>,
}

/// The `cargo build` of `plan` for `target`: cargo's messages on stdout, its progress and
/// diagnostics on our stderr.
pub fn command(
    cargo: &Path,
    plan: &BuildPlan<'_>,
    target: &Target,
    options: &CargoOptions,
    extras: &BuildExtras,
    verbosity: Verbosity,
) -> Command {
    let profile = own_profile(&plan.profile, extras.auditable);
    let mut command = Command::new(cargo);
    command.args(["build", "--message-format=json-render-diagnostics"]);
    if let Some((first, _)) = plan.packages.first() {
        command
            .arg("--manifest-path")
            .arg(first.manifest_path.as_std_path());
    }
    for (package, bins) in &plan.packages {
        command.args([
            "--package",
            &format!("{}@{}", package.name, package.version),
        ]);
        for bin in bins {
            command.args(["--bin", bin]);
        }
    }
    command
        .args(["--target", &target.triple])
        .args(["--profile", &profile])
        .arg("--config")
        .arg(format!("profile.{profile}.inherits=\"{}\"", plan.profile))
        .args(forwarded_flags(&plan.features, options, verbosity))
        // Strip through cargo itself, so no host `strip` that may not know the target is needed.
        // The profile cargo builds with is our own, so that is the one to set.
        .env(strip_env(&profile), "symbols")
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(dir) = &options.target_dir {
        command.arg("--target-dir").arg(dir);
    }
    if let Some((program, remap)) = &extras.wrapper {
        wrapper::install(&mut command, program, remap, &extras.bin_flags);
    }
    command
}

/// A running [`command`].
pub struct Running {
    child: Child,
    /// The thread passing an early build's stderr on (see [`early`]).
    stderr: Option<std::thread::JoinHandle<()>>,
}

/// Starts a [`command`].
pub fn spawn(mut command: Command) -> Result<Running> {
    let child = command.spawn().with_context(|| {
        format!(
            "could not run `{} build`",
            Path::new(command.get_program()).display()
        )
    })?;
    Ok(Running {
        child,
        stderr: None,
    })
}

/// Reads a running [`command`]'s messages to its end: where cargo put each planned binary.
pub fn collect(
    running: Running,
    plan: &BuildPlan<'_>,
    target: &Target,
) -> Result<Vec<BuiltBinary>> {
    let Running { mut child, stderr } = running;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executables: HashMap<(PackageId, String), PathBuf> = HashMap::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let message = message.context("could not read cargo's build messages")?;
        if let Message::CompilerArtifact(artifact) = message
            && artifact.target.kind.contains(&TargetKind::Bin)
            && let Some(executable) = artifact.executable
        {
            executables.insert(
                (artifact.package_id, artifact.target.name.to_string()),
                executable.into_std_path_buf(),
            );
        }
    }
    let status = child.wait().context("could not wait for cargo")?;
    // All of cargo's output before ours.
    if let Some(stderr) = stderr {
        let _ = stderr.join();
    }
    if !status.success() {
        let names: Vec<&str> = plan.packages.iter().map(|(p, _)| p.name.as_str()).collect();
        let noun = if names.len() == 1 {
            "package"
        } else {
            "packages"
        };
        bail!(
            "`cargo build` failed for {noun} `{}` ({status})",
            names.join("`, `")
        );
    }
    let mut built = Vec::new();
    for (package, bins) in &plan.packages {
        for bin in bins {
            let Some(path) = executables.remove(&(package.id.clone(), bin.clone())) else {
                bail!(
                    "cargo built package `{}` but reported no executable for binary `{bin}`",
                    package.name
                );
            };
            let bytes = std::fs::read(&path)
                .with_context(|| format!("could not read {}", path.display()))?;
            built.push(BuiltBinary {
                path,
                bytes: bytes.into(),
                name: bin.clone(),
                package: package.name.to_string(),
                version: package.version.to_string(),
                target: target.clone(),
            });
        }
    }
    Ok(built)
}

/// `cargo clean -p` of `packages` for `target` in our profile, so the next build compiles and
/// links them again.
pub fn clean(
    cargo: &Path,
    plan: &BuildPlan<'_>,
    packages: &[&Package],
    target: &Target,
    options: &CargoOptions,
    auditable: bool,
) -> Result<()> {
    let Some((first, _)) = plan.packages.first() else {
        return Ok(());
    };
    let profile = own_profile(&plan.profile, auditable);
    let mut command = Command::new(cargo);
    command
        .args(["clean", "--quiet"])
        .arg("--manifest-path")
        .arg(first.manifest_path.as_std_path())
        .args(["--target", &target.triple])
        .args(["--profile", &profile])
        .arg("--config")
        .arg(format!("profile.{profile}.inherits=\"{}\"", plan.profile));
    for package in packages {
        command.args([
            "--package",
            &format!("{}@{}", package.name, package.version),
        ]);
    }
    if let Some(dir) = &options.target_dir {
        command.arg("--target-dir").arg(dir);
    }
    if options.offline || options.frozen {
        command.arg("--offline");
    }
    let status = command
        .status()
        .with_context(|| format!("could not run `{} clean`", cargo.display()))?;
    if !status.success() {
        bail!("`cargo clean` failed ({status})");
    }
    Ok(())
}

/// The cargo config files cargo reads when run in `dir`, whether or not they exist: the
/// `.cargo/config.toml` (or old `.cargo/config`) of `dir` and its parents, then `$CARGO_HOME`'s.
pub fn cargo_config_files(dir: &Path, cargo_home: Option<&Path>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = dir
        .ancestors()
        .flat_map(|d| [d.join(".cargo/config.toml"), d.join(".cargo/config")])
        .collect();
    if let Some(home) = cargo_home {
        files.extend([home.join("config.toml"), home.join("config")]);
    }
    files
}

/// The flags every cargo command we run takes as `cargo build` does.
pub(crate) fn forwarded_flags(
    features: &[String],
    options: &CargoOptions,
    verbosity: Verbosity,
) -> Vec<String> {
    let mut flags = Vec::new();
    if !features.is_empty() {
        flags.push(format!("--features={}", features.join(",")));
    }
    let switches = [
        (options.all_features, "--all-features"),
        (options.no_default_features, "--no-default-features"),
        (options.locked, "--locked"),
        (options.frozen, "--frozen"),
        (options.offline, "--offline"),
        (verbosity == Verbosity::Quiet, "--quiet"),
        (verbosity == Verbosity::Verbose, "--verbose"),
    ];
    flags.extend(
        switches
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, flag)| flag.to_string()),
    );
    flags
}

/// The profile we build with: the user's, inherited, under a name of our own. Its artifacts get
/// a directory of their own, so crates that a plain `cargo build` compiled without our path
/// remapping (which cargo cannot see: a rustc wrapper adds it) are never taken as up to date.
/// Binaries without their dependency list get yet another, for the same reason.
pub(crate) fn own_profile(profile: &str, auditable: bool) -> String {
    if auditable {
        format!("scratchimg-{profile}")
    } else {
        format!("scratchimg-plain-{profile}")
    }
}

/// `CARGO_PROFILE_<NAME>_STRIP`, named as cargo's config environment variables are.
fn strip_env(profile: &str) -> String {
    format!(
        "CARGO_PROFILE_{}_STRIP",
        profile.to_uppercase().replace('-', "_")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_is_set_for_the_profile_in_use() {
        assert_eq!(strip_env("release"), "CARGO_PROFILE_RELEASE_STRIP");
        assert_eq!(strip_env("dist-small"), "CARGO_PROFILE_DIST_SMALL_STRIP");
        assert_eq!(
            strip_env(&own_profile("release", true)),
            "CARGO_PROFILE_SCRATCHIMG_RELEASE_STRIP"
        );
        assert_eq!(own_profile("dev", false), "scratchimg-plain-dev");
    }

    #[test]
    fn cargo_flags_are_forwarded() {
        let options = CargoOptions {
            no_default_features: true,
            locked: true,
            ..CargoOptions::default()
        };
        assert_eq!(
            forwarded_flags(&["a".into(), "b".into()], &options, Verbosity::Quiet),
            [
                "--features=a,b",
                "--no-default-features",
                "--locked",
                "--quiet"
            ]
        );
        assert!(forwarded_flags(&[], &CargoOptions::default(), Verbosity::Normal).is_empty());
    }
}
