//! What the tool wrote, so a run that would write the same bytes again leaves the file as it
//! is: not rewritten, not flushed to disk again, its inode and times unchanged.
//!
//! A file holds the bytes a run would write when the record of it, made when it was written,
//! names those bytes (by a digest the caller gives: a layout tar's key, a blob's digest) and
//! the file still has the [`FileIdentity`] it had then, recorded once its last change had
//! settled; else when it has their size and reading it gives them, byte for byte. Anything else is written again: a wrong guess costs a write,
//! never bytes. The records are kept under the target directory (a cache entry, checked before
//! use), for the files that still are as they were written, a bounded number of them.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use crate::cache::{FileIdentity, Keyed, record_time};
use crate::image::{Compared, Content};
use crate::input_file::RegularFile;
use crate::tool_dir::ToolDir;

/// Files recorded at most: the oldest records beyond go.
const RECORDS: usize = 4096;
/// How many sets of records a target directory keeps (one).
const KEEP: usize = 1;
/// The key of the one entry.
const ENTRY: &str = "written files";

/// The files the tool wrote, as recorded, and what this run adds.
pub(crate) struct WrittenFiles {
    cache: Keyed<Records>,
    records: Mutex<Records>,
    /// Whether this run recorded anything new.
    changed: std::sync::atomic::AtomicBool,
}

/// Each file's record, by absolute path.
type Records = BTreeMap<PathBuf, Record>;

/// A file as it was when the tool wrote it or found it holding what it would write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    identity: FileIdentity,
    /// Names the bytes.
    key: String,
    /// When it was recorded, in nanoseconds since the epoch: the oldest go first.
    at: u64,
}

impl Record {
    /// Whether it says the file, as it is now, holds the bytes `key` names.
    fn stands_for(&self, identity: &FileIdentity, key: &Digest) -> bool {
        identity.stands_on(&self.identity, self.at) && self.key == key.to_string()
    }
}

/// A file put in place, or found holding its bytes: what its record will say.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub path: PathBuf,
    pub identity: FileIdentity,
    pub key: Digest,
}

impl WrittenFiles {
    /// The records kept in `tool_dir`; none when there are none, or they fail their check.
    pub(crate) fn load(tool_dir: &ToolDir, report: &dyn crate::report::Reporter) -> WrittenFiles {
        let cache = Keyed::open(tool_dir, "written", KEEP);
        let records = cache.get(&ENTRY, report).unwrap_or_default();
        WrittenFiles {
            cache,
            records: Mutex::new(records),
            changed: Default::default(),
        }
    }

    /// No records: every file is compared byte for byte.
    #[cfg(test)]
    pub(crate) fn none(tool_dir: &ToolDir) -> WrittenFiles {
        WrittenFiles {
            cache: Keyed::open(tool_dir, "written", KEEP),
            records: Mutex::default(),
            changed: Default::default(),
        }
    }

    /// Whether the file at `path` holds the bytes of `content`, which `key` names: its record
    /// says so and it is still that file, or it is read and gives them. The file as it is, to
    /// record, when it does.
    pub(crate) fn holds(&self, path: &Path, key: &Digest, content: &Content) -> Option<Placed> {
        let path = std::path::absolute(path).ok()?;
        let identity = FileIdentity::of_file(&path)?;
        let placed = Placed {
            path,
            identity,
            key: key.clone(),
        };
        let recorded = self.lock().get(&placed.path).cloned();
        if recorded.is_some_and(|r| r.stands_for(&identity, key)) {
            return Some(placed);
        }
        (identity.size() == content.len() && same_bytes(&placed, content)).then_some(placed)
    }

    /// Records the files this run put in place or found as they should be.
    pub(crate) fn record(&self, placed: impl IntoIterator<Item = Placed>) {
        self.record_at(placed, record_time());
    }

    /// [`WrittenFiles::record`], as if at `at` (nanoseconds since the epoch).
    fn record_at(&self, placed: impl IntoIterator<Item = Placed>, at: u64) {
        let mut records = self.lock();
        for Placed {
            path,
            identity,
            key,
        } in placed
        {
            // A record that does not stand for the file yet is made again, later.
            let same = (records.get(&path)).is_some_and(|r| r.stands_for(&identity, &key));
            if !same {
                let key = key.to_string();
                records.insert(path, Record { identity, key, at });
                self.changed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Keeps the records of the files that are still as recorded, the newest [`RECORDS`] of
    /// them, for the next run, when this run recorded anything new; best effort.
    pub(crate) fn save(&self) {
        if !self.changed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut records = self.lock().clone();
        records.retain(|path, record| FileIdentity::of_file(path) == Some(record.identity));
        if records.len() > RECORDS {
            let mut times: Vec<u64> = records.values().map(|r| r.at).collect();
            times.sort_unstable_by(|a, b| b.cmp(a));
            let oldest_kept = times[RECORDS - 1];
            records.retain(|_, record| record.at >= oldest_kept);
        }
        self.cache.put(&ENTRY, &records);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        crate::util::lock(&self.records)
    }
}

/// Whether the file `placed` names, still that file, gives exactly the bytes of `content`.
/// Opened without waiting and without following a link, so neither a FIFO nor a link put there
/// meanwhile is read through.
fn same_bytes(placed: &Placed, content: &Content) -> bool {
    let compare = || -> io::Result<bool> {
        let file = RegularFile::open_own(&placed.path)?;
        if FileIdentity::of(file.metadata()) != placed.identity {
            return Ok(false);
        }
        // No more than a byte past the content's length: a longer file differs.
        let file = file.into_file().take(content.len() + 1);
        let mut compared = Compared::new(file, content.reader()?);
        let read = io::copy(&mut compared, &mut io::sink())?;
        Ok(read == content.len() && !compared.differs())
    };
    compare().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::SETTLED_COARSE;
    use crate::image::sha256;
    use crate::report::{Capture, Verbosity};

    fn content(bytes: &[u8]) -> (Content, Digest) {
        (Content::from(bytes.to_vec()), sha256(bytes))
    }

    #[test]
    fn a_file_with_the_bytes_is_held_and_one_without_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let written = WrittenFiles::none(&ToolDir::new(dir.path()));
        let path = dir.path().join("out");
        let (bytes, key) = content(b"the image");
        assert!(written.holds(&path, &key, &bytes).is_none(), "no file");
        std::fs::write(&path, b"the image").unwrap();
        assert!(written.holds(&path, &key, &bytes).is_some());
        for other in [&b"the imagf"[..], b"the imag", b"the image!", b""] {
            std::fs::write(&path, other).unwrap();
            assert!(written.holds(&path, &key, &bytes).is_none(), "{other:?}");
        }
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).unwrap();
        std::fs::write(dir.path().join("elsewhere"), b"the image").unwrap();
        assert!(written.holds(&path, &key, &bytes).is_none(), "a link");
    }

    /// While the file is the one recorded, the record says what it holds: it is not read.
    /// Once it is another file, it is read.
    #[test]
    fn a_record_stands_for_the_file_while_it_is_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let tool_dir = ToolDir::new(dir.path());
        let report = Capture::new(Verbosity::Verbose);
        let path = dir.path().join("out");
        let (bytes, key) = content(b"the image");
        // Recorded as holding the image, though it holds other bytes of its size.
        std::fs::write(&path, b"other one").unwrap();
        let written = WrittenFiles::load(&tool_dir, &report);
        let identity = FileIdentity::of_file(&path).unwrap();
        let recorded = Placed {
            path: std::path::absolute(&path).unwrap(),
            identity,
            key: key.clone(),
        };
        // Recorded in the tick it was written in: the file is read, as a write in the same tick
        // of the file times would not show.
        written.record_at([recorded.clone()], identity.changed_at().unwrap());
        assert!(written.holds(&path, &key, &bytes).is_none(), "read");
        // Recorded once the change settled.
        written.record_at([recorded], record_time() + SETTLED_COARSE);
        written.save();
        let next = WrittenFiles::load(&tool_dir, &report);
        assert!(
            next.holds(&path, &key, &bytes).is_some(),
            "taken on its record"
        );
        assert!(
            next.holds(&path, &sha256(b"x"), &bytes).is_none(),
            "another key"
        );
        // Replaced by another file with the same bytes and size: read, and not held.
        let new = dir.path().join("new");
        std::fs::write(&new, b"other one").unwrap();
        std::fs::rename(&new, &path).unwrap();
        assert!(next.holds(&path, &key, &bytes).is_none());
        // When the records are saved again, that of a file that changed since goes.
        let other = dir.path().join("other");
        std::fs::write(&other, b"x").unwrap();
        next.record([Placed {
            path: std::path::absolute(&other).unwrap(),
            identity: FileIdentity::of_file(&other).unwrap(),
            key: sha256(b"x"),
        }]);
        next.save();
        let kept: Vec<PathBuf> = WrittenFiles::load(&tool_dir, &report)
            .lock()
            .keys()
            .cloned()
            .collect();
        assert_eq!(kept, [std::path::absolute(&other).unwrap()]);
    }
}
