//! Compressed layers, found by a key that names their tar's bytes ([`Tar::key`]: the headers and
//! each file's digest, so the program's bytes, hashed once for its SBOM, are not read again).
//!
//! With the cargo build up to date, the binary's tar is the same as last time, and compressing
//! it again is most of the work left. An entry is named
//! `<key>.<compression>.<diff_id>.<compressed digest>`, the compression naming everything that
//! decides the bytes (algorithm, level, block or job size), so one setting never gets another's
//! bytes. It is used only when its bytes hash to the last digest and decompress to bytes that
//! hash to the diff_id, read in one streaming pass. A run that made that check records it beside
//! the entry (`<entry>.checked`: the file's [`FileIdentity`] and when it was checked), having
//! flushed the entry to disk first, so a later run reads the entry again only when it is no
//! longer that very file, or was checked before its last change had settled. A new entry is
//! not recorded by the run that wrote it: its bytes may not be on the disk yet, and a crash can
//! leave a file with the right size and times but not the bytes; the next run that uses it
//! checks it. The record's own time is the entry's last use, for pruning: the entry itself is
//! never touched after it is written. A new layer is compressed straight into a new entry, so
//! its bytes are never held in memory; the entry's file stays open while the run uses it.
//!
//! One [`LayerCache`] serves a whole run: each layer is looked up, or compressed, once however
//! many images hold it (a workspace's `files` layer, the base layer), also when images are
//! assembled side by side.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use super::check::check;
use super::{FileIdentity, Growing, Hit, Store, record_time};
use crate::image::{Blob, Compression, Content, FilePart, Layer, LayerBuilder, Tar};
use crate::report::Reporter;
use crate::tool_dir::ToolDir;
use crate::util::lock;

/// Entries kept; those used last longest ago are removed. Enough for the layers of a workspace
/// of hundreds of services (a small program's layer is a few hundred kilobytes).
const KEEP: usize = 1024;
/// Bytes kept, beyond the newest entry: a few big programs' layers.
const BUDGET: u64 = 1 << 30;
/// What the record of an entry's check adds to its name.
const CHECKED: &str = ".checked";

#[derive(Debug, Clone)]
pub(crate) struct LayerCache {
    store: Store,
    run: Arc<Run>,
}

/// What one run knows of the cache: the entries it found when it first looked, and each layer it
/// looked up or made, by the entry name's start (key and compression).
#[derive(Debug, Default)]
struct Run {
    listed: OnceLock<Vec<String>>,
    layers: Mutex<HashMap<String, Slot>>,
}

/// A layer of the run, its blob and diff_id: found or made by the first image that needs it
/// while the others wait.
type Slot = Arc<Mutex<Option<(Blob, Digest)>>>;

impl LayerCache {
    /// The cache under a target directory, for one run. Compressed bytes depend on the
    /// compressor, so each version of this tool has its own: an image is reproducible whatever
    /// is cached.
    pub(crate) fn open(tool_dir: &ToolDir) -> LayerCache {
        let mut store = Store::open(tool_dir, "layers", KEEP);
        store.bytes = Some(BUDGET);
        store.sidecar = Some(CHECKED);
        // What killed runs left goes now, even when this run writes no entry.
        let _ = store.prune();
        LayerCache {
            store,
            run: Arc::default(),
        }
    }

    /// The layer `builder` describes, compressed with `compression`: made earlier in this run,
    /// else from the cache when a sound entry matches its tar, else compressed now on `threads`
    /// threads and kept. `follow` gets the new entry as it is written, when there is one to
    /// write: a reader of it (an upload) may start before the compression ends.
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
        let name = format!("{}.{}", key.digest(), compression.tag());
        // Another image of the run may be making the same layer: it is waited for.
        let slot = {
            let mut layers = lock(&self.run.layers);
            layers.entry(name.clone()).or_default().clone()
        };
        let mut slot = lock(&slot);
        let (blob, diff_id, hit) = match &*slot {
            Some((blob, diff_id)) => (blob.clone(), diff_id.clone(), Hit::Cached),
            None => match self.get(&tar, &name, compression, report) {
                Some((blob, diff_id)) => (blob, diff_id, Hit::Cached),
                None => {
                    let (blob, diff_id) = self
                        .put(&tar, &name, compression, threads, follow)
                        .with_context(context)?;
                    (blob, diff_id, Hit::Miss)
                }
            },
        };
        *slot = Some((blob.clone(), diff_id.clone()));
        Ok((Layer::new(blob, diff_id, comment, Some(&tar)), hit))
    }

    /// The sound entry for `tar` compressed as `name` says (its key and compression): its blob,
    /// and its diff_id. Read and checked unless the record of its last check is still this file.
    fn get(
        &self,
        tar: &Tar,
        name: &str,
        compression: Compression,
        report: &dyn Reporter,
    ) -> Option<(Blob, Digest)> {
        let prefix = format!("{name}.");
        let listed = self.run.listed.get_or_init(|| self.store.entries());
        let entry = listed.iter().find(|entry| entry.starts_with(&prefix))?;
        let (diff_id, digest) = entry[prefix.len()..].split_once('.')?;
        let path = self.store.path(entry);
        // Not a regular file (a FIFO or a link put there): no hang, nothing opened through
        // it, and it goes.
        let file = match crate::input_file::RegularFile::open_own(&path) {
            Ok(file) => file,
            Err(e)
                if e.kind() == std::io::ErrorKind::InvalidInput
                    || e.raw_os_error() == Some(libc::ELOOP) =>
            {
                self.store
                    .discard(entry, "it is not a regular file", report);
                return None;
            }
            Err(_) => return None,
        };
        let identity = FileIdentity::of(file.metadata());
        let file = file.into_file();
        let synced = file.try_clone();
        let stored = FilePart::whole(file, identity.size(), path);
        let recorded = self
            .store
            .sidecar_of(entry)
            .and_then(|record| serde_json::from_slice::<Checked>(&record).ok())
            .is_some_and(|checked| identity.stands_on(&checked.identity, checked.at));
        let checked = if recorded {
            Ok(())
        } else {
            check(&stored, compression, diff_id, digest, tar)
        };
        match checked {
            Ok(()) => {
                // The record is written anew (when the entry was checked now, and once its
                // bytes are on the disk) or touched: its time says when the entry was last
                // used, so pruning takes others first.
                if recorded {
                    if !self.store.touch_sidecar(entry) {
                        self.record(entry, identity, record_time());
                    }
                } else if synced.and_then(|file| file.sync_all()).is_ok() {
                    self.record(entry, identity, record_time());
                }
                let blob = Blob::with_digest(
                    compression.media_type(),
                    parse(digest)?,
                    Content::stream(Arc::new(stored)),
                );
                Some((blob, parse(diff_id)?))
            }
            Err(why) => {
                self.store.discard(entry, why, report);
                None
            }
        }
    }

    /// Records that the entry, checked at `at`, is sound as long as it is the file with
    /// `identity`; best effort.
    fn record(&self, entry: &str, identity: FileIdentity, at: u64) {
        if let Ok(record) = serde_json::to_vec(&Checked { identity, at }) {
            let _ = self.store.write_sidecar(entry, &record);
        }
    }

    /// Compresses `tar` into a new entry (or, when the cache cannot be written, into a
    /// temporary file) whose name begins with `name`: its blob, and its diff_id.
    fn put(
        &self,
        tar: &Tar,
        name: &str,
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
        let entry = format!(
            "{name}.{}.{}",
            packed.diff_id.digest(),
            packed.digest.digest()
        );
        // Kept only when written whole; else the open file serves this run alone.
        let unnamed = || PathBuf::from("(a temporary file)");
        let (file, path) = match target {
            Ok(temp) => match self.store.commit(temp, &entry) {
                Ok(file) => (file, self.store.path(&entry)),
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

/// The record of an entry's check: the file it was, and when (nanoseconds since the epoch).
#[derive(Debug, Serialize, Deserialize)]
struct Checked {
    identity: FileIdentity,
    at: u64,
}

fn parse(hex: &str) -> Option<Digest> {
    format!("sha256:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::cache::SETTLED_COARSE;
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

    /// The cache as one run sees it.
    fn run(dir: &std::path::Path) -> LayerCache {
        LayerCache::open(&ToolDir::new(dir))
    }

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
        let (first, hit) = layer(&run(dir.path()), b"binary", GZIP);
        assert_eq!(hit, Hit::Miss);
        let cache = run(dir.path());
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

    /// An entry that is not a regular file (a FIFO, or a link, under an entry's name) neither
    /// hangs the run, nor is followed, nor hides the layer from later runs: it goes, and the
    /// layer is compressed again.
    #[test]
    fn an_entry_that_is_not_a_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = run(dir.path());
        layer(&cache, b"binary", GZIP);
        let entry = cache.store.entries().pop().unwrap();
        let kept = dir.path().join("kept");
        std::fs::rename(cache.store.path(&entry), &kept).unwrap();
        // Named as an entry of this layer with other digests: the only one a run finds.
        let (start, _) = entry.rsplit_once('.').unwrap();
        let (start, _) = start.rsplit_once('.').unwrap();
        let other = cache
            .store
            .path(&format!("{start}.{0}.{0}", "ab".repeat(32)));
        crate::rootfs::files::tests::mkfifo(&other);
        let (_, hit) = layer(&run(dir.path()), b"binary", GZIP);
        assert_eq!(hit, Hit::Miss);
        assert!(!other.exists(), "the FIFO is gone");
        assert_eq!(
            run(dir.path()).store.entries(),
            std::slice::from_ref(&entry)
        );
        let (_, hit) = layer(&run(dir.path()), b"binary", GZIP);
        assert_eq!(hit, Hit::Cached);
        // A link under the entry's own name, to the very bytes it held: not followed.
        std::fs::remove_file(cache.store.path(&entry)).unwrap();
        std::os::unix::fs::symlink(&kept, cache.store.path(&entry)).unwrap();
        let (_, hit) = layer(&run(dir.path()), b"binary", GZIP);
        assert_eq!(hit, Hit::Miss);
        assert!(
            std::fs::symlink_metadata(cache.store.path(&entry))
                .unwrap()
                .is_file(),
            "the link is gone, a new entry in its place"
        );
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
        let cache = run(dir.path());
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
            let cache = run(dir.path());
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
            let (again, hit) = run(dir.path())
                .layer(&builder(b"binary"), "app", GZIP, 2, &mut |_| {}, &report)
                .unwrap();
            assert_eq!(hit, Hit::Miss, "{name}");
            assert_eq!(again.blob().read_all(), fresh.blob().read_all(), "{name}");
            assert_eq!(report.events().len(), 1, "{name}: one note");
            assert!(!renamed.exists() || renamed == path, "{name}: removed");
        }
    }

    /// The cache as one run sees it, keeping `keep` entries.
    fn run_keeping(dir: &std::path::Path, keep: usize) -> LayerCache {
        let mut cache = run(dir);
        cache.store.keep = keep;
        cache
    }

    fn binary(i: usize) -> &'static [u8] {
        Box::leak(format!("binary {i}").into_bytes().into_boxed_slice())
    }

    #[test]
    fn old_entries_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = run_keeping(dir.path(), 4);
        for i in 0..9 {
            layer(&cache, binary(i), GZIP);
        }
        assert_eq!(cache.store.entries().len(), 4);
        // Checked by a later run, each entry gets the record of its check.
        let later = run_keeping(dir.path(), 4);
        for i in 5..9 {
            assert_eq!(layer(&later, binary(i), GZIP).1, Hit::Cached);
        }
        let records = || -> Vec<String> {
            let names = std::fs::read_dir(&cache.store.dir).unwrap().flatten();
            (names.map(|f| f.file_name().to_string_lossy().into_owned()))
                .filter_map(|name| name.strip_suffix(CHECKED).map(str::to_string))
                .collect()
        };
        assert_eq!(records().len(), 4);
        // File times come from a clock that ticks every few milliseconds.
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Two newer entries: two of those go, and so do the records of their checks.
        for i in 9..11 {
            layer(&later, binary(i), GZIP);
        }
        let entries = cache.store.entries();
        assert_eq!(entries.len(), 4);
        let records = records();
        assert_eq!(records.len(), 2, "{records:?}");
        assert!(records.iter().all(|r| entries.contains(r)), "{records:?}");
    }

    /// An entry used by a later run is kept over entries made after it but not used since.
    #[test]
    fn entries_are_pruned_by_their_last_use() {
        let dir = tempfile::tempdir().unwrap();
        let first = run_keeping(dir.path(), 3);
        for i in 0..3 {
            layer(&first, binary(i), GZIP);
        }
        // File times come from a clock that ticks every few milliseconds.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = run_keeping(dir.path(), 3);
        assert_eq!(layer(&second, binary(0), GZIP).1, Hit::Cached);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(layer(&second, binary(3), GZIP).1, Hit::Miss);
        let third = run_keeping(dir.path(), 3);
        assert_eq!(
            layer(&third, binary(0), GZIP).1,
            Hit::Cached,
            "used last run"
        );
        assert_eq!(
            layer(&third, binary(1), GZIP).1,
            Hit::Miss,
            "the least used"
        );
    }

    /// The record of an entry's check stands for the check while the entry is that very file:
    /// the entry is not read. Once the file is another, it is checked again.
    #[test]
    fn a_recorded_check_holds_while_the_entry_is_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = run(dir.path());
        layer(&cache, b"binary", GZIP);
        let entry = cache.store.entries().into_iter().next().unwrap();
        let path = cache.store.path(&entry);
        let bytes = std::fs::read(&path).unwrap();
        // Other bytes, and a record forged to name that file: only the record is consulted.
        let mut flipped = bytes.clone();
        flipped[20] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        let forged = FileIdentity::of(&std::fs::metadata(&path).unwrap());
        cache.record(&entry, forged, record_time() + SETTLED_COARSE);
        let (trusted, hit) = layer(&run(dir.path()), b"binary", GZIP);
        assert_eq!(hit, Hit::Cached);
        assert_eq!(trusted.blob().read_all(), flipped, "the entry was not read");
        // Written again (another change time), the entry is checked, and fails.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, &flipped).unwrap();
        let report = quiet();
        let (again, hit) = run(dir.path())
            .layer(&builder(b"binary"), "app", GZIP, 2, &mut |_| {}, &report)
            .unwrap();
        assert_eq!(hit, Hit::Miss);
        assert_eq!(again.blob().read_all(), bytes);
        assert_eq!(report.events().len(), 1, "one note: {:?}", report.events());
    }

    /// The run that writes an entry records no check of it (its bytes may not be on the disk
    /// yet): the next run that uses it checks it, then records that. A record made before the
    /// entry's last change had settled does not stand for it.
    #[test]
    fn only_a_check_of_a_settled_entry_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = run(dir.path());
        layer(&cache, b"binary", GZIP);
        let entry = cache.store.entries().into_iter().next().unwrap();
        assert_eq!(cache.store.sidecar_of(&entry), None, "not by its writer");
        let (_, hit) = layer(&run(dir.path()), b"binary", GZIP);
        assert_eq!(hit, Hit::Cached);
        let path = cache.store.path(&entry);
        let recorded: Checked = serde_json::from_slice(&cache.store.sidecar_of(&entry).unwrap())
            .expect("recorded by the run that checked it");
        assert_eq!(recorded.identity, FileIdentity::of_file(&path).unwrap());
        // Other bytes, with a record that names the file as it is now, made as it changed.
        let bytes = std::fs::read(&path).unwrap();
        let mut flipped = bytes.clone();
        flipped[20] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        let changed = FileIdentity::of_file(&path).unwrap();
        // Recorded in the tick of the change, as a write right after a check would be.
        cache.record(&entry, changed, changed.changed_at().unwrap());
        let (again, hit) = layer(&run(dir.path()), b"binary", GZIP);
        assert_eq!(hit, Hit::Miss, "checked, and discarded");
        assert_eq!(again.blob().read_all(), bytes);
    }

    /// Images of one run that hold the same layer, side by side: it is compressed once.
    #[test]
    fn a_run_makes_each_layer_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = run(dir.path());
        let made = std::sync::atomic::AtomicUsize::new(0);
        let layers: Vec<(Layer, Hit)> = std::thread::scope(|scope| {
            let images: Vec<_> = (0..4)
                .map(|_| {
                    let (cache, made) = (&cache, &made);
                    scope.spawn(move || {
                        let mut follow = |_| {
                            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        };
                        cache
                            .layer(&builder(b"shared"), "files", GZIP, 1, &mut follow, &quiet())
                            .unwrap()
                    })
                })
                .collect();
            images.into_iter().map(|i| i.join().unwrap()).collect()
        });
        assert_eq!(made.into_inner(), 1);
        assert_eq!(
            layers.iter().filter(|(_, hit)| *hit == Hit::Miss).count(),
            1
        );
        let digests: Vec<_> = layers.iter().map(|(l, _)| l.blob().digest()).collect();
        assert!(digests.iter().all(|d| *d == digests[0]));
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
        run(dir.path())
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
