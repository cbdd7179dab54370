//! The image as one tar: an OCI image layout plus Docker's `manifest.json`, the shape
//! `docker save` writes since Docker 25. Docker, podman and skopeo all read it. Docker's
//! classic store loads one platform, so `manifest.json` names this machine's image of an index.

use std::path::Path;

use anyhow::Result;

use super::Sink;
use super::layout::{docker_manifest, oci_layout};
use super::pending::PendingFile;
use crate::image::{Artifact, ImageRef, LayerBuilder, Owner};
use crate::target::Arch;

pub struct ArchiveSink {
    output: Option<PendingFile>,
    mtime: u64,
}

impl ArchiveSink {
    /// Claims `path`: fails now if it cannot be written. `mtime` stamps the archive's entries.
    pub fn create(path: &Path, mtime: u64) -> Result<ArchiveSink> {
        Ok(ArchiveSink {
            output: Some(PendingFile::create(path)?),
            mtime,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.output.as_ref().map(PendingFile::path)
    }
}

/// The archive's bytes; deterministic, since the tar is laid out like a layer.
pub fn render(artifact: &Artifact, tags: &[ImageRef], mtime: u64) -> Result<Vec<u8>> {
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
    tar.tar()
}

impl Sink for ArchiveSink {
    fn write(&mut self, artifact: &Artifact, tags: &[ImageRef]) -> Result<()> {
        let bytes = render(artifact, tags, self.mtime)?;
        let output = self.output.take().expect("an archive sink writes once");
        output.commit(&bytes)
    }
}
