//! What tells one file from another, and a file from itself after a write: its device, inode,
//! size, and modification and change times. A file this tool read or wrote, and whose identity
//! is still the one it had then, still holds the same bytes: writers put a new file in place
//! (another inode) or write it in place, which moves its change time, which no one can set back.
//! So a record of a file's identity stands in for reading it again; a file that differs from
//! its record is read, never trusted.
//!
//! Only a record made after the file's last change has settled does: file times tick in steps
//! (a few milliseconds here, a second or two on some file systems), and a file written again
//! within the step of its last change keeps its times. As git does with a "racily clean" file,
//! a record made within a step of the change is not trusted: the file is read, and the record
//! made again, later.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Nanoseconds after a file's last change from which a record of it stands for its bytes, on
/// a file system whose times have parts of a second: they tick with the kernel's coarse clock,
/// every few milliseconds (10 ms at the most, at 100 Hz).
const SETTLED_FINE: u64 = 50_000_000;
/// The same where file times are whole seconds (FAT's tick is two of them, ext3's one).
pub(crate) const SETTLED_COARSE: u64 = 3_000_000_000;

/// Nanoseconds since the epoch now: when a record is made.
pub(crate) fn record_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileIdentity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileIdentity {
    pub(crate) fn of(meta: &Metadata) -> FileIdentity {
        FileIdentity {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The identity of the regular file at `path` (not followed if it is a link); `None` for
    /// anything else.
    pub(crate) fn of_file(path: &Path) -> Option<FileIdentity> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        meta.is_file().then(|| FileIdentity::of(&meta))
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether a record that the file was `recorded`, made at `at` (nanoseconds since the
    /// epoch), stands for the file as it is now, `self`: the same file, recorded once its last
    /// change had settled.
    pub(crate) fn stands_on(&self, recorded: &FileIdentity, at: u64) -> bool {
        self == recorded && self.settled_at(at)
    }

    /// Whether a record of this identity made at `at` (nanoseconds since the epoch) stands for
    /// the file's bytes: made a step of file times or more after its last change, so any later
    /// write moved its change time. Times that are whole seconds (both of them, which happens
    /// once in a billion on other file systems) take the coarse step.
    fn settled_at(&self, at: u64) -> bool {
        let step = if self.changed.1 == 0 && self.modified.1 == 0 {
            SETTLED_COARSE
        } else {
            SETTLED_FINE
        };
        self.changed_at()
            .is_some_and(|changed| changed.saturating_add(step) <= at)
    }

    /// When the file last changed, in nanoseconds since the epoch.
    pub(crate) fn changed_at(&self) -> Option<u64> {
        let (seconds, nanos) = self.changed;
        let seconds = u64::try_from(seconds).ok()?;
        seconds
            .checked_mul(1_000_000_000)?
            .checked_add(u64::try_from(nanos).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, SystemTime};

    use super::*;

    /// The same inode, size and modification time, other bytes: the change time tells.
    #[test]
    fn a_file_rewritten_in_place_has_another_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"old bytes").unwrap();
        let modified = SystemTime::now() - Duration::from_secs(3600);
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(modified).unwrap();
        let before = FileIdentity::of_file(&path).unwrap();
        assert_eq!(FileIdentity::of_file(&path), Some(before));
        // File times come from a clock that ticks every few milliseconds.
        std::thread::sleep(Duration::from_millis(20));
        let mut file = std::fs::File::options().write(true).open(&path).unwrap();
        file.write_all(b"new bytes").unwrap();
        file.set_modified(modified).unwrap();
        let after = FileIdentity::of_file(&path).unwrap();
        assert_eq!((after.size, after.modified), (before.size, before.modified));
        assert_ne!(after, before);
    }

    /// A record made right after the change does not stand for the file; one made a step of
    /// file times later does: a few milliseconds, or seconds where times are whole seconds.
    #[test]
    fn a_record_stands_once_the_change_has_settled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"bytes").unwrap();
        let fine = FileIdentity::of_file(&path).unwrap();
        let coarse = FileIdentity {
            changed: (fine.changed.0, 0),
            modified: (fine.modified.0, 0),
            ..fine
        };
        for (identity, step) in [(fine, SETTLED_FINE), (coarse, SETTLED_COARSE)] {
            let changed = identity.changed_at().unwrap();
            assert!(changed <= record_time());
            assert!(!identity.settled_at(changed), "recorded as it was written");
            assert!(!identity.settled_at(changed + step - 1));
            assert!(identity.settled_at(changed + step));
        }
    }

    #[test]
    fn only_regular_files_have_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(FileIdentity::of_file(dir.path()), None);
        assert_eq!(FileIdentity::of_file(&dir.path().join("absent")), None);
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("f"), dir.path().join("link")).unwrap();
        assert_eq!(FileIdentity::of_file(&dir.path().join("link")), None);
    }
}
