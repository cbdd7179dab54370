//! Filesystem layers: the entries of one ([`LayerBuilder`]), sorted and with explicit
//! metadata, and the layer made of them ([`Layer`]): its blob, its diff_id, and its plain tar
//! when it can be read again. The tar itself streams from the entries ([`Tar`]).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail, ensure};
use oci_spec::image::Digest;

use super::blob::Blob;
use super::content::Content;
use super::tar_stream::Tar;

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

/// Extended attributes of an entry: name (`security.capability`) to value.
pub(crate) type Xattrs = BTreeMap<String, Vec<u8>>;

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub kind: EntryKind,
    pub mode: u32,
    pub owner: Owner,
    /// Extended attributes (`security.capability`), sorted by name: PAX records in the tar.
    pub xattrs: Xattrs,
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
                xattrs: Xattrs::new(),
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
        self.file_with_xattrs(path, data, mode, owner, Xattrs::new())
    }

    /// A file with extended attributes, such as a program's `security.capability`.
    pub(crate) fn file_with_xattrs(
        &mut self,
        path: &str,
        data: impl Into<Content>,
        mode: u32,
        owner: Owner,
        xattrs: Xattrs,
    ) -> Result<&mut Self> {
        let entry = Entry {
            kind: EntryKind::File(data.into()),
            mode,
            owner,
            xattrs,
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
            xattrs: Xattrs::new(),
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
                        xattrs: Xattrs::new(),
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
        Tar::of(&self.entries, self.mtime)
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
        use std::io::Read;
        let mut bytes = Vec::new();
        self.finish()?.reader().read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Writes the tar, digests it, and compresses it (gzip, the smallest) into the layer's blob.
    #[cfg(test)]
    pub(crate) fn build(&self, comment: impl Into<String>) -> Result<Layer> {
        let compression = super::compress::Compression::smallest(super::compress::Algorithm::Gzip);
        let tar = self.finish()?;
        let mut bytes = Vec::new();
        let packed = tar.compress(compression, 1, &mut bytes)?;
        let blob = Blob::with_digest(compression.media_type(), packed.digest, bytes.into());
        Ok(Layer::new(blob, packed.diff_id, comment, Some(&tar)))
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
pub(super) mod tests {
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

    /// The mtime of [`sample`]'s entries.
    pub(crate) const SAMPLE_MTIME: u64 = 1_700_000_000;

    /// The same three additions, in order or reversed.
    pub(crate) fn sample(order_reversed: bool) -> LayerBuilder {
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
        let mut b = LayerBuilder::new(SAMPLE_MTIME);
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

    /// As `setcap` leaves it on disk, a PAX record before the entry: GNU tar's and Go's name.
    #[test]
    fn extended_attributes_go_before_their_file_as_pax_records() {
        let mut b = sample(false);
        let value = vec![1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let xattrs = Xattrs::from([("security.capability".to_string(), value.clone())]);
        b.file_with_xattrs("app/web", &b"ELF"[..], 0o755, Owner::ROOT, xattrs)
            .unwrap();
        let tar = b.tar().unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut found = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let records: Vec<(String, Vec<u8>)> = match entry.pax_extensions().unwrap() {
                Some(records) => records
                    .map(|r| {
                        let r = r.unwrap();
                        (r.key().unwrap().to_string(), r.value_bytes().to_vec())
                    })
                    .collect(),
                None => Vec::new(),
            };
            if !records.is_empty() {
                found.push((path, records));
            }
        }
        assert_eq!(
            found,
            [(
                "app/web".to_string(),
                vec![("SCHILY.xattr.security.capability".to_string(), value)]
            )]
        );
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
}
