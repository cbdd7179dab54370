//! Reading back what a registry holds: manifests by tag or digest, and blobs, each checked
//! against its digest and read within a bound.

use anyhow::{Result, ensure};
use oci_spec::image::Digest;
use serde_json::Value;

use super::session::Session;
use crate::image::sha256;

/// What a manifest GET accepts: OCI and Docker images and indexes.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
/// Manifests and referrer lists are small; 4 MiB is what registries themselves allow.
pub(super) const MANIFEST_LIMIT: u64 = crate::image::DOCUMENT_LIMIT;

/// A manifest as the registry holds it.
#[derive(Debug, Clone)]
pub(crate) struct Pulled {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

impl Session<'_> {
    /// The manifest under `reference` (a tag or a digest); `None` when there is none. One
    /// fetched by digest is checked against it.
    pub(crate) fn get_manifest(&self, reference: &str) -> Result<Option<Pulled>> {
        let (status, content_type, bytes) = self.fetch(
            "GET of a manifest",
            &format!("manifests/{reference}"),
            MANIFEST_ACCEPT,
            &[200, 404],
            MANIFEST_LIMIT,
        )?;
        if status == 404 {
            return Ok(None);
        }
        let digest = sha256(&bytes);
        if reference.contains(':') {
            ensure!(
                digest.to_string() == reference,
                "registry sent a manifest of digest {digest} for {reference}"
            );
        }
        let media_type = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .or(content_type)
            .unwrap_or_default();
        Ok(Some(Pulled {
            media_type,
            bytes,
            digest,
        }))
    }

    /// The blob `digest`, checked against it; at most `limit` bytes.
    pub(crate) fn get_blob(&self, digest: &str, limit: u64) -> Result<Vec<u8>> {
        let (_, _, bytes) = self.fetch(
            "GET of a blob",
            &format!("blobs/{digest}"),
            "*/*",
            &[200],
            limit,
        )?;
        ensure!(
            sha256(&bytes).to_string() == digest,
            "registry sent a blob that is not {digest}"
        );
        Ok(bytes)
    }
}
