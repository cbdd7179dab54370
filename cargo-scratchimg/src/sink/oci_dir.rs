//! The image as an OCI image layout directory (`--format oci-dir`).

use std::path::Path;

use anyhow::Result;

use super::oci_layout::oci_layout;
use super::staging::{PendingDir, Staged};
use super::written::WrittenFiles;
use crate::attest::Referrer;
use crate::image::{Artifact, ImageRef};

/// An OCI layout directory, claimed.
pub(crate) struct OciDir {
    output: PendingDir,
}

impl OciDir {
    pub(crate) fn claim(path: &Path) -> Result<OciDir> {
        Ok(OciDir {
            output: PendingDir::create(path)?,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.output.path()
    }

    /// Writes the layout beside its path, to be committed with the run's other outputs,
    /// unless the directory there holds it already.
    pub(crate) fn stage(
        self,
        artifact: &Artifact,
        tags: &[ImageRef],
        referrers: &[Referrer],
        written: &WrittenFiles,
    ) -> Result<Staged> {
        let files = oci_layout(artifact, tags, referrers)?;
        self.output.stage_unless_held(&files, written)
    }
}
