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
    /// The key, read and parsed: `None` without one. A key file others can read is a
    /// warning to `report`.
    pub(crate) fn load(
        &self,
        report: &dyn crate::report::Reporter,
    ) -> anyhow::Result<Option<SigningKey>> {
        use anyhow::Context;
        match self {
            KeySource::None => Ok(None),
            KeySource::File(path) => {
                let origin = format!("--sign-key {}", path.display());
                let read = || {
                    let file = crate::input_file::RegularFile::open(path)?;
                    let exposed = file.exposed_key_warning(&origin);
                    Ok::<_, std::io::Error>((file.read(crate::input_file::KEY_LIMIT)?, exposed))
                };
                let (text, exposed) = read().with_context(|| {
                    format!("could not read {origin}\nhelp: give the path of a PEM private key")
                })?;
                let text = zeroize::Zeroizing::new(text);
                let text = String::from_utf8_lossy(&text);
                let key = SigningKey::from_pem(&text, &origin);
                if let std::borrow::Cow::Owned(mut owned) = text {
                    zeroize::Zeroize::zeroize(&mut owned);
                }
                // Only a private key is worth keeping to oneself.
                if let (Ok(_), Some(warning)) = (&key, exposed) {
                    report.warn(&warning);
                }
                key.map(Some)
            }
            KeySource::Text(text) => {
                SigningKey::from_pem(text, "the key from --sign-key-stdin").map(Some)
            }
        }
    }
}
