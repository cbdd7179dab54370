//! DSSE envelopes (Dead Simple Signing Envelope, v1): a payload, its type, and signatures over
//! the pre-authentication encoding of both, as in-toto and Sigstore sign attestations.

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::key::{SigningKey, VerifyingKey};

/// The media type of an envelope as a blob.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The payload type of an in-toto statement.
pub(crate) const IN_TOTO: &str = "application/vnd.in-toto+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Signature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// `PAE(type, body)`: what is signed, so that neither can be swapped for another.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// `payload` of `payload_type` in an envelope signed by `key`, as canonical JSON.
pub(crate) fn seal(payload_type: &str, payload: &[u8], key: &SigningKey) -> Vec<u8> {
    let signature = key.sign(&pae(payload_type, payload));
    let envelope = Envelope {
        payload_type: payload_type.to_string(),
        payload: STANDARD.encode(payload),
        signatures: vec![Signature {
            keyid: key.public().keyid(),
            sig: STANDARD.encode(signature),
        }],
    };
    crate::image::json::to_vec(&envelope).expect("an envelope encodes")
}

/// What a checked envelope holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    pub payload_type: String,
    pub payload: Vec<u8>,
}

/// The payload of `envelope`, once one of its signatures is `key`'s over it; an error naming
/// what is wrong otherwise.
pub(crate) fn open(envelope: &[u8], key: &VerifyingKey) -> Result<Opened> {
    let envelope: Envelope =
        serde_json::from_slice(envelope).context("it is not a DSSE envelope")?;
    let payload = STANDARD
        .decode(&envelope.payload)
        .context("its payload is not base64")?;
    ensure!(!envelope.signatures.is_empty(), "it carries no signature");
    let signed = pae(&envelope.payload_type, &payload);
    let good = envelope.signatures.iter().any(|s| {
        STANDARD
            .decode(&s.sig)
            .is_ok_and(|sig| key.verify(&signed, &sig))
    });
    if !good {
        bail!(
            "none of its {} signature{} is by the {} key {}",
            envelope.signatures.len(),
            if envelope.signatures.len() == 1 {
                ""
            } else {
                "s"
            },
            key.kind(),
            &key.keyid()[..16]
        );
    }
    Ok(Opened {
        payload_type: envelope.payload_type,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::key::tests::{ed25519_key, p256_key};

    #[test]
    fn pae_is_the_specs() {
        // The example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn envelopes_open_with_their_key_only() {
        for key in [p256_key(), ed25519_key()] {
            let sealed = seal(IN_TOTO, b"{\"a\":1}", &key);
            assert_eq!(sealed, seal(IN_TOTO, b"{\"a\":1}", &key), "deterministic");
            let opened = open(&sealed, &key.public()).unwrap();
            assert_eq!(opened.payload, b"{\"a\":1}");
            assert_eq!(opened.payload_type, IN_TOTO);
            // Another payload under the same signature fails.
            let mut envelope: Envelope = serde_json::from_slice(&sealed).unwrap();
            envelope.payload = STANDARD.encode(b"{\"a\":2}");
            let forged = serde_json::to_vec(&envelope).unwrap();
            let error = open(&forged, &key.public()).unwrap_err().to_string();
            assert!(
                error.starts_with("none of its 1 signature is by the"),
                "{error}"
            );
            // So does another payload type.
            let mut envelope: Envelope = serde_json::from_slice(&sealed).unwrap();
            envelope.payload_type = "text/plain".into();
            assert!(open(&serde_json::to_vec(&envelope).unwrap(), &key.public()).is_err());
        }
        let other = ed25519_key();
        assert!(open(&seal(IN_TOTO, b"x", &p256_key()), &other.public()).is_err());
    }
}
