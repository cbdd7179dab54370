//! Compressed layers, keyed by the digest of their uncompressed tar (the diff_id).
//!
//! With the cargo build up to date, the binary's tar is the same as last time, and compressing
//! it again is most of the work left. An entry's name holds both digests,
//! `<diff_id>.<compressed digest>.gz`: it is used only when its bytes hash to the second and
//! decompress to bytes that hash to the first.

use std::io::Read;

use anyhow::Result;
use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::{Hit, Store};
use crate::image::{Layer, LayerBuilder, sha256};
use crate::layout::Layout;
use crate::report::Reporter;

/// Entries kept; older ones are removed so the cache stays a few megabytes.
const KEEP: usize = 32;

#[derive(Debug, Clone)]
pub(crate) struct LayerCache {
    store: Store,
}

impl LayerCache {
    /// The cache under a target directory. Compressed bytes depend on the compressor, so each
    /// version of this tool has its own: an image is reproducible whatever is cached.
    pub(crate) fn open(layout: &Layout) -> LayerCache {
        LayerCache {
            store: Store::open(layout, "layers", KEEP),
        }
    }

    /// The layer `builder` describes: from the cache when a sound entry matches its tar, else
    /// compressed now and stored.
    pub(crate) fn layer(
        &self,
        builder: &LayerBuilder<'_>,
        comment: impl Into<String>,
        report: &dyn Reporter,
    ) -> Result<(Layer, Hit)> {
        let tar = builder.tar()?;
        let diff_id = sha256(&tar);
        if let Some(gzip) = self.get(&diff_id, report) {
            return Ok((Layer::from_compressed(gzip, diff_id, comment), Hit::Cached));
        }
        let layer = Layer::compress(&tar, comment)?;
        let entry = format!("{}.{}.gz", diff_id.digest(), layer.blob().digest().digest());
        let _ = self.store.write(&entry, layer.blob().data());
        Ok((layer, Hit::Miss))
    }

    /// The compressed bytes kept for `diff_id`, checked against both digests.
    fn get(&self, diff_id: &Digest, report: &dyn Reporter) -> Option<Vec<u8>> {
        let prefix = format!("{}.", diff_id.digest());
        let entry = self
            .store
            .entries()
            .into_iter()
            .find(|name| name.starts_with(&prefix) && name.ends_with(".gz"))?;
        let digest = entry[prefix.len()..entry.len() - ".gz".len()].to_string();
        let gzip = self.store.read(&entry)?;
        let why = if sha256(&gzip).digest() != digest.as_str() {
            "its bytes do not match their digest"
        } else if gunzipped_digest(&gzip).as_deref() != Some(diff_id.digest()) {
            "it does not decompress to its diff_id"
        } else {
            return Some(gzip);
        };
        self.store.discard(&entry, why, report);
        None
    }
}

/// The hex SHA-256 of what `gzip` decompresses to; `None` when it does not decompress.
fn gunzipped_digest(gzip: &[u8]) -> Option<String> {
    let mut decoder = flate2::read::GzDecoder::new(gzip);
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match decoder.read(&mut chunk).ok()? {
            0 => break,
            n => hasher.update(&chunk[..n]),
        }
    }
    Some(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Owner;
    use crate::report::{Capture, Verbosity};

    fn builder(content: &'static [u8]) -> LayerBuilder<'static> {
        let mut b = LayerBuilder::new(0);
        b.file("app/bin", content, 0o755, Owner::ROOT).unwrap();
        b
    }

    fn quiet() -> Capture {
        Capture::new(Verbosity::Verbose)
    }

    #[test]
    fn second_run_is_served_from_the_cache_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&Layout::new(dir.path()));
        let (first, hit) = cache.layer(&builder(b"binary"), "app", &quiet()).unwrap();
        assert_eq!(hit, Hit::Miss);
        let (second, hit) = cache.layer(&builder(b"binary"), "app", &quiet()).unwrap();
        assert_eq!(hit, Hit::Cached);
        assert_eq!(first.blob().data(), second.blob().data());
        assert_eq!(first.diff_id(), second.diff_id());
        let fresh = builder(b"binary").build("app").unwrap();
        assert_eq!(fresh.blob().digest(), second.blob().digest());
        let (_, hit) = cache.layer(&builder(b"changed"), "app", &quiet()).unwrap();
        assert_eq!(hit, Hit::Miss);
    }

    /// Truncated, emptied, bit-flipped, or the gzip of other content under the right names:
    /// each is thrown away with one note, and the layer is the one compression gives.
    #[test]
    fn a_damaged_entry_is_discarded_and_compressed_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&Layout::new(dir.path()));
        let fresh = builder(b"binary").build("app").unwrap();
        let other = builder(b"other!").build("app").unwrap();
        type Damage<'a> = Box<dyn Fn(&[u8]) -> Vec<u8> + 'a>;
        let damages: [(&str, Damage); 4] = [
            ("truncated", Box::new(|b| b[..10].to_vec())),
            ("empty", Box::new(|_| Vec::new())),
            (
                "flipped",
                Box::new(|b| {
                    let mut b = b.to_vec();
                    b[20] ^= 0x40;
                    b
                }),
            ),
            ("other content", Box::new(|_| other.blob().data().to_vec())),
        ];
        for (name, damage) in damages {
            cache.layer(&builder(b"binary"), "app", &quiet()).unwrap();
            let entry = cache.store.entries().into_iter().next().unwrap();
            let path = cache.store.path(&entry);
            let bytes = damage(&std::fs::read(&path).unwrap());
            // "other content" keeps the entry self-consistent but under another diff_id.
            let renamed = if name == "other content" {
                let diff = fresh.diff_id().digest();
                cache
                    .store
                    .path(&format!("{diff}.{}.gz", other.blob().digest().digest()))
            } else {
                path.clone()
            };
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&renamed, bytes).unwrap();
            let report = quiet();
            let (again, hit) = cache.layer(&builder(b"binary"), "app", &report).unwrap();
            assert_eq!(hit, Hit::Miss, "{name}");
            assert_eq!(again.blob().data(), fresh.blob().data(), "{name}");
            assert_eq!(report.events().len(), 1, "{name}: one note");
            assert!(!renamed.exists() || renamed == path, "{name}: removed");
        }
    }

    #[test]
    fn old_entries_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&Layout::new(dir.path()));
        for i in 0..KEEP + 5 {
            let content: &'static [u8] =
                Box::leak(format!("binary {i}").into_bytes().into_boxed_slice());
            cache.layer(&builder(content), "app", &quiet()).unwrap();
        }
        assert_eq!(cache.store.entries().len(), KEEP);
    }
}
