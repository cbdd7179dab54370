//! The toolchain cargo builds with: is the standard library for the target installed (checked
//! before building, so users never see rustc's wall of "can't find crate for `std`"), and what
//! `rustc -vV` says, for the provenance annotations.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use serde::Serialize;

use crate::cache::Keyed;
use crate::env::Env;
use crate::report::Reporter;
use crate::target::Target;
use crate::text::{one_line, quoted};
use crate::tool_dir::ToolDir;

/// How to treat a missing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Install {
    /// Install it with rustup when rustup is there.
    Allowed,
    /// `--offline` or `--frozen`: never reach the network.
    Forbidden,
}

/// Where the target's standard library belongs, and whether it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    pub libdir: PathBuf,
    pub installed: bool,
}

/// Looks for `target`'s standard library in the toolchain that cargo will use in `dir`.
/// It only reads, so it can run while cargo reads the workspace.
pub(crate) fn probe(target: &Target, dir: &Path, env: &Env) -> Result<Probe> {
    // Where the library is beside the toolchain's rustc, finding it needs no rustc process
    // (60 ms).
    if let Some(rustc) = rustc_beside(env)
        && let Some(sysroot) = rustc.parent().and_then(Path::parent)
    {
        let libdir = sysroot.join("lib/rustlib").join(&target.triple).join("lib");
        if has_std(&libdir) {
            return Ok(Probe {
                libdir,
                installed: true,
            });
        }
    }
    let libdir = target_libdir(target, dir, env)?;
    Ok(Probe {
        installed: has_std(&libdir),
        libdir,
    })
}

/// The rustc beside cargo (an absolute path, as `$CARGO` is), which is the one cargo runs
/// unless `RUSTC` names another: toolchains keep the two together.
fn rustc_beside(env: &Env) -> Option<PathBuf> {
    if env.rustc.is_some() || !env.cargo.is_absolute() {
        return None;
    }
    Some(env.cargo.parent()?.join("rustc")).filter(|rustc| rustc.is_file())
}

/// The rustc cargo runs: `RUSTC`, else the one beside cargo, else `rustc` from `PATH`.
fn rustc(env: &Env) -> PathBuf {
    rustc_beside(env)
        .or_else(|| env.rustc.clone())
        .unwrap_or_else(|| "rustc".into())
}

/// What makes one `rustc -vV` answer: the executable, as it is on disk.
#[derive(Serialize)]
struct RustcFile<'a> {
    rustc: &'a Path,
    len: u64,
    modified: std::time::SystemTime,
}

/// `rustc -vV` of the toolchain cargo uses in `dir`, kept in `tool_dir`'s cache while the rustc
/// executable is the same file: running it loads the whole compiler (30 to 100 ms) to print
/// five lines.
pub(crate) fn rustc_version(
    env: &Env,
    dir: &Path,
    tool_dir: &ToolDir,
    report: &dyn Reporter,
) -> Result<String> {
    // One entry per toolchain in use.
    let cache: Keyed<String> = Keyed::open(tool_dir, "rustc", 8);
    let rustc = rustc(env);
    let run = || {
        let output = crate::process::output(Command::new(&rustc).arg("-vV").current_dir(dir))
            .with_context(|| {
                format!(
                    "could not run `{} -vV` in {}\nhelp: install Rust, e.g. from https://rustup.rs",
                    rustc.display(),
                    dir.display()
                )
            })?;
        if !output.status.success() {
            bail!(
                "`{} -vV` failed: {}",
                rustc.display(),
                quoted(&output.stderr)
            );
        }
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !text.starts_with("rustc ") {
            bail!(
                "`{} -vV` did not print a rustc version: {text:?}",
                rustc.display()
            );
        }
        Ok(text)
    };
    let file = std::fs::metadata(&rustc)
        .ok()
        .filter(|_| rustc.is_absolute())
        .and_then(|meta| {
            Some(RustcFile {
                rustc: &rustc,
                len: meta.len(),
                modified: meta.modified().ok()?,
            })
        });
    match file {
        Some(file) => Ok(cache.get_or_compute(&file, report, run)?.0),
        None => run(),
    }
}

/// Makes sure `target`'s standard library is there, installing it with rustup if allowed.
pub(crate) fn ensure_target(
    target: &Target,
    probe: Probe,
    dir: &Path,
    install: Install,
    report: &dyn Reporter,
) -> Result<()> {
    let Probe { libdir, installed } = probe;
    if installed {
        return Ok(());
    }
    let triple = &target.triple;
    let command = format!("rustup target add {triple}");
    if !rustup_available() {
        bail!(
            "the standard library for `{triple}` is not installed (looked in {})\n\
             help: install it for your Rust toolchain; with rustup that is `{command}`",
            libdir.display()
        );
    }
    if install == Install::Forbidden {
        bail!(
            "the standard library for `{triple}` is not installed (not installing it with --offline/--frozen)\nhelp: run `{command}`"
        );
    }
    report.status("Installing", &format!("target {triple} (`{command}`)"));
    let output = crate::process::output(
        Command::new("rustup")
            .args(["target", "add", triple])
            .current_dir(dir),
    )
    .context("could not run rustup")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines() {
        report.verbose("rustup", &|| line.to_string());
    }
    if !output.status.success() || !has_std(&libdir) {
        let reason = stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .map(|l| one_line(l, 200))
            .unwrap_or_else(|| "it did not install".into());
        bail!(
            "could not install the standard library for `{triple}` with rustup ({reason}); run `{command}` and try again"
        );
    }
    Ok(())
}

/// `rustc --print target-libdir`: where the target's std lives for the toolchain picked in `dir`
/// (rustup's overrides and `rust-toolchain.toml` apply there).
fn target_libdir(target: &Target, dir: &Path, env: &Env) -> Result<PathBuf> {
    let rustc = env.rustc.clone().unwrap_or_else(|| "rustc".into());
    let output = crate::process::output(
        Command::new(&rustc)
            .args(["--print", "target-libdir", "--target", &target.triple])
            .current_dir(dir),
    )
    .with_context(|| {
        format!(
            "could not run `{}`\nhelp: install Rust, e.g. from https://rustup.rs",
            rustc.display()
        )
    })?;
    if !output.status.success() {
        bail!(
            "rustc does not know target `{}`: {}",
            target.triple,
            quoted(&output.stderr)
        );
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

fn has_std(libdir: &Path) -> bool {
    std::fs::read_dir(libdir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libstd-") && name.ends_with(".rlib")
        })
    })
}

fn rustup_available() -> bool {
    crate::process::output(Command::new("rustup").arg("--version"))
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Capture, Verbosity};

    #[test]
    fn the_version_is_kept_while_the_executable_is_the_same() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let rustc = dir.path().join("rustc");
        let write = |version: &str| {
            std::fs::write(&rustc, format!("#!/bin/sh\necho 'rustc {version}'\n")).unwrap();
            std::fs::set_permissions(&rustc, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        write("1.0");
        let env = Env {
            rustc: Some(rustc.clone()),
            ..Env::default()
        };
        let tool_dir = ToolDir::new(dir.path());
        let report = Capture::new(Verbosity::Normal);
        let version = || rustc_version(&env, dir.path(), &tool_dir, &report).unwrap();
        assert_eq!(version(), "rustc 1.0\n");
        // The same file (size and time) is not asked again.
        let modified = std::fs::metadata(&rustc).unwrap().modified().unwrap();
        std::fs::write(&rustc, "#!/bin/sh\necho 'rustc 9.9'\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&rustc)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert_eq!(version(), "rustc 1.0\n");
        // A new toolchain in the same place: another size, so asked again.
        write("2.0.1");
        assert_eq!(version(), "rustc 2.0.1\n");
    }
}
