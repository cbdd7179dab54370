//! What one referrer of a manifest proves, judged against the keys `verify` was given: signed
//! statements about that digest (in Sigstore bundles or bare DSSE envelopes), plain SBOM
//! documents (which count once a signed SBOM statement names them), or why it proves nothing.
//! Values in, a value out: the registry reads are the caller's.

use std::collections::BTreeMap;

use serde_json::Value;

use super::referrer::EMPTY_MEDIA_TYPE;
use super::{sbom_types, slsa, statement};
use crate::sbom::SbomFormat;
use crate::sign::{VerifyingKey, bundle, cosign, dsse};

/// At most this many layers of one referrer are read; a referrer with more is not verified.
pub(crate) const MAX_LAYERS: usize = 64;

/// What a signed statement says about the digest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// cosign's signing statement: the image is signed.
    Signature,
    /// SLSA provenance.
    Provenance,
    /// An SBOM statement, naming the digests of the plain documents it vouches for.
    Sbom { documents: Vec<String> },
    /// A statement of another predicate type.
    Other(String),
}

impl Claim {
    fn of(parsed: statement::Parsed) -> Claim {
        let sboms = [SbomFormat::Spdx, SbomFormat::CycloneDx].map(|f| sbom_types(f).1);
        match parsed.predicate_type.as_str() {
            cosign::SIGN_PREDICATE_TYPE => Claim::Signature,
            slsa::PREDICATE_TYPE => Claim::Provenance,
            t if sboms.contains(&t) => Claim::Sbom {
                documents: parsed.documents,
            },
            _ => Claim::Other(parsed.predicate_type),
        }
    }

    /// `signature`, `SLSA provenance`, `SBOM attestation`, or the predicate type.
    pub(crate) fn describe(&self) -> String {
        match self {
            Claim::Signature => "signature".into(),
            Claim::Provenance => "SLSA provenance".into(),
            Claim::Sbom { .. } => "SBOM attestation".into(),
            Claim::Other(predicate_type) => format!("{predicate_type} statement"),
        }
    }
}

/// A claim signed by one of the keys: the key's place among them, and how it was kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    pub key: usize,
    pub claim: Claim,
    /// `Sigstore bundle` or `DSSE envelope`.
    pub kept_in: &'static str,
}

/// One referrer, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Judged {
    /// Each layer a statement about this digest, signed by one of the keys.
    Signed(Vec<Signed>),
    /// Plain SBOM documents, by digest: verified when signed SBOM statements name them all.
    Sbom(Vec<String>),
    /// An SBOM, attestation or signature that proves nothing with these keys, and why.
    Unverified(String),
    /// Neither an SBOM, an attestation nor a signature: not ours to judge.
    Foreign,
}

/// A referrer as fetched: how the listing typed it, its manifest, and the blobs of the layers
/// [`layers_to_read`] asked for.
pub(crate) struct Fetched<'a> {
    pub listed_type: Option<&'a str>,
    pub manifest: &'a Value,
    pub blobs: &'a BTreeMap<String, Vec<u8>>,
}

fn is_sbom_type(media_type: &str) -> bool {
    [SbomFormat::Spdx, SbomFormat::CycloneDx]
        .iter()
        .any(|f| sbom_types(*f).0 == media_type)
}

fn is_signed_type(media_type: &str) -> bool {
    media_type == dsse::MEDIA_TYPE || media_type.starts_with(bundle::MEDIA_TYPE_PREFIX)
}

/// Whether a referrer of this type is an SBOM, an attestation or a signature.
fn is_ours(media_type: &str) -> bool {
    is_sbom_type(media_type) || is_signed_type(media_type) || media_type == statement::MEDIA_TYPE
}

/// The type of the artifact a manifest describes: its `artifactType`, else its config's media
/// type unless that is the empty one, as the image spec says.
pub(crate) fn artifact_type(manifest: &Value) -> &str {
    match manifest["artifactType"].as_str() {
        Some(t) => t,
        None => manifest["config"]["mediaType"]
            .as_str()
            .filter(|t| *t != EMPTY_MEDIA_TYPE)
            .unwrap_or(""),
    }
}

fn layers(manifest: &Value) -> &[Value] {
    manifest["layers"].as_array().map_or(&[], Vec::as_slice)
}

/// The digests of the layers [`judge`] reads: envelopes and bundles (valid digests only, as
/// they name what is fetched).
pub(crate) fn layers_to_read(manifest: &Value) -> Vec<String> {
    let layers = layers(manifest).iter().take(MAX_LAYERS);
    layers
        .filter(|l| is_signed_type(l["mediaType"].as_str().unwrap_or("")))
        .filter_map(|l| l["digest"].as_str())
        .filter(|d| d.parse::<oci_spec::image::Digest>().is_ok())
        .map(str::to_string)
        .collect()
}

/// Judges `fetched`, listed among the referrers of `subject`, against `keys`.
pub(crate) fn judge(fetched: &Fetched<'_>, subject: &str, keys: &[VerifyingKey]) -> Judged {
    let manifest = fetched.manifest;
    let own_type = artifact_type(manifest);
    let layers = layers(manifest);
    let layer_types = || layers.iter().map(|l| l["mediaType"].as_str().unwrap_or(""));
    let ours =
        is_ours(own_type) || fetched.listed_type.is_some_and(is_ours) || layer_types().any(is_ours);
    if !ours {
        return Judged::Foreign;
    }
    if let Some(listed) = fetched.listed_type
        && listed != own_type
    {
        return Judged::Unverified(format!(
            "mislabelled: listed as {listed:?}, its manifest says {own_type:?}"
        ));
    }
    let about = manifest["subject"]["digest"].as_str().unwrap_or("");
    if about != subject {
        return Judged::Unverified(format!("about another image (its subject is {about:?})"));
    }
    if layers.is_empty() {
        return Judged::Unverified("it has no layers".into());
    }
    if layers.len() > MAX_LAYERS {
        return Judged::Unverified(format!(
            "it has {} layers; at most {MAX_LAYERS} are read",
            layers.len()
        ));
    }
    let mut signed = Vec::new();
    let mut documents = Vec::new();
    for layer in layers {
        let media_type = layer["mediaType"].as_str().unwrap_or("");
        let digest = layer["digest"].as_str().unwrap_or("");
        if media_type == EMPTY_MEDIA_TYPE {
            return Judged::Unverified(format!("an empty layer ({EMPTY_MEDIA_TYPE})"));
        }
        if is_sbom_type(own_type) && media_type == own_type {
            documents.push(digest.to_string());
            continue;
        }
        if !is_signed_type(media_type) {
            return Judged::Unverified(format!("unsigned (a {media_type} layer)"));
        }
        let Some(bytes) = fetched.blobs.get(digest) else {
            return Judged::Unverified(format!("its {media_type} layer {digest} was not read"));
        };
        match judge_signed(bytes, media_type, subject, keys) {
            Ok(one) => signed.push(one),
            Err(why) => return Judged::Unverified(why),
        }
    }
    match (signed.is_empty(), documents.is_empty()) {
        (false, true) => Judged::Signed(signed),
        (true, false) => Judged::Sbom(documents),
        _ => Judged::Unverified("it mixes signed and unsigned layers".into()),
    }
}

/// One envelope or bundle: its statement, if one of `keys` signed it and it names `subject`.
fn judge_signed(
    bytes: &[u8],
    media_type: &str,
    subject: &str,
    keys: &[VerifyingKey],
) -> Result<Signed, String> {
    let (envelope, hint, kept_in) = if media_type == dsse::MEDIA_TYPE {
        let envelope = dsse::read(bytes).map_err(|e| format!("a broken DSSE envelope: {e:#}"))?;
        (envelope, None, "DSSE envelope")
    } else {
        let read = bundle::read(bytes).map_err(|e| format!("a Sigstore bundle, but {e:#}"))?;
        (read.envelope, read.hint, "Sigstore bundle")
    };
    if !envelope.is_signed() {
        return Err(format!("unsigned (its {kept_in} has no signature)"));
    }
    let Some(key) = keys.iter().position(|k| envelope.signed_by(k)) else {
        let claims_ours = keys.iter().any(|k| {
            hint.as_deref() == Some(k.hint().as_str())
                || envelope.keyids().contains(&k.keyid().as_str())
        });
        if claims_ours {
            return Err(format!(
                "its {kept_in} names one of the keys, but its signature does not verify"
            ));
        }
        let signer = match (&hint, envelope.keyids().first()) {
            (Some(hint), _) if !hint.is_empty() => format!(" (key hint {hint})"),
            (_, Some(keyid)) => format!(" (keyid {keyid})"),
            (None, None) => " (a certificate: keyless)".to_string(),
            _ => String::new(),
        };
        return Err(format!("signed by another key{signer}"));
    };
    if envelope.payload_type != dsse::IN_TOTO {
        return Err(format!(
            "it signs a {}, not an in-toto statement",
            envelope.payload_type
        ));
    }
    let parsed = statement::parse(&envelope.payload).map_err(|e| format!("{e:#}"))?;
    if !parsed.digests.iter().any(|d| d == subject) {
        return Err(format!(
            "about another image (its statement names {})",
            parsed.digests.join(", ")
        ));
    }
    Ok(Signed {
        key,
        claim: Claim::of(parsed),
        kept_in,
    })
}

/// One layer of cosign's `sha256-<hex>.sig` manifest: which of `keys` signed `payload`, a
/// simple-signing payload naming `subject`; or why none did.
pub(crate) fn judge_cosign(
    payload: &[u8],
    signature: &[u8],
    subject: &str,
    keys: &[VerifyingKey],
) -> Result<usize, String> {
    let Some(key) = keys.iter().position(|k| k.verify(payload, signature)) else {
        return Err("signed by another key".into());
    };
    match cosign::signed_digest(payload) {
        Some(digest) if digest == subject => Ok(key),
        Some(digest) => Err(format!("about another image ({digest})")),
        None => Err("its payload is not a simple-signing payload".into()),
    }
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
