//! What a run produced for one image: the value `--message-format json` prints.

use std::path::PathBuf;

use serde::Serialize;

use crate::image::{Artifact, ImageRef};
use crate::target::Arch;

/// One image's (or index's) result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The file or directory written; `None` when the image was only pushed.
    pub path: Option<PathBuf>,
    /// `archive` or `oci-dir`.
    pub format: &'static str,
    /// The manifest digest: of the image, or of the index.
    pub digest: String,
    pub config_digest: String,
    pub tags: Vec<String>,
    pub platform: String,
    pub layers: Vec<LayerSummary>,
    /// Compressed size of the configs and layers, each blob counted once.
    pub size: u64,
    /// How the layers are compressed, `ALGORITHM:LEVEL` (`gzip:3`, `zstd:3`); `null` when
    /// they were only loaded into an engine, uncompressed.
    pub compression: Option<String>,
    /// One entry per platform; `platform`, `config_digest` and `layers` above describe the
    /// one for this machine (or the first).
    pub images: Vec<ImageSummary>,
    pub loaded_into: Option<String>,
    /// `REF@sha256:…` of each tag pushed.
    pub pushed: Vec<String>,
    /// Every file of the image: the output, its provenance, its SBOM documents; written, or
    /// left as it is because it already held those bytes.
    pub files: Vec<PathBuf>,
    /// The SBOMs, provenance and signatures next to the image, where they went: to a registry
    /// that took them, or into the output.
    pub referrers: Vec<ReferrerSummary>,
}

/// One artifact next to an image: its manifest's digest, what it is, and what it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferrerSummary {
    pub digest: String,
    /// `sbom`, `provenance` or `signature`.
    pub kind: &'static str,
    /// The manifest's `artifactType`, e.g. `application/spdx+json`.
    pub artifact_type: String,
    /// The digest of the image, index or platform image it refers to.
    pub subject: String,
}

/// What `--metadata-file` holds: every image of the run as `--message-format json` prints it,
/// and, across them, every reference pushed and every file written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub images: Vec<Outcome>,
    pub pushed: Vec<String>,
    pub files: Vec<PathBuf>,
}

impl RunRecord {
    pub(crate) fn of(outcomes: &[Outcome]) -> RunRecord {
        RunRecord {
            images: outcomes.to_vec(),
            pushed: outcomes.iter().flat_map(|o| o.pushed.clone()).collect(),
            files: outcomes.iter().flat_map(|o| o.files.clone()).collect(),
        }
    }
}

/// One platform's image of an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    pub platform: String,
    pub digest: String,
    pub config_digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerSummary {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub comment: String,
}

impl Outcome {
    /// The outcome of `artifact` under `tags`, before anything is written.
    pub(crate) fn of(artifact: &Artifact, tags: &[ImageRef], format: &'static str) -> Outcome {
        let images = artifact.images();
        let primary = artifact.image_for(Arch::host()).unwrap_or(&images[0]);
        let mut blobs: Vec<_> = images
            .iter()
            .flat_map(|i| i.blobs().map(|b| (b.digest().to_string(), b.size())))
            .collect();
        blobs.sort();
        blobs.dedup();
        Outcome {
            path: None,
            format,
            digest: artifact.digest().to_string(),
            config_digest: primary.config().digest().to_string(),
            tags: tags.iter().map(ImageRef::familiar).collect(),
            platform: primary.arch().platform(),
            layers: primary
                .layers()
                .iter()
                .map(|l| LayerSummary {
                    digest: l.blob().digest().to_string(),
                    diff_id: l.diff_id().to_string(),
                    size: l.blob().size(),
                    comment: l.comment().to_string(),
                })
                .collect(),
            size: blobs.iter().map(|(_, size)| size).sum(),
            compression: None,
            images: images
                .iter()
                .map(|i| ImageSummary {
                    platform: i.arch().platform(),
                    digest: i.digest().to_string(),
                    config_digest: i.config().digest().to_string(),
                    size: i.compressed_size(),
                })
                .collect(),
            loaded_into: None,
            pushed: Vec::new(),
            files: Vec::new(),
            referrers: Vec::new(),
        }
    }
}
