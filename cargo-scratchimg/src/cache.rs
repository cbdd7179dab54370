//! Compressed layers kept between runs, keyed by the digest of their uncompressed tar.
//!
//! With the cargo build up to date, the binary's tar is the same as last time, and compressing
//! it again is most of the work left. Like Jib's layer cache, this one lives in the build's
//! target directory and is rebuilt from scratch when removed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::image::{Layer, LayerBuilder, sha256};

/// Entries kept; older ones are removed so the cache stays a few megabytes.
const KEEP: usize = 32;

pub struct LayerCache {
    dir: PathBuf,
}

/// Whether a layer came from the cache, for `-v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Cached,
    Compressed,
}

impl LayerCache {
    /// The cache under a target directory. Compressed bytes depend on the compressor, so each
    /// version of this tool has its own: an image is reproducible whatever is cached.
    pub fn in_target_dir(target_directory: &Path) -> LayerCache {
        let version = concat!("layers-", env!("CARGO_PKG_VERSION"));
        LayerCache {
            dir: target_directory
                .join("scratchimg")
                .join("cache")
                .join(version),
        }
    }

    /// The layer `builder` describes: from the cache when an entry matches its tar, else
    /// compressed now and stored. Cache trouble is never an error, only a slower run.
    pub fn layer(
        &self,
        builder: &LayerBuilder<'_>,
        comment: impl Into<String>,
    ) -> Result<(Layer, Hit)> {
        let tar = builder.tar()?;
        let diff_id = sha256(&tar);
        let entry = self.dir.join(format!("{}.tar.gz", diff_id.digest()));
        if let Ok(gzip) = fs::read(&entry)
            && gzip_isize(&gzip) == Some(tar.len() as u32)
        {
            return Ok((Layer::from_compressed(gzip, diff_id, comment), Hit::Cached));
        }
        let layer = Layer::compress(&tar, comment)?;
        let _ = self.store(&entry, layer.blob().data());
        Ok((layer, Hit::Compressed))
    }

    fn store(&self, entry: &Path, gzip: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(gzip)?;
        temp.persist(entry)?;
        self.prune()
    }

    fn prune(&self) -> std::io::Result<()> {
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&self.dir)?
            .flatten()
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() > KEEP {
            entries.sort();
            for (_, path) in &entries[..entries.len() - KEEP] {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }
}

/// gzip's trailer ends with the uncompressed size mod 2^32: a cheap check that a cached blob
/// is whole and belongs to a tar of this size.
fn gzip_isize(gzip: &[u8]) -> Option<u32> {
    let gzip_header = gzip.len() >= 18 && gzip[..2] == [0x1f, 0x8b];
    let trailer: [u8; 4] = gzip.get(gzip.len().checked_sub(4)?..)?.try_into().ok()?;
    gzip_header.then(|| u32::from_le_bytes(trailer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Owner;

    fn builder(content: &'static [u8]) -> LayerBuilder<'static> {
        let mut b = LayerBuilder::new(0);
        b.file("app/bin", content, 0o755, Owner::ROOT).unwrap();
        b
    }

    #[test]
    fn second_run_is_served_from_the_cache_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::in_target_dir(dir.path());
        let (first, hit) = cache.layer(&builder(b"binary"), "app").unwrap();
        assert_eq!(hit, Hit::Compressed);
        let (second, hit) = cache.layer(&builder(b"binary"), "app").unwrap();
        assert_eq!(hit, Hit::Cached);
        assert_eq!(first.blob().data(), second.blob().data());
        assert_eq!(first.diff_id(), second.diff_id());
        let fresh = builder(b"binary").build("app").unwrap();
        assert_eq!(fresh.blob().digest(), second.blob().digest());
        let (_, hit) = cache.layer(&builder(b"changed"), "app").unwrap();
        assert_eq!(hit, Hit::Compressed);
    }

    #[test]
    fn a_damaged_entry_is_recompressed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::in_target_dir(dir.path());
        let (layer, _) = cache.layer(&builder(b"binary"), "app").unwrap();
        let entry = fs::read_dir(&cache.dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        fs::write(&entry, &layer.blob().data()[..10]).unwrap();
        let (again, hit) = cache.layer(&builder(b"binary"), "app").unwrap();
        assert_eq!(hit, Hit::Compressed);
        assert_eq!(again.blob().data(), layer.blob().data());
    }

    #[test]
    fn old_entries_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::in_target_dir(dir.path());
        for i in 0..KEEP + 5 {
            let content: &'static [u8] =
                Box::leak(format!("binary {i}").into_bytes().into_boxed_slice());
            cache.layer(&builder(content), "app").unwrap();
        }
        assert_eq!(fs::read_dir(&cache.dir).unwrap().count(), KEEP);
    }
}
