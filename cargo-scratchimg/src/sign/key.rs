//! Signing keys from PEM: PKCS#8 (or SEC1) ECDSA P-256 and Ed25519, with RustCrypto's `p256`
//! and `ed25519-dalek`. ECDSA signs with RFC 6979 deterministic nonces, so signatures are as
//! reproducible as the bytes they sign. The key's text is never shown, only its kind.

use anyhow::{Result, bail};
use pkcs8::der::{Decode, pem};
use pkcs8::spki::{EncodePublicKey, SubjectPublicKeyInfoRef};
use pkcs8::{DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The algorithms we name in errors, by OID.
fn algorithm_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA".into(),
        "1.2.840.113549.1.1.10" => "RSA-PSS".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.3.101.110" | "1.3.101.111" => "X25519/X448 (key agreement, not signing)".into(),
        "1.3.132.0.34" => "P-384".into(),
        "1.3.132.0.35" => "P-521".into(),
        "1.3.132.0.10" => "secp256k1".into(),
        other => format!("algorithm {other}"),
    }
}

const SUPPORTED: &str = "an ECDSA P-256 or Ed25519 key in PKCS#8 PEM, e.g. from `openssl genpkey -algorithm ed25519 -out key.pem` or `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out key.pem`";

/// A private key that signs.
pub(crate) enum SigningKey {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A public key that checks signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// The PEM blocks of `text`, label and base64 body, in order; text around them is left out.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let end_line = format!("-----END {label}-----");
        let Some(end) = after.find(&end_line) else {
            break;
        };
        let whole = &rest[start..start + 11 + end + end_line.len()];
        found.push((label, whole.to_string()));
        rest = &after[end + end_line.len()..];
    }
    found
}

impl SigningKey {
    /// Reads a private key from PEM text. `origin` names where it came from in errors
    /// (`--sign-key key.pem`, `the key on stdin`).
    pub(crate) fn from_pem(text: &str, origin: &str) -> Result<SigningKey> {
        let blocks = blocks(text);
        let keys: Vec<&(String, String)> = blocks
            .iter()
            .filter(|(label, _)| label != "EC PARAMETERS")
            .collect();
        let [(label, block)] = keys.as_slice() else {
            if keys.is_empty() {
                bail!("{origin} holds no PEM private key\nhelp: give {SUPPORTED}");
            }
            bail!(
                "{origin} holds {} PEM blocks; give one private key\nhelp: give {SUPPORTED}",
                keys.len()
            );
        };
        if block.contains("Proc-Type: 4,ENCRYPTED") || label.starts_with("ENCRYPTED") {
            let help = if label.contains("SIGSTORE") || label.contains("COSIGN") {
                "cosign's own key files are encrypted with its password; use a PKCS#8 key (cosign can import one with `cosign import-key-pair`)".to_string()
            } else {
                "decrypt it into the pipe, never onto disk: `openssl pkey -in KEY | cargo scratchimg --sign-key-stdin ...`".to_string()
            };
            bail!(
                "{origin} is an encrypted private key ({label}), which cannot be read without its password\nhelp: {help}"
            );
        }
        let der = || -> Result<Zeroizing<Vec<u8>>> {
            match pem::decode_vec(block.as_bytes()) {
                Ok((_, der)) => Ok(Zeroizing::new(der)),
                Err(_) => {
                    bail!("{origin}: the {label} block is not valid PEM\nhelp: give {SUPPORTED}")
                }
            }
        };
        match label.as_str() {
            "PRIVATE KEY" => {
                let der = der()?;
                let Ok(info) = PrivateKeyInfo::from_der(&der) else {
                    bail!(
                        "{origin}: the PRIVATE KEY block is not a PKCS#8 key\nhelp: give {SUPPORTED}"
                    );
                };
                let oid = info.algorithm.oid;
                if oid == EC_PUBLIC_KEY {
                    let curve = info.algorithm.parameters_oid().ok();
                    if curve != Some(PRIME256V1) {
                        let name = curve.map_or("an unnamed curve".into(), algorithm_name);
                        bail!(
                            "{origin} is an ECDSA key on {name}, which cargo-scratchimg does not sign with\nhelp: give {SUPPORTED}"
                        );
                    }
                    let key = p256::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(|_| {
                        anyhow::anyhow!(
                            "{origin}: the ECDSA P-256 key does not parse\nhelp: give {SUPPORTED}"
                        )
                    })?;
                    Ok(SigningKey::P256(key))
                } else if oid == ED25519 {
                    let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(|_| {
                        anyhow::anyhow!(
                            "{origin}: the Ed25519 key does not parse\nhelp: give {SUPPORTED}"
                        )
                    })?;
                    Ok(SigningKey::Ed25519(key))
                } else {
                    bail!(
                        "{origin} is an {} key, which cargo-scratchimg does not sign with\nhelp: give {SUPPORTED}",
                        algorithm_name(oid)
                    )
                }
            }
            "EC PRIVATE KEY" => {
                let der = der()?;
                let key = p256::SecretKey::from_sec1_der(&der).map_err(|_| {
                    anyhow::anyhow!("{origin} is an EC key that is not on P-256, or does not parse\nhelp: give {SUPPORTED}")
                })?;
                Ok(SigningKey::P256(key.into()))
            }
            "RSA PRIVATE KEY" => {
                bail!(
                    "{origin} is an RSA key, which cargo-scratchimg does not sign with\nhelp: give {SUPPORTED}"
                )
            }
            "PUBLIC KEY" => bail!(
                "{origin} is a public key; signing needs the private key\nhelp: give {SUPPORTED}; the public key is for `cargo scratchimg verify --key`"
            ),
            "CERTIFICATE" => {
                bail!("{origin} is a certificate, not a private key\nhelp: give {SUPPORTED}")
            }
            other => {
                bail!("{origin} holds a {other} block, not a private key\nhelp: give {SUPPORTED}")
            }
        }
    }

    /// The signature of `message`: ASN.1 DER for ECDSA (SHA-256, RFC 6979 nonces), the 64 raw
    /// bytes for Ed25519; what cosign, securesystemslib and openssl check.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        match self {
            SigningKey::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            SigningKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }

    pub(crate) fn public(&self) -> VerifyingKey {
        match self {
            SigningKey::P256(key) => VerifyingKey::P256(*key.verifying_key()),
            SigningKey::Ed25519(key) => VerifyingKey::Ed25519(key.verifying_key()),
        }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({}, {})",
            self.public().kind(),
            self.public().keyid()
        )
    }
}

impl VerifyingKey {
    /// Reads a public key (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo) from PEM text.
    pub(crate) fn from_pem(text: &str, origin: &str) -> Result<VerifyingKey> {
        const HELP: &str = "give the PEM public key of an ECDSA P-256 or Ed25519 signing key, e.g. from `openssl pkey -in key.pem -pubout -out key.pub`";
        let blocks = blocks(text);
        let Some((label, block)) = blocks.iter().find(|(label, _)| label == "PUBLIC KEY") else {
            match blocks.first() {
                Some((label, _)) if label.contains("PRIVATE KEY") => bail!(
                    "{origin} is a private key; give the public key, which is safe to share\nhelp: {HELP}"
                ),
                Some((label, _)) => {
                    bail!("{origin} holds a {label} block, not a public key\nhelp: {HELP}")
                }
                None => bail!("{origin} holds no PEM public key\nhelp: {HELP}"),
            }
        };
        let Ok((_, der)) = pem::decode_vec(block.as_bytes()) else {
            bail!("{origin}: the {label} block is not valid PEM\nhelp: {HELP}");
        };
        let Ok(info) = SubjectPublicKeyInfoRef::try_from(der.as_slice()) else {
            bail!("{origin}: the PUBLIC KEY block does not parse\nhelp: {HELP}");
        };
        let oid = info.algorithm.oid;
        let key = if oid == EC_PUBLIC_KEY
            && info.algorithm.parameters_oid().ok() == Some(PRIME256V1)
        {
            use p256::pkcs8::DecodePublicKey;
            p256::ecdsa::VerifyingKey::from_public_key_der(&der)
                .ok()
                .map(VerifyingKey::P256)
        } else if oid == ED25519 {
            use ed25519_dalek::pkcs8::DecodePublicKey;
            ed25519_dalek::VerifyingKey::from_public_key_der(&der)
                .ok()
                .map(VerifyingKey::Ed25519)
        } else {
            let name = if oid == EC_PUBLIC_KEY {
                info.algorithm
                    .parameters_oid()
                    .map_or("ECDSA on an unnamed curve".into(), |o| {
                        format!("ECDSA {}", algorithm_name(o))
                    })
            } else {
                algorithm_name(oid)
            };
            bail!(
                "{origin} is an {name} public key, which cargo-scratchimg does not verify\nhelp: {HELP}"
            );
        };
        key.ok_or_else(|| anyhow::anyhow!("{origin}: the public key does not parse\nhelp: {HELP}"))
    }

    /// Whether `signature` (as [`SigningKey::sign`] makes it) is this key's over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        match self {
            VerifyingKey::P256(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|s| key.verify(message, &s).is_ok()),
            VerifyingKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| key.verify_strict(message, &s).is_ok()),
        }
    }

    /// SubjectPublicKeyInfo DER.
    fn der(&self) -> Vec<u8> {
        let der = match self {
            VerifyingKey::P256(key) => key.to_public_key_der(),
            VerifyingKey::Ed25519(key) => key.to_public_key_der(),
        };
        der.expect("a valid public key encodes").into_vec()
    }

    /// The PEM public key, as `openssl pkey -pubout` writes it.
    #[cfg(test)]
    pub(crate) fn to_pem(&self) -> String {
        use pkcs8::LineEnding;
        let pem = match self {
            VerifyingKey::P256(key) => key.to_public_key_pem(LineEnding::LF),
            VerifyingKey::Ed25519(key) => key.to_public_key_pem(LineEnding::LF),
        };
        pem.expect("a valid public key encodes")
    }

    /// The key's id in DSSE envelopes: the hex SHA-256 of its SubjectPublicKeyInfo DER, the
    /// same whatever tool reads the key.
    pub(crate) fn keyid(&self) -> String {
        format!("{:x}", Sha256::digest(self.der()))
    }

    /// The key's hint in Sigstore bundles (`verificationMaterial.publicKey.hint`): the base64
    /// SHA-256 of its SubjectPublicKeyInfo DER, as sigstore-go and cosign compute it.
    pub(crate) fn hint(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(self.der()))
    }

    /// `ecdsa-p256` or `ed25519`, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            VerifyingKey::P256(_) => "ECDSA P-256",
            VerifyingKey::Ed25519(_) => "Ed25519",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// RFC 6979 A.2.5's P-256 key, in PKCS#8.
    pub(crate) fn p256_key() -> SigningKey {
        let scalar = hex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
        SigningKey::P256(p256::ecdsa::SigningKey::from_slice(&scalar).unwrap())
    }

    pub(crate) fn ed25519_key() -> SigningKey {
        SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pkcs8_pem(key: &SigningKey) -> String {
        use pkcs8::{EncodePrivateKey, LineEnding};
        let pem = match key {
            SigningKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF).unwrap(),
            SigningKey::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF).unwrap(),
        };
        pem.to_string()
    }

    #[test]
    fn ecdsa_signatures_are_rfc6979s() {
        // RFC 6979 A.2.5, P-256 with SHA-256, message "sample".
        let key = p256_key();
        let der = key.sign(b"sample");
        let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
        assert_eq!(
            signature.to_bytes().to_vec(),
            hex(
                "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
            )
        );
        assert_eq!(key.sign(b"sample"), der, "the same every time");
        assert!(key.public().verify(b"sample", &der));
        assert!(!key.public().verify(b"samplf", &der));
    }

    #[test]
    fn keys_read_back_from_pem() {
        for key in [p256_key(), ed25519_key()] {
            let again = SigningKey::from_pem(&pkcs8_pem(&key), "k").unwrap();
            assert_eq!(again.public(), key.public());
            let public = VerifyingKey::from_pem(&key.public().to_pem(), "p").unwrap();
            let signature = again.sign(b"payload");
            assert!(public.verify(b"payload", &signature));
            assert!(!public.verify(b"payloae", &signature));
            assert_eq!(public.keyid().len(), 64);
            // The hint is the same digest as the keyid, in base64.
            use base64::Engine as _;
            let hint = base64::engine::general_purpose::STANDARD
                .decode(public.hint())
                .unwrap();
            let hex: String = hint.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, public.keyid());
        }
    }

    #[test]
    fn what_is_not_a_usable_key_is_named() {
        let error = |text: &str| {
            SigningKey::from_pem(text, "--sign-key k.pem")
                .unwrap_err()
                .to_string()
        };
        assert!(
            error("hello").starts_with("--sign-key k.pem holds no PEM private key\nhelp: give")
        );
        let public = ed25519_key().public().to_pem();
        assert!(
            error(&public)
                .starts_with("--sign-key k.pem is a public key; signing needs the private key")
        );
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let said = error(encrypted);
        assert!(
            said.starts_with(
                "--sign-key k.pem is an encrypted private key (ENCRYPTED PRIVATE KEY)"
            ),
            "{said}"
        );
        assert!(said.contains("help: decrypt it into the pipe"), "{said}");
        let cosign = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJr\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
        assert!(error(cosign).contains("cosign's own key files"));
        // An RSA key in PKCS#8 (a 512-bit one: only its algorithm is read).
        let rsa = "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAqfKO2A2lVmVyjxRJ\nyvlpciGq6DP8l0BUcZp2AdopT3Nk2rFxTVTKJYVyo4zCLkH9/5ueDCKMSIkibiqu\nZfYjnQIDAQABAkAjrTXriUHSV02rV7j+EUnfmc3FHVTDc8/GYYSwctoFQX6KsD3C\nwIsLDv3rQJADKaGWmUkUX4LjxCwrepg2qi0BAiEA3TBIlHm5wn/bYE6OjmCIyN8s\nD/Vz92LM46Lgu7CpZaECIQDEscN42XFQ5KGIABjmJEEaB7V8ykTn00HPYTZ0CwkE\nfQIgV/dr5iDDD+dph9O2PkmGHN0k2PP1Ot3APof4eKy5sgECIQCr7MVzKH0HvBAF\nFDCvWRkea4aTISnBiMKJReuW2t5y8QIge24jA2RT4/CIqc5MQvUIHwsrq7kX5wVQ\nlA6GTjFHYMY=\n-----END PRIVATE KEY-----\n";
        let p384 = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBB/P1mKuHcaFnGzRWg\nQetRNlOKvSA7uTlnW5Ga81C4s7PmYiRIwfzckPQfOHFRGqKhZANiAARnV5c+CKjo\n9gvxK1BjzTlyS/c/GsEk0ILUkT5fv+o3aJYLmnLr8hjqOZvRMANVSNnMpGVsKBDq\nxOxphdXXH3HCLYVf42fLOSHbuqn4xkV/Z6K1vhZi0FmxvQVMeI2V6Ao=\n-----END PRIVATE KEY-----\n";
        assert!(
            error(p384).starts_with("--sign-key k.pem is an ECDSA key on P-384, which"),
            "{}",
            error(p384)
        );
        let said = error(rsa);
        assert!(
            said.starts_with(
                "--sign-key k.pem is an RSA key, which cargo-scratchimg does not sign with"
            ),
            "{said}"
        );
        let two = format!("{}{}", pkcs8_pem(&p256_key()), pkcs8_pem(&ed25519_key()));
        assert!(error(&two).contains("holds 2 PEM blocks"));
        // The secret never shows in an error.
        let text = pkcs8_pem(&p256_key());
        let body: String = text.lines().nth(1).unwrap().to_string();
        let bad = text.replace("PRIVATE KEY", "PRIVATE  KEY");
        assert!(!error(&bad).contains(&body));
    }

    #[test]
    fn verify_takes_only_public_keys() {
        let error = |text: &str| {
            VerifyingKey::from_pem(text, "--key k.pub")
                .unwrap_err()
                .to_string()
        };
        assert!(error(&pkcs8_pem(&p256_key())).starts_with("--key k.pub is a private key"));
        assert!(error("").starts_with("--key k.pub holds no PEM public key"));
    }
}
