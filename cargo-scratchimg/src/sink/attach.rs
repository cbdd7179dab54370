//! Attestations next to a pushed image: each referrer's blobs and manifest, listed through the
//! referrers API where the registry has one (it says so with `OCI-Subject`), else in the
//! referrers tag schema's index, read, added to and put back, keeping what other tools listed;
//! and, with a key in the legacy format, cosign's signature of every manifest under
//! `sha256-<hex>.sig`. Tags are read back after a while and put again where a concurrent push
//! dropped our entries. All of it before any tag names the image, so a tag never points at an
//! image without its records.

use std::time::Duration;

use anyhow::{Context, Result, bail};
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
    /// Signs each manifest under `sha256-<hex>.sig` (the legacy format).
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
    /// Signature bundles put, and signatures added under `.sig` tags.
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
            plural(self.signatures, "signature")
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
    // Adds our entries to each referrers index and `.sig` tag; how many were missing.
    let update = || -> Result<(usize, usize)> {
        let mut listed = 0;
        for (subject, entries) in &by_tag {
            listed += session
                .add_referrers_by_tag(subject, entries)
                .with_context(|| {
                    format!("could not list the referrers of {subject} in {place_name}")
                })?;
        }
        let mut signed = 0;
        if let Some(key) = attachments.key {
            for digest in artifact_digests(artifact) {
                signed += usize::from(sign_by_tag(session, place_name, &digest, key)?);
            }
        }
        Ok((listed, signed))
    };
    let (listed, signed) = update()?;
    attached.listed = listed;
    attached.signatures += signed;
    if (listed, signed) == (0, 0) {
        return Ok(attached);
    }
    // Tags have no conditional put: a concurrent push that read one of them before our put
    // and puts it after our read-back drops our entries. Its put lands soon after its read, so
    // a read-back that waits a while after our last put sees such a loss, and puts them again.
    for _ in 0..SETTLE_ROUNDS {
        std::thread::sleep(SETTLE);
        if update()? == (0, 0) {
            return Ok(attached);
        }
    }
    bail!(
        "another push to {place_name} kept replacing the referrers indexes or signatures of this image\nhelp: push again once the other pushes to this image are done"
    )
}

/// How long after our last put of a tag a read-back waits for a racing writer's put to land.
const SETTLE: Duration = Duration::from_millis(300);
const SETTLE_ROUNDS: usize = 8;

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
