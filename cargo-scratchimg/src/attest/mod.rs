//! What an image says about itself, signed or not, as values: an in-toto [`statement`] with
//! SLSA provenance ([`slsa`]) or an SBOM as its predicate, and the OCI 1.1 artifacts that carry
//! them next to the image ([`referrer`]). [`verify`] checks what a registry holds for an image.
//! The sinks put these where they go: beside the output, in the OCI layout, in registries.

pub(crate) mod referrer;
pub(crate) mod slsa;
pub(crate) mod statement;

use std::collections::BTreeMap;

use anyhow::Result;
use oci_spec::image::{Descriptor, Digest};

pub(crate) use referrer::{Part, Referrer};

use crate::image::Artifact;
use crate::sbom::SbomFormat;
use crate::sign::{SigningKey, dsse};

/// `--attach`: which attestations go next to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    None,
    Sbom,
    Provenance,
    All,
}

impl Attach {
    pub(crate) fn sbom(self) -> bool {
        matches!(self, Attach::Sbom | Attach::All)
    }

    pub(crate) fn provenance(self) -> bool {
        matches!(self, Attach::Provenance | Attach::All)
    }
}

/// The artifact type (and blob media type) of an SBOM document, and its in-toto predicate type.
pub(crate) fn sbom_types(format: SbomFormat) -> (&'static str, &'static str) {
    match format {
        SbomFormat::Spdx => ("application/spdx+json", "https://spdx.dev/Document"),
        SbomFormat::CycloneDx => (
            "application/vnd.cyclonedx+json",
            "https://cyclonedx.org/bom",
        ),
    }
}

/// One SBOM document of a platform image.
#[derive(Debug, Clone)]
pub(crate) struct SbomFile {
    /// The platform image's digest.
    pub image: Digest,
    /// `linux/amd64`.
    pub platform: String,
    pub bin: String,
    pub bytes: Vec<u8>,
}

/// Everything an image's attestations are made of.
pub(crate) struct Documents<'a> {
    pub artifact: &'a Artifact,
    /// The image's name, e.g. `hello:0.1.0`: the subjects' names.
    pub name: String,
    pub sbom: Option<SbomFormat>,
    pub sboms: Vec<SbomFile>,
    /// The provenance statement.
    pub provenance: Vec<u8>,
    /// The image's timestamp: every artifact's `org.opencontainers.image.created`.
    pub created: String,
}

/// The subjects of statements about `artifact`: it, then each platform image of an index.
pub(crate) fn subjects(artifact: &Artifact, name: &str) -> Vec<statement::Subject> {
    let mut subjects = vec![statement::Subject {
        name: name.to_string(),
        digest: artifact.digest().clone(),
    }];
    if let Artifact::Index(index) = artifact {
        subjects.extend(index.images().iter().map(|image| statement::Subject {
            name: format!("{name} ({})", image.arch().platform()),
            digest: image.digest().clone(),
        }));
    }
    subjects
}

/// The provenance statement of `artifact`.
pub(crate) fn provenance(artifact: &Artifact, name: &str, facts: &slsa::BuildFacts) -> Vec<u8> {
    statement::render(
        &subjects(artifact, name),
        slsa::PREDICATE_TYPE,
        &slsa::predicate(facts),
    )
}

/// A statement as an artifact layer: as it is, or sealed in a DSSE envelope with `key`.
fn statement_part(
    bytes: &[u8],
    predicate_type: &str,
    title: &str,
    key: Option<&SigningKey>,
) -> Part {
    let part = match key {
        Some(key) => Part::new(
            dsse::MEDIA_TYPE,
            dsse::seal(dsse::IN_TOTO, bytes, key),
            &format!("{title}.dsse.json"),
        ),
        None => Part::new(
            statement::MEDIA_TYPE,
            bytes.to_vec(),
            &format!("{title}.intoto.json"),
        ),
    };
    part.annotate(referrer::PREDICATE_TYPE, predicate_type)
}

/// The artifacts `attach` asks for, each referring to the image or index of `documents` or to
/// one of its platform images: one SBOM and one provenance artifact each. With a `key`, every
/// statement is a signed DSSE envelope, and an SBOM travels as an in-toto statement about the
/// image (predicate type `https://spdx.dev/Document` or `https://cyclonedx.org/bom`).
pub(crate) fn referrers(
    documents: &Documents<'_>,
    attach: Attach,
    key: Option<&SigningKey>,
) -> Result<Vec<Referrer>> {
    let artifact = documents.artifact;
    let annotations: BTreeMap<String, String> =
        [(referrer::CREATED.to_string(), documents.created.clone())].into();
    let index = matches!(artifact, Artifact::Index(_));
    // Each SBOM as a layer; titled with its platform in the index's artifact.
    let sbom_part = |file: &SbomFile, format: SbomFormat, in_index: bool| -> Part {
        let (media_type, predicate_type) = sbom_types(format);
        let title = if in_index {
            format!(
                "{}.{}.{}",
                file.bin,
                file.platform.replace('/', "-"),
                format.extension()
            )
        } else {
            format!("{}.{}", file.bin, format.extension())
        };
        match key {
            None => Part::new(media_type, file.bytes.clone(), &title),
            Some(key) => {
                let mut subjects = vec![statement::Subject {
                    name: format!("{} ({})", documents.name, file.platform),
                    digest: file.image.clone(),
                }];
                if index {
                    subjects.push(statement::Subject {
                        name: documents.name.clone(),
                        digest: artifact.digest().clone(),
                    });
                }
                let predicate: serde_json::Value =
                    serde_json::from_slice(&file.bytes).unwrap_or(serde_json::Value::Null);
                let statement = statement::render(&subjects, predicate_type, &predicate);
                statement_part(&statement, predicate_type, &title, Some(key))
            }
        }
    };
    let mut targets: Vec<(Descriptor, Vec<&SbomFile>, bool)> = Vec::new();
    if let Artifact::Index(index) = artifact {
        for image in index.images() {
            let files = documents
                .sboms
                .iter()
                .filter(|f| &f.image == image.digest())
                .collect();
            targets.push((image.manifest().descriptor().clone(), files, false));
        }
    }
    targets.push((
        artifact.manifest().descriptor().clone(),
        documents.sboms.iter().collect(),
        index,
    ));
    // The same statement for every subject: signed once.
    let provenance = attach.provenance().then(|| {
        statement_part(
            &documents.provenance,
            slsa::PREDICATE_TYPE,
            "provenance",
            key,
        )
    });
    let mut referrers = Vec::new();
    for (subject, files, in_index) in targets {
        if let (true, Some(format), false) = (attach.sbom(), documents.sbom, files.is_empty()) {
            let parts = files
                .iter()
                .map(|f| sbom_part(f, format, in_index))
                .collect();
            referrers.push(Referrer::new(
                sbom_types(format).0,
                parts,
                &subject,
                annotations.clone(),
            )?);
        }
        if let Some(part) = &provenance {
            referrers.push(Referrer::new(
                statement::MEDIA_TYPE,
                vec![part.clone()],
                &subject,
                annotations.clone(),
            )?);
        }
    }
    Ok(referrers)
}
