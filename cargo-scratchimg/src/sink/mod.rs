//! Sinks write a finished [`Artifact`] (an image, or an index of images): into a tar, an OCI
//! layout directory, a container engine, or registries. They never build; it arrives
//! complete, with every digest computed.

mod archive;
mod daemon;
mod layout;
mod oci_dir;
mod pending;
mod registry;

use anyhow::Result;

use crate::image::{Artifact, ImageRef};
pub use archive::ArchiveSink;
pub use daemon::{DaemonSink, Engine};
pub use layout::{docker_manifest, oci_layout};
pub use oci_dir::OciDirSink;
pub use pending::PendingFile;
pub use registry::RegistrySink;

/// Somewhere an image or index can be written to, under some tags.
pub trait Sink {
    fn write(&mut self, artifact: &Artifact, tags: &[ImageRef]) -> Result<()>;
}

/// What `--format` writes to the output path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// One tar holding an OCI layout and Docker's `manifest.json`, as `docker save` writes.
    #[default]
    Archive,
    /// An OCI image layout directory.
    OciDir,
}
