//! An image in a local tar or OCI directory: a source of `cargo scratchimg index`, and how the
//! tests read back what the file sinks wrote. Nothing in it is trusted. Only what `index.json`
//! and the manifests name is read, each blob once, and only from a regular file (or a regular
//! entry of the tar) of the size its descriptor gives: indexes, manifests and configs into
//! memory, at most [`DOCUMENT_LIMIT`] each; layers streamed, each found to be what its media
//! type and the config's `diff_ids` say ([`check_layer`]) before the image is given back.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifest, MediaType};

use crate::image::{
    Artifact, Blob, Content, DOCUMENT_LIMIT, FilePart, INDEX_LIMIT, Image, Index, LAYERS_LIMIT,
    check_layer, layout_path, parse,
};
use crate::input_file::RegularFile;
use crate::text::one_line;

/// Entries a tar of an image layout may have: a few per blob.
const TAR_ENTRIES_LIMIT: usize = 10_000;

/// The artifact an archive at `path` holds, read back and checked blob by blob.
pub(crate) fn read_archive(path: &Path) -> Result<Artifact> {
    Blobs::new(Files::tar(path)?).artifact()
}

/// The artifact the layout at `path` holds, read back and checked blob by blob.
pub(crate) fn read_oci_dir(path: &Path) -> Result<Artifact> {
    Blobs::new(Files::Dir(path.to_path_buf())).artifact()
}

/// Where the files of a layout are.
enum Files {
    Dir(PathBuf),
    /// A tar, and its entries by name, found by reading its headers alone.
    Tar {
        file: Arc<File>,
        path: PathBuf,
        entries: BTreeMap<String, TarEntry>,
    },
}

/// An entry of a tar: where its bytes are, or what it is when it is not a regular file.
struct TarEntry {
    start: u64,
    len: u64,
    not_a_file: Option<&'static str>,
}

impl Files {
    /// The tar at `path`, its headers read (its data skipped over): refused when it names one
    /// path twice, since which of them a reader takes is up to the reader.
    fn tar(path: &Path) -> Result<Files> {
        let not_a_tar = || format!("{} is not a tar", path.display());
        let file = RegularFile::open(path)
            .with_context(|| format!("could not read {}", path.display()))?
            .into_file();
        let mut entries = BTreeMap::new();
        let mut archive = tar::Archive::new(&file);
        for entry in archive.entries_with_seek().with_context(not_a_tar)? {
            let entry = entry.with_context(not_a_tar)?;
            ensure!(
                entries.len() < TAR_ENTRIES_LIMIT,
                "{} has more than {TAR_ENTRIES_LIMIT} entries: it is not an image layout",
                path.display()
            );
            let name = entry.path().with_context(not_a_tar)?;
            let name = name.to_string_lossy();
            let name = name.trim_start_matches("./").to_string();
            let not_a_file = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => None,
                tar::EntryType::Directory => Some("a folder"),
                tar::EntryType::Symlink => Some("a symlink"),
                tar::EntryType::Link => Some("a hard link"),
                tar::EntryType::GNUSparse => Some("a sparse file"),
                _ => Some("not a regular file"),
            };
            let found = TarEntry {
                start: entry.raw_file_position(),
                len: entry.size(),
                not_a_file,
            };
            if entries.insert(name.clone(), found).is_some() && not_a_file != Some("a folder") {
                bail!(
                    "{} holds {} twice\nhelp: give a tar that cargo scratchimg wrote",
                    path.display(),
                    one_line(&name, 200)
                );
            }
        }
        Ok(Files::Tar {
            file: Arc::new(file),
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The file `name` of the layout, a regular one, whose size must be `len` when given and
    /// at most `limit` anyway.
    fn part(&self, name: &str, len: Option<u64>, limit: u64) -> Result<FilePart> {
        let part = match self {
            Files::Dir(dir) => {
                let path = dir.join(name);
                let file = RegularFile::open(&path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                let len = file.len();
                FilePart::whole(file.into_file(), len, path)
            }
            Files::Tar {
                file,
                path,
                entries,
            } => {
                let entry = entries
                    .get(name)
                    .with_context(|| format!("{} has no {name}", path.display()))?;
                if let Some(what) = entry.not_a_file {
                    bail!("{name} in {} is {what}, not a file", path.display());
                }
                FilePart {
                    file: file.clone(),
                    start: entry.start,
                    len: entry.len,
                    path: path.join(name),
                }
            }
        };
        if let Some(len) = len {
            ensure!(
                part.len == len,
                "{} holds {} bytes, not the {len} its descriptor says",
                part.path.display(),
                part.len
            );
        }
        ensure!(
            part.len <= limit,
            "{} holds {} bytes, more than the {limit} a manifest, index or config may",
            part.path.display(),
            part.len
        );
        Ok(part)
    }

    /// The bytes of the document `name` (`index.json`, a manifest, a config).
    fn document(&self, name: &str, len: Option<u64>) -> Result<Vec<u8>> {
        let part = self.part(name, len, DOCUMENT_LIMIT)?;
        let mut bytes = Vec::with_capacity(part.len as usize);
        part.reader()
            .read_to_end(&mut bytes)
            .with_context(|| format!("could not read {}", part.path.display()))?;
        ensure!(
            bytes.len() as u64 == part.len,
            "{} ended early: was it changed meanwhile?",
            part.path.display()
        );
        Ok(bytes)
    }
}

/// The blobs of a layout, each read once whatever names it how often, and each layer's
/// diff_id once checked.
struct Blobs {
    files: Files,
    read: HashMap<Digest, Blob>,
    checked: HashMap<Digest, Digest>,
}

impl Blobs {
    fn new(files: Files) -> Blobs {
        Blobs {
            files,
            read: HashMap::new(),
            checked: HashMap::new(),
        }
    }

    /// What `index.json` names: an image, or an index whose images are checked, and which
    /// must be the one they make.
    fn artifact(mut self) -> Result<Artifact> {
        let index: ImageIndex = parse(&self.files.document("index.json", None)?, "index.json")?;
        // Attestations are listed beside the image, with their artifactType.
        let images: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| d.artifact_type().is_none())
            .collect();
        let Some(top) = images.first().copied() else {
            bail!("index.json names no image");
        };
        ensure!(
            images.iter().all(|d| d.digest() == top.digest()),
            "index.json names several artifacts"
        );
        match top.media_type() {
            MediaType::ImageManifest => Ok(Artifact::Image(self.image(top)?)),
            MediaType::ImageIndex => {
                let stored = self.document(top)?;
                let nested: ImageIndex =
                    parse(stored.data(), &format!("the index {}", top.digest()))?;
                ensure!(
                    nested.manifests().len() <= INDEX_LIMIT,
                    "the index {} lists {} images, more than the {INDEX_LIMIT} an index of this tool has",
                    top.digest(),
                    nested.manifests().len()
                );
                let images = nested
                    .manifests()
                    .iter()
                    .map(|d| self.image(d))
                    .collect::<Result<_>>()?;
                let index = Index::new(images)?;
                ensure!(
                    index.manifest().digest() == stored.digest(),
                    "the index {} is not the one its images make",
                    stored.digest()
                );
                Ok(Artifact::Index(index))
            }
            other => bail!(
                "index.json names a {}, not an image or index",
                one_line(other.as_ref(), 100)
            ),
        }
    }

    /// The image `descriptor` names, every layer checked.
    fn image(&mut self, descriptor: &Descriptor) -> Result<Image> {
        let manifest_blob = self.document(descriptor)?;
        let what = format!("the manifest {}", descriptor.digest());
        let manifest: ImageManifest = parse(manifest_blob.data(), &what)?;
        ensure!(
            manifest.layers().len() <= LAYERS_LIMIT,
            "{what} lists {} layers, more than the {LAYERS_LIMIT} an image may have",
            manifest.layers().len()
        );
        let config = self.document(manifest.config())?;
        let layers = manifest
            .layers()
            .iter()
            .map(|d| self.layer(d))
            .collect::<Result<_>>()?;
        let image = Image::from_blobs(manifest_blob, config, layers)
            .with_context(|| format!("{what} is not an image of cargo-scratchimg"))?;
        for layer in image.layers() {
            let digest = layer.blob().digest();
            match self.checked.get(digest) {
                Some(diff_id) if diff_id == layer.diff_id() => {}
                Some(_) => bail!("{what} gives layer {digest} two diff_ids"),
                None => {
                    check_layer(layer.blob(), layer.diff_id())?;
                    self.checked.insert(digest.clone(), layer.diff_id().clone());
                }
            }
        }
        Ok(image)
    }

    /// A manifest, index or config, read and checked against its descriptor.
    fn document(&mut self, descriptor: &Descriptor) -> Result<Blob> {
        let digest = descriptor.digest();
        if let Some(blob) = self.read.get(digest) {
            return Ok(blob.clone());
        }
        let path = layout_path(digest);
        let bytes = self.files.document(&path, Some(descriptor.size()))?;
        let blob = Blob::new(descriptor.media_type().clone(), bytes);
        ensure!(blob.digest() == digest, "{path} does not match its digest");
        self.read.insert(digest.clone(), blob.clone());
        Ok(blob)
    }

    /// A layer, streamed from its file when it is read; [`check_layer`] reads it first.
    fn layer(&mut self, descriptor: &Descriptor) -> Result<Blob> {
        let digest = descriptor.digest();
        if let Some(blob) = self.read.get(digest) {
            return Ok(blob.clone());
        }
        let part = self
            .files
            .part(&layout_path(digest), Some(descriptor.size()), u64::MAX)?;
        let blob = Blob::with_digest(
            descriptor.media_type().clone(),
            digest.clone(),
            Content::stream(Arc::new(part)),
        );
        self.read.insert(digest.clone(), blob.clone());
        Ok(blob)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{Value, json};

    use super::*;
    use crate::image::{ImageBuilder, Layer, LayerBuilder, Owner};
    use crate::target::Arch;

    fn layer(content: &'static [u8]) -> Layer {
        let mut files = LayerBuilder::new(0);
        files.file("app/x", content, 0o755, Owner::ROOT).unwrap();
        files.build("x").unwrap()
    }

    /// An OCI layout of one image in `dir`; its manifest as JSON, to change.
    fn layout(dir: &Path) -> Value {
        let image = ImageBuilder::new(Arch::Amd64, jiff::Timestamp::UNIX_EPOCH)
            .layer(layer(b"good"))
            .build()
            .unwrap();
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for blob in std::iter::once(image.manifest()).chain(image.blobs()) {
            put(dir, blob);
        }
        point_at(dir, image.manifest());
        serde_json::from_slice(image.manifest().data()).unwrap()
    }

    fn put(dir: &Path, blob: &Blob) {
        std::fs::write(dir.join(blob.layout_path()), blob.read_all()).unwrap();
    }

    /// `index.json` naming `manifest`.
    fn point_at(dir: &Path, manifest: &Blob) {
        let index = json!({"schemaVersion": 2, "manifests": [manifest.descriptor()]});
        std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    }

    /// Writes `manifest` as the image's manifest.
    fn replace_manifest(dir: &Path, manifest: &Value) {
        let blob = Blob::new(MediaType::ImageManifest, manifest.to_string().into_bytes());
        put(dir, &blob);
        point_at(dir, &blob);
    }

    /// The error reading `dir` gives, at once.
    fn refused(dir: &Path) -> String {
        let started = Instant::now();
        let error = format!("{:#}", read_oci_dir(dir).unwrap_err());
        assert!(started.elapsed().as_secs() < 5, "{error}");
        error
    }

    /// [`refused`], saying `expected`.
    fn assert_refused(dir: &Path, expected: &str) {
        let error = refused(dir);
        assert!(error.contains(expected), "{error}");
    }

    fn layer_path(dir: &Path, manifest: &Value) -> PathBuf {
        let digest: Digest = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        dir.join(layout_path(&digest))
    }

    #[test]
    fn a_layout_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        layout(dir.path());
        let artifact = read_oci_dir(dir.path()).unwrap();
        crate::image::validate(&artifact.images()[0]).unwrap();
    }

    #[test]
    fn blobs_that_are_no_files_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = layout(dir.path());
        let path = layer_path(dir.path(), &manifest);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert_refused(dir.path(), "it is a character device, not a file");
        std::fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        assert_refused(dir.path(), "it is a FIFO (named pipe), not a file");
    }

    #[test]
    fn a_manifest_of_countless_layers_is_refused_before_any_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = layout(dir.path());
        let one = manifest["layers"][0].clone();
        manifest["layers"] = Value::Array(vec![one; 20_000]);
        replace_manifest(dir.path(), &manifest);
        assert_refused(
            dir.path(),
            "lists 20000 layers, more than the 128 an image may have",
        );
    }

    #[test]
    fn substituted_or_mislabelled_layers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = layout(dir.path());
        // Another layer in its place, under its own digest: the config's diff_id tells.
        let other = layer(b"evil");
        put(dir.path(), other.blob());
        let good = manifest.clone();
        manifest["layers"][0] = serde_json::to_value(other.blob().descriptor()).unwrap();
        replace_manifest(dir.path(), &manifest);
        assert_refused(dir.path(), "is not the digest of its layer");
        // The same gzip bytes, said to be zstd.
        let mut mislabelled = good.clone();
        mislabelled["layers"][0]["mediaType"] =
            json!("application/vnd.oci.image.layer.v1.tar+zstd");
        replace_manifest(dir.path(), &mislabelled);
        assert_refused(
            dir.path(),
            "is labelled application/vnd.oci.image.layer.v1.tar+zstd but holds gzip data",
        );
        // A blob whose size is not its descriptor's.
        let path = layer_path(dir.path(), &good);
        replace_manifest(dir.path(), &good);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&bytes.clone());
        std::fs::write(&path, bytes).unwrap();
        assert_refused(dir.path(), "not the");
    }

    #[test]
    fn tars_with_a_path_twice_are_refused_and_unnamed_entries_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("layout");
        layout(&root);
        let tar = dir.path().join("image.tar");
        let status = std::process::Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(&root)
            .args(["oci-layout", "index.json", "blobs"])
            .status()
            .unwrap();
        assert!(status.success());
        // A sparse entry of 7 GiB that nothing names: its headers are read, its data skipped.
        let sparse = root.join("big");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(7 << 30)
            .unwrap();
        let status = std::process::Command::new("tar")
            .args(["--sparse", "-rf"])
            .arg(&tar)
            .arg("-C")
            .arg(&root)
            .arg("big")
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        read_archive(&tar).unwrap();
        assert!(started.elapsed().as_secs() < 5);
        // index.json a second time, last: which one a reader takes is up to it.
        let status = std::process::Command::new("tar")
            .arg("-rf")
            .arg(&tar)
            .arg("-C")
            .arg(&root)
            .arg("index.json")
            .status()
            .unwrap();
        assert!(status.success());
        let error = format!("{:#}", read_archive(&tar).unwrap_err());
        assert_eq!(
            error,
            format!(
                "{} holds index.json twice\nhelp: give a tar that cargo scratchimg wrote",
                tar.display()
            )
        );
    }
}
