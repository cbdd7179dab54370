//! The referrers of an image in each signing format, for the image (or index) and each platform
//! image of an index:
//! - unsigned: the SBOM documents, and the bare provenance statement;
//! - `legacy`: both as DSSE envelopes signed by the key, the SBOM as an in-toto statement about
//!   the image;
//! - `bundle`: the plain SBOM documents as scanners read them, and Sigstore bundles, one per
//!   referrer as cosign's bundle spec has it: the image's signature (cosign 3's signing
//!   statement), each SBOM's statement (naming the plain document's digest) and the provenance;
//! - `both`: legacy's and bundle's side by side.

use std::collections::BTreeMap;

use anyhow::Result;
use oci_spec::image::Descriptor;
use serde_json::{Value, json};

use super::referrer::{self, Part, Referrer};
use super::{Attach, Documents, SbomFile, sbom_types, slsa, statement};
use crate::image::{Artifact, sha256};
use crate::sbom::SbomFormat;
use crate::sign::{Signer, SigningKey, bundle, cosign, dsse};

/// A manifest that gets referrers.
struct Target<'a> {
    subject: Descriptor,
    /// Its name in statements: `hello:0.1.0`, or `hello:0.1.0 (linux/amd64)`.
    name: String,
    /// The SBOM documents about it.
    files: Vec<&'a SbomFile>,
    /// An index's SBOM artifact holds every platform's documents, titled by platform.
    index: bool,
}

/// Each platform image of an index, then the image or index itself.
fn targets<'a>(documents: &'a Documents<'_>) -> Vec<Target<'a>> {
    let artifact = documents.artifact;
    let mut targets = Vec::new();
    if let Artifact::Index(index) = artifact {
        for image in index.images() {
            targets.push(Target {
                subject: image.manifest().descriptor().clone(),
                name: format!("{} ({})", documents.name, image.arch().platform()),
                files: documents
                    .sboms
                    .iter()
                    .filter(|f| &f.image == image.digest())
                    .collect(),
                index: false,
            });
        }
    }
    targets.push(Target {
        subject: artifact.manifest().descriptor().clone(),
        name: documents.name.clone(),
        files: documents.sboms.iter().collect(),
        index: matches!(artifact, Artifact::Index(_)),
    });
    targets
}

/// An SBOM document's layer title: `hello.spdx.json`, or in an index's artifact
/// `hello.linux-amd64.spdx.json`.
fn title(file: &SbomFile, format: SbomFormat, in_index: bool) -> String {
    if in_index {
        let platform = file.platform.replace('/', "-");
        format!("{}.{platform}.{}", file.bin, format.extension())
    } else {
        format!("{}.{}", file.bin, format.extension())
    }
}

/// The in-toto statement of an SBOM document: about its platform image (and the index), the
/// document its predicate; with `name_document`, the first subject names the document's
/// digest, which vouches for the plain document beside it.
fn sbom_statement(
    documents: &Documents<'_>,
    file: &SbomFile,
    format: SbomFormat,
    name_document: bool,
) -> Vec<u8> {
    let mut subjects = vec![statement::Subject::new(
        format!("{} ({})", documents.name, file.platform),
        file.image.clone(),
    )];
    if name_document {
        subjects[0].annotations.insert(
            statement::SBOM_DIGEST.to_string(),
            sha256(&file.bytes).to_string(),
        );
    }
    let artifact = documents.artifact;
    if matches!(artifact, Artifact::Index(_)) {
        subjects.push(statement::Subject::new(
            documents.name.clone(),
            artifact.digest().clone(),
        ));
    }
    let predicate: Value = serde_json::from_slice(&file.bytes).unwrap_or(Value::Null);
    statement::render(&subjects, sbom_types(format).1, &predicate)
}

/// A statement sealed in a DSSE envelope, as a layer.
fn envelope_part(statement: &[u8], predicate_type: &str, title: &str, key: &SigningKey) -> Part {
    let envelope = dsse::seal(dsse::IN_TOTO, statement, key);
    Part::new(dsse::MEDIA_TYPE, envelope, &format!("{title}.dsse.json"))
        .annotate(referrer::PREDICATE_TYPE, predicate_type)
}

/// A statement sealed in a Sigstore bundle, with its predicate type.
struct Sealed {
    part: Part,
    predicate_type: &'static str,
}

fn seal(statement: &[u8], predicate_type: &'static str, title: &str, key: &SigningKey) -> Sealed {
    let bytes = bundle::seal(dsse::IN_TOTO, statement, key);
    Sealed {
        part: Part::new(bundle::MEDIA_TYPE, bytes, &format!("{title}.sigstore.json")),
        predicate_type,
    }
}

impl Sealed {
    /// The bundle's referrer of `subject`: one layer, annotated as cosign's bundle spec says.
    fn referrer(
        &self,
        subject: &Descriptor,
        created: &BTreeMap<String, String>,
    ) -> Result<Referrer> {
        let mut annotations = created.clone();
        annotations.insert(referrer::BUNDLE_CONTENT.into(), "dsse-envelope".into());
        annotations.insert(
            referrer::BUNDLE_PREDICATE_TYPE.into(),
            self.predicate_type.into(),
        );
        Referrer::new(
            bundle::MEDIA_TYPE,
            vec![self.part.clone()],
            subject,
            annotations,
        )
    }
}

/// See the module's documentation. Statements about several manifests are signed once, and
/// the same envelope or bundle is attached to each.
pub(super) fn referrers(
    documents: &Documents<'_>,
    attach: Attach,
    signer: Option<Signer<'_>>,
) -> Result<Vec<Referrer>> {
    let created: BTreeMap<String, String> =
        [(referrer::CREATED.to_string(), documents.created.clone())].into();
    let sbom = documents.sbom.filter(|_| attach.sbom());
    let legacy = signer.filter(|s| s.format.legacy()).map(|s| s.key);
    let bundled = signer.filter(|s| s.format.bundle()).map(|s| s.key);
    let provenance = &documents.provenance;
    let legacy_provenance = legacy
        .filter(|_| attach.provenance())
        .map(|key| envelope_part(provenance, slsa::PREDICATE_TYPE, "provenance", key));
    let bundled_provenance = bundled
        .filter(|_| attach.provenance())
        .map(|key| seal(provenance, slsa::PREDICATE_TYPE, "provenance", key));
    // Each SBOM's bundle, by its place in `documents.sboms`.
    let sbom_bundles: Vec<Sealed> = match (bundled, sbom) {
        (Some(key), Some(format)) => documents
            .sboms
            .iter()
            .map(|file| {
                let statement = sbom_statement(documents, file, format, true);
                let title = title(
                    file,
                    format,
                    matches!(documents.artifact, Artifact::Index(_)),
                );
                seal(&statement, sbom_types(format).1, &title, key)
            })
            .collect(),
        _ => Vec::new(),
    };

    let mut referrers = Vec::new();
    for target in targets(documents) {
        let sbom = sbom.filter(|_| !target.files.is_empty());
        let subject = &target.subject;
        if let Some(format) = sbom
            && (signer.is_none() || bundled.is_some())
        {
            let (media_type, _) = sbom_types(format);
            let parts = target.files.iter().map(|file| {
                let title = title(file, format, target.index);
                Part::new(media_type, file.bytes.clone(), &title)
            });
            referrers.push(Referrer::new(
                media_type,
                parts.collect(),
                subject,
                created.clone(),
            )?);
        }
        if signer.is_none() && attach.provenance() {
            let part = Part::new(
                statement::MEDIA_TYPE,
                provenance.clone(),
                "provenance.intoto.json",
            )
            .annotate(referrer::PREDICATE_TYPE, slsa::PREDICATE_TYPE);
            referrers.push(Referrer::new(
                statement::MEDIA_TYPE,
                vec![part],
                subject,
                created.clone(),
            )?);
        }
        if let Some(key) = legacy {
            if let Some(format) = sbom {
                let parts = target.files.iter().map(|file| {
                    let statement = sbom_statement(documents, file, format, false);
                    let title = title(file, format, target.index);
                    envelope_part(&statement, sbom_types(format).1, &title, key)
                });
                referrers.push(Referrer::new(
                    sbom_types(format).0,
                    parts.collect(),
                    subject,
                    created.clone(),
                )?);
            }
            if let Some(part) = &legacy_provenance {
                referrers.push(Referrer::new(
                    statement::MEDIA_TYPE,
                    vec![part.clone()],
                    subject,
                    created.clone(),
                )?);
            }
        }
        if let Some(key) = bundled {
            let statement = statement::render(
                &[statement::Subject::new(
                    target.name.clone(),
                    subject.digest().clone(),
                )],
                cosign::SIGN_PREDICATE_TYPE,
                &json!({}),
            );
            let signature = seal(&statement, cosign::SIGN_PREDICATE_TYPE, "signature", key);
            referrers.push(signature.referrer(subject, &created)?);
            if sbom.is_some() {
                for (file, sealed) in documents.sboms.iter().zip(&sbom_bundles) {
                    if target.files.iter().any(|f| std::ptr::eq(*f, file)) {
                        referrers.push(sealed.referrer(subject, &created)?);
                    }
                }
            }
            if let Some(sealed) = &bundled_provenance {
                referrers.push(sealed.referrer(subject, &created)?);
            }
        }
    }
    Ok(referrers)
}
