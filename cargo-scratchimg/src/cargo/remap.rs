//! Paths of the building machine kept out of the binary: rustc's `--remap-path-prefix` for the
//! workspace, the target directory, the cargo home (registry and git sources) and the toolchain.
//!
//! The flags reach rustc through [`super::wrapper`], which adds them to whatever flags cargo
//! computed, so the user's `CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS`, `target.*.rustflags` and
//! `build.rustflags` all keep working, each with its own precedence, untouched.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Prefixes to rewrite, each with the machine-independent path it becomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PathRemap {
    prefixes: Vec<(PathBuf, Root)>,
}

/// What a prefix becomes: one of a fixed few paths, so a kept remapping can name no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Root {
    Workspace,
    Target,
    Cargo,
    Rustup,
    Sysroot,
}

impl Root {
    fn path(self) -> &'static str {
        match self {
            Root::Workspace => "/workspace",
            Root::Target => "/target",
            Root::Cargo => "/cargo",
            Root::Rustup => "/rustup",
            Root::Sysroot => "/rustc/sysroot",
        }
    }
}

/// Where a build's inputs live on this machine.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildRoots {
    pub workspace: PathBuf,
    pub target_dir: PathBuf,
    /// `$CARGO_HOME`, else `~/.cargo`.
    pub cargo_home: Option<PathBuf>,
    /// `$RUSTUP_HOME`, else `~/.rustup`.
    pub rustup_home: Option<PathBuf>,
    /// The toolchain's sysroot, which need not be inside the rustup home.
    pub sysroot: Option<PathBuf>,
}

impl PathRemap {
    pub(crate) fn new(roots: &BuildRoots) -> PathRemap {
        let mut prefixes = vec![
            (roots.workspace.clone(), Root::Workspace),
            (roots.target_dir.clone(), Root::Target),
        ];
        for (path, to) in [
            (&roots.cargo_home, Root::Cargo),
            (&roots.rustup_home, Root::Rustup),
            (&roots.sysroot, Root::Sysroot),
        ] {
            if let Some(path) = path {
                prefixes.push((path.clone(), to));
            }
        }
        // rustc applies the last prefix that matches: longer, more specific ones go last, so a
        // target dir inside the workspace becomes /target, not /workspace/target.
        prefixes.sort_by_key(|(path, _)| path.as_os_str().len());
        prefixes.dedup_by(|a, b| a.0 == b.0);
        PathRemap { prefixes }
    }

    /// Whether every prefix is a plain path: the wrapper's flags are separated by 0x1f, so a
    /// path holding one could smuggle a flag of its own into every rustc.
    pub(crate) fn is_plain(&self) -> bool {
        use std::os::unix::ffi::OsStrExt;
        self.prefixes.iter().all(|(from, _)| {
            from.is_absolute() && !from.as_os_str().as_bytes().iter().any(|b| *b < 0x20)
        })
    }

    /// What the remapping makes of paths, with no path of this machine: the paths it makes,
    /// sorted. The same roots give the same bytes wherever the build ran, since the most
    /// specific prefix wins on every machine.
    pub(crate) fn roots(&self) -> String {
        let mut roots: Vec<&str> = self.prefixes.iter().map(|(_, to)| to.path()).collect();
        roots.sort_unstable();
        roots.join(" ")
    }

    /// The rustc flags, one `--remap-path-prefix=FROM=TO` each.
    pub(crate) fn rustc_args(&self) -> Vec<OsString> {
        self.prefixes
            .iter()
            .map(|(from, to)| {
                let mut arg = OsString::from("--remap-path-prefix=");
                arg.push(from.as_os_str());
                arg.push("=");
                arg.push(to.path());
                arg
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_prefix_comes_last() {
        let remap = PathRemap::new(&BuildRoots {
            workspace: "/home/me/app".into(),
            target_dir: "/home/me/app/target".into(),
            cargo_home: Some("/home/me/.cargo".into()),
            rustup_home: None,
            sysroot: Some("/opt/rust".into()),
        });
        assert_eq!(
            remap.rustc_args(),
            [
                "--remap-path-prefix=/opt/rust=/rustc/sysroot",
                "--remap-path-prefix=/home/me/app=/workspace",
                "--remap-path-prefix=/home/me/.cargo=/cargo",
                "--remap-path-prefix=/home/me/app/target=/target",
            ]
        );
        assert_eq!(remap.roots(), "/cargo /rustc/sysroot /target /workspace");
    }
}
