//! DSSE envelopes (Dead Simple Signing Envelope, v1): a payload, its type, and signatures over
//! the pre-authentication encoding of both, as in-toto and Sigstore sign attestations.

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::key::{SigningKey, VerifyingKey};

/// The media type of an envelope as a blob.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The payload type of an in-toto statement.
pub(crate) const IN_TOTO: &str = "application/vnd.in-toto+json";

/// An envelope as JSON has it: the payload in base64, and each signature with the id of its key.
/// A Sigstore bundle's `dsseEnvelope` has the same fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope {
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

/// `payload` of `payload_type` in an envelope signed by `key`, its `keyid` the key's.
pub(crate) fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Envelope {
    let signature = key.sign(&pae(payload_type, payload));
    Envelope {
        payload_type: payload_type.to_string(),
        payload: STANDARD.encode(payload),
        signatures: vec![Signature {
            keyid: key.public().keyid(),
            sig: STANDARD.encode(signature),
        }],
    }
}

/// [`sign`], as canonical JSON.
pub(crate) fn seal(payload_type: &str, payload: &[u8], key: &SigningKey) -> Vec<u8> {
    crate::image::json::to_vec(&sign(payload_type, payload, key)).expect("an envelope encodes")
}

/// What an envelope holds, read but not yet checked against a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    pub payload_type: String,
    pub payload: Vec<u8>,
    /// The `keyid` of each signature (empty where none is given), and its bytes.
    signatures: Vec<(String, Vec<u8>)>,
}

impl Opened {
    /// Whether one of its signatures is `key`'s over the payload and its type.
    pub(crate) fn signed_by(&self, key: &VerifyingKey) -> bool {
        let signed = pae(&self.payload_type, &self.payload);
        self.signatures
            .iter()
            .any(|(_, sig)| key.verify(&signed, sig))
    }

    /// The key ids its signatures name, for saying who signed what we could not check.
    pub(crate) fn keyids(&self) -> Vec<&str> {
        let ids = self.signatures.iter().map(|(id, _)| id.as_str());
        ids.filter(|id| !id.is_empty()).collect()
    }

    pub(crate) fn is_signed(&self) -> bool {
        !self.signatures.is_empty()
    }

    pub(crate) fn signature_count(&self) -> usize {
        self.signatures.len()
    }
}

impl Envelope {
    /// Its payload and signatures decoded.
    pub(crate) fn opened(&self) -> Result<Opened> {
        let payload = STANDARD
            .decode(&self.payload)
            .context("its payload is not base64")?;
        let signatures = self
            .signatures
            .iter()
            .map(|s| {
                let sig = STANDARD
                    .decode(&s.sig)
                    .context("a signature is not base64")?;
                Ok((s.keyid.clone(), sig))
            })
            .collect::<Result<_>>()?;
        Ok(Opened {
            payload_type: self.payload_type.clone(),
            payload,
            signatures,
        })
    }
}

/// An envelope's bytes, read.
pub(crate) fn read(envelope: &[u8]) -> Result<Opened> {
    let envelope: Envelope =
        serde_json::from_slice(envelope).context("it is not a DSSE envelope")?;
    envelope.opened()
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
            let opened = read(&sealed).unwrap();
            assert!(opened.signed_by(&key.public()));
            assert_eq!(opened.payload, b"{\"a\":1}");
            assert_eq!(opened.payload_type, IN_TOTO);
            assert_eq!(opened.keyids(), [key.public().keyid()]);
            // Another payload under the same signature fails.
            let mut envelope: Envelope = serde_json::from_slice(&sealed).unwrap();
            envelope.payload = STANDARD.encode(b"{\"a\":2}");
            assert!(!envelope.opened().unwrap().signed_by(&key.public()));
            // So does another payload type.
            let mut envelope: Envelope = serde_json::from_slice(&sealed).unwrap();
            envelope.payload_type = "text/plain".into();
            assert!(!envelope.opened().unwrap().signed_by(&key.public()));
        }
        let other = ed25519_key();
        assert!(
            !read(&seal(IN_TOTO, b"x", &p256_key()))
                .unwrap()
                .signed_by(&other.public())
        );
        assert!(read(b"{}").is_err());
    }
}
