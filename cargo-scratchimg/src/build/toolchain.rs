//! Is the standard library for the target installed? Checked before building, so users never
//! see rustc's wall of "can't find crate for `std`".

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::shell::Shell;
use crate::target::Target;

/// How to treat a missing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Install it with rustup when rustup is there.
    Allowed,
    /// `--offline` or `--frozen`: never reach the network.
    Forbidden,
}

/// Where the target's standard library belongs, and whether it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub libdir: PathBuf,
    pub installed: bool,
}

/// Looks for `target`'s standard library in the toolchain that `cargo` will use in `dir`.
/// It only reads, so it can run while cargo reads the workspace.
pub fn probe(target: &Target, dir: &Path, cargo: &Path) -> Result<Probe> {
    // Where the library is beside the toolchain's rustc, finding it needs no rustc process
    // (60 ms).
    if let Some(rustc) = rustc_beside(cargo)
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
    let libdir = target_libdir(target, dir)?;
    Ok(Probe {
        installed: has_std(&libdir),
        libdir,
    })
}

/// The rustc beside `cargo` (an absolute path, as `$CARGO` is), which is the one cargo runs
/// unless `RUSTC` names another: toolchains keep the two together.
pub fn rustc_beside(cargo: &Path) -> Option<PathBuf> {
    if std::env::var_os("RUSTC").is_some() || !cargo.is_absolute() {
        return None;
    }
    Some(cargo.parent()?.join("rustc")).filter(|rustc| rustc.is_file())
}

/// Makes sure `target`'s standard library is there, installing it with rustup if allowed.
pub fn ensure_target(
    target: &Target,
    probe: Probe,
    dir: &Path,
    install: Install,
    shell: &mut Shell,
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
    shell.status("Installing", format!("target {triple} (`{command}`)"));
    let output = Command::new("rustup")
        .args(["target", "add", triple])
        .current_dir(dir)
        .output()
        .context("could not run rustup")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines() {
        shell.verbose("rustup", line);
    }
    if !output.status.success() || !has_std(&libdir) {
        let reason = stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or("it did not install")
            .trim();
        bail!(
            "could not install the standard library for `{triple}` with rustup ({reason}); run `{command}` and try again"
        );
    }
    Ok(())
}

/// `rustc --print target-libdir`: where the target's std lives for the toolchain picked in `dir`
/// (rustup's overrides and `rust-toolchain.toml` apply there).
fn target_libdir(target: &Target, dir: &Path) -> Result<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", &target.triple])
        .current_dir(dir)
        .output()
        .with_context(|| {
            format!(
                "could not run `{}`\nhelp: install Rust, e.g. from https://rustup.rs",
                rustc.to_string_lossy()
            )
        })?;
    if !output.status.success() {
        bail!(
            "rustc does not know target `{}`: {}",
            target.triple,
            String::from_utf8_lossy(&output.stderr).trim()
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
    Command::new("rustup")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
