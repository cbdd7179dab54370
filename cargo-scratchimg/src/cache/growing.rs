//! A file as it is written, for readers that follow it: they read what is on disk and wait
//! for more, and hear at the end whether it was written whole, and its digest. The layer cache
//! gives its new entries this way, so an upload can start before the compression ends.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::{Condvar, Mutex};

use oci_spec::image::Digest;

/// A file as it is written, for readers that follow it.
#[derive(Debug)]
pub(crate) struct Growing {
    file: File,
    /// The most it can grow to, for time limits.
    limit: u64,
    state: Mutex<Grown>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Grown {
    written: u64,
    /// The most a follower has read.
    read: u64,
    /// The digest when it was written whole; `None` inside when it failed.
    end: Option<Option<Digest>>,
    /// Followers stop: what they read is not wanted any more.
    cancelled: bool,
}

impl Growing {
    /// `file` (a handle of its own: it is read at offsets), which will grow to `limit` bytes
    /// at most.
    pub(crate) fn new(file: File, limit: u64) -> Growing {
        Growing {
            file,
            limit,
            state: Mutex::new(Grown::default()),
            changed: Condvar::new(),
        }
    }

    /// A writer to `file` (the same file) that tells the followers how far it got.
    pub(crate) fn writer<'a>(&'a self, file: &'a File) -> impl Write + 'a {
        Notify {
            file,
            growing: self,
        }
    }

    /// Tells the followers how the writing ended when dropped: whole, once
    /// [`Ending::whole`] said so, else failed.
    pub(crate) fn ending(&self) -> Ending<'_> {
        Ending(self, None)
    }

    /// The most bytes it can come to.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// The bytes as they are written; ends when the entry is whole, fails when it failed.
    pub(crate) fn reader(&self) -> impl Read + Send + '_ {
        Follower {
            growing: self,
            offset: 0,
        }
    }

    /// Waits for the end: the digest of the whole entry, or `None` when it failed.
    pub(crate) fn digest(&self) -> Option<Digest> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(end) = &state.end {
                return end.clone();
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Bytes written that no follower has read yet.
    pub(crate) fn unread(&self) -> u64 {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.written.saturating_sub(state.read)
    }

    /// Makes the followers fail from now on: what they read is not wanted any more.
    pub(crate) fn cancel(&self) {
        self.update(|state| state.cancelled = true);
    }

    fn update(&self, change: impl FnOnce(&mut Grown)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut state);
        self.changed.notify_all();
    }
}

/// Tells the followers how the writing ended when dropped: with the digest of what was
/// written, or failed.
pub(crate) struct Ending<'a>(&'a Growing, Option<Digest>);

impl Ending<'_> {
    /// The file was written whole, and its bytes hash to `digest`.
    pub(crate) fn whole(mut self, digest: Digest) {
        self.1 = Some(digest);
    }
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let digest = self.1.take();
        self.0.update(|state| state.end = Some(digest));
    }
}

/// Writes to the file and says how far it got.
struct Notify<'a> {
    file: &'a File,
    growing: &'a Growing,
}

impl Write for Notify<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.growing.update(|state| state.written += n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Reads a [`Growing`] file as far as it is written, waiting for more.
struct Follower<'a> {
    growing: &'a Growing,
    offset: u64,
}

impl Read for Follower<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let growing = self.growing;
        let written = {
            let mut state = growing.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if state.cancelled {
                    return Err(io::Error::other("the upload was called off"));
                }
                if state.written > self.offset {
                    break state.written;
                }
                match &state.end {
                    Some(Some(_)) => return Ok(0),
                    Some(None) => return Err(io::Error::other("the layer could not be made")),
                    None => {
                        state = growing
                            .changed
                            .wait(state)
                            .unwrap_or_else(|e| e.into_inner())
                    }
                }
            }
        };
        let max = (written - self.offset).min(buf.len() as u64) as usize;
        let n = growing.file.read_at(&mut buf[..max], self.offset)?;
        self.offset += n as u64;
        let offset = self.offset;
        growing.update(|state| state.read = state.read.max(offset));
        Ok(n)
    }
}
