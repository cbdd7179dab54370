//! Compressed layers, keyed by the digest of their uncompressed tar.
//!
//! With the cargo build up to date, the binary's tar is the same as last time, and compressing
//! it again is most of the work left.

use std::path::Path;

use anyhow::Result;

use super::{Hit, Store};
use crate::image::{Layer, LayerBuilder, sha256};

/// Entries kept; older ones are removed so the cache stays a few megabytes.
const KEEP: usize = 32;

#[derive(Clone)]
pub struct LayerCache {
    store: Store,
}

impl LayerCache {
    /// The cache under a target directory. Compressed bytes depend on the compressor, so each
    /// version of this tool has its own: an image is reproducible whatever is cached.
    pub fn in_target_dir(target_directory: &Path) -> LayerCache {
        LayerCache {
            store: Store::in_target_dir(target_directory, "layers", KEEP),
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
        let entry = format!("{}.tar.gz", diff_id.digest());
        if let Some(gzip) = self.store.read(&entry)
            && gzip_isize(&gzip) == Some(tar.len() as u32)
        {
            return Ok((Layer::from_compressed(gzip, diff_id, comment), Hit::Cached));
        }
        let layer = Layer::compress(&tar, comment)?;
        let _ = self.store.write(&entry, layer.blob().data());
        Ok((layer, Hit::Miss))
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
        assert_eq!(hit, Hit::Miss);
        let (second, hit) = cache.layer(&builder(b"binary"), "app").unwrap();
        assert_eq!(hit, Hit::Cached);
        assert_eq!(first.blob().data(), second.blob().data());
        assert_eq!(first.diff_id(), second.diff_id());
        let fresh = builder(b"binary").build("app").unwrap();
        assert_eq!(fresh.blob().digest(), second.blob().digest());
        let (_, hit) = cache.layer(&builder(b"changed"), "app").unwrap();
        assert_eq!(hit, Hit::Miss);
    }

    #[test]
    fn a_damaged_entry_is_recompressed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::in_target_dir(dir.path());
        let (layer, _) = cache.layer(&builder(b"binary"), "app").unwrap();
        let entry = std::fs::read_dir(&cache.store.dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&entry, &layer.blob().data()[..10]).unwrap();
        let (again, hit) = cache.layer(&builder(b"binary"), "app").unwrap();
        assert_eq!(hit, Hit::Miss);
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
        assert_eq!(std::fs::read_dir(&cache.store.dir).unwrap().count(), KEEP);
    }
}
