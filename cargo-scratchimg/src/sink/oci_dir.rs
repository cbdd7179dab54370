//! The image as an OCI image layout directory (`--format oci-dir`).

use std::path::Path;

use anyhow::Result;

use super::Sink;
use super::layout::oci_layout;
use super::pending::PendingDir;
use crate::image::{Artifact, ImageRef};

pub struct OciDirSink {
    output: Option<PendingDir>,
}

impl OciDirSink {
    pub fn create(path: &Path) -> Result<OciDirSink> {
        Ok(OciDirSink {
            output: Some(PendingDir::create(path)?),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.output.as_ref().map(PendingDir::path)
    }
}

impl Sink for OciDirSink {
    fn write(&mut self, artifact: &Artifact, tags: &[ImageRef]) -> Result<()> {
        let files = oci_layout(artifact, tags)?;
        let output = self
            .output
            .take()
            .expect("an OCI directory sink writes once");
        output.commit(files.iter().map(|(path, data)| (path.as_str(), &data[..])))
    }
}
