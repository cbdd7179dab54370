//! The image as an OCI image layout directory (`--format oci-dir`).

use std::path::Path;

use anyhow::Result;

use super::Written;
use super::layout::oci_layout_with;
use super::pending::PendingDir;
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

    pub(crate) fn write(
        self,
        artifact: &Artifact,
        tags: &[ImageRef],
        referrers: &[Referrer],
    ) -> Result<Written> {
        let files = oci_layout_with(artifact, tags, referrers)?;
        let path = self.output.path().to_path_buf();
        self.output
            .commit(files.iter().map(|(path, data)| (path.as_str(), &data[..])))?;
        Ok(Written { path })
    }
}
