//! Compressed layers, found by a key that names their tar's bytes ([`Tar::key`]: the headers and
//! each file's digest, so the program's bytes, hashed once for its SBOM, are not read again).
//!
//! With the cargo build up to date, the binary's tar is the same as last time, and compressing
//! it again is most of the work left. An entry is named
//! `<key>.<compression>.<diff_id>.<compressed digest>`, the compression naming everything that
//! decides the bytes (algorithm, level, block or job size), so one setting never gets another's
//! bytes. It is used only when its bytes hash to the last digest and decompress to bytes that
//! hash to the diff_id, read in one streaming pass. A new layer is compressed straight into a
//! new entry, so its bytes are never held in memory; the entry's file stays open while the run
//! uses it.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result};
use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::{Growing, Hit, Store};
use crate::image::{
    Blob, Compression, Content, FilePart, HashReader, Layer, LayerBuilder, Tar, decompressor,
    digest_of, streamed_digest,
};
use crate::report::Reporter;
use crate::tool_dir::ToolDir;

/// Entries kept; older ones are removed.
const KEEP: usize = 32;
/// Bytes kept, beyond the newest entry: a few big programs' layers.
const BUDGET: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub(crate) struct LayerCache {
    store: Store,
}

impl LayerCache {
    /// The cache under a target directory. Compressed bytes depend on the compressor, so each
    /// version of this tool has its own: an image is reproducible whatever is cached.
    pub(crate) fn open(tool_dir: &ToolDir) -> LayerCache {
        let mut store = Store::open(tool_dir, "layers", KEEP);
        store.bytes = Some(BUDGET);
        // What killed runs left goes now, even when this run writes no entry.
        let _ = store.prune();
        LayerCache { store }
    }

    /// The layer `builder` describes, compressed with `compression`: from the cache when a
    /// sound entry matches its tar, else compressed now on `threads` threads and kept.
    /// `follow` gets the new entry as it is written, when there is one to write: a reader of it
    /// (an upload) may start before the compression ends.
    pub(crate) fn layer(
        &self,
        builder: &LayerBuilder,
        comment: impl Into<String>,
        compression: Compression,
        threads: usize,
        follow: &mut dyn FnMut(Arc<Growing>),
        report: &dyn Reporter,
    ) -> Result<(Layer, Hit)> {
        let comment = comment.into();
        let tar = builder.finish()?;
        let context = || format!("could not pack the layer {comment}");
        let key = tar.key().with_context(context)?;
        if let Some((blob, diff_id)) = self.get(&tar, &key, compression, report) {
            return Ok((Layer::new(blob, diff_id, comment, Some(&tar)), Hit::Cached));
        }
        let (blob, diff_id) = self
            .put(&tar, &key, compression, threads, follow)
            .with_context(context)?;
        Ok((Layer::new(blob, diff_id, comment, Some(&tar)), Hit::Miss))
    }

    /// The checked entry for `tar` (named by `key`) and `compression`: its blob, and its
    /// diff_id.
    fn get(
        &self,
        tar: &Tar,
        key: &Digest,
        compression: Compression,
        report: &dyn Reporter,
    ) -> Option<(Blob, Digest)> {
        let prefix = format!("{}.{}.", key.digest(), compression.tag());
        let entry = self
            .store
            .entries()
            .into_iter()
            .find(|name| name.starts_with(&prefix))?;
        let (diff_id, digest) = entry[prefix.len()..].split_once('.')?;
        let file = File::open(self.store.path(&entry)).ok()?;
        let len = file.metadata().ok()?.len();
        let stored = FilePart::whole(file, len, self.store.path(&entry));
        let why = match check(&stored, compression, diff_id, digest, tar) {
            Ok(()) => {
                // Used entries stay the newest, so pruning takes others first.
                let _ = stored.file.set_modified(std::time::SystemTime::now());
                let blob = Blob::with_digest(
                    compression.media_type(),
                    parse(digest)?,
                    Content::stream(Arc::new(stored)),
                );
                return Some((blob, parse(diff_id)?));
            }
            Err(why) => why,
        };
        self.store.discard(&entry, why, report);
        None
    }

    /// Compresses `tar` into a new entry (or, when the cache cannot be written, into a
    /// temporary file): its blob, and its diff_id.
    fn put(
        &self,
        tar: &Tar,
        key: &Digest,
        compression: Compression,
        threads: usize,
        follow: &mut dyn FnMut(Arc<Growing>),
    ) -> io::Result<(Blob, Digest)> {
        let target = match self.store.create() {
            Ok(temp) => Ok(temp),
            Err(_) => Err(tempfile::tempfile()?),
        };
        let out = match &target {
            Ok(temp) => temp.as_file(),
            Err(anonymous) => anonymous,
        };
        // The most it can grow to: the tar and what compression may add.
        let limit = tar.size() + tar.size() / 8 + (1 << 20);
        let growing = Arc::new(Growing::new(out.try_clone()?, limit));
        // Whatever happens below, a reader following the entry hears how it ended.
        let ending = growing.ending();
        follow(growing.clone());
        let mut writer = BufWriter::with_capacity(1 << 20, growing.writer(out));
        let packed = tar.compress(compression, threads, &mut writer)?;
        writer.flush()?;
        drop(writer);
        ending.whole(packed.digest.clone());
        let name = format!(
            "{}.{}.{}.{}",
            key.digest(),
            compression.tag(),
            packed.diff_id.digest(),
            packed.digest.digest()
        );
        // Kept only when written whole; else the open file serves this run alone.
        let unnamed = || PathBuf::from("(a temporary file)");
        let (file, path) = match target {
            Ok(temp) => match self.store.commit(temp, &name) {
                Ok(file) => (file, self.store.path(&name)),
                Err(temp) => (temp.into_file(), unnamed()),
            },
            Err(anonymous) => (anonymous, unnamed()),
        };
        let stored = FilePart::whole(file, packed.size, path);
        let blob = Blob::with_digest(
            compression.media_type(),
            packed.digest,
            Content::stream(Arc::new(stored)),
        );
        Ok((blob, packed.diff_id))
    }
}

fn parse(hex: &str) -> Option<Digest> {
    format!("sha256:{hex}").parse().ok()
}

/// Reads the entry once: its bytes must hash to `digest` and decompress to exactly the bytes
/// of `tar`, which hash to `diff_id`. So an entry gives only what compressing `tar` would,
/// whatever its name says. Decompressing runs on a thread of its own, hashing and comparing
/// what it gives on this one.
fn check(
    stored: &FilePart,
    compression: Compression,
    diff_id: &str,
    digest: &str,
    tar: &Tar,
) -> Result<(), &'static str> {
    let (chunks, unpacked) = mpsc::sync_channel::<Vec<u8>>(4);
    let (compressed, unpacked) = std::thread::scope(|scope| {
        let unpacking = scope.spawn(move || {
            let mut hasher = Sha256::new();
            let mut bytes = HashReader {
                inner: stored.reader(),
                hasher: &mut hasher,
            };
            let unpacked =
                decompressor(&compression.media_type(), Box::new(&mut bytes)).and_then(|decoder| {
                    // No more than the tar and a byte: a bomb is cut short, and differs.
                    let mut decoder = decoder.take(tar.size() + 1);
                    loop {
                        let mut chunk = vec![0; 256 * 1024];
                        let n = decoder.read(&mut chunk)?;
                        if n == 0 {
                            return Ok(());
                        }
                        chunk.truncate(n);
                        if chunks.send(chunk).is_err() {
                            return Ok(());
                        }
                    }
                });
            drop(chunks);
            // What the decompressor left unread counts too.
            let rest = io::copy(&mut bytes, &mut io::sink());
            let whole = unpacked.is_ok() && rest.is_ok();
            (whole, digest_of(hasher.finalize()))
        });
        let mut compared = Compared {
            inner: Chunks {
                chunks: unpacked,
                chunk: Vec::new(),
                at: 0,
            },
            expected: tar.reader(),
            scratch: Vec::new(),
            differs: false,
        };
        let unpacked = streamed_digest(&mut compared).map(|d| (d, compared.differs));
        drop(compared);
        (crate::util::join(unpacking), unpacked)
    });
    let (whole, compressed) = compressed;
    if compressed.digest() != digest {
        return Err("its bytes do not match their digest");
    }
    match unpacked {
        Ok(((tar_digest, size), false))
            if whole && size == tar.size() && tar_digest.digest() == diff_id =>
        {
            Ok(())
        }
        _ => Err("it does not decompress to this layer's tar"),
    }
}

/// Reads the chunks another thread sends, in order, to their end.
struct Chunks {
    chunks: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.chunks.recv() {
                Ok(chunk) => (self.chunk, self.at) = (chunk, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = (self.chunk.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads `inner`, noting whether it gives other bytes than `expected`.
struct Compared<'a, R> {
    inner: R,
    expected: crate::image::TarReader<'a>,
    scratch: Vec<u8>,
    differs: bool,
}

impl<R: Read> Read for Compared<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scratch.resize(n, 0);
        if self.expected.read_exact(&mut self.scratch).is_err() || self.scratch[..] != buf[..n] {
            self.differs = true;
        }
        Ok(n)
    }
}

/// A compressed layer in a file this run holds open.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Algorithm, Owner};
    use crate::report::{Capture, Verbosity};

    fn builder(content: &'static [u8]) -> LayerBuilder {
        let mut b = LayerBuilder::new(0);
        b.file("app/bin", content, 0o755, Owner::ROOT).unwrap();
        b
    }

    fn quiet() -> Capture {
        Capture::new(Verbosity::Verbose)
    }

    const GZIP: Compression = Compression {
        algorithm: Algorithm::Gzip,
        level: 9,
    };

    fn layer(cache: &LayerCache, content: &'static [u8], compression: Compression) -> (Layer, Hit) {
        cache
            .layer(
                &builder(content),
                "app",
                compression,
                2,
                &mut |_| {},
                &quiet(),
            )
            .unwrap()
    }

    #[test]
    fn second_run_is_served_from_the_cache_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&ToolDir::new(dir.path()));
        let (first, hit) = layer(&cache, b"binary", GZIP);
        assert_eq!(hit, Hit::Miss);
        let (second, hit) = layer(&cache, b"binary", GZIP);
        assert_eq!(hit, Hit::Cached);
        assert_eq!(first.blob().read_all(), second.blob().read_all());
        assert_eq!(first.diff_id(), second.diff_id());
        let fresh = builder(b"binary").build("app").unwrap();
        assert_eq!(fresh.blob().digest(), second.blob().digest());
        assert_eq!(fresh.diff_id(), second.diff_id());
        let (_, hit) = layer(&cache, b"changed", GZIP);
        assert_eq!(hit, Hit::Miss);
    }

    /// Another algorithm or level never gets the bytes kept for one: each has its entry.
    #[test]
    fn algorithms_and_levels_have_their_own_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&ToolDir::new(dir.path()));
        let settings = [
            GZIP,
            Compression::new(Algorithm::Gzip),
            Compression::new(Algorithm::Zstd),
            Compression::smallest(Algorithm::Zstd),
        ];
        let mut digests = Vec::new();
        for compression in settings {
            let (layer, hit) = layer(&cache, b"binary", compression);
            assert_eq!(hit, Hit::Miss, "{compression}");
            assert_eq!(layer.blob().media_type(), &compression.media_type());
            digests.push(layer.blob().digest().to_string());
        }
        for (compression, digest) in settings.into_iter().zip(&digests) {
            let (layer, hit) = layer(&cache, b"binary", compression);
            assert_eq!(hit, Hit::Cached, "{compression}");
            assert_eq!(&layer.blob().digest().to_string(), digest, "{compression}");
        }
        digests.sort();
        digests.dedup();
        assert_eq!(digests.len(), settings.len());
        assert_eq!(cache.store.entries().len(), settings.len());
    }

    /// Truncated, emptied, bit-flipped, or the gzip of other content under the right names:
    /// each is thrown away with one note, and the layer is the one compression gives.
    #[test]
    fn a_damaged_entry_is_discarded_and_compressed_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&ToolDir::new(dir.path()));
        let fresh = builder(b"binary").build("app").unwrap();
        let other = builder(b"other!").build("app").unwrap();
        let other_bytes = other.blob().read_all();
        type Damage<'a> = Box<dyn Fn(&[u8]) -> Vec<u8> + 'a>;
        let damages: [(&str, Damage); 5] = [
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
            ("trailing bytes", Box::new(|b| [b, b"x"].concat())),
            ("other content", Box::new(|_| other_bytes.clone())),
        ];
        for (name, damage) in damages {
            layer(&cache, b"binary", GZIP);
            let entry = cache.store.entries().into_iter().next().unwrap();
            let path = cache.store.path(&entry);
            let bytes = damage(&std::fs::read(&path).unwrap());
            // "other content" keeps the entry self-consistent but under another diff_id.
            let renamed = if name == "other content" {
                let (start, _) = entry.rsplit_once('.').unwrap();
                let (start, _) = start.rsplit_once('.').unwrap();
                let other = format!(
                    "{start}.{}.{}",
                    other.diff_id().digest(),
                    other.blob().digest().digest()
                );
                cache.store.path(&other)
            } else {
                path.clone()
            };
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&renamed, bytes).unwrap();
            let report = quiet();
            let (again, hit) = cache
                .layer(&builder(b"binary"), "app", GZIP, 2, &mut |_| {}, &report)
                .unwrap();
            assert_eq!(hit, Hit::Miss, "{name}");
            assert_eq!(again.blob().read_all(), fresh.blob().read_all(), "{name}");
            assert_eq!(report.events().len(), 1, "{name}: one note");
            assert!(!renamed.exists() || renamed == path, "{name}: removed");
        }
    }

    #[test]
    fn old_entries_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&ToolDir::new(dir.path()));
        for i in 0..KEEP + 5 {
            let content: &'static [u8] =
                Box::leak(format!("binary {i}").into_bytes().into_boxed_slice());
            layer(&cache, content, GZIP);
        }
        assert_eq!(cache.store.entries().len(), KEEP);
    }

    /// A reader that follows a new entry gets its bytes as they are written, and the digest at
    /// its end; on a cache hit there is nothing to follow.
    #[test]
    fn a_new_entry_can_be_followed_while_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&ToolDir::new(dir.path()));
        let content: &'static [u8] = Box::leak(vec![7u8; 3 << 20].into_boxed_slice());
        let (layer, followed) = std::thread::scope(|scope| {
            let mut reading = None;
            let mut follow = |growing: Arc<Growing>| {
                reading = Some(scope.spawn(move || {
                    let mut bytes = Vec::new();
                    growing.reader().read_to_end(&mut bytes).unwrap();
                    (bytes, growing.digest())
                }));
            };
            let (layer, _) = cache
                .layer(&builder(content), "app", GZIP, 2, &mut follow, &quiet())
                .unwrap();
            (layer, reading.unwrap().join().unwrap())
        });
        assert_eq!(followed.0, layer.blob().read_all());
        assert_eq!(followed.1.as_ref(), Some(layer.blob().digest()));
        let mut followed = false;
        cache
            .layer(
                &builder(content),
                "app",
                GZIP,
                2,
                &mut |_| followed = true,
                &quiet(),
            )
            .unwrap();
        assert!(!followed, "a hit has nothing to follow");
    }

    /// A follower that is called off fails at its next read; what it had not read is unread.
    #[test]
    fn a_follower_can_be_called_off() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&ToolDir::new(dir.path()));
        let mut kept = None;
        let (layer, _) = cache
            .layer(
                &builder(b"binary"),
                "app",
                GZIP,
                2,
                &mut |g| kept = Some(g),
                &quiet(),
            )
            .unwrap();
        let growing = kept.unwrap();
        assert_eq!(growing.unread(), layer.blob().size());
        let mut reader = growing.reader();
        let mut first = [0; 10];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(growing.unread(), layer.blob().size() - 10);
        growing.cancel();
        let err = reader.read(&mut first).unwrap_err();
        assert_eq!(err.to_string(), "the upload was called off");
    }

    /// An entry pruned (or removed) while the run uses it still gives its bytes.
    #[test]
    fn a_layer_in_use_keeps_its_bytes_when_its_entry_goes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::open(&ToolDir::new(dir.path()));
        let (layer, _) = layer(&cache, b"binary", GZIP);
        let expected = builder(b"binary").build("app").unwrap().blob().read_all();
        for entry in cache.store.entries() {
            std::fs::remove_file(cache.store.path(&entry)).unwrap();
        }
        assert_eq!(layer.blob().read_all(), expected);
    }
}
