//! The bytes of a layer's file or of a blob: held in memory, or read when needed from a source
//! this module does not know (a file the `files` setting names, a layer cache entry, a layer's
//! tar). Large ones are never held whole: tars, compressors and sinks read them in chunks.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::blob::digest_of;

/// Bytes read when needed, from the start, as often as needed.
pub(crate) trait Stream: fmt::Debug + Send + Sync {
    /// How many bytes [`Stream::open`] gives: fixed when the stream is made (a tar header
    /// holds it), so a source that changes size later is an error when it is read.
    fn len(&self) -> u64;

    /// A reader of the bytes from the start. Errors say what was being read.
    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>>;
}

#[derive(Clone)]
enum Data {
    Static(&'static [u8]),
    Shared(Arc<[u8]>),
    Stream(Arc<dyn Stream>),
}

/// A file's or a blob's bytes, and their SHA-256 once someone asked for it.
#[derive(Clone)]
pub(crate) struct Content {
    data: Data,
    sha256: Arc<OnceLock<Digest>>,
    /// The bytes are a blob's, named by the digest they were checked against when they were
    /// made or found: reading them does not check them again.
    addressed: bool,
}

impl Content {
    pub(crate) fn stream(stream: Arc<dyn Stream>) -> Content {
        Content::of(Data::Stream(stream))
    }

    /// In-memory bytes whose digest the caller computed already.
    pub(crate) fn hashed(bytes: Arc<[u8]>, sha256: Digest) -> Content {
        Content {
            data: Data::Shared(bytes),
            sha256: Arc::new(OnceLock::from(sha256)),
            addressed: false,
        }
    }

    /// The same bytes as a blob's, which hash to `digest`: they were checked against it.
    pub(crate) fn addressed(self, digest: Digest) -> Content {
        Content {
            data: self.data,
            sha256: Arc::new(OnceLock::from(digest)),
            addressed: true,
        }
    }

    fn of(data: Data) -> Content {
        Content {
            data,
            sha256: Arc::new(OnceLock::new()),
            addressed: false,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match &self.data {
            Data::Static(bytes) => bytes.len() as u64,
            Data::Shared(bytes) => bytes.len() as u64,
            Data::Stream(stream) => stream.len(),
        }
    }

    /// The bytes, when they are in memory.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            Data::Static(bytes) => Some(bytes),
            Data::Shared(bytes) => Some(bytes),
            Data::Stream(_) => None,
        }
    }

    /// Whether reads check the bytes against the digest computed from them before: they are
    /// read from elsewhere (a file the `files` setting names), so they could change between two
    /// reads, and they are not a blob's, checked already.
    pub(crate) fn checked_when_read(&self) -> bool {
        matches!(self.data, Data::Stream(_)) && !self.addressed && self.sha256.get().is_some()
    }

    /// A reader of exactly [`Content::len`] bytes: a source that ends early is an error.
    pub(crate) fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(match &self.data {
            Data::Static(bytes) => Box::new(*bytes),
            Data::Shared(bytes) => Box::new(&bytes[..]),
            Data::Stream(stream) => Box::new(Exact {
                inner: stream.open()?.take(stream.len()),
                left: stream.len(),
            }),
        })
    }

    /// The SHA-256 of the bytes, computed the first time (reading a stream once) and kept.
    pub(crate) fn sha256(&self) -> io::Result<Digest> {
        if let Some(digest) = self.sha256.get() {
            return Ok(digest.clone());
        }
        let digest = match self.bytes() {
            Some(bytes) => digest_of(Sha256::digest(bytes)),
            None => super::streamed_digest(self.reader()?)?.0,
        };
        Ok(self.sha256.get_or_init(|| digest).clone())
    }

    /// The digest [`Content::sha256`] computed, if it did.
    pub(crate) fn known_sha256(&self) -> Option<&Digest> {
        self.sha256.get()
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.data {
            Data::Stream(stream) => write!(f, "Content::Stream({stream:?})"),
            _ => write!(f, "Content({} bytes)", self.len()),
        }
    }
}

impl From<&'static [u8]> for Content {
    fn from(bytes: &'static [u8]) -> Content {
        Content::of(Data::Static(bytes))
    }
}

impl From<&'static str> for Content {
    fn from(text: &'static str) -> Content {
        Content::of(Data::Static(text.as_bytes()))
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Content {
        Content::of(Data::Shared(bytes.into()))
    }
}

impl From<String> for Content {
    fn from(text: String) -> Content {
        Content::from(text.into_bytes())
    }
}

impl From<Arc<[u8]>> for Content {
    fn from(bytes: Arc<[u8]>) -> Content {
        Content::of(Data::Shared(bytes))
    }
}

/// A reader that fails when its source ends before `left` bytes.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "it ended {} bytes early: was it changed meanwhile?",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Bytes of an open file: `len` of them from `start` (a layer cache entry, or a blob of an OCI
/// layout or of a tar). Read by position, so readers on several threads share the file; a read
/// error names `path`.
#[derive(Debug)]
pub(crate) struct FilePart {
    pub file: Arc<File>,
    pub start: u64,
    pub len: u64,
    /// Where it is, for errors.
    pub path: PathBuf,
}

impl FilePart {
    /// The first `len` bytes of `file`.
    pub(crate) fn whole(file: File, len: u64, path: PathBuf) -> FilePart {
        FilePart {
            file: Arc::new(file),
            start: 0,
            len,
            path,
        }
    }

    /// A reader of the part, from its start.
    pub(crate) fn reader(&self) -> impl Read + Send + '_ {
        At {
            part: self,
            offset: self.start,
        }
    }
}

impl Stream for FilePart {
    fn len(&self) -> u64 {
        self.len
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.reader()))
    }
}

/// Reads a [`FilePart`] by position.
struct At<'a> {
    part: &'a FilePart,
    offset: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let end = self.part.start + self.part.len;
        let max = (end - self.offset).min(buf.len() as u64) as usize;
        if max == 0 {
            return Ok(0);
        }
        let n = self
            .part
            .file
            .read_at(&mut buf[..max], self.offset)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("could not read {}: {e}", self.part.path.display()),
                )
            })?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Hashes what is read through it.
pub(crate) struct HashReader<'a, R> {
    pub inner: R,
    pub hasher: &'a mut Sha256,
}

impl<R: Read> Read for HashReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads `inner`, noting whether it gives other bytes than `expected` (more than `expected`
/// gives included; fewer is for the caller to tell, by the length read).
pub(crate) struct Compared<R, E> {
    inner: R,
    expected: E,
    scratch: Vec<u8>,
    differs: bool,
}

impl<R, E> Compared<R, E> {
    pub(crate) fn new(inner: R, expected: E) -> Compared<R, E> {
        Compared {
            inner,
            expected,
            scratch: Vec::new(),
            differs: false,
        }
    }

    /// Whether what was read so far differs from what was expected.
    pub(crate) fn differs(&self) -> bool {
        self.differs
    }
}

impl<R: Read, E: Read> Read for Compared<R, E> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scratch.resize(n, 0);
        if self.expected.read_exact(&mut self.scratch).is_err() || self.scratch[..] != buf[..n] {
            self.differs = true;
        }
        Ok(n)
    }
}

/// Feeds what is written to a hasher.
pub(crate) struct HashWriter<'a>(pub &'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Short;

    impl Stream for Short {
        fn len(&self) -> u64 {
            10
        }
        fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
            Ok(Box::new(&b"12345"[..]))
        }
    }

    #[test]
    fn a_stream_shorter_than_it_said_is_an_error() {
        let content = Content::stream(Arc::new(Short));
        let err = io::copy(&mut content.reader().unwrap(), &mut io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(content.sha256().is_err());
    }

    #[test]
    fn digests_are_computed_once_and_shared_by_clones() {
        let content = Content::from(b"{}".to_vec());
        assert!(content.known_sha256().is_none());
        let copy = content.clone();
        assert_eq!(
            content.sha256().unwrap().to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert!(copy.known_sha256().is_some());
    }
}
