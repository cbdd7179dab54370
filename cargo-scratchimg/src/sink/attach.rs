//! Attestations next to a pushed image: each referrer's blobs and manifest, listed through the
//! referrers API where the registry has one (it says so with `OCI-Subject`), else in the
//! referrers tag schema's index, read, added to and put back, keeping what other tools listed;
//! and, with a key, cosign's signature of every manifest under `sha256-<hex>.sig`. All of it
//! before any tag names the image, so a tag never points at an image without its records.

use anyhow::{Context, Result};
use base64::Engine as _;
use oci_spec::image::{Digest, MediaType};

use crate::attest::Referrer;
use crate::attest::referrer::{cosign_manifest, cosign_tag};
use crate::image::{Artifact, Blob};
use crate::registry::Session;
use crate::registry::referrers::Via;
use crate::report::Reporter;
use crate::sign::{SigningKey, cosign};

/// What goes next to an image in a registry.
pub(crate) struct AttachRequest<'a> {
    pub referrers: &'a [Referrer],
    pub key: Option<&'a SigningKey>,
    /// `--attach` was given: a registry that refuses the artifacts fails the push, instead of a
    /// warning and the image alone.
    pub explicit: bool,
}

/// What [`attach`] put up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attached {
    pub referrers: usize,
    /// Referrers newly listed in a tag schema index (0 on a repeat push).
    pub listed: usize,
    pub signatures: usize,
    pub via: Option<Via>,
}

impl Attached {
    /// `2 attestations and 1 signature to HOST/REPO (referrers tag schema, 2 newly listed)`.
    pub(crate) fn describe(&self, place: &str) -> String {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let via = match self.via {
            Some(Via::Api) => " (referrers API)".to_string(),
            Some(Via::Tag) => format!(" (referrers tag schema, {} newly listed)", self.listed),
            None => String::new(),
        };
        format!(
            "{} and {} to {place}{via}",
            plural(self.referrers, "attestation"),
            plural(self.signatures, "new signature")
        )
    }
}

/// Makes sure the repository has `blob`: small ones, uploaded whole.
fn place(session: &Session<'_>, blob: &Blob) -> Result<()> {
    if session.has_blob(blob.digest())? {
        return Ok(());
    }
    let first = session.start_upload(blob.digest(), None)?;
    session.upload(
        blob.digest(),
        blob.size(),
        &|| blob.reader(),
        first,
        &|_| {},
    )
}

/// Puts `artifact`'s manifest by digest, then its attestations. A failure is a warning unless
/// the attachments were asked for explicitly; the tags go up either way, after this returns.
pub(crate) fn attach(
    session: &Session<'_>,
    place_name: &str,
    artifact: &Artifact,
    attachments: &AttachRequest<'_>,
    report: &dyn Reporter,
) -> Result<Option<Attached>> {
    match try_attach(session, place_name, artifact, attachments) {
        Ok(attached) => Ok(Some(attached)),
        Err(error) if !attachments.explicit => {
            report.warn(&format!(
                "{place_name} did not take the image's attestations, so the image goes up without them: {error:#}\nhelp: pass --attach all to make this an error, or --attach none to leave them out"
            ));
            Ok(None)
        }
        Err(error) => Err(error.context(format!(
            "could not attach the image's attestations in {place_name}, so no tag was pushed\nhelp: a registry without OCI artifact support refuses them; pass --attach none to push the image alone"
        ))),
    }
}

fn try_attach(
    session: &Session<'_>,
    place_name: &str,
    artifact: &Artifact,
    attachments: &AttachRequest<'_>,
) -> Result<Attached> {
    let mut attached = Attached::default();
    // The subject first: a registry may check that a referrer's subject exists.
    let manifest = artifact.manifest();
    session
        .put(manifest.digest().as_ref(), manifest)
        .context("could not push the image's manifest by digest")?;
    let mut by_tag: Vec<(Digest, Vec<serde_json::Value>)> = Vec::new();
    for referrer in attachments.referrers {
        for blob in &referrer.blobs {
            place(session, blob).with_context(|| {
                format!(
                    "could not upload the {} artifact's blobs",
                    referrer.artifact_type
                )
            })?;
        }
        let subject = session
            .put(referrer.manifest.digest().as_ref(), &referrer.manifest)
            .with_context(|| format!("could not push the {} artifact", referrer.artifact_type))?;
        match referrer.is_signature() {
            true => attached.signatures += 1,
            false => attached.referrers += 1,
        }
        if subject.as_deref() == Some(referrer.subject.as_ref()) {
            attached.via = Some(Via::Api);
            continue;
        }
        attached.via = attached.via.or(Some(Via::Tag));
        match by_tag.iter_mut().find(|(d, _)| d == &referrer.subject) {
            Some((_, entries)) => entries.push(referrer.descriptor()),
            None => by_tag.push((referrer.subject.clone(), vec![referrer.descriptor()])),
        }
    }
    let list = |attached: &mut Attached| -> Result<()> {
        for (subject, entries) in &by_tag {
            attached.listed += session
                .add_referrers_by_tag(subject, entries)
                .with_context(|| {
                    format!("could not list the referrers of {subject} in {place_name}")
                })?;
        }
        Ok(())
    };
    list(&mut attached)?;
    if let Some(key) = attachments.key {
        for digest in artifact_digests(artifact) {
            attached.signatures += usize::from(sign_by_tag(session, place_name, &digest, key)?);
        }
    }
    // Once more after the rest: a concurrent push that put a referrers index it read before
    // ours went up, and checked it before our read-back, has dropped our entries by now.
    list(&mut attached)?;
    Ok(attached)
}

/// The digests of `artifact` and of each platform image of an index.
fn artifact_digests(artifact: &Artifact) -> Vec<Digest> {
    let mut digests = vec![artifact.digest().clone()];
    if let Artifact::Index(index) = artifact {
        digests.extend(index.images().iter().map(|i| i.digest().clone()));
    }
    digests
}

/// cosign's signature of `digest` by `key`, added under `sha256-<hex>.sig` beside others';
/// whether it was not there yet.
fn sign_by_tag(
    session: &Session<'_>,
    place_name: &str,
    digest: &Digest,
    key: &SigningKey,
) -> Result<bool> {
    let payload = Blob::new(
        MediaType::Other(cosign::PAYLOAD_MEDIA_TYPE.into()),
        cosign::payload(place_name, digest),
    );
    let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(payload.data()));
    let tag = cosign_tag(digest);
    let mut added = false;
    session.update_tag(&tag, &mut |existing| {
        let Some((manifest, blobs)) = cosign_manifest(existing, &payload, &signature)
            .with_context(|| format!("the tag {tag} in {place_name}"))?
        else {
            return Ok(None);
        };
        for blob in &blobs {
            place(session, blob).context("could not upload the signature's blobs")?;
        }
        added = true;
        Ok(Some(manifest))
    })?;
    Ok(added)
}
