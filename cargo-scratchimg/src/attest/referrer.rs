//! Attestations as OCI 1.1 artifacts: image manifests with an `artifactType`, the empty config,
//! the attestation as layers, and `subject` naming the image they are about; and the manifest
//! cosign keeps its signatures in (`sha256-<hex>.sig`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use oci_spec::image::{Descriptor, MediaType};
use serde_json::{Value, json};

use crate::image::{Blob, json as canonical};
use crate::outcome::ReferrerSummary;
use crate::sign::cosign;

pub(crate) const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Annotations every tool reads: what a layer's file is called, and when it was made.
pub(crate) const TITLE: &str = "org.opencontainers.image.title";
pub(crate) const CREATED: &str = "org.opencontainers.image.created";
/// The predicate type of a layer holding an in-toto statement, as Docker's attestations say it.
pub(crate) const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// What a Sigstore bundle referrer holds, as cosign's bundle spec annotates it: `dsse-envelope`
/// or `message-signature`, and the predicate type of the statement in its envelope.
pub(crate) const BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
pub(crate) const BUNDLE_PREDICATE_TYPE: &str = "dev.sigstore.bundle.predicateType";

/// The empty config of artifacts: `{}`.
pub(crate) fn empty_config() -> Blob {
    Blob::new(MediaType::Other(EMPTY_MEDIA_TYPE.into()), b"{}".to_vec())
}

/// One layer of an artifact: its bytes, media type and annotations.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub blob: Blob,
    pub annotations: BTreeMap<String, String>,
}

impl Part {
    pub(crate) fn new(media_type: &str, bytes: Vec<u8>, title: &str) -> Part {
        Part {
            blob: Blob::new(MediaType::Other(media_type.into()), bytes),
            annotations: [(TITLE.to_string(), title.to_string())].into(),
        }
    }

    pub(crate) fn annotate(mut self, key: &str, value: &str) -> Part {
        self.annotations.insert(key.into(), value.into());
        self
    }
}

/// An artifact that refers to an image: its manifest and the blobs it names.
#[derive(Debug, Clone)]
pub(crate) struct Referrer {
    pub artifact_type: String,
    pub manifest: Blob,
    /// The empty config and the layers.
    pub blobs: Vec<Blob>,
    pub annotations: BTreeMap<String, String>,
    /// The digest of the image (or index) it refers to.
    pub subject: oci_spec::image::Digest,
}

fn descriptor_json(descriptor: &Descriptor) -> Value {
    json!({
        "mediaType": descriptor.media_type().to_string(),
        "digest": descriptor.digest().to_string(),
        "size": descriptor.size(),
    })
}

impl Referrer {
    /// An artifact of `artifact_type` holding `parts`, about `subject`.
    pub(crate) fn new(
        artifact_type: &str,
        parts: Vec<Part>,
        subject: &Descriptor,
        annotations: BTreeMap<String, String>,
    ) -> Result<Referrer> {
        let config = empty_config();
        let layers: Vec<Value> = parts
            .iter()
            .map(|part| {
                let mut layer = descriptor_json(part.blob.descriptor());
                if !part.annotations.is_empty() {
                    layer["annotations"] = json!(part.annotations);
                }
                layer
            })
            .collect();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": artifact_type,
            "config": descriptor_json(config.descriptor()),
            "layers": layers,
            "subject": descriptor_json(subject),
        });
        if !annotations.is_empty() {
            manifest["annotations"] = json!(annotations);
        }
        let manifest = Blob::new(
            MediaType::ImageManifest,
            canonical::to_vec(&manifest).context("could not encode an artifact manifest")?,
        );
        let mut blobs = vec![config];
        for part in parts {
            if !blobs.iter().any(|b| b.digest() == part.blob.digest()) {
                blobs.push(part.blob);
            }
        }
        Ok(Referrer {
            artifact_type: artifact_type.to_string(),
            manifest,
            blobs,
            annotations,
            subject: subject.digest().clone(),
        })
    }

    /// Whether it is an image signature (a bundle of cosign's signing predicate).
    pub(crate) fn is_signature(&self) -> bool {
        self.annotations
            .get(BUNDLE_PREDICATE_TYPE)
            .map(String::as_str)
            == Some(cosign::SIGN_PREDICATE_TYPE)
    }

    /// What it holds, for the run's record: `signature`, `provenance` or `sbom`, by its
    /// bundle's predicate type, else by its artifact type (an in-toto statement here is always
    /// the provenance: SBOM statements go in artifacts of the SBOM's type).
    pub(crate) fn kind(&self) -> &'static str {
        let predicate = self
            .annotations
            .get(BUNDLE_PREDICATE_TYPE)
            .map(String::as_str);
        match predicate {
            _ if self.is_signature() => "signature",
            Some(crate::attest::slsa::PREDICATE_TYPE) => "provenance",
            Some(_) => "sbom",
            None if self.artifact_type == crate::attest::statement::MEDIA_TYPE => "provenance",
            None => "sbom",
        }
    }

    /// What the run's outcome says of it.
    pub(crate) fn summary(&self) -> ReferrerSummary {
        ReferrerSummary {
            digest: self.manifest.digest().to_string(),
            kind: self.kind(),
            artifact_type: self.artifact_type.clone(),
            subject: self.subject.to_string(),
        }
    }

    /// Its entry in a referrers list: the manifest's descriptor with its `artifactType` and
    /// annotations, as the referrers API gives them.
    pub(crate) fn descriptor(&self) -> Value {
        let mut descriptor = descriptor_json(self.manifest.descriptor());
        descriptor["artifactType"] = json!(self.artifact_type);
        if !self.annotations.is_empty() {
            descriptor["annotations"] = json!(self.annotations);
        }
        descriptor
    }
}

/// The tag cosign keeps an image's signatures under: `sha256-<hex>.sig`.
pub(crate) fn cosign_tag(digest: &oci_spec::image::Digest) -> String {
    format!("{}.sig", crate::registry::referrers::fallback_tag(digest))
}

/// cosign's signature manifest with `payload` signed as `signature` (base64) added to what the
/// tag held before (`existing`, other signers' layers kept), as cosign writes it: an image
/// whose layers are the signed payloads, each with its signature as an annotation. `None` when
/// `existing` already holds this very signature.
pub(crate) fn cosign_manifest(
    existing: Option<&[u8]>,
    payload: &Blob,
    signature: &str,
) -> Result<Option<(Blob, Vec<Blob>)>> {
    let mut layers: Vec<Value> = match existing {
        Some(bytes) => {
            let manifest: Value = serde_json::from_slice(bytes)
                .context("the signature tag holds something that is not JSON")?;
            manifest["layers"].as_array().cloned().unwrap_or_default()
        }
        None => Vec::new(),
    };
    let ours = layers.iter().any(|layer| {
        layer["digest"] == payload.digest().to_string()
            && layer["annotations"][cosign::SIGNATURE_ANNOTATION] == signature
    });
    if ours {
        return Ok(None);
    }
    let mut layer = descriptor_json(payload.descriptor());
    layer["annotations"] = json!({ cosign::SIGNATURE_ANNOTATION: signature });
    layers.push(layer);
    // The config lists the layers' digests as diff_ids, as cosign's does.
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{ "created": "0001-01-01T00:00:00Z" }],
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = Blob::new(MediaType::ImageConfig, canonical::to_vec(&config)?);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor_json(config.descriptor()),
        "layers": layers,
    });
    let manifest = Blob::new(MediaType::ImageManifest, canonical::to_vec(&manifest)?);
    Ok(Some((manifest, vec![config, payload.clone()])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_name_their_subject_and_type() {
        let image = Blob::new(MediaType::ImageManifest, b"{\"x\":1}".to_vec());
        let part = Part::new("application/spdx+json", b"{}".to_vec(), "hello.spdx.json");
        let referrer = Referrer::new(
            "application/spdx+json",
            vec![part],
            image.descriptor(),
            [(CREATED.to_string(), "2024-01-01T00:00:00Z".to_string())].into(),
        )
        .unwrap();
        let manifest: Value = serde_json::from_slice(referrer.manifest.data()).unwrap();
        assert_eq!(manifest["artifactType"], "application/spdx+json");
        assert_eq!(manifest["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            manifest["config"]["digest"],
            empty_config().digest().to_string()
        );
        assert_eq!(manifest["subject"]["digest"], image.digest().to_string());
        assert_eq!(
            manifest["layers"][0]["annotations"][TITLE],
            "hello.spdx.json"
        );
        // `{}` is both the config and the layer: one blob.
        assert_eq!(referrer.blobs.len(), 1);
        let descriptor = referrer.descriptor();
        assert_eq!(descriptor["artifactType"], "application/spdx+json");
        assert_eq!(descriptor["annotations"][CREATED], "2024-01-01T00:00:00Z");
        assert_eq!(descriptor["digest"], referrer.manifest.digest().to_string());
    }

    #[test]
    fn cosign_signatures_are_added_once_beside_others() {
        let payload = Blob::new(
            MediaType::Other(cosign::PAYLOAD_MEDIA_TYPE.into()),
            b"p".to_vec(),
        );
        let (first, blobs) = cosign_manifest(None, &payload, "c2ln").unwrap().unwrap();
        assert_eq!(blobs.len(), 2);
        assert!(
            cosign_manifest(Some(first.data()), &payload, "c2ln")
                .unwrap()
                .is_none()
        );
        let (both, _) = cosign_manifest(Some(first.data()), &payload, "b3RoZXI=")
            .unwrap()
            .unwrap();
        let both: Value = serde_json::from_slice(both.data()).unwrap();
        assert_eq!(both["layers"].as_array().unwrap().len(), 2);
        assert_eq!(
            both["layers"][0]["annotations"][cosign::SIGNATURE_ANNOTATION],
            "c2ln"
        );
    }
}
