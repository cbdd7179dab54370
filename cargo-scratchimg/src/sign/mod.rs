//! Signing what the tool makes, with a key the user gives: [`key`] reads PKCS#8 PEM keys
//! (ECDSA P-256, Ed25519) and signs deterministically; [`dsse`] wraps in-toto statements in
//! signed envelopes; [`cosign`] makes the payload `cosign verify --key` checks. Keyless
//! signing (Fulcio certificates, a Rekor log) needs those services, so it is not here.

pub(crate) mod cosign;
pub(crate) mod dsse;
pub(crate) mod key;

use std::path::PathBuf;

pub(crate) use key::{SigningKey, VerifyingKey};

/// Where `--sign-key` or `--sign-key-stdin` gives the key.
#[derive(Clone, Default)]
pub enum KeySource {
    #[default]
    None,
    /// A PEM file.
    File(PathBuf),
    /// PEM text read from stdin by `main`; never shown.
    Text(zeroize::Zeroizing<String>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::None => write!(f, "None"),
            KeySource::File(path) => write!(f, "File({path:?})"),
            KeySource::Text(_) => write!(f, "Text(…)"),
        }
    }
}

impl KeySource {
    /// The key, read and parsed: `None` without one.
    pub(crate) fn load(&self) -> anyhow::Result<Option<SigningKey>> {
        use anyhow::Context;
        match self {
            KeySource::None => Ok(None),
            KeySource::File(path) => {
                let text = zeroize::Zeroizing::new(std::fs::read(path).with_context(|| {
                    format!(
                        "could not read --sign-key {}\nhelp: give the path of a PEM private key",
                        path.display()
                    )
                })?);
                let text = String::from_utf8_lossy(&text);
                let origin = format!("--sign-key {}", path.display());
                let key = SigningKey::from_pem(&text, &origin);
                if let std::borrow::Cow::Owned(mut owned) = text {
                    zeroize::Zeroize::zeroize(&mut owned);
                }
                key.map(Some)
            }
            KeySource::Text(text) => {
                SigningKey::from_pem(text, "the key from --sign-key-stdin").map(Some)
            }
        }
    }
}
