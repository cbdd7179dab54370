//! What is kept between runs under `target/scratchimg/cache`, so a run whose cargo build is up
//! to date does little else: compressed layers ([`LayerCache`]), the crate graphs of the
//! binaries ([`GraphCache`]), the toolchain's version ([`VersionCache`]) and the build to start
//! early ([`BuildCache`]). Like Jib's cache, it lives in the build's target directory, is
//! rebuilt from scratch when removed, and never changes what is built: cache trouble is only a
//! slower run.

mod builds;
mod graphs;
mod layers;
mod toolchain;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use builds::BuildCache;
pub use graphs::GraphCache;
pub use layers::LayerCache;
pub use toolchain::VersionCache;

/// Whether a value came from the cache, for `-v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Cached,
    Miss,
}

/// A directory of entries named by their key, keeping the newest few.
#[derive(Clone)]
struct Store {
    dir: PathBuf,
    keep: usize,
}

impl Store {
    /// The store `name` under a target directory. Each version of this tool has its own, as what
    /// it keeps (compressed bytes, graph files) may change between versions.
    fn in_target_dir(target_directory: &Path, name: &str, keep: usize) -> Store {
        let dir = format!("{name}-{}", env!("CARGO_PKG_VERSION"));
        Store {
            dir: target_directory.join("scratchimg").join("cache").join(dir),
            keep,
        }
    }

    fn path(&self, entry: &str) -> PathBuf {
        self.dir.join(entry)
    }

    fn read(&self, entry: &str) -> Option<Vec<u8>> {
        fs::read(self.path(entry)).ok()
    }

    /// Writes an entry whole (a temporary file, then rename), then drops the oldest entries.
    fn write(&self, entry: &str, data: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(data)?;
        temp.persist(self.path(entry))?;
        self.prune()
    }

    fn prune(&self) -> std::io::Result<()> {
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&self.dir)?
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() > self.keep {
            entries.sort();
            for (_, path) in &entries[..entries.len() - self.keep] {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}
