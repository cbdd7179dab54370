//! Filesystem layers: a deterministic tar, its diff_id, and its compressed blob. The tar is
//! never held whole: it is read in chunks from the files' contents, through the hashers and
//! the compressor.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use oci_spec::image::{Digest, MediaType};
use sha2::{Digest as _, Sha256};

use super::blob::{Blob, digest_of};
use super::compress::Compression;
use super::content::{Content, HashReader, Stream};

/// Numeric owner of an entry; names are resolved by the image's /etc/passwd, not the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Owner {
    pub(crate) const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

#[derive(Debug, Clone)]
pub(crate) enum EntryKind {
    Dir,
    File(Content),
    /// A hard link to an earlier regular file in the same layer (a path like our own keys).
    Hardlink(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: EntryKind,
    pub mode: u32,
    pub owner: Owner,
    /// Added only because a child needed a parent; an explicit `dir` replaces it.
    implied: bool,
}

/// Collects the files of one layer. Entries are kept sorted by path and every parent directory
/// is present exactly once, so the tar is the same whatever order files were added in.
#[derive(Debug, Clone)]
pub(crate) struct LayerBuilder {
    mtime: u64,
    entries: BTreeMap<String, Entry>,
}

/// One filesystem layer of an image: its blob (compressed, or the plain tar), the digest of the
/// plain tar, and the tar itself when it can be read again (to load it without decompressing).
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    blob: Blob,
    diff_id: Digest,
    comment: String,
    tar: Option<Blob>,
}

impl LayerBuilder {
    /// Every entry gets `mtime` (seconds since the epoch), so the bytes do not depend on when or
    /// where the build ran.
    pub(crate) fn new(mtime: u64) -> LayerBuilder {
        LayerBuilder {
            mtime,
            entries: BTreeMap::new(),
        }
    }

    pub(crate) fn dir(&mut self, path: &str, mode: u32, owner: Owner) -> Result<&mut Self> {
        let path = normalize(path)?;
        if let Some(existing) = self.entries.get(&path)
            && !(existing.implied || matches!(existing.kind, EntryKind::Dir))
        {
            bail!("`/{path}` is added to the image twice, once as a directory");
        }
        self.insert(
            path,
            Entry {
                kind: EntryKind::Dir,
                mode,
                owner,
                implied: false,
            },
        )
    }

    pub(crate) fn file(
        &mut self,
        path: &str,
        data: impl Into<Content>,
        mode: u32,
        owner: Owner,
    ) -> Result<&mut Self> {
        let entry = Entry {
            kind: EntryKind::File(data.into()),
            mode,
            owner,
            implied: false,
        };
        self.insert_new(path, entry)
    }

    /// A hard link at `path` to the regular file at `target`, which must be in this layer too.
    pub(crate) fn hardlink(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let target = normalize(target)?;
        let Some(Entry {
            kind: EntryKind::File(_),
            mode,
            owner,
            ..
        }) = self.entries.get(&target)
        else {
            bail!("hard link `/{path}` points to `/{target}`, which is not a file of this layer");
        };
        let entry = Entry {
            kind: EntryKind::Hardlink(target),
            mode: *mode,
            owner: *owner,
            implied: false,
        };
        self.insert_new(path, entry)
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries
            .iter()
            .map(|(path, entry)| (path.as_str(), entry))
    }

    fn insert_new(&mut self, path: &str, entry: Entry) -> Result<&mut Self> {
        let path = normalize(path)?;
        ensure!(
            !self.entries.contains_key(&path),
            "`/{path}` is added to the image twice"
        );
        self.insert(path, entry)
    }

    fn insert(&mut self, path: String, entry: Entry) -> Result<&mut Self> {
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            match self.entries.get(parent) {
                Some(Entry {
                    kind: EntryKind::Dir,
                    ..
                }) => {}
                Some(_) => bail!("`/{parent}` is a file, so `/{path}` cannot be inside it"),
                None => {
                    let implied = Entry {
                        kind: EntryKind::Dir,
                        mode: 0o755,
                        owner: Owner::ROOT,
                        implied: true,
                    };
                    self.entries.insert(parent.to_string(), implied);
                }
            }
        }
        self.entries.insert(path, entry);
        Ok(self)
    }

    /// The layer as an uncompressed tar: entries sorted by path, parents before children, hard
    /// links after their targets, every header field set explicitly. Its bytes are read when
    /// needed.
    pub(crate) fn finish(&self) -> Result<Tar> {
        let mut parts = Vec::new();
        // Sorting by bytes puts `a/b` after `a` but `a-b` between them; hard links need their
        // target first, which holds when callers link to the first of equal files.
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mode(entry.mode);
            header.set_uid(entry.owner.uid);
            header.set_gid(entry.owner.gid);
            header.set_mtime(self.mtime);
            header.set_size(0);
            let context = || format!("could not add `/{path}` to a layer");
            // The tar crate writes the header (and a GNU long-name entry before it when the
            // path needs one); the contents follow from their source.
            let mut head = tar::Builder::new(Vec::new());
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

    /// The layer with its plain tar as its blob, for an engine that loads it: read once now
    /// for its digest, and again when it is loaded.
    pub(crate) fn uncompressed(&self, comment: impl Into<String>) -> Result<Layer> {
        let comment = comment.into();
        let tar = self.finish()?;
        let diff_id = tar
            .diff_id()
            .with_context(|| format!("could not pack the layer {comment}"))?;
        // Its blob is its plain tar: for an engine that loads it, never for a registry.
        let blob = tar.blob(diff_id.clone());
        Ok(Layer::new(blob, diff_id, comment, Some(&tar)))
    }

    /// The whole tar in memory.
    #[cfg(test)]
    pub(crate) fn tar(&self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.finish()?.reader().read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Writes the tar, digests it, and compresses it (gzip, the smallest) into the layer's blob.
    #[cfg(test)]
    pub(crate) fn build(&self, comment: impl Into<String>) -> Result<Layer> {
        let compression = Compression::smallest(super::compress::Algorithm::Gzip);
        let tar = self.finish()?;
        let mut bytes = Vec::new();
        let packed = tar.compress(compression, 1, &mut bytes)?;
        let blob = Blob::with_digest(compression.media_type(), packed.digest, bytes.into());
        Ok(Layer::new(blob, packed.diff_id, comment, Some(&tar)))
    }
}

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
                            let check = (content.is_stream() && content.known_sha256().is_some())
                                .then(Sha256::new);
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

impl Layer {
    /// A layer of `blob`, made from a tar with digest `diff_id`; `tar` is that tar, when it can
    /// be read again.
    pub(crate) fn new(
        blob: Blob,
        diff_id: Digest,
        comment: impl Into<String>,
        tar: Option<&Tar>,
    ) -> Layer {
        let tar = tar.map(|tar| tar.blob(diff_id.clone()));
        Layer {
            blob,
            diff_id,
            comment: comment.into(),
            tar,
        }
    }

    /// A layer from a blob read back, whose diff_id the image's config gives.
    pub(crate) fn from_blob(blob: Blob, diff_id: Digest, comment: impl Into<String>) -> Layer {
        Layer {
            blob,
            diff_id,
            comment: comment.into(),
            tar: None,
        }
    }

    pub(crate) fn blob(&self) -> &Blob {
        &self.blob
    }

    /// The digest of the uncompressed tar, as `rootfs.diff_ids` lists it.
    pub(crate) fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// What the layer holds, for the image history and the summary.
    pub(crate) fn comment(&self) -> &str {
        &self.comment
    }

    /// The plain tar as a blob named by the diff_id, when it can be read again.
    pub(crate) fn tar(&self) -> Option<&Blob> {
        self.tar.as_ref()
    }

    /// The same layer with its plain tar as the blob, when it can be read again.
    pub(crate) fn to_uncompressed(&self) -> Option<Layer> {
        let tar = self.tar.clone()?;
        Some(Layer {
            blob: tar.clone(),
            diff_id: self.diff_id.clone(),
            comment: self.comment.clone(),
            tar: Some(tar),
        })
    }
}

/// `/etc/passwd`, `etc/passwd` and `etc/passwd/` all name `etc/passwd`; `..` and `.` are refused
/// so nothing lands outside the root.
fn normalize(path: &str) -> Result<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    ensure!(!parts.is_empty(), "`{path}` is not a path inside the image");
    ensure!(
        parts.iter().all(|p| *p != "." && *p != ".."),
        "`{path}` must not contain `.` or `..`"
    );
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// An entry as a tar reader sees it.
    struct ReadEntry {
        path: String,
        kind: tar::EntryType,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        data: Vec<u8>,
    }

    fn read_back(tar: &[u8]) -> Vec<ReadEntry> {
        let mut archive = tar::Archive::new(tar);
        let entries = archive.entries().unwrap();
        entries
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                ReadEntry {
                    path: e.path().unwrap().to_string_lossy().into_owned(),
                    kind: h.entry_type(),
                    mode: h.mode().unwrap(),
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                    mtime: h.mtime().unwrap(),
                    data,
                }
            })
            .collect()
    }

    /// The same three additions, in order or reversed.
    fn sample(order_reversed: bool) -> LayerBuilder {
        let nonroot = Owner {
            uid: 65532,
            gid: 65532,
        };
        let mut steps = vec![
            (
                "/etc/passwd",
                Some(&b"root:x:0:0::/root:/sbin/nologin\n"[..]),
                0o644,
                Owner::ROOT,
            ),
            ("/home/nonroot", None, 0o700, nonroot),
            (
                "usr/share/zoneinfo/Etc/UTC",
                Some(&b"TZif"[..]),
                0o644,
                Owner::ROOT,
            ),
        ];
        if order_reversed {
            steps.reverse();
        }
        let mut b = LayerBuilder::new(1_700_000_000);
        for (path, data, mode, owner) in steps {
            match data {
                Some(data) => b.file(path, data, mode, owner).unwrap(),
                None => b.dir(path, mode, owner).unwrap(),
            };
        }
        b
    }

    #[test]
    fn tar_round_trips_with_explicit_metadata() {
        let mut b = sample(false);
        b.hardlink("usr/share/zoneinfo/UTC", "usr/share/zoneinfo/Etc/UTC")
            .unwrap();
        let entries = read_back(&b.tar().unwrap());
        let summary: Vec<_> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind, e.mode, e.uid))
            .collect();
        use tar::EntryType::*;
        assert_eq!(
            summary,
            vec![
                ("etc/", Directory, 0o755, 0),
                ("etc/passwd", Regular, 0o644, 0),
                ("home/", Directory, 0o755, 0),
                ("home/nonroot/", Directory, 0o700, 65532),
                ("usr/", Directory, 0o755, 0),
                ("usr/share/", Directory, 0o755, 0),
                ("usr/share/zoneinfo/", Directory, 0o755, 0),
                ("usr/share/zoneinfo/Etc/", Directory, 0o755, 0),
                ("usr/share/zoneinfo/Etc/UTC", Regular, 0o644, 0),
                ("usr/share/zoneinfo/UTC", Link, 0o644, 0),
            ]
        );
        assert!(entries.iter().all(|e| e.mtime == 1_700_000_000));
        assert_eq!(entries[1].data, b"root:x:0:0::/root:/sbin/nologin\n");
        assert_eq!(entries[3].gid, 65532);
    }

    #[test]
    fn insertion_order_does_not_change_the_bytes() {
        let a = sample(false).build("x").unwrap();
        let b = sample(true).build("x").unwrap();
        assert_eq!(a.blob().read_all(), b.blob().read_all());
        assert_eq!(a.diff_id(), b.diff_id());
    }

    #[test]
    fn gzip_header_is_fixed() {
        let layer = sample(false).build("x").unwrap();
        let gz = &layer.blob().read_all()[..];
        // magic, deflate, no flags, mtime 0, best compression, OS unknown
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(&super::super::sha256(&tar), layer.diff_id());
    }

    #[test]
    fn conflicts_and_escapes_are_refused() {
        let mut b = sample(false);
        assert!(b.file("etc/passwd", &b""[..], 0o644, Owner::ROOT).is_err());
        assert!(
            b.file("etc/passwd/x", &b""[..], 0o644, Owner::ROOT)
                .is_err()
        );
        assert!(
            b.file("../etc/shadow", &b""[..], 0o644, Owner::ROOT)
                .is_err()
        );
        assert!(b.hardlink("etc/x", "etc/missing").is_err());
        assert!(b.dir("etc/passwd", 0o755, Owner::ROOT).is_err());
        // an explicit directory replaces the implied one
        b.dir("etc", 0o700, Owner::ROOT).unwrap();
        assert_eq!(b.entries().find(|e| e.0 == "etc").unwrap().1.mode, 0o700);
    }

    /// The tar the tar crate writes in one go, as this module wrote it before it streamed.
    fn whole(b: &LayerBuilder) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, entry) in b.entries() {
            let mut header = tar::Header::new_ustar();
            header.set_mode(entry.mode);
            header.set_uid(entry.owner.uid);
            header.set_gid(entry.owner.gid);
            header.set_mtime(b.mtime);
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
