//! Running cargo: pick the package and binary, make sure the target is installed, build with
//! symbols stripped, and check that the result is static.

pub mod elf;
pub mod remap;
pub mod toolchain;
pub mod workspace;
pub mod wrapper;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Message, TargetKind};

use crate::shell::Verbosity;
use crate::target::Target;
pub use remap::{BuildRoots, PathRemap};
pub use workspace::{Selection, find_manifest, select};

/// What cargo-scratchimg adds to the user's build.
#[derive(Debug, Clone, Default)]
pub struct BuildExtras {
    /// This executable as cargo's rustc wrapper, adding these remaps to every crate.
    pub wrapper: Option<(PathBuf, PathRemap)>,
    /// rustc flags for the binary crate alone (the dependency list's object file).
    pub bin_flags: Vec<String>,
}

/// cargo's own flags, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoOptions {
    pub manifest_path: Option<PathBuf>,
    pub package: Option<String>,
    pub bin: Option<String>,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    /// `release` unless given.
    pub profile: String,
    pub target_dir: Option<PathBuf>,
    pub locked: bool,
    pub frozen: bool,
    pub offline: bool,
}

/// An executable cargo built, and what it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltBinary {
    pub path: PathBuf,
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

/// Builds the selected binary for `target` and returns where cargo put it.
pub fn build(
    cargo: &Path,
    selection: &Selection,
    target: &Target,
    options: &CargoOptions,
    extras: &BuildExtras,
    verbosity: Verbosity,
) -> Result<BuiltBinary> {
    let package = &selection.package;
    let profile = own_profile(&options.profile);
    let mut command = Command::new(cargo);
    // `cargo rustc` passes flags after `--` to the binary crate only, and cargo tracks them, so
    // turning the dependency list on or off relinks the binary and nothing else.
    let subcommand = if extras.bin_flags.is_empty() {
        "build"
    } else {
        "rustc"
    };
    command
        .args([subcommand, "--message-format=json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(package.manifest_path.as_std_path())
        .args([
            "--package",
            &format!("{}@{}", package.name, package.version),
        ])
        .args(["--bin", &selection.bin])
        .args(["--target", &target.triple])
        .args(["--profile", &profile])
        .arg("--config")
        .arg(format!(
            "profile.{profile}.inherits=\"{}\"",
            options.profile
        ))
        .args(forwarded_flags(options, verbosity))
        // Strip through cargo itself, so no host `strip` that may not know the target is needed.
        .env(strip_env(&profile), "symbols")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(dir) = &options.target_dir {
        command.arg("--target-dir").arg(dir);
    }
    if let Some((program, remap)) = &extras.wrapper {
        wrapper::install(&mut command, program, remap);
    }
    if !extras.bin_flags.is_empty() {
        command.arg("--").args(&extras.bin_flags);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("could not run `{} {subcommand}`", cargo.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executable = None;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        let message = message.context("could not read cargo's build messages")?;
        if let Message::CompilerArtifact(artifact) = message
            && artifact.package_id == package.id
            && artifact.target.name == selection.bin
            && artifact.target.kind.contains(&TargetKind::Bin)
        {
            executable = artifact.executable.map(|p| p.into_std_path_buf());
        }
    }
    let status = child.wait().context("could not wait for cargo")?;
    if !status.success() {
        bail!(
            "`cargo {subcommand}` failed for package `{}` ({status})",
            package.name
        );
    }
    let Some(path) = executable else {
        bail!(
            "cargo built package `{}` but reported no executable for binary `{}`",
            package.name,
            selection.bin
        );
    };
    Ok(BuiltBinary {
        path,
        name: selection.bin.clone(),
        package: package.name.to_string(),
        version: package.version.to_string(),
        target: target.clone(),
    })
}

/// The flags of `options` that every cargo command we run takes as `cargo build` does.
pub(crate) fn forwarded_flags(options: &CargoOptions, verbosity: Verbosity) -> Vec<String> {
    let mut flags = Vec::new();
    if !options.features.is_empty() {
        flags.push(format!("--features={}", options.features.join(",")));
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
fn own_profile(profile: &str) -> String {
    format!("scratchimg-{profile}")
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
    }

    #[test]
    fn cargo_flags_are_forwarded() {
        let options = CargoOptions {
            features: vec!["a".into(), "b".into()],
            no_default_features: true,
            locked: true,
            ..CargoOptions::default()
        };
        assert_eq!(
            forwarded_flags(&options, Verbosity::Quiet),
            [
                "--features=a,b",
                "--no-default-features",
                "--locked",
                "--quiet"
            ]
        );
        assert!(forwarded_flags(&CargoOptions::default(), Verbosity::Normal).is_empty());
    }
}
