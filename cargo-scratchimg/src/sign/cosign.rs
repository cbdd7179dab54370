//! The signature `cosign verify --key` checks: a simple-signing payload naming the image's
//! manifest digest, signed with the key, kept under the tag `sha256-<hex>.sig` as cosign's own
//! (the manifest that holds it is made by the attest module's `cosign_manifest`).

use oci_spec::image::Digest;
use serde::Serialize;

/// The media type of a simple-signing payload layer.
pub(crate) const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The predicate type of the statement cosign 3 signs for an image (`cosign sign`), its
/// predicate empty and its subject the manifest digest.
pub(crate) const SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The layer annotation that holds the base64 signature.
pub(crate) const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

#[derive(Serialize)]
struct Payload<'a> {
    critical: Critical<'a>,
    optional: Option<()>,
}

#[derive(Serialize)]
struct Critical<'a> {
    identity: Identity<'a>,
    image: Image,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Identity<'a> {
    #[serde(rename = "docker-reference")]
    docker_reference: &'a str,
}

#[derive(Serialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The payload cosign signs for `digest` in `repository` (`registry/name`, no tag).
pub(crate) fn payload(repository: &str, digest: &Digest) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: repository,
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: "cosign container image signature",
        },
        optional: None,
    };
    crate::image::json::to_vec(&payload).expect("a payload encodes")
}

/// The digest a simple-signing payload names, if it is one.
pub(crate) fn signed_digest(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    (value["critical"]["type"] == "cosign container image signature")
        .then(|| {
            value["critical"]["image"]["docker-manifest-digest"]
                .as_str()
                .map(str::to_string)
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosigns() {
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let bytes = payload("127.0.0.1:5000/hello", &digest);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/hello"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        assert_eq!(signed_digest(&bytes), Some(digest.to_string()));
        assert_eq!(signed_digest(b"{}"), None);
    }
}
