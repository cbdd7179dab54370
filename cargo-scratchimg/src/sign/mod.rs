//! Signing what the tool makes, with a key the user gives: [`key`] reads PKCS#8 PEM keys
//! (ECDSA P-256, Ed25519) and signs deterministically; [`dsse`] wraps in-toto statements in
//! signed envelopes, which [`bundle`] puts in Sigstore bundles; [`cosign`] makes the payload of
//! cosign's older `.sig` signatures. Keyless signing (Fulcio certificates, a Rekor log) needs
//! those services, so it is not here.

pub(crate) mod bundle;
pub(crate) mod cosign;
pub(crate) mod dsse;
pub(crate) mod key;

use std::path::PathBuf;

pub(crate) use key::{SigningKey, VerifyingKey};

/// `--sign-format`: how an image's signature and signed attestations are kept beside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignFormat {
    /// Sigstore bundles v0.3 as OCI referrers, as cosign 3 writes them.
    #[default]
    Bundle,
    /// cosign's `sha256-<hex>.sig` tag and bare DSSE envelopes as referrers, for cosign 2 and
    /// Kyverno's `type: Cosign`.
    Legacy,
    /// Both, side by side.
    Both,
}

impl SignFormat {
    pub const ALL: [SignFormat; 3] = [SignFormat::Bundle, SignFormat::Legacy, SignFormat::Both];

    pub fn name(self) -> &'static str {
        match self {
            SignFormat::Bundle => "bundle",
            SignFormat::Legacy => "legacy",
            SignFormat::Both => "both",
        }
    }

    pub(crate) fn bundle(self) -> bool {
        matches!(self, SignFormat::Bundle | SignFormat::Both)
    }

    pub(crate) fn legacy(self) -> bool {
        matches!(self, SignFormat::Legacy | SignFormat::Both)
    }
}

/// A key to sign with, and the format of what it signs.
#[derive(Clone, Copy)]
pub(crate) struct Signer<'a> {
    pub key: &'a SigningKey,
    pub format: SignFormat,
}

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
