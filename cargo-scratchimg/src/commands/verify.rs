//! `cargo scratchimg verify REF --key PUB.pem…`: what a registry holds for an image, checked
//! against public keys. For the image (and each platform image of an index), each key must have
//! signed its digest (a Sigstore bundle among its referrers, or cosign's `sha256-<hex>.sig`) and
//! a SLSA provenance about it. Every other SBOM, attestation and signature there is judged too
//! ([`crate::attest::audit`]); what the keys do not verify is named, and `--strict` refuses it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use oci_spec::image::Digest;
use serde_json::Value;

use crate::attest::audit::{self, Claim, Fetched, Judged};
use crate::attest::referrer::cosign_tag;
use crate::image::{Repository, short_digest};
use crate::registry::referrers::{INDEX_MEDIA_TYPE, Via};
use crate::registry::{ClientOptions, Registry, Session};
use crate::report::Reporter;
use crate::sign::{VerifyingKey, cosign};
use crate::text::one_line;

/// What `verify` is asked to check.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// `REGISTRY/REPO[:TAG]` or `REGISTRY/REPO@sha256:…`.
    pub reference: String,
    /// The PEM public keys; each must have signed the image and its provenance.
    pub keys: Vec<PathBuf>,
    /// Any SBOM, attestation or signature the keys do not verify is an error.
    pub strict: bool,
    pub registry: ClientOptions,
}

/// What `verify` found: the image's digest, one line per thing verified, and one per referrer
/// that was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// `REGISTRY/REPO@sha256:…`.
    pub reference: String,
    pub found: Vec<String>,
    pub unverified: Vec<String>,
}

/// Blobs of attestations are documents; an SBOM of a large program is a few MiB.
const ATTESTATION_LIMIT: u64 = 64 * 1024 * 1024;
/// A subject with more referrers than this is refused rather than read one by one.
const MAX_REFERRERS: usize = 1000;

/// A key `verify` was given, and how messages name it.
struct Key {
    key: VerifyingKey,
    /// `the ECDSA P-256 key k1.pub`
    name: String,
}

/// The repository and the tag or digest of `reference`.
fn parse_reference(reference: &str) -> Result<(Repository, String)> {
    let help = "help: name the image as REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:<hex>";
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => {
            let parsed: Digest = digest
                .parse()
                .map_err(|_| anyhow::anyhow!("`{digest}` is not a digest\n{help}"))?;
            (name, Some(parsed.to_string()))
        }
        None => (reference, None),
    };
    let (name, tag) = crate::image::split_tag(name)?;
    let repository: Repository = name
        .parse()
        .with_context(|| format!("invalid reference `{reference}`"))?;
    let which = match (digest, tag) {
        (Some(digest), _) => digest,
        (None, Some(tag)) => tag.to_string(),
        (None, None) => "latest".to_string(),
    };
    Ok((repository, which))
}

/// Checks what the registry holds for `options.reference` against the keys. Each finding is a
/// status line as it is made; a key without a signature or provenance fails it, listing all.
pub fn verify_remote(options: &VerifyOptions, report: &dyn Reporter) -> Result<Verification> {
    let (repository, which) = parse_reference(&options.reference)?;
    let keys = options
        .keys
        .iter()
        .map(|path| {
            let bytes = crate::input_file::read(path, crate::input_file::KEY_LIMIT)
                .with_context(|| {
                    format!(
                        "could not read --key {}\nhelp: give the PEM public key the image was signed for",
                        path.display()
                    )
                })?;
            let text = String::from_utf8_lossy(&bytes);
            let key = VerifyingKey::from_pem(&text, &format!("--key {}", path.display()))?;
            let name = format!("the {} key {}", key.kind(), path.display());
            Ok(Key { key, name })
        })
        .collect::<Result<Vec<_>>>()?;
    let registry = Registry::connect(repository.registry(), &options.registry, report)?;
    let session = registry.read_session(repository.repository(), report)?;
    let place = format!("{}/{}", repository.registry(), repository.repository());
    let Some(top) = session.get_manifest(&which)? else {
        bail!(
            "{place} has no manifest {which}\nhelp: check the reference; `skopeo inspect docker://{place}:{which}` shows what is there"
        );
    };
    let mut subjects = vec![(top.digest.clone(), "image".to_string())];
    if top.media_type == INDEX_MEDIA_TYPE {
        let index: Value = serde_json::from_slice(&top.bytes).context("the index is not JSON")?;
        for entry in index["manifests"].as_array().into_iter().flatten() {
            let platform = &entry["platform"];
            let name = format!(
                "{}/{}",
                one_line(platform["os"].as_str().unwrap_or("?"), 20),
                one_line(platform["architecture"].as_str().unwrap_or("?"), 20)
            );
            if let Some(digest) = entry["digest"].as_str().and_then(|d| d.parse().ok()) {
                subjects.push((digest, format!("{name} image")));
            }
        }
        subjects[0].1 = "index".into();
    }
    let mut audit = Audit {
        session: &session,
        keys: &keys,
        verifying: keys.iter().map(|k| k.key.clone()).collect(),
        found: Vec::new(),
        unverified: Vec::new(),
        problems: Vec::new(),
        report,
    };
    for (digest, what) in &subjects {
        audit.subject(digest, &format!("{what} {}", short_digest(digest)))?;
    }
    let reference = format!("{place}@{}", top.digest);
    let Audit {
        found,
        unverified,
        problems,
        ..
    } = audit;
    if !problems.is_empty() {
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        bail!(
            "{reference} did not verify with {}:\n  - {}\nhelp: sign with `cargo scratchimg --push … --sign-key KEY` using the private key of each --key",
            names.join(" and "),
            problems.join("\n  - "),
        );
    }
    if options.strict && !unverified.is_empty() {
        bail!(
            "{reference}: {} referrer{} not verified with the keys (--strict):\n  - {}\nhelp: sign them with one of the keys, or delete them from the registry; without --strict they are listed and the image verifies",
            unverified.len(),
            if unverified.len() == 1 {
                " is"
            } else {
                "s are"
            },
            unverified.join("\n  - "),
        );
    }
    Ok(Verification {
        reference,
        found,
        unverified,
    })
}

/// The checks of every subject, collecting what they find.
struct Audit<'a> {
    session: &'a Session<'a>,
    keys: &'a [Key],
    /// The keys alone, as the judgements take them.
    verifying: Vec<VerifyingKey>,
    found: Vec<String>,
    unverified: Vec<String>,
    problems: Vec<String>,
    report: &'a dyn Reporter,
}

impl Audit<'_> {
    fn verified(&mut self, line: String) {
        self.report.status("Verified", &line);
        self.found.push(line);
    }

    /// `line` says what the registry holds: on one line, nothing in it passing for ours.
    fn not_verified(&mut self, line: String) {
        let line = one_line(&line, 600);
        self.report.status("Unverified", &line);
        self.unverified.push(line);
    }

    /// The signatures and referrers of one manifest: `what` is `image sha256:…`.
    fn subject(&mut self, digest: &Digest, what: &str) -> Result<()> {
        let mut claims: Vec<(usize, Claim)> = Vec::new();
        for key in self.cosign_signatures(digest, what)? {
            claims.push((key, Claim::Signature));
        }
        let (via, listed) = self.session.referrers(digest)?;
        if listed.len() > MAX_REFERRERS {
            bail!(
                "{what} has {} referrers; cargo-scratchimg reads at most {MAX_REFERRERS}\nhelp: delete the ones you do not need from the registry",
                listed.len()
            );
        }
        let via = match via {
            Via::Api => "referrers API",
            Via::Tag => "referrers tag schema",
        };
        let mut plain = Vec::new();
        for entry in &listed {
            let Some(referrer) = entry["digest"].as_str() else {
                self.not_verified(format!("{what}: a referrer is listed without a digest"));
                continue;
            };
            let referrer = one_line(referrer, 80);
            if referrer.parse::<Digest>().is_err() {
                self.not_verified(format!(
                    "{what}: a referrer is listed as {referrer:?}, not a digest"
                ));
                continue;
            }
            let listed_type = entry["artifactType"].as_str();
            let (judged, own_type) = self.judge(digest, &referrer, listed_type);
            let named = format!("{what}: {} referrer {referrer}", one_line(&own_type, 80));
            match judged {
                Judged::Signed(signed) => {
                    for one in signed {
                        self.verified(format!(
                            "{named}: {} signed by {} ({}, {via})",
                            one.claim.describe(),
                            self.keys[one.key].name,
                            one.kept_in
                        ));
                        claims.push((one.key, one.claim));
                    }
                }
                Judged::Sbom(documents) => plain.push((named, documents)),
                Judged::Unverified(why) => self.not_verified(format!("{named}: {why}")),
                Judged::Foreign => self.report.status(
                    "Skipping",
                    &format!("{named}: not an SBOM, attestation or signature"),
                ),
            }
        }
        // A plain SBOM counts once signed SBOM statements name each of its documents.
        let vouched: Vec<&String> = claims
            .iter()
            .flat_map(|(_, claim)| match claim {
                Claim::Sbom { documents } => documents.iter().collect(),
                _ => Vec::new(),
            })
            .collect();
        for (named, documents) in plain {
            match documents.iter().find(|d| !vouched.contains(d)) {
                None => self.verified(format!(
                    "{named}: SBOM named by a signed SBOM attestation"
                )),
                Some(document) => self.not_verified(format!(
                    "{named}: unsigned (no SBOM attestation signed with the keys names its document {})",
                    one_line(document, 80)
                )),
            }
        }
        for (index, key) in self.keys.iter().enumerate() {
            let has = |wanted: &Claim| claims.iter().any(|(k, c)| *k == index && c == wanted);
            if !has(&Claim::Signature) {
                self.problems
                    .push(format!("{what}: no signature by {}", key.name));
            }
            if !has(&Claim::Provenance) {
                self.problems
                    .push(format!("{what}: no SLSA provenance signed by {}", key.name));
            }
        }
        Ok(())
    }

    /// One referrer of `subject`, fetched and judged; and its type, from its manifest.
    fn judge(&self, subject: &Digest, referrer: &str, listed: Option<&str>) -> (Judged, String) {
        let listed_type = listed.unwrap_or("untyped").to_string();
        let manifest = match self.session.get_manifest(referrer) {
            Ok(Some(manifest)) => manifest,
            Ok(None) => {
                let why = "listed, but the registry does not have it".to_string();
                return (Judged::Unverified(why), listed_type);
            }
            Err(error) => {
                let why = format!(
                    "could not be read: {}",
                    one_line(&format!("{error:#}"), 200)
                );
                return (Judged::Unverified(why), listed_type);
            }
        };
        let Ok(manifest) = serde_json::from_slice::<Value>(&manifest.bytes) else {
            let why = "its manifest is not JSON".to_string();
            return (Judged::Unverified(why), listed_type);
        };
        let own_type = audit::artifact_type(&manifest).to_string();
        let mut blobs = BTreeMap::new();
        for layer in audit::layers_to_read(&manifest) {
            // A layer that cannot be read stays out; the judgement says it was not read.
            if let Ok(bytes) = self.session.get_blob(&layer, ATTESTATION_LIMIT) {
                blobs.insert(layer, bytes);
            }
        }
        let fetched = Fetched {
            listed_type: listed,
            manifest: &manifest,
            blobs: &blobs,
        };
        let own_type = if own_type.is_empty() {
            "untyped".to_string()
        } else {
            own_type
        };
        let judged = audit::judge(&fetched, subject.as_ref(), &self.verifying);
        (judged, own_type)
    }

    /// The keys whose cosign signature of `digest` is under `sha256-<hex>.sig`; the layers
    /// there that no key verifies are named.
    fn cosign_signatures(&mut self, digest: &Digest, what: &str) -> Result<Vec<usize>> {
        let tag = cosign_tag(digest);
        let Some(manifest) = self.session.get_manifest(&tag)? else {
            return Ok(Vec::new());
        };
        let manifest: Value = serde_json::from_slice(&manifest.bytes).unwrap_or_default();
        let mut signers = Vec::new();
        let layers = manifest["layers"].as_array().map_or(&[][..], Vec::as_slice);
        for layer in layers.iter().take(audit::MAX_LAYERS) {
            let named = format!(
                "{what}: cosign signature {} in {tag}",
                one_line(layer["digest"].as_str().unwrap_or("?"), 80)
            );
            let signature = layer["annotations"][cosign::SIGNATURE_ANNOTATION]
                .as_str()
                .and_then(|s| base64_decode(s).ok());
            let payload = layer["digest"]
                .as_str()
                .filter(|d| d.parse::<Digest>().is_ok());
            let (Some(payload), Some(signature)) = (payload, signature) else {
                self.not_verified(format!("{named}: unsigned (no signature annotation)"));
                continue;
            };
            let judged = match self.session.get_blob(payload, ATTESTATION_LIMIT) {
                Ok(payload) => {
                    audit::judge_cosign(&payload, &signature, digest.as_ref(), &self.verifying)
                }
                Err(error) => Err(format!("could not be read: {error:#}")),
            };
            match judged {
                Ok(key) => {
                    self.verified(format!(
                        "{named}: signature signed by {}",
                        self.keys[key].name
                    ));
                    signers.push(key);
                }
                Err(why) => self.not_verified(format!("{named}: {}", one_line(&why, 200))),
            }
        }
        Ok(signers)
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_tag_or_a_digest() {
        let (repo, which) = parse_reference("127.0.0.1:5000/a/hello:v1").unwrap();
        assert_eq!(
            (repo.registry(), repo.repository(), which.as_str()),
            ("127.0.0.1:5000", "a/hello", "v1")
        );
        let digest = format!("sha256:{}", "ab".repeat(32));
        let (_, which) = parse_reference(&format!("ghcr.io/a/b@{digest}")).unwrap();
        assert_eq!(which, digest);
        assert_eq!(parse_reference("ghcr.io/a/b").unwrap().1, "latest");
        assert!(
            parse_reference("ghcr.io/a/b@sha256:xyz")
                .unwrap_err()
                .to_string()
                .contains("is not a digest")
        );
    }
}
