use serde_json::json;

use super::*;
use crate::attest::Referrer;
use crate::attest::referrer::{BUNDLE_PREDICATE_TYPE, Part};
use crate::image::{Blob, sha256};
use crate::sign::SigningKey;
use crate::sign::key::tests::{ed25519_key, p256_key};

fn image() -> Blob {
    Blob::new(
        oci_spec::image::MediaType::ImageManifest,
        b"{\"x\":1}".to_vec(),
    )
}

fn statement_about(digest: &str, predicate_type: &str) -> Vec<u8> {
    let subject = statement::Subject::new("hello".into(), digest.parse().unwrap());
    statement::render(&[subject], predicate_type, &json!({}))
}

/// A referrer of `subject` holding `parts`, as fetched: its manifest and blobs.
fn fetched(
    artifact_type: &str,
    parts: Vec<Part>,
    subject: &Blob,
) -> (Value, BTreeMap<String, Vec<u8>>) {
    let referrer =
        Referrer::new(artifact_type, parts, subject.descriptor(), BTreeMap::new()).unwrap();
    let manifest: Value = serde_json::from_slice(referrer.manifest.data()).unwrap();
    let blobs = referrer
        .blobs
        .iter()
        .map(|b| (b.digest().to_string(), b.data().to_vec()))
        .collect();
    (manifest, blobs)
}

fn judged(
    manifest: &Value,
    blobs: &BTreeMap<String, Vec<u8>>,
    listed: Option<&str>,
    keys: &[VerifyingKey],
) -> Judged {
    let fetched = Fetched {
        listed_type: listed,
        manifest,
        blobs,
    };
    judge(&fetched, image().digest().as_ref(), keys)
}

fn bundle_of(key: &SigningKey, statement: &[u8]) -> Part {
    Part::new(
        bundle::MEDIA_TYPE,
        bundle::seal(dsse::IN_TOTO, statement, key),
        "b",
    )
}

#[test]
fn bundles_count_for_the_key_that_signed_them_only() {
    let subject = image();
    let digest = subject.digest().to_string();
    let statement = statement_about(&digest, cosign::SIGN_PREDICATE_TYPE);
    let (manifest, blobs) = fetched(
        bundle::MEDIA_TYPE,
        vec![bundle_of(&p256_key(), &statement)],
        &subject,
    );
    let ours = p256_key().public();
    let theirs = ed25519_key().public();
    assert_eq!(
        judged(
            &manifest,
            &blobs,
            Some(bundle::MEDIA_TYPE),
            &[theirs.clone(), ours.clone()]
        ),
        Judged::Signed(vec![Signed {
            key: 1,
            claim: Claim::Signature,
            kept_in: "Sigstore bundle"
        }])
    );
    let Judged::Unverified(why) = judged(&manifest, &blobs, None, std::slice::from_ref(&theirs))
    else {
        panic!("another key's bundle verified");
    };
    assert_eq!(
        why,
        format!("signed by another key (key hint {})", ours.hint())
    );
    // About another image: its statement names another digest.
    let other = statement_about(sha256(b"other").as_ref(), slsa::PREDICATE_TYPE);
    let (manifest, blobs) = fetched(
        bundle::MEDIA_TYPE,
        vec![bundle_of(&p256_key(), &other)],
        &subject,
    );
    let Judged::Unverified(why) = judged(&manifest, &blobs, None, std::slice::from_ref(&ours))
    else {
        panic!("a statement about another image verified");
    };
    assert!(
        why.starts_with("about another image (its statement names sha256:"),
        "{why}"
    );
}

#[test]
fn altered_and_unsigned_bundles_are_named() {
    let subject = image();
    let key = p256_key();
    let statement = statement_about(subject.digest().as_ref(), slsa::PREDICATE_TYPE);
    let mut bundle: Value =
        serde_json::from_slice(&bundle::seal(dsse::IN_TOTO, &statement, &key)).unwrap();
    let payload = bundle["dsseEnvelope"]["payload"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = format!(
        "{}{}",
        if payload.starts_with('e') { 'f' } else { 'e' },
        &payload[1..]
    );
    bundle["dsseEnvelope"]["payload"] = flipped.into();
    let part = Part::new(
        bundle::MEDIA_TYPE,
        serde_json::to_vec(&bundle).unwrap(),
        "b",
    );
    let (manifest, blobs) = fetched(bundle::MEDIA_TYPE, vec![part], &subject);
    let Judged::Unverified(why) = judged(&manifest, &blobs, None, &[key.public()]) else {
        panic!("an altered bundle verified");
    };
    assert_eq!(
        why,
        "its Sigstore bundle names one of the keys, but its signature does not verify"
    );
    bundle["dsseEnvelope"]["signatures"] = json!([]);
    let part = Part::new(
        bundle::MEDIA_TYPE,
        serde_json::to_vec(&bundle).unwrap(),
        "b",
    );
    let (manifest, blobs) = fetched(bundle::MEDIA_TYPE, vec![part], &subject);
    assert_eq!(
        judged(&manifest, &blobs, None, &[key.public()]),
        Judged::Unverified("unsigned (its Sigstore bundle has no signature)".into())
    );
}

#[test]
fn forged_sboms_are_named() {
    let subject = image();
    let keys = [p256_key().public()];
    let spdx = "application/spdx+json";
    // The plain document: counts once a signed statement names it.
    let document = Part::new(
        spdx,
        b"{\"spdxVersion\":\"SPDX-2.3\"}".to_vec(),
        "hello.spdx.json",
    );
    let document_digest = document.blob.digest().to_string();
    let (manifest, blobs) = fetched(spdx, vec![document.clone()], &subject);
    assert_eq!(
        judged(&manifest, &blobs, Some(spdx), &keys),
        Judged::Sbom(vec![document_digest])
    );
    // Listed under another type.
    let Judged::Unverified(why) = judged(
        &manifest,
        &blobs,
        Some("application/vnd.example+json"),
        &keys,
    ) else {
        panic!("a mislabelled SBOM verified");
    };
    assert!(why.starts_with("mislabelled: listed as"), "{why}");
    // Its only layer empty-typed.
    let empty = Part::new(EMPTY_MEDIA_TYPE, b"{}".to_vec(), "x");
    let (manifest, blobs) = fetched(spdx, vec![empty], &subject);
    assert_eq!(
        judged(&manifest, &blobs, Some(spdx), &keys),
        Judged::Unverified(format!("an empty layer ({EMPTY_MEDIA_TYPE})"))
    );
    // No layers at all.
    let (manifest, blobs) = fetched(statement::MEDIA_TYPE, vec![], &subject);
    assert_eq!(
        judged(&manifest, &blobs, None, &keys),
        Judged::Unverified("it has no layers".into())
    );
    // A bare statement: unsigned.
    let bare = Part::new(
        statement::MEDIA_TYPE,
        statement_about(subject.digest().as_ref(), slsa::PREDICATE_TYPE),
        "p",
    );
    let (manifest, blobs) = fetched(statement::MEDIA_TYPE, vec![bare], &subject);
    assert_eq!(
        judged(&manifest, &blobs, None, &keys),
        Judged::Unverified(format!("unsigned (a {} layer)", statement::MEDIA_TYPE))
    );
    // About another image, by its manifest's subject.
    let (manifest, blobs) = fetched(
        spdx,
        vec![document],
        &Blob::new(oci_spec::image::MediaType::ImageManifest, b"{}".to_vec()),
    );
    let Judged::Unverified(why) = judged(&manifest, &blobs, None, &keys) else {
        panic!("a referrer of another image verified");
    };
    assert!(
        why.starts_with("about another image (its subject is"),
        "{why}"
    );
    // What is none of ours is left alone.
    let scan = Part::new("application/vnd.example.scan+json", b"{}".to_vec(), "s");
    let (manifest, blobs) = fetched("application/vnd.example.scan+json", vec![scan], &subject);
    assert_eq!(judged(&manifest, &blobs, None, &keys), Judged::Foreign);
}

#[test]
fn sbom_statements_name_their_documents_and_legacy_envelopes_verify() {
    let subject = image();
    let key = ed25519_key();
    let mut named = statement::Subject::new("hello".into(), subject.digest().clone());
    named
        .annotations
        .insert(statement::SBOM_DIGEST.into(), "sha256:ab".into());
    let statement = statement::render(&[named], "https://spdx.dev/Document", &json!({}));
    let part = Part::new(
        dsse::MEDIA_TYPE,
        dsse::seal(dsse::IN_TOTO, &statement, &key),
        "e",
    );
    let (manifest, blobs) = fetched("application/spdx+json", vec![part], &subject);
    assert_eq!(
        judged(
            &manifest,
            &blobs,
            Some("application/spdx+json"),
            &[key.public()]
        ),
        Judged::Signed(vec![Signed {
            key: 0,
            claim: Claim::Sbom {
                documents: vec!["sha256:ab".into()]
            },
            kept_in: "DSSE envelope"
        }])
    );
    assert_eq!(BUNDLE_PREDICATE_TYPE, "dev.sigstore.bundle.predicateType");
}

#[test]
fn cosign_signatures_name_their_signer() {
    let key = p256_key();
    let digest: oci_spec::image::Digest = image().digest().clone();
    let payload = cosign::payload("r/hello", &digest);
    let signature = key.sign(&payload);
    let keys = [ed25519_key().public(), key.public()];
    assert_eq!(
        judge_cosign(&payload, &signature, digest.as_ref(), &keys),
        Ok(1)
    );
    assert_eq!(
        judge_cosign(&payload, &signature, digest.as_ref(), &keys[..1]),
        Err("signed by another key".into())
    );
    let other = sha256(b"x").to_string();
    assert!(
        judge_cosign(&payload, &signature, &other, &keys)
            .unwrap_err()
            .starts_with("about another image")
    );
}
