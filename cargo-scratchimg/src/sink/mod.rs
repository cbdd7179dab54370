//! Sinks write a finished [`Artifact`] (an image, or an index of images) and say what they
//! wrote: a tar ([`Archive`]), an OCI layout directory ([`OciDir`]), a container engine
//! ([`load`]), registries ([`push`]). They never build, print summaries or keep caches; a sink
//! that writes once takes `self`.

mod archive;
mod daemon;
mod layout;
mod oci_dir;
mod pending;
#[cfg(test)]
pub(crate) mod read;
mod registry;

use std::path::{Path, PathBuf};

use anyhow::Result;

pub(crate) use archive::Archive;
pub use daemon::Engine;
pub(crate) use daemon::{Answered, load};
pub(crate) use oci_dir::OciDir;
pub(crate) use pending::PendingFile;
pub(crate) use registry::{Early, PushError, Uploaded, push};

use crate::image::{Artifact, ImageRef};

/// What `--format` writes to the output path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// One tar holding an OCI layout and Docker's `manifest.json`, as `docker save` writes.
    #[default]
    Archive,
    /// An OCI image layout directory.
    OciDir,
}

impl Format {
    /// The name `--message-format json` gives it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Archive => "archive",
            Format::OciDir => "oci-dir",
        }
    }
}

/// An output path claimed before the build, written after it.
pub(crate) enum Destination {
    Archive(Archive),
    OciDir(OciDir),
}

/// What a file sink wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub path: PathBuf,
}

impl Destination {
    /// Claims `path` for `format`: fails now if it cannot be written. `mtime` stamps the
    /// archive's entries.
    pub(crate) fn claim(path: &Path, format: Format, mtime: u64) -> Result<Destination> {
        Ok(match format {
            Format::Archive => Destination::Archive(Archive::claim(path, mtime)?),
            Format::OciDir => Destination::OciDir(OciDir::claim(path)?),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        match self {
            Destination::Archive(archive) => archive.path(),
            Destination::OciDir(dir) => dir.path(),
        }
    }

    pub(crate) fn write(self, artifact: &Artifact, tags: &[ImageRef]) -> Result<Written> {
        match self {
            Destination::Archive(archive) => archive.write(artifact, tags),
            Destination::OciDir(dir) => dir.write(artifact, tags),
        }
    }
}
