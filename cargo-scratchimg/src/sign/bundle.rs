//! Sigstore bundles v0.3 (`application/vnd.dev.sigstore.bundle.v0.3+json`), as cosign 3 and
//! sigstore-go write them when signing with a key: a DSSE envelope, the key named by its hint in
//! `verificationMaterial.publicKey`, and no transparency-log entry or timestamp (nothing here
//! talks to Rekor or a timestamp authority, so verifiers need their "no tlog" option).

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dsse::{self, Envelope};
use super::key::SigningKey;

pub(crate) const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// What every Sigstore bundle media type starts with, whatever its version and spelling.
pub(crate) const MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

/// The bundle's JSON: protobuf-specs' `Bundle` in its JSON mapping, with no field the schema
/// lacks (cosign parses it with protojson, which refuses unknown fields).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: VerificationMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<Envelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_signature: Option<Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<PublicKeyIdentifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x509_certificate_chain: Option<Value>,
    /// Written even when empty: sigstore-python's models require the list.
    #[serde(default)]
    tlog_entries: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp_verification_data: Option<Value>,
}

#[derive(Serialize, Deserialize)]
struct PublicKeyIdentifier {
    #[serde(default)]
    hint: String,
}

/// `payload` of `payload_type` in a DSSE envelope signed by `key`, in a bundle, as canonical
/// JSON: as reproducible as the signature.
pub(crate) fn seal(payload_type: &str, payload: &[u8], key: &SigningKey) -> Vec<u8> {
    let bundle = Bundle {
        media_type: MEDIA_TYPE.to_string(),
        verification_material: VerificationMaterial {
            public_key: Some(PublicKeyIdentifier {
                hint: key.public().hint(),
            }),
            certificate: None,
            x509_certificate_chain: None,
            tlog_entries: Vec::new(),
            timestamp_verification_data: None,
        },
        dsse_envelope: Some(dsse::sign(payload_type, payload, key)),
        message_signature: None,
    };
    crate::image::json::to_vec(&bundle).expect("a bundle encodes")
}

/// What a bundle holds, read but not yet checked against a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    /// `verificationMaterial.publicKey.hint`; `None` when the material is a certificate.
    pub hint: Option<String>,
    /// Its DSSE envelope, decoded.
    pub envelope: dsse::Opened,
}

/// A bundle's bytes, read: the envelope and the key's hint. An error says what it is instead
/// (not a bundle, a message signature, keyless, more than one signature).
pub(crate) fn read(bytes: &[u8]) -> Result<Read> {
    let bundle: Bundle =
        serde_json::from_slice(bytes).context("it is not a Sigstore bundle's JSON")?;
    ensure!(
        bundle.media_type.starts_with(MEDIA_TYPE_PREFIX),
        "its mediaType is {:?}, not a Sigstore bundle's",
        bundle.media_type
    );
    let material = &bundle.verification_material;
    let hint = match (&material.public_key, &material.certificate) {
        (Some(key), _) => Some(key.hint.clone()),
        (None, Some(_)) => None,
        (None, None) if material.x509_certificate_chain.is_some() => None,
        (None, None) => bail!("it has no verification material"),
    };
    let Some(envelope) = bundle.dsse_envelope else {
        if bundle.message_signature.is_some() {
            bail!("it holds a message signature, not a DSSE envelope");
        }
        bail!("it holds neither a DSSE envelope nor a message signature");
    };
    let envelope = envelope.opened()?;
    ensure!(
        envelope.signature_count() <= 1,
        "its envelope carries {} signatures; a bundle's carries one",
        envelope.signature_count()
    );
    Ok(Read { hint, envelope })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::key::tests::{ed25519_key, p256_key};

    #[test]
    fn bundles_are_the_schemas_and_read_back() {
        let key = p256_key();
        let bytes = seal(dsse::IN_TOTO, b"{\"a\":1}", &key);
        assert_eq!(
            bytes,
            seal(dsse::IN_TOTO, b"{\"a\":1}", &key),
            "deterministic"
        );
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["mediaType"], MEDIA_TYPE);
        assert_eq!(
            json["verificationMaterial"],
            serde_json::json!({"publicKey": {"hint": key.public().hint()}, "tlogEntries": []})
        );
        let envelope = &json["dsseEnvelope"];
        assert_eq!(envelope["payloadType"], dsse::IN_TOTO);
        assert_eq!(envelope["signatures"].as_array().unwrap().len(), 1);
        // Only the schema's fields: a strict decoder takes it.
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["dsseEnvelope", "mediaType", "verificationMaterial"]);

        let read = read(&bytes).unwrap();
        assert_eq!(read.hint.as_deref(), Some(key.public().hint().as_str()));
        assert_eq!(read.envelope.payload, b"{\"a\":1}");
        assert!(read.envelope.signed_by(&key.public()));
        assert!(!read.envelope.signed_by(&ed25519_key().public()));
    }

    #[test]
    fn what_is_not_a_key_signed_dsse_bundle_is_named() {
        let error = |json: Value| {
            read(&serde_json::to_vec(&json).unwrap())
                .unwrap_err()
                .to_string()
        };
        let material = serde_json::json!({"publicKey": {"hint": "x"}});
        assert!(
            error(serde_json::json!({"mediaType": MEDIA_TYPE, "verificationMaterial": material, "messageSignature": {}}))
                .contains("message signature")
        );
        assert!(
            error(serde_json::json!({"mediaType": "application/json", "verificationMaterial": material}))
                .contains("not a Sigstore bundle")
        );
        assert!(error(serde_json::json!([])).contains("not a Sigstore bundle"));
        let unsigned = serde_json::json!({"mediaType": MEDIA_TYPE, "verificationMaterial": material,
            "dsseEnvelope": {"payload": "e30=", "payloadType": dsse::IN_TOTO, "signatures": []}});
        let read = read(&serde_json::to_vec(&unsigned).unwrap()).unwrap();
        assert!(!read.envelope.is_signed());
    }
}
