//! The image as one tar: an OCI image layout plus Docker's `manifest.json`, the shape
//! `docker save` writes since Docker 25. Docker, podman and skopeo all read it. Docker's
//! classic store loads one platform, so `manifest.json` names this machine's image of an index.

use std::path::Path;

use anyhow::Result;

use super::Written;
use super::layout::{docker_manifest, oci_layout};
use super::pending::PendingFile;
use crate::image::{Artifact, ImageRef, LayerBuilder, Owner, Tar};
use crate::target::Arch;

/// An archive path, claimed.
pub(crate) struct Archive {
    output: PendingFile,
    mtime: u64,
}

impl Archive {
    /// Claims `path`: fails now if it cannot be written. `mtime` stamps the archive's entries.
    pub(crate) fn claim(path: &Path, mtime: u64) -> Result<Archive> {
        Ok(Archive {
            output: PendingFile::create(path)?,
            mtime,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.output.path()
    }

    pub(crate) fn write(self, artifact: &Artifact, tags: &[ImageRef]) -> Result<Written> {
        let archive = render(artifact, tags, self.mtime)?;
        let path = self.output.path().to_path_buf();
        self.output.commit_from(&mut archive.reader())?;
        Ok(Written { path })
    }
}

/// The archive, read (blob by blob) as it is written; deterministic, since the tar is laid out
/// like a layer.
pub(crate) fn render(artifact: &Artifact, tags: &[ImageRef], mtime: u64) -> Result<Tar> {
    let mut tar = LayerBuilder::new(mtime);
    for (path, data) in oci_layout(artifact, tags)? {
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
