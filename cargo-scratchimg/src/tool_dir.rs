//! What the tool keeps under cargo's target directory, in one place:
//!
//! ```text
//! <target-dir>/scratchimg/
//!     <name>-<version>.tar      default outputs
//!     auditable/                dependency-list objects linked into the binaries
//!     rustc/<id>/rustc          this executable as the rustc the user's wrapper runs
//!     cache/<kind>-<version>/   what a run keeps for the next (see the cache module)
//!     cache/registry-mounts-<version>/  where pushes saw base layers, when the user has no
//!                               cache directory (else `~/.cache/cargo-scratchimg/`)
//!     verify-*/                 --verify's second build, removed when it ends
//! ```

use std::path::{Path, PathBuf};

/// The folder's name under the target directory.
pub(crate) const DIR: &str = "scratchimg";

/// `<target-dir>/scratchimg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolDir {
    root: PathBuf,
}

impl ToolDir {
    pub(crate) fn new(target_dir: &Path) -> ToolDir {
        ToolDir {
            root: target_dir.join(DIR),
        }
    }

    /// `<target-dir>/scratchimg` itself.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where an output goes when `-o` does not say.
    pub(crate) fn default_output(&self, file_name: &str) -> PathBuf {
        self.root.join(file_name)
    }

    /// The dependency-list objects.
    pub(crate) fn auditable(&self) -> PathBuf {
        self.root.join("auditable")
    }

    /// The links named `rustc` to this executable, one per rustc, that the user's own rustc
    /// wrapper runs (see `cargo::shim`).
    pub(crate) fn rustc_links(&self) -> PathBuf {
        self.root.join("rustc")
    }

    /// The cache of one kind. Each version of this tool has its own: what it keeps may change
    /// between versions.
    pub(crate) fn cache(&self, kind: &str) -> PathBuf {
        self.root.join("cache").join(versioned(kind))
    }

    /// Where pushes record the repositories that hold base layers, for mounting: in
    /// `user_cache` (`~/.cache/cargo-scratchimg`), for every project of the user, else here.
    pub(crate) fn registry_mounts(&self, user_cache: Option<&Path>) -> PathBuf {
        const KIND: &str = "registry-mounts";
        match user_cache {
            Some(dir) => dir.join(versioned(KIND)),
            None => self.cache(KIND),
        }
    }

    /// The prefix of `--verify`'s fresh target directories, under [`ToolDir::root`].
    pub(crate) const VERIFY_PREFIX: &str = "verify-";
}

/// `<kind>-<version>`: each version of this tool keeps its own.
fn versioned(kind: &str) -> String {
    format!("{kind}-{}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_lives_under_target_scratchimg() {
        let tool_dir = ToolDir::new(Path::new("/t"));
        assert_eq!(tool_dir.root(), Path::new("/t/scratchimg"));
        assert_eq!(
            tool_dir.default_output("a-1.tar"),
            Path::new("/t/scratchimg/a-1.tar")
        );
        assert_eq!(tool_dir.auditable(), Path::new("/t/scratchimg/auditable"));
        assert_eq!(tool_dir.rustc_links(), Path::new("/t/scratchimg/rustc"));
        assert_eq!(
            tool_dir.cache("layers"),
            Path::new(concat!(
                "/t/scratchimg/cache/layers-",
                env!("CARGO_PKG_VERSION")
            ))
        );
        assert_eq!(
            tool_dir.registry_mounts(None),
            Path::new(concat!(
                "/t/scratchimg/cache/registry-mounts-",
                env!("CARGO_PKG_VERSION")
            ))
        );
        assert_eq!(
            tool_dir.registry_mounts(Some(Path::new("/home/me/.cache/cargo-scratchimg"))),
            Path::new(concat!(
                "/home/me/.cache/cargo-scratchimg/registry-mounts-",
                env!("CARGO_PKG_VERSION")
            ))
        );
    }
}
