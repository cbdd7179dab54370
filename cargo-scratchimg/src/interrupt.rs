//! What an interrupt undoes before the tool exits: SIGINT and SIGTERM end the process groups
//! of the children the tool started (cargo with its rustc processes and linkers) and remove the
//! temporary files and directories it made, then the tool exits with 128 + the signal's number
//! (130, 143), as a shell reports a program the signal ended.
//!
//! A handler that only exited would skip every destructor, so what an interrupt must undo is
//! registered here while it exists ([`Registered`] entries leave on drop). The handler runs on
//! a thread of its own: it waits for the [`uninterrupted`] sections in progress (the renames
//! that put a run's outputs in place), takes the undo list and keeps it, undoes every entry and
//! exits. Entries are made under the undo list's lock, so none is left out.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Something an interrupt undoes.
#[derive(Debug)]
enum Undo {
    /// A child's process group, ended with SIGKILL.
    Group(u32),
    /// A temporary file or directory, removed.
    Path(PathBuf),
}

/// What an interrupt would undo now, by the number each entry was given.
struct UndoList {
    next: u64,
    entries: BTreeMap<u64, Undo>,
}

static UNDO: Mutex<UndoList> = Mutex::new(UndoList {
    next: 0,
    entries: BTreeMap::new(),
});

/// Held for reading by [`uninterrupted`] sections, for writing by the handler.
static SECTIONS: RwLock<()> = RwLock::new(());

/// The signal being handled; 0 before any.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// How many [`passed_on`] sections are running: while any is, signals are theirs to handle.
static PASSING_ON: AtomicUsize = AtomicUsize::new(0);

fn undo_list() -> MutexGuard<'static, UndoList> {
    UNDO.lock().unwrap_or_else(|e| e.into_inner())
}

/// An entry of the undo list, removed from it on drop.
#[derive(Debug)]
pub(crate) struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        undo_list().entries.remove(&self.0);
    }
}

/// Makes something with `make` and registers what an interrupt must undo of it, under the
/// undo list's lock: an interrupt sees either nothing made or the entry.
fn register<T>(
    make: impl FnOnce() -> io::Result<T>,
    undo: impl FnOnce(&T) -> Undo,
) -> io::Result<(T, Registered)> {
    let mut list = undo_list();
    let value = make()?;
    let id = list.next;
    list.next += 1;
    list.entries.insert(id, undo(&value));
    Ok((value, Registered(id)))
}

/// A temporary file or directory that an interrupt removes; its own drop removes it otherwise
/// (as `tempfile`'s types do).
#[derive(Debug)]
pub(crate) struct Temporary<T> {
    // Dropped first: the path is gone before its entry leaves.
    value: T,
    registered: Registered,
}

impl<T: AsRef<Path>> Temporary<T> {
    /// Makes a temporary file or directory with `make` and registers its path.
    pub(crate) fn new(make: impl FnOnce() -> io::Result<T>) -> io::Result<Temporary<T>> {
        let (value, registered) = register(make, |t| Undo::Path(t.as_ref().to_path_buf()))?;
        Ok(Temporary { value, registered })
    }

    /// The value, and its entry: drop the entry once the path is no longer temporary.
    pub(crate) fn into_parts(self) -> (T, Registered) {
        (self.value, self.registered)
    }
}

impl<T> std::ops::Deref for Temporary<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> std::ops::DerefMut for Temporary<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// Locks a temporary file or directory (its open `file`) for as long as this process lives:
/// however the process ends, even killed, the lock goes with it, and a later run sees the
/// path [`abandoned`].
pub(crate) fn hold(file: &std::fs::File) -> io::Result<()> {
    file.lock()
}

/// Whether no live process [`hold`]s `path`, a temporary file or directory of a run: a run
/// that was killed left it, and it may be removed.
pub(crate) fn abandoned(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    // Without blocking: a FIFO named like a leftover must not hang the run.
    std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .is_ok_and(|file| file.try_lock().is_ok())
}

/// Spawns `command` (already set up as the leader of a process group of its own) and registers
/// its group.
pub(crate) fn spawn_group(
    command: &mut std::process::Command,
) -> io::Result<(std::process::Child, Registered)> {
    register(|| command.spawn(), |child| Undo::Group(child.id()))
}

/// Runs `f` to its end before an interrupt undoes anything: for the renames that put outputs
/// in place, so that a signal never leaves one half moved.
pub(crate) fn uninterrupted<T>(f: impl FnOnce() -> T) -> T {
    let _section = SECTIONS.read().unwrap_or_else(|e| e.into_inner());
    f()
}

/// The signal the tool is exiting for, if any: what fails meanwhile is its doing, not an error
/// to report.
pub fn interrupted() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Handles SIGINT and SIGTERM from now on: at the first, ends the registered children's
/// process groups, removes the registered temporary paths and exits with 128 + the signal;
/// except while a [`passed_on`] section runs, which handles them itself.
pub fn handle_interrupts() -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("interrupts".into())
        .spawn(move || {
            for signal in signals.forever() {
                if PASSING_ON.load(Ordering::SeqCst) > 0 {
                    continue;
                }
                RECEIVED.store(signal, Ordering::SeqCst);
                undo_all();
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}

/// Runs `f`, which passes SIGINT and SIGTERM on itself (to a container that `run` started):
/// meanwhile they do not end the tool.
pub(crate) fn passed_on<T>(f: impl FnOnce() -> T) -> T {
    struct Section;
    impl Drop for Section {
        fn drop(&mut self) {
            PASSING_ON.fetch_sub(1, Ordering::SeqCst);
        }
    }
    PASSING_ON.fetch_add(1, Ordering::SeqCst);
    let _section = Section;
    f()
}

/// Ends every registered group and removes every registered path, and keeps the undo list
/// locked for good: nothing new starts after.
fn undo_all() {
    // Sections in progress finish; none starts after.
    std::mem::forget(SECTIONS.write().unwrap_or_else(|e| e.into_inner()));
    let list = undo_list();
    for undo in list.entries.values() {
        if let Undo::Group(pid) = undo {
            kill_group(*pid);
        }
    }
    for undo in list.entries.values() {
        if let Undo::Path(path) = undo {
            let _ = match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
                _ => std::fs::remove_file(path),
            };
        }
    }
    std::mem::forget(list);
}

/// SIGKILL to the process group led by `pid`.
pub(crate) fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO named like a leftover is judged at once, not opened until a writer comes.
    #[test]
    fn a_fifo_is_judged_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(".tmp-fifo");
        crate::rootfs::files::tests::mkfifo(&fifo);
        let (done, judged) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(abandoned(&fifo)));
        let judged = judged.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(judged, Ok(true));
    }

    #[test]
    fn entries_leave_the_undo_list_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let temporary = Temporary::new(|| {
            std::fs::write(&path, b"")?;
            Ok(path.clone())
        })
        .unwrap();
        let registered = |path: &Path| {
            undo_list()
                .entries
                .values()
                .any(|u| matches!(u, Undo::Path(p) if p == path))
        };
        assert!(registered(&path));
        let (kept, entry) = temporary.into_parts();
        assert!(registered(&kept));
        drop(entry);
        assert!(!registered(&kept));
        assert_eq!(interrupted(), None);
        assert_eq!(uninterrupted(|| 7), 7);
    }
}
