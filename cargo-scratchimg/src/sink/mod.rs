//! Sinks write a finished [`Artifact`] (an image, or an index of images) and say what they
//! wrote: a tar ([`Archive`]), an OCI layout directory ([`OciDir`]), a container engine
//! ([`load`]), registries ([`push`]). They never build, print summaries or keep caches; a sink
//! that writes once takes `self`.

mod archive;
mod attach;
mod containerd;
mod daemon;
mod merge;
mod oci_dir;
mod oci_layout;
mod output_dir;
mod registry;
mod staging;
mod uploads;
mod written;

use std::path::Path;

use anyhow::Result;

pub(crate) use archive::Archive;
pub(crate) use attach::AttachRequest;
pub(crate) use containerd::Containerd;
pub use daemon::Engine;
pub(crate) use daemon::{Answered, load};
pub(crate) use merge::{BlobSource, SourceImage, push_index};
pub(crate) use oci_dir::OciDir;
pub(crate) use registry::{PushError, push};
pub(crate) use staging::{PendingFile, Staged, commit_all};
pub(crate) use uploads::{ImageUploads, Uploads};
pub(crate) use written::WrittenFiles;

use crate::attest::Referrer;
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

    /// Writes the image, and `referrers` (its attestations) in the layout, beside the path;
    /// [`commit_all`] puts it in place with the run's other outputs. What is there is left as
    /// it is when it holds the same bytes.
    pub(crate) fn stage(
        self,
        artifact: &Artifact,
        tags: &[ImageRef],
        referrers: &[Referrer],
        written: &WrittenFiles,
    ) -> Result<Staged> {
        match self {
            Destination::Archive(archive) => archive.stage(artifact, tags, referrers, written),
            Destination::OciDir(dir) => dir.stage(artifact, tags, referrers, written),
        }
    }
}
