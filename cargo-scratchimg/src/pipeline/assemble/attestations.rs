//! An image's provenance statement, and the attestations `--attach` puts next to it (signed
//! with `--sign-key`), as values the sinks write.

use anyhow::Result;

use super::SbomDocument;
use crate::attest::{self, Documents, Referrer, SbomFile};
use crate::image::Artifact;
use crate::pipeline::{ImagePlan, Plan};
use crate::sign::{Signer, dsse};

/// An image's attestations.
pub(crate) struct Attestations {
    /// What goes beside the output as `<output>.intoto.json`: the provenance statement, or its
    /// DSSE envelope when signed.
    pub provenance_file: Vec<u8>,
    /// Next to the image in registries (and in the OCI layout when `--attach` says so).
    pub referrers: Vec<Referrer>,
}

/// `image`'s provenance and the artifacts that go next to it.
pub(super) fn attest(
    plan: &Plan,
    image: &ImagePlan,
    artifact: &Artifact,
    sboms: &[SbomDocument],
) -> Result<Attestations> {
    let provenance = attest::provenance(artifact, &image.name, &image.facts);
    let provenance_file = match &plan.sign_key {
        Some(key) => dsse::seal(dsse::IN_TOTO, &provenance, key),
        None => provenance.clone(),
    };
    let files = sboms
        .iter()
        .filter_map(|document| {
            let image = artifact
                .images()
                .iter()
                .find(|i| i.arch() == document.target.arch)?;
            Some(SbomFile {
                image: image.digest().clone(),
                platform: image.arch().platform(),
                bin: document.bin.clone(),
                bytes: document.bytes.clone(),
            })
        })
        .collect();
    let documents = Documents {
        artifact,
        name: image.name.clone(),
        sbom: plan.sbom,
        sboms: files,
        provenance,
        created: image.created.to_string(),
    };
    let signer = plan.sign_key.as_ref().map(|key| Signer {
        key,
        format: image.settings.sign_format,
    });
    let referrers = attest::referrers(&documents, plan.attach, signer)?;
    Ok(Attestations {
        provenance_file,
        referrers,
    })
}
