//! A layer's tar as a stream: each entry's header made once, its contents read from their
//! source each time the tar is read, so the tar is never held whole; its key, its diff_id, and
//! its compression, all read in chunks.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use oci_spec::image::{Digest, MediaType};
use sha2::{Digest as _, Sha256};

use super::blob::{Blob, digest_of};
use super::compress::Compression;
use super::content::{Content, HashReader, Stream};
use super::layer::{Entry, EntryKind};

/// Two empty blocks end a tar.
const END: u64 = 1024;
const TAR_BLOCK: u64 = 512;

/// One entry of a tar: its header, then its contents padded to a whole block.
#[derive(Debug)]
struct Part {
    path: String,
    head: Vec<u8>,
    content: Option<Content>,
}

impl Part {
    fn padding(&self) -> u64 {
        let len = self.content.as_ref().map_or(0, Content::len);
        (TAR_BLOCK - len % TAR_BLOCK) % TAR_BLOCK
    }

    fn size(&self) -> u64 {
        self.head.len() as u64 + self.content.as_ref().map_or(0, Content::len) + self.padding()
    }
}

#[derive(Debug)]
struct TarParts {
    parts: Vec<Part>,
    size: u64,
}

/// A layer's tar, read as often as needed from its entries' contents.
#[derive(Debug, Clone)]
pub(crate) struct Tar(Arc<TarParts>);

/// What compressing a tar gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    /// Of the tar.
    pub diff_id: Digest,
    /// Of the compressed bytes.
    pub digest: Digest,
    pub size: u64,
}

impl Tar {
    /// The tar of `entries`, sorted by path, parents before children, hard links after their
    /// targets, every header field set explicitly, every entry's mtime `mtime`.
    pub(super) fn of(entries: &BTreeMap<String, Entry>, mtime: u64) -> Result<Tar> {
        let mut parts = Vec::new();
        // Sorting by bytes puts `a/b` after `a` but `a-b` between them; hard links need their
        // target first, which holds when callers link to the first of equal files.
        for (path, entry) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_mode(entry.mode);
            header.set_uid(entry.owner.uid);
            header.set_gid(entry.owner.gid);
            header.set_mtime(mtime);
            header.set_size(0);
            let context = || format!("could not add `/{path}` to a layer");
            // The tar crate writes the header (and a GNU long-name entry before it when the
            // path needs one); the contents follow from their source.
            let mut head = tar::Builder::new(Vec::new());
            // Extended attributes go before the entry as a PAX header, named as GNU tar and
            // Go's archive/tar (Docker, podman, containerd, ko) write and read them.
            let records: Vec<(String, &[u8])> = (entry.xattrs.iter())
                .map(|(name, value)| (format!("SCHILY.xattr.{name}"), value.as_slice()))
                .collect();
            head.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                .with_context(context)?;
            let mut content = None;
            match &entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    head.append_data(&mut header, format!("{path}/"), io::empty())
                        .with_context(context)?;
                }
                EntryKind::File(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len());
                    head.append_data(&mut header, path, io::empty())
                        .with_context(context)?;
                    content = Some(data.clone());
                }
                EntryKind::Hardlink(target) => {
                    ensure!(
                        target < path,
                        "hard link `/{path}` sorts before its target `/{target}`"
                    );
                    header.set_entry_type(tar::EntryType::Link);
                    head.append_link(&mut header, path, target)
                        .with_context(context)?;
                }
            }
            // Taken out before the builder ends the archive (it would add the two empty blocks).
            let head = std::mem::take(head.get_mut());
            parts.push(Part {
                path: path.clone(),
                head,
                content,
            });
        }
        let size = parts.iter().map(Part::size).sum::<u64>() + END;
        Ok(Tar(Arc::new(TarParts { parts, size })))
    }

    pub(crate) fn size(&self) -> u64 {
        self.0.size
    }

    /// A reader of the tar's bytes. A file that ends early, or whose bytes are no longer those
    /// [`Tar::key`] read, is an error naming it.
    pub(crate) fn reader(&self) -> TarReader<'_> {
        TarReader {
            parts: &self.0.parts,
            index: 0,
            stage: Stage::Head(0),
        }
    }

    /// A digest that names the tar's bytes without reading them all: the headers and the
    /// digest of each file's contents, which files the caller hashed already (the program)
    /// do not need again. Two tars with the same key have the same bytes.
    pub(crate) fn key(&self) -> io::Result<Digest> {
        let mut key = Sha256::new();
        key.update(b"cargo-scratchimg layer key 1\n");
        for part in &self.0.parts {
            key.update(&part.head);
            if let Some(content) = &part.content {
                let digest = content.sha256().map_err(|e| about(&part.path, e))?;
                key.update(digest.digest().as_bytes());
            }
        }
        Ok(digest_of(key.finalize()))
    }

    /// The digest of the tar: its diff_id.
    pub(crate) fn diff_id(&self) -> io::Result<Digest> {
        Ok(super::streamed_digest(self.reader())?.0)
    }

    /// Reads the tar once, hashing it and compressing it on `threads` threads into `output`,
    /// and hashing that.
    pub(crate) fn compress(
        &self,
        compression: Compression,
        threads: usize,
        output: &mut dyn Write,
    ) -> io::Result<Packed> {
        let mut diff_id = Sha256::new();
        let mut digest = Sha256::new();
        let mut size = 0;
        let mut input = HashReader {
            inner: self.reader(),
            hasher: &mut diff_id,
        };
        let mut output = Counted {
            inner: output,
            hasher: &mut digest,
            size: &mut size,
        };
        compression.compress(&mut input, &mut output, threads)?;
        output.flush()?;
        Ok(Packed {
            diff_id: digest_of(diff_id.finalize()),
            digest: digest_of(digest.finalize()),
            size,
        })
    }

    /// The tar as a blob, content-addressed by `diff_id`.
    pub(crate) fn blob(&self, diff_id: Digest) -> Blob {
        Blob::with_digest(
            MediaType::ImageLayer,
            diff_id,
            Content::stream(Arc::new(self.clone())),
        )
    }
}

impl Stream for Tar {
    fn len(&self) -> u64 {
        self.size()
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.reader()))
    }
}

/// An error while reading the file at `path` of a layer.
fn about(path: &str, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("could not read `/{path}`: {error}"))
}

enum Stage<'a> {
    /// The header, from this offset.
    Head(usize),
    /// The contents, hashed when they are read from elsewhere and their digest is known.
    Body(Box<dyn Read + Send + 'a>, Option<Sha256>),
    /// Zeros up to the next block.
    Pad(u64),
    /// The end of the tar.
    End(u64),
}

/// Reads a [`Tar`] part by part.
pub(crate) struct TarReader<'a> {
    parts: &'a [Part],
    index: usize,
    stage: Stage<'a>,
}

impl Read for TarReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(part) = self.parts.get(self.index) else {
                let left = match self.stage {
                    Stage::End(left) => left,
                    _ => END,
                };
                let n = left.min(buf.len() as u64) as usize;
                buf[..n].fill(0);
                self.stage = Stage::End(left - n as u64);
                return Ok(n);
            };
            match &mut self.stage {
                Stage::Head(offset) => {
                    if *offset < part.head.len() {
                        let n = (part.head.len() - *offset).min(buf.len());
                        buf[..n].copy_from_slice(&part.head[*offset..*offset + n]);
                        *offset += n;
                        return Ok(n);
                    }
                    self.stage = match &part.content {
                        Some(content) => {
                            let check = content.checked_when_read().then(Sha256::new);
                            let reader = content.reader().map_err(|e| about(&part.path, e))?;
                            Stage::Body(reader, check)
                        }
                        None => Stage::Pad(part.padding()),
                    };
                }
                Stage::Body(reader, check) => {
                    let n = reader.read(buf).map_err(|e| about(&part.path, e))?;
                    if n > 0 {
                        if let Some(check) = check {
                            check.update(&buf[..n]);
                        }
                        return Ok(n);
                    }
                    if let (Some(check), Some(content)) = (check.take(), &part.content)
                        && content.known_sha256() != Some(&digest_of(check.finalize()))
                    {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("`/{}` changed while its layer was made", part.path),
                        ));
                    }
                    self.stage = Stage::Pad(part.padding());
                }
                Stage::Pad(left) => {
                    if *left > 0 {
                        let n = (*left).min(buf.len() as u64) as usize;
                        buf[..n].fill(0);
                        *left -= n as u64;
                        return Ok(n);
                    }
                    self.index += 1;
                    self.stage = Stage::Head(0);
                }
                Stage::End(_) => unreachable!("the end comes after the last part"),
            }
        }
    }
}

/// Hashes and counts what is written through it.
struct Counted<'a> {
    inner: &'a mut dyn Write,
    hasher: &'a mut Sha256,
    size: &'a mut u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        *self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer::tests::{SAMPLE_MTIME, sample};
    use crate::image::{LayerBuilder, Owner};

    /// The tar the tar crate writes in one go, as this module wrote it before it streamed, of
    /// a builder [`sample`] began.
    fn whole(b: &LayerBuilder) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, entry) in b.entries() {
            let mut header = tar::Header::new_ustar();
            header.set_mode(entry.mode);
            header.set_uid(entry.owner.uid);
            header.set_gid(entry.owner.gid);
            header.set_mtime(SAMPLE_MTIME);
            header.set_size(0);
            match &entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut header, format!("{path}/"), &[][..])
                        .unwrap();
                }
                EntryKind::File(data) => {
                    let mut bytes = Vec::new();
                    data.reader().unwrap().read_to_end(&mut bytes).unwrap();
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    tar.append_data(&mut header, path, &bytes[..]).unwrap();
                }
                EntryKind::Hardlink(target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut header, path, target).unwrap();
                }
            }
        }
        tar.into_inner().unwrap()
    }

    /// A file read from elsewhere, whose bytes can be changed under the layer; its length is
    /// the one it had when it was checked.
    #[derive(Debug)]
    struct Shifting(std::sync::Mutex<Vec<u8>>, u64);

    impl Stream for Shifting {
        fn len(&self) -> u64 {
            self.1
        }
        fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
            Ok(Box::new(io::Cursor::new(self.0.lock().unwrap().clone())))
        }
    }

    #[test]
    fn the_streamed_tar_is_the_tar_crates_in_any_read_size() {
        let mut b = sample(false);
        b.hardlink("usr/share/zoneinfo/UTC", "usr/share/zoneinfo/Etc/UTC")
            .unwrap();
        let long = format!("app/{}/data.bin", "deep".repeat(40));
        b.file(&long, vec![7u8; 1500], 0o644, Owner::ROOT).unwrap();
        b.file("app/empty", Vec::new(), 0o644, Owner::ROOT).unwrap();
        let expected = whole(&b);
        let tar = b.finish().unwrap();
        assert_eq!(tar.size(), expected.len() as u64);
        for chunk in [1, 7, 512, 100_000] {
            let mut reader = tar.reader();
            let mut got = Vec::new();
            let mut buf = vec![0; chunk];
            loop {
                match reader.read(&mut buf).unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
            assert!(got == expected, "read {chunk} bytes at a time");
        }
        assert_eq!(tar.diff_id().unwrap(), super::super::sha256(&expected));
    }

    #[test]
    fn keys_name_the_bytes() {
        let a = sample(false).finish().unwrap();
        let b = sample(true).finish().unwrap();
        assert_eq!(a.key().unwrap(), b.key().unwrap());
        let mut other = sample(false);
        other
            .file("etc/motd", &b"hi"[..], 0o644, Owner::ROOT)
            .unwrap();
        assert_ne!(other.finish().unwrap().key().unwrap(), a.key().unwrap());
        let mut moded = LayerBuilder::new(1_700_000_000);
        moded
            .file("etc/passwd", &b"x"[..], 0o600, Owner::ROOT)
            .unwrap();
        let mut plain = LayerBuilder::new(1_700_000_000);
        plain
            .file("etc/passwd", &b"x"[..], 0o644, Owner::ROOT)
            .unwrap();
        assert_ne!(
            moded.finish().unwrap().key().unwrap(),
            plain.finish().unwrap().key().unwrap()
        );
    }

    #[test]
    fn a_file_that_changes_after_its_key_was_taken_is_an_error() {
        let source = Arc::new(Shifting(std::sync::Mutex::new(b"first".to_vec()), 5));
        let mut b = LayerBuilder::new(0);
        b.file("data", Content::stream(source.clone()), 0o644, Owner::ROOT)
            .unwrap();
        let tar = b.finish().unwrap();
        tar.key().unwrap();
        *source.0.lock().unwrap() = b"other".to_vec();
        let err = io::copy(&mut tar.reader(), &mut io::sink()).unwrap_err();
        assert_eq!(err.to_string(), "`/data` changed while its layer was made");
        *source.0.lock().unwrap() = b"shor".to_vec();
        let err = io::copy(&mut tar.reader(), &mut io::sink()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("could not read `/data`: it ended 1 bytes early"),
            "{err}"
        );
    }

    #[test]
    fn compressing_digests_both_sides() {
        let tar = sample(false).finish().unwrap();
        for algorithm in super::super::compress::Algorithm::ALL {
            let compression = Compression::new(algorithm);
            let mut bytes = Vec::new();
            let packed = tar.compress(compression, 2, &mut bytes).unwrap();
            assert_eq!(packed.size, bytes.len() as u64);
            assert_eq!(packed.digest, super::super::sha256(&bytes));
            assert_eq!(packed.diff_id, tar.diff_id().unwrap());
        }
    }
}
