//! A lock on a directory that runs of the tool take turns on: the outputs written there, or a
//! record every run of the user updates. `flock`, so it is released when the process ends,
//! however it ends. The threads of one run take their [`turn`] first.

use std::fs::{self, File};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a run waits for others that hold the same directory: they hold it for a few
/// renames, so this is only reached when something is stuck.
const LOCK_LIMIT: Duration = Duration::from_secs(60);

/// Held by this process's thread that takes directory locks: the threads of one run take turns
/// here, waking as soon as their turn comes, and `flock`, which they would each wait for by
/// polling, is only ever waited for on other processes.
static TAKING_TURNS: Mutex<()> = Mutex::new(());

/// This thread's turn to take directory locks, until dropped. Not taken twice by one thread.
pub(crate) fn turn() -> MutexGuard<'static, ()> {
    crate::util::lock(&TAKING_TURNS)
}

/// A lock on a directory, held until dropped.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn take(dir: &Path) -> Result<DirLock> {
        let file = File::open(dir).with_context(|| format!("could not open {}", dir.display()))?;
        let deadline = Instant::now() + LOCK_LIMIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(DirLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(fs::TryLockError::WouldBlock) => bail!(
                    "another process has held {} for {} s\nhelp: look for a stuck `cargo scratchimg` writing there",
                    dir.display(),
                    LOCK_LIMIT.as_secs()
                ),
                Err(fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("could not lock {}", dir.display()));
                }
            }
        }
    }
}
