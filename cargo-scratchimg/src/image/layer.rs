//! Filesystem layers: a deterministic tar, its diff_id, and its gzip blob.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result, bail, ensure};
use flate2::{Compression, GzBuilder};
use oci_spec::image::{Digest, MediaType};

use super::blob::{Blob, sha256};

/// Numeric owner of an entry; names are resolved by the image's /etc/passwd, not the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Owner {
    pub(crate) const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryKind<'a> {
    Dir,
    File(Cow<'a, [u8]>),
    /// A hard link to an earlier regular file in the same layer (a path like our own keys).
    Hardlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub kind: EntryKind<'a>,
    pub mode: u32,
    pub owner: Owner,
    /// Added only because a child needed a parent; an explicit `dir` replaces it.
    implied: bool,
}

/// Collects the files of one layer. Entries are kept sorted by path and every parent directory
/// is present exactly once, so the tar is the same whatever order files were added in.
#[derive(Debug, Clone)]
pub(crate) struct LayerBuilder<'a> {
    mtime: u64,
    entries: BTreeMap<String, Entry<'a>>,
}

/// One filesystem layer of an image: the compressed blob, and the digest of the plain tar.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    blob: Blob,
    diff_id: Digest,
    comment: String,
}

impl<'a> LayerBuilder<'a> {
    /// Every entry gets `mtime` (seconds since the epoch), so the bytes do not depend on when or
    /// where the build ran.
    pub(crate) fn new(mtime: u64) -> LayerBuilder<'a> {
        LayerBuilder {
            mtime,
            entries: BTreeMap::new(),
        }
    }

    pub(crate) fn dir(&mut self, path: &str, mode: u32, owner: Owner) -> Result<&mut Self> {
        let path = normalize(path)?;
        if let Some(existing) = self.entries.get(&path)
            && !(existing.implied || existing.kind == EntryKind::Dir)
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
        data: impl Into<Cow<'a, [u8]>>,
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

    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &Entry<'a>)> {
        self.entries
            .iter()
            .map(|(path, entry)| (path.as_str(), entry))
    }

    fn insert_new(&mut self, path: &str, entry: Entry<'a>) -> Result<&mut Self> {
        let path = normalize(path)?;
        ensure!(
            !self.entries.contains_key(&path),
            "`/{path}` is added to the image twice"
        );
        self.insert(path, entry)
    }

    fn insert(&mut self, path: String, entry: Entry<'a>) -> Result<&mut Self> {
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
    /// links after their targets, every header field set explicitly.
    pub(crate) fn tar(&self) -> Result<Vec<u8>> {
        let mut tar = tar::Builder::new(Vec::new());
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
            match &entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    tar.append_data(&mut header, format!("{path}/"), &[][..])
                        .with_context(context)?;
                }
                EntryKind::File(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len() as u64);
                    tar.append_data(&mut header, path, &data[..])
                        .with_context(context)?;
                }
                EntryKind::Hardlink(target) => {
                    ensure!(
                        target < path,
                        "hard link `/{path}` sorts before its target `/{target}`"
                    );
                    header.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut header, path, target)
                        .with_context(context)?;
                }
            }
        }
        tar.into_inner().context("could not finish a layer tar")
    }

    /// Writes the tar, digests it, and compresses it into the layer's blob.
    #[cfg(test)]
    pub(crate) fn build(&self, comment: impl Into<String>) -> Result<Layer> {
        Layer::compress(&self.tar()?, comment)
    }
}

impl Layer {
    /// A layer from its uncompressed tar.
    pub(crate) fn compress(tar: &[u8], comment: impl Into<String>) -> Result<Layer> {
        let gzip = gzip(tar).context("could not compress a layer")?;
        Ok(Layer::from_compressed(gzip, sha256(tar), comment))
    }

    /// A layer whose gzip blob was made earlier from a tar with digest `diff_id`.
    pub(crate) fn from_compressed(
        gzip: Vec<u8>,
        diff_id: Digest,
        comment: impl Into<String>,
    ) -> Layer {
        Layer {
            blob: Blob::new(MediaType::ImageLayerGzip, gzip),
            diff_id,
            comment: comment.into(),
        }
    }

    /// A layer from a blob read back, whose diff_id the image's config gives.
    pub(crate) fn from_blob(blob: Blob, diff_id: Digest, comment: impl Into<String>) -> Layer {
        Layer {
            blob,
            diff_id,
            comment: comment.into(),
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
}

/// gzip with a fixed header: no file name, mtime 0, OS "unknown", as Go's compress/gzip writes.
pub(super) fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(data.len() / 2), Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
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
    fn sample(order_reversed: bool) -> LayerBuilder<'static> {
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
        assert_eq!(a.blob().data(), b.blob().data());
        assert_eq!(a.diff_id(), b.diff_id());
    }

    #[test]
    fn gzip_header_is_fixed() {
        let layer = sample(false).build("x").unwrap();
        let gz = layer.blob().data();
        // magic, deflate, no flags, mtime 0, best compression, OS unknown
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(&sha256(&tar), layer.diff_id());
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
