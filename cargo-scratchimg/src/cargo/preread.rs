//! The binaries a build will most likely give, read and hashed while cargo finds them up to
//! date.
//!
//! With the build up to date, cargo takes about as long to say so as reading and hashing a
//! 100 MB program takes, and one core is idle meanwhile: so the program is read beside cargo,
//! from where a build like this one puts it (a workspace's many binaries side by side, a thread
//! per core). A read is used only for the path cargo reports, and only if that path is still
//! the very file that was read (device, inode, size, modification and change times, the same
//! before the read, after it, and after cargo ended; the file is held open meanwhile, so its
//! inode cannot go to another). cargo and linkers put a new file in place rather than rewrite
//! one, and a file rewritten in place across a tick of the file clock has a new change time, so
//! a rebuilt program is read anew: a wrong guess costs a read, never bytes. A read no longer
//! wanted is stopped between two 4 MiB chunks, so two copies of a program are never held for
//! long.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use oci_spec::image::Digest;

use super::command::{Build, read_shared};
use crate::cache::FileIdentity;

/// Reads of a build's binaries, started with the build; stopped when dropped.
pub(crate) struct Preread {
    paths: Vec<PathBuf>,
    reading: Option<JoinHandle<Vec<Unchanged>>>,
    stop: Arc<AtomicBool>,
    read: Vec<Unchanged>,
}

/// One binary as it was read, and the file it was read from, still open.
struct Unchanged {
    path: PathBuf,
    _file: File,
    identity: FileIdentity,
    bytes: Arc<[u8]>,
    sha256: Digest,
}

impl Preread {
    /// Starts reading, on a thread of its own, the binaries `build` would put where a build like
    /// it put them last time.
    pub(crate) fn start(build: &Build) -> Preread {
        Preread::reading(build.executables())
    }

    fn reading(paths: Vec<PathBuf>) -> Preread {
        let stop = Arc::new(AtomicBool::new(false));
        let reading = {
            let (paths, stop) = (paths.clone(), stop.clone());
            std::thread::Builder::new()
                .name("preread".into())
                .spawn(move || read_all(paths, &stop))
                .ok()
        };
        Preread {
            paths,
            reading,
            stop,
            read: Vec::new(),
        }
    }

    /// Whether these are the paths it reads.
    pub(crate) fn reads(&self, paths: &[PathBuf]) -> bool {
        self.paths == paths
    }

    /// The bytes and SHA-256 of the file at `path`, if it was read ahead and is still that file;
    /// waits for the reads to end. Call it once cargo has ended.
    pub(crate) fn take(&mut self, path: &Path) -> Option<(Arc<[u8]>, Digest)> {
        self.wait();
        let index = self.read.iter().position(|read| read.path == path)?;
        let read = self.read.swap_remove(index);
        let now = FileIdentity::of(&std::fs::metadata(path).ok()?);
        (now == read.identity).then_some((read.bytes, read.sha256))
    }

    fn wait(&mut self) {
        if let Some(reading) = self.reading.take() {
            self.read = reading.join().unwrap_or_default();
        }
    }
}

impl Drop for Preread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wait();
    }
}

/// Each of `paths` that is a regular file which did not change while it was read, read on a
/// thread per core: a workspace's many binaries are read side by side.
fn read_all(paths: Vec<PathBuf>, stop: &AtomicBool) -> Vec<Unchanged> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::util::map_at_once(&paths, threads, |path| read_unchanged(path.clone(), stop))
        .into_iter()
        .flatten()
        .collect()
}

/// `path` read whole if it is a regular file that did not change while it was read. Opened
/// without waiting, so a FIFO put there never blocks the thread.
fn read_unchanged(path: PathBuf, stop: &AtomicBool) -> Option<Unchanged> {
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .ok()?;
    let before = file.metadata().ok()?;
    if !before.is_file() {
        return None;
    }
    let (bytes, sha256) = read_shared(&mut file, stop).ok()?;
    let identity = FileIdentity::of(&before);
    (FileIdentity::of(&file.metadata().ok()?) == identity).then_some(Unchanged {
        path,
        _file: file,
        identity,
        bytes,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, SystemTime};

    use super::*;

    fn program(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("app");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn an_unchanged_file_is_taken_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(5 << 20) + 7).map(|i: u32| (i % 253) as u8).collect();
        let path = program(dir.path(), &data);
        let mut preread = Preread::reading(vec![path.clone()]);
        let (bytes, sha256) = preread.take(&path).expect("read ahead");
        assert!(bytes[..] == data[..]);
        assert_eq!(sha256, crate::image::sha256(&data));
        // Once: a second call reads the file itself.
        assert!(preread.take(&path).is_none());
    }

    #[test]
    fn only_the_paths_read_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = program(dir.path(), b"one");
        let mut preread = Preread::reading(vec![path, dir.path().join("absent")]);
        assert!(preread.take(&dir.path().join("other")).is_none());
        assert!(preread.take(&dir.path().join("absent")).is_none());
    }

    /// cargo links a new file and puts it at the path: another inode.
    #[test]
    fn a_file_replaced_after_the_read_is_read_anew() {
        let dir = tempfile::tempdir().unwrap();
        let path = program(dir.path(), b"old program");
        let mut preread = Preread::reading(vec![path.clone()]);
        preread.wait();
        let new = dir.path().join("new");
        std::fs::write(&new, b"new program").unwrap();
        std::fs::rename(&new, &path).unwrap();
        assert!(preread.take(&path).is_none());
    }

    /// The same inode, size and modification time, other bytes: the change time tells.
    #[test]
    fn a_file_rewritten_in_place_is_read_anew() {
        let dir = tempfile::tempdir().unwrap();
        let path = program(dir.path(), b"old program");
        let modified = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let mut preread = Preread::reading(vec![path.clone()]);
        preread.wait();
        // File times come from a clock that ticks every few milliseconds.
        std::thread::sleep(Duration::from_millis(20));
        let mut file = File::options().write(true).open(&path).unwrap();
        file.write_all(b"new program").unwrap();
        file.set_modified(modified).unwrap();
        drop(file);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.len(), meta.modified().unwrap()), (11, modified));
        assert!(preread.take(&path).is_none());
    }

    #[test]
    fn a_fifo_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut preread = Preread::reading(vec![path.clone()]);
            let _ = done.send(preread.take(&path).is_none());
        });
        let taken = ended.recv_timeout(Duration::from_secs(10));
        assert_eq!(taken, Ok(true), "the read waited on the FIFO");
    }

    /// A read no longer wanted stops between two chunks rather than reading the whole file.
    #[test]
    fn a_read_no_longer_wanted_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = program(dir.path(), &vec![7; 9 << 20]);
        assert!(read_unchanged(path.clone(), &AtomicBool::new(true)).is_none());
        assert!(read_unchanged(path.clone(), &AtomicBool::new(false)).is_some());
        // Dropping a preread tells its thread to stop, and waits for it.
        let preread = Preread::reading(vec![path]);
        let stop = preread.stop.clone();
        drop(preread);
        assert!(stop.load(Ordering::Relaxed));
    }
}
