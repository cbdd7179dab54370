//! The image as an OCI image layout directory (`--format oci-dir`).

use std::path::Path;

use anyhow::Result;

use super::Written;
use super::layout::oci_layout;
use super::pending::PendingDir;
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

    pub(crate) fn write(self, artifact: &Artifact, tags: &[ImageRef]) -> Result<Written> {
        let files = oci_layout(artifact, tags)?;
        let path = self.output.path().to_path_buf();
        self.output
            .commit(files.iter().map(|(path, data)| (path.as_str(), data)))?;
        Ok(Written { path })
    }
}
