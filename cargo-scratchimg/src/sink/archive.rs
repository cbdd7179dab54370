//! The image as one tar: an OCI image layout plus Docker's `manifest.json`, the shape
//! `docker save` writes since Docker 25. Docker, podman and skopeo all read it. Docker's
//! classic store loads one platform, so `manifest.json` names this machine's image of an index.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::oci_layout::{docker_manifest, oci_layout};
use super::staging::{PendingFile, Staged};
use super::written::WrittenFiles;
use crate::attest::Referrer;
use crate::image::{Artifact, Content, ImageRef, LayerBuilder, Owner, Tar};
use crate::target::Arch;

/// An archive path, claimed.
pub(crate) struct Archive {
    output: PendingFile,
    mtime: u64,
}

impl Archive {
    /// Claims `path`: fails now if it cannot be written, or holds something other than an
    /// image archive. `mtime` stamps the archive's entries.
    pub(crate) fn claim(path: &Path, mtime: u64) -> Result<Archive> {
        if path.is_dir() {
            bail!(
                "output path {} is a directory\nhelp: give a file with -o, e.g. -o {}",
                path.display(),
                path.join("image.tar").display()
            );
        }
        check_replaceable(path)?;
        Ok(Archive {
            output: PendingFile::create(path)?,
            mtime,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.output.path()
    }

    /// Writes the archive beside its path, to be committed with the run's other outputs,
    /// unless the file there holds it already. Its key names its bytes: the layout's files
    /// are the blobs, named by their digests, and small ones.
    pub(crate) fn stage(
        self,
        artifact: &Artifact,
        tags: &[ImageRef],
        referrers: &[Referrer],
        written: &WrittenFiles,
    ) -> Result<Staged> {
        let archive = render_with(artifact, tags, referrers, self.mtime)?;
        let context = || format!("could not write {}", self.output.path().display());
        let key = archive.key().with_context(context)?;
        let content = Content::stream(Arc::new(archive));
        self.output.stage_unless_held(&content, &key, written)
    }
}

/// The names an image archive this tool writes can begin with: its entries are sorted, so
/// `blobs/` comes first; `docker save` and other layouts start with one of the others.
const IMAGE_ENTRIES: [&str; 4] = ["blobs/", "index.json", "manifest.json", "oci-layout"];

/// Refuses to replace an existing file at `path` that is not an image this tool could have
/// written: one that is not a tar, or whose first entry is not the start of an OCI layout or a
/// Docker archive (`-o Cargo.toml`, `-o src/main.rs`). An empty file is taken, as `mktemp`
/// makes. Only the first header is read.
fn check_replaceable(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if !meta.is_file() || meta.len() == 0 {
        return Ok(());
    }
    let file = std::fs::File::open(path)
        .with_context(|| format!("could not read the existing output {}", path.display()))?;
    // The tar crate checks the header's checksum: a file that merely starts with a name is
    // not taken for a tar.
    let first = tar::Archive::new(file.take(512))
        .entries()
        .ok()
        .and_then(|mut entries| entries.next()?.ok())
        .and_then(|entry| Some(entry.path().ok()?.to_string_lossy().into_owned()));
    if first.is_some_and(|name| {
        IMAGE_ENTRIES
            .iter()
            .any(|ours| name == ours.trim_end_matches('/') || name.starts_with(ours))
    }) {
        return Ok(());
    }
    bail!(
        "output path {} exists and is not an image archive; not replacing it\n\
         help: choose another path with -o, or remove the file if it is yours to lose",
        path.display()
    )
}

/// The archive, read (blob by blob) as it is written; deterministic, since the tar is laid out
/// like a layer.
pub(crate) fn render(artifact: &Artifact, tags: &[ImageRef], mtime: u64) -> Result<Tar> {
    render_with(artifact, tags, &[], mtime)
}

/// [`render`] with the image's attestations in its OCI layout.
pub(crate) fn render_with(
    artifact: &Artifact,
    tags: &[ImageRef],
    referrers: &[Referrer],
    mtime: u64,
) -> Result<Tar> {
    let mut tar = LayerBuilder::new(mtime);
    for (path, data) in oci_layout(artifact, tags, referrers)? {
        tar.file(&path, data, 0o644, Owner::ROOT)?;
    }
    if let Some(image) = artifact.image_for(Arch::host()) {
        tar.file(
            "manifest.json",
            docker_manifest(image, tags)?,
            0o644,
            Owner::ROOT,
        )?;
    }
    tar.finish()
}
