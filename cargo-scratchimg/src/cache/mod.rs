//! What is kept between runs under `target/scratchimg/cache`, so a run whose cargo build is up
//! to date does little else. Like Jib's cache, it lives in the build's target directory, is
//! rebuilt when removed, and never changes what is built: cache trouble is only a slower run.
//!
//! One kind of [`Keyed`] value lives under the user's cache directory instead, for every project
//! of the user: where pushes saw base layers ([`Keyed::open_at`], [`Keyed::update`]).
//!
//! Caches hold no knowledge of what they keep: a key, a value, and the caller's way to compute
//! it. Every entry is checked before use: a [`Keyed`] entry carries the SHA-256 of its payload
//! and must parse; a [`LayerCache`] blob must hash to the digest it is stored under and
//! decompress to exactly the layer's tar. An entry that fails is removed and recomputed, with a
//! `-v` note. Entries are written whole (a temporary file, then a rename), so a run sees the old
//! entry or the new one; [`Keyed`] entries are flushed to disk first, so a crash does too. Layer
//! entries are not (tens of megabytes): a run that writes one does not record its check, a later
//! run checks it and flushes it before recording that, so one a crash left torn fails its check
//! and is made again.

mod check;
mod growing;
mod identity;
mod layers;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::marker::PhantomData;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use growing::Growing;
#[cfg(test)]
pub(crate) use identity::SETTLED_COARSE;
pub(crate) use identity::{FileIdentity, record_time};
pub(crate) use layers::LayerCache;

use crate::dir_lock::DirLock;
use crate::image::sha256;
use crate::interrupt::{self, Temporary};
use crate::report::Reporter;
use crate::tool_dir::ToolDir;

/// What the files an entry is written into begin with.
const TEMPORARY: &str = ".tmp-";

/// Whether a value came from the cache, for `-v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    Cached,
    Miss,
}

impl Hit {
    /// `reused` or `made`, as `-v` says it.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Hit::Cached => "reused",
            Hit::Miss => "made",
        }
    }
}

/// A directory of entries named by their key, keeping the newest few (and, when it has a byte
/// budget, no more bytes than that but for the newest entry). An entry may have a small file
/// beside it, its sidecar, named by the entry's name and a suffix: what is known of the entry,
/// and, by its time, when the entry was last used.
#[derive(Debug, Clone)]
struct Store {
    dir: PathBuf,
    keep: usize,
    bytes: Option<u64>,
    /// The suffix of sidecars, for stores that keep them.
    sidecar: Option<&'static str>,
}

/// The most a [`Keyed`] entry may hold: the crate graphs of the largest workspaces are a few
/// megabytes.
const ENTRY_LIMIT: u64 = 64 << 20;

/// The most a sidecar holds.
const SIDECAR_LIMIT: u64 = 4096;

impl Store {
    fn open(tool_dir: &ToolDir, kind: &str, keep: usize) -> Store {
        Store::at(tool_dir.cache(kind), keep)
    }

    fn at(dir: PathBuf, keep: usize) -> Store {
        Store {
            dir,
            keep,
            bytes: None,
            sidecar: None,
        }
    }

    /// A file to write a new entry into, beside the entries; removed unless committed, also
    /// when the run is interrupted. It is held while this run lives: one a killed run left is
    /// removed by the next prune.
    fn create(&self) -> std::io::Result<Temporary<tempfile::NamedTempFile>> {
        fs::create_dir_all(&self.dir)?;
        let temp = Temporary::new(|| {
            tempfile::Builder::new()
                .prefix(TEMPORARY)
                .tempfile_in(&self.dir)
        })?;
        interrupt::hold(temp.as_file())?;
        Ok(temp)
    }

    /// Makes `temp` the entry `entry` (a rename, no fsync: see the module's note), then drops
    /// the oldest entries; gives `temp` back when it cannot. The file stays open for the caller,
    /// so a later prune (by another run) cannot take its bytes.
    fn commit(
        &self,
        temp: Temporary<tempfile::NamedTempFile>,
        entry: &str,
    ) -> Result<fs::File, tempfile::NamedTempFile> {
        let (temp, _registered) = temp.into_parts();
        let file = temp.persist(self.path(entry)).map_err(|e| e.file)?;
        let _ = self.prune();
        Ok(file)
    }

    fn path(&self, entry: &str) -> PathBuf {
        self.dir.join(entry)
    }

    /// The entry's bytes; `None` when there is none, or when it is not a regular file of at
    /// most [`ENTRY_LIMIT`] bytes.
    fn read(&self, entry: &str) -> Option<Vec<u8>> {
        crate::input_file::read_own(&self.path(entry), ENTRY_LIMIT).ok()
    }

    /// Removes an entry that failed its check, and says so with `-v`.
    fn discard(&self, entry: &str, why: &str, report: &dyn Reporter) {
        let path = self.path(entry);
        let _ = fs::remove_file(&path);
        if let Some(sidecar) = self.sidecar_path(entry) {
            let _ = fs::remove_file(sidecar);
        }
        report.verbose("Cache", &|| {
            format!("discarded {}: {why}; computing it again", path.display())
        });
    }

    /// Writes an entry whole (a temporary file, fsync, rename), then drops the oldest entries.
    fn write(&self, entry: &str, data: &[u8]) -> std::io::Result<()> {
        let mut temp = self.create()?;
        temp.write_all(data)?;
        temp.as_file().sync_all()?;
        let (temp, _entry) = temp.into_parts();
        temp.persist(self.path(entry)).map_err(|e| e.error)?;
        self.prune()
    }

    /// Removes the entries used longest ago beyond the count and the byte budget, with their
    /// sidecars; sidecars whose entry is gone; and the temporary files of killed runs. Those of
    /// live runs (writing an entry now) count against the budget. An entry's use is its
    /// sidecar's time when that is newer than its own.
    fn prune(&self) -> std::io::Result<()> {
        let mut entries: HashMap<String, (SystemTime, u64)> = HashMap::new();
        let mut sidecars: HashMap<String, SystemTime> = HashMap::new();
        let mut writing = 0;
        for file in fs::read_dir(&self.dir)?.flatten() {
            let Ok(meta) = file.metadata() else { continue };
            let name = file.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMPORARY) {
                let path = file.path();
                if interrupt::abandoned(&path) {
                    let _ = fs::remove_file(&path);
                } else {
                    writing += meta.len();
                }
                continue;
            }
            let Ok(modified) = meta.modified() else {
                continue;
            };
            match self.sidecar.and_then(|suffix| name.strip_suffix(suffix)) {
                Some(entry) => {
                    sidecars.insert(entry.to_string(), modified);
                }
                None => {
                    entries.insert(name, (modified, meta.len()));
                }
            }
        }
        for entry in sidecars
            .keys()
            .filter(|entry| !entries.contains_key(*entry))
        {
            if let Some(sidecar) = self.sidecar_path(entry) {
                let _ = fs::remove_file(sidecar);
            }
        }
        let mut entries: Vec<(SystemTime, u64, String)> = entries
            .into_iter()
            .map(|(name, (modified, len))| {
                let used = sidecars.get(&name).map_or(modified, |s| modified.max(*s));
                (used, len, name)
            })
            .collect();
        // Newest first: keep while within the count and the budget.
        entries.sort_by(|a, b| b.cmp(a));
        let mut total = writing;
        for (i, (_, len, name)) in entries.iter().enumerate() {
            total += len;
            let over_budget = self.bytes.is_some_and(|budget| total > budget) && i > 0;
            if i >= self.keep || over_budget {
                fs::remove_file(self.path(name))?;
                if let Some(sidecar) = self.sidecar_path(name) {
                    let _ = fs::remove_file(sidecar);
                }
            }
        }
        Ok(())
    }

    /// Names of the entries, for lookups by prefix: neither temporary files nor sidecars.
    fn entries(&self) -> Vec<String> {
        fs::read_dir(&self.dir)
            .map(|dir| {
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| {
                        !name.starts_with(TEMPORARY)
                            && self.sidecar.is_none_or(|suffix| !name.ends_with(suffix))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn sidecar_path(&self, entry: &str) -> Option<PathBuf> {
        self.sidecar
            .map(|suffix| self.dir.join(format!("{entry}{suffix}")))
    }

    /// The sidecar's bytes, when it is a regular file no larger than a sidecar can be.
    fn sidecar_of(&self, entry: &str) -> Option<Vec<u8>> {
        crate::input_file::read_own(&self.sidecar_path(entry)?, SIDECAR_LIMIT).ok()
    }

    /// Writes the sidecar whole (a temporary file, then a rename), without waiting for the
    /// disk: one a crash left torn does not parse, and the entry is checked again.
    fn write_sidecar(&self, entry: &str, data: &[u8]) -> std::io::Result<()> {
        let path = self
            .sidecar_path(entry)
            .ok_or(std::io::ErrorKind::Unsupported)?;
        let mut temp = self.create()?;
        temp.write_all(data)?;
        let (temp, _entry) = temp.into_parts();
        temp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Marks the entry used now, by its sidecar's time; whether it could.
    fn touch_sidecar(&self, entry: &str) -> bool {
        self.sidecar_path(entry)
            .and_then(|path| {
                // Never blocks on a FIFO swapped in since it was read.
                fs::File::options()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
                    .open(path)
                    .ok()
            })
            .is_some_and(|file| file.set_modified(SystemTime::now()).is_ok())
    }
}

/// Values of type `T` kept as JSON under the digest of a key.
#[derive(Debug, Clone)]
pub(crate) struct Keyed<T> {
    store: Store,
    value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Keyed<T> {
    /// The cache `kind` of a target directory, keeping `keep` entries.
    pub(crate) fn open(tool_dir: &ToolDir, kind: &str, keep: usize) -> Keyed<T> {
        Keyed {
            store: Store::open(tool_dir, kind, keep),
            value: PhantomData,
        }
    }

    /// The cache in `dir`, keeping `keep` entries.
    pub(crate) fn open_at(dir: PathBuf, keep: usize) -> Keyed<T> {
        Keyed {
            store: Store::at(dir, keep),
            value: PhantomData,
        }
    }

    /// The value kept under `key`, if there is one and it is whole; a damaged entry is removed.
    pub(crate) fn get(&self, key: &impl Serialize, report: &dyn Reporter) -> Option<T> {
        let entry = entry_name(key)?;
        let bytes = self.store.read(&entry)?;
        match decode(&bytes) {
            Ok(value) => Some(value),
            Err(why) => {
                self.store.discard(&entry, why, report);
                None
            }
        }
    }

    /// Keeps `value` under `key`, best effort.
    pub(crate) fn put(&self, key: &impl Serialize, value: &T) {
        if let (Some(entry), Ok(payload)) = (entry_name(key), serde_json::to_vec(value)) {
            let mut bytes = format!("{}\n", sha256(&payload).digest()).into_bytes();
            bytes.extend_from_slice(&payload);
            let _ = self.store.write(&entry, &bytes);
        }
    }

    /// Changes the value under `key` (the default when there is none, or it is damaged) with
    /// `change`, best effort. Runs at once take turns (a lock on the directory), and each
    /// reads the value again under the lock, so no run's change is lost.
    pub(crate) fn update(
        &self,
        key: &impl Serialize,
        report: &dyn Reporter,
        change: impl FnOnce(&mut T),
    ) where
        T: Default,
    {
        if fs::create_dir_all(&self.store.dir).is_err() {
            return;
        }
        let _turn = crate::dir_lock::turn();
        let Ok(_lock) = DirLock::take(&self.store.dir) else {
            return;
        };
        let mut value = self.get(key, report).unwrap_or_default();
        change(&mut value);
        self.put(key, &value);
    }

    /// The value under `key`, else `compute`d now and kept.
    pub(crate) fn get_or_compute(
        &self,
        key: &impl Serialize,
        report: &dyn Reporter,
        compute: impl FnOnce() -> Result<T>,
    ) -> Result<(T, Hit)> {
        if let Some(value) = self.get(key, report) {
            return Ok((value, Hit::Cached));
        }
        let value = compute()?;
        self.put(key, &value);
        Ok((value, Hit::Miss))
    }

    #[cfg(test)]
    fn path(&self, key: &impl Serialize) -> PathBuf {
        self.store.path(&entry_name(key).unwrap())
    }
}

fn entry_name(key: &impl Serialize) -> Option<String> {
    let json = serde_json::to_vec(key).ok()?;
    Some(format!("{}.json", sha256(&json).digest()))
}

/// An entry is the hex SHA-256 of the payload, a newline, and the payload.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, &'static str> {
    let newline = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("it is truncated")?;
    let (digest, payload) = (&bytes[..newline], &bytes[newline + 1..]);
    if digest != sha256(payload).digest().as_bytes() {
        return Err("its bytes do not match their digest");
    }
    serde_json::from_slice(payload).map_err(|_| "it does not parse")
}

/// The hex SHA-256 of a file's bytes; `None` when it cannot be read.
pub(crate) fn file_digest(path: &Path) -> Option<String> {
    Some(sha256(&fs::read(path).ok()?).digest().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Capture, Event, Verbosity};

    #[test]
    fn a_value_put_is_got_back_by_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache: Keyed<Vec<String>> = Keyed::open(&ToolDir::new(dir.path()), "test", 4);
        let report = Capture::new(Verbosity::Verbose);
        assert_eq!(cache.get(&"k", &report), None);
        cache.put(&"k", &vec!["v".to_string()]);
        assert_eq!(cache.get(&"k", &report), Some(vec!["v".to_string()]));
        assert_eq!(cache.get(&"other", &report), None);
        let (value, hit) = cache
            .get_or_compute(&"k", &report, || panic!("not computed again"))
            .unwrap();
        assert_eq!((value, hit), (vec!["v".to_string()], Hit::Cached));
        assert!(report.events().is_empty());
    }

    #[test]
    fn damaged_entries_are_discarded_with_a_note_and_computed_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache: Keyed<String> = Keyed::open(&ToolDir::new(dir.path()), "test", 4);
        let path = cache.path(&"k");
        type Damage = Box<dyn Fn(Vec<u8>) -> Vec<u8>>;
        let damages: [(&str, Damage); 4] = [
            ("empty", Box::new(|_| Vec::new())),
            (
                "truncated",
                Box::new(|b: Vec<u8>| b[..b.len() - 3].to_vec()),
            ),
            (
                "flipped",
                Box::new(|mut b: Vec<u8>| {
                    let last = b.len() - 2;
                    b[last] ^= 1;
                    b
                }),
            ),
            (
                "unparsable",
                Box::new(|_| {
                    let payload = b"{not json";
                    let mut b = format!("{}\n", sha256(payload).digest()).into_bytes();
                    b.extend_from_slice(payload);
                    b
                }),
            ),
        ];
        for (name, damage) in damages {
            cache.put(&"k", &"good value".to_string());
            std::fs::write(&path, damage(std::fs::read(&path).unwrap())).unwrap();
            let report = Capture::new(Verbosity::Verbose);
            let (value, hit) = cache
                .get_or_compute(&"k", &report, || Ok("recomputed".to_string()))
                .unwrap();
            assert_eq!((value.as_str(), hit), ("recomputed", Hit::Miss), "{name}");
            let notes: Vec<_> = report
                .events()
                .into_iter()
                .filter(|e| matches!(e, Event::Verbose { message, .. } if message.contains("discarded")))
                .collect();
            assert_eq!(notes.len(), 1, "{name}: {:?}", report.events());
            assert_eq!(cache.get(&"k", &report).as_deref(), Some("recomputed"));
        }
    }

    /// Runs that update one value at once each see the others' changes: none is lost.
    #[test]
    fn updates_at_once_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache: Keyed<Vec<usize>> = Keyed::open_at(dir.path().join("shared"), 1);
        std::thread::scope(|scope| {
            for i in 0..8 {
                let cache = &cache;
                scope.spawn(move || {
                    let report = Capture::new(Verbosity::Verbose);
                    cache.update(&"k", &report, |seen| seen.push(i));
                });
            }
        });
        let report = Capture::new(Verbosity::Verbose);
        let mut seen = cache.get(&"k", &report).unwrap();
        seen.sort();
        assert_eq!(seen, (0..8).collect::<Vec<_>>());
        // A damaged value is started again, with a note.
        std::fs::write(cache.path(&"k"), b"garbage").unwrap();
        cache.update(&"k", &report, |seen| seen.push(9));
        assert_eq!(cache.get(&"k", &report), Some(vec![9]));
        assert_eq!(report.events().len(), 1, "{:?}", report.events());
    }

    #[test]
    fn entries_that_are_not_regular_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache: Keyed<String> = Keyed::open(&ToolDir::new(dir.path()), "test", 4);
        cache.put(&"k", &"v".to_string());
        let path = cache.path(&"k");
        std::fs::remove_file(&path).unwrap();
        crate::rootfs::files::tests::mkfifo(&path);
        let report = Capture::new(Verbosity::Verbose);
        assert_eq!(cache.get(&"k", &report), None);
    }

    #[test]
    fn temporary_files_of_killed_runs_go_and_live_ones_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&ToolDir::new(dir.path()), "test", 10);
        store.bytes = Some(100);
        // A live run's: held, so kept, and its 90 bytes count against the budget.
        let mut live = store.create().unwrap();
        live.write_all(&[0; 90]).unwrap();
        // A killed run's: nobody holds it.
        let dead = store.dir.join(".tmp-killed");
        fs::write(&dead, [0; 1000]).unwrap();
        store.write("old", &[1; 20]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.write("new", &[2; 20]).unwrap();
        assert!(!dead.exists(), "a dead run's temporary file is removed");
        assert!(live.path().exists(), "a live run's is not");
        // 90 being written and the newest entry's 20: the older entry is over the budget.
        assert_eq!(store.entries(), ["new"]);
    }

    #[test]
    fn old_entries_are_pruned_and_no_temporary_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let cache: Keyed<usize> = Keyed::open(&ToolDir::new(dir.path()), "test", 3);
        for i in 0..6 {
            cache.put(&i, &i);
        }
        assert_eq!(cache.store.entries().len(), 3);
    }
}
