//! What the tool keeps under cargo's target directory, in one place:
//!
//! ```text
//! <target-dir>/scratchimg/
//!     <name>-<version>.tar      default outputs
//!     auditable/                dependency-list objects linked into the binaries
//!     rustc/<id>/rustc          this executable as the rustc the user's wrapper runs
//!     cache/<kind>-<version>/   what a run keeps for the next (see the cache module)
//!     cache/registry-mounts.json
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
        self.root
            .join("cache")
            .join(format!("{kind}-{}", env!("CARGO_PKG_VERSION")))
    }

    /// Where pushed blobs were seen, for mounting.
    pub(crate) fn registry_mounts(&self) -> PathBuf {
        self.root.join("cache/registry-mounts.json")
    }

    /// The prefix of `--verify`'s fresh target directories, under [`ToolDir::root`].
    pub(crate) const VERIFY_PREFIX: &str = "verify-";
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
            tool_dir.registry_mounts(),
            Path::new("/t/scratchimg/cache/registry-mounts.json")
        );
    }
}
