//! `cargo scratchimg verify REF --key PUB.pem`: what a registry holds for an image, checked
//! against a public key. For the image (and each platform image of an index): cosign's
//! signature under `sha256-<hex>.sig` must be the key's over that digest; every SBOM and
//! in-toto artifact among its referrers must be a DSSE envelope signed by the key whose
//! statement names that digest; and there must be a provenance statement among them.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use oci_spec::image::Digest;
use serde_json::Value;

use crate::attest::referrer::{EMPTY_MEDIA_TYPE, cosign_tag};
use crate::attest::{sbom_types, slsa, statement};
use crate::image::{Repository, short_digest};
use crate::registry::referrers::{INDEX_MEDIA_TYPE, Via};
use crate::registry::{ClientOptions, Registry, Session};
use crate::report::{Reporter, one_line};
use crate::sbom::SbomFormat;
use crate::sign::{VerifyingKey, cosign, dsse};

/// What `verify` is asked to check.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// `REGISTRY/REPO[:TAG]` or `REGISTRY/REPO@sha256:…`.
    pub reference: String,
    /// The PEM public key.
    pub key: PathBuf,
    pub registry: ClientOptions,
}

/// What `verify` found: the image's digest, and one line per thing checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// `REGISTRY/REPO@sha256:…`.
    pub reference: String,
    pub found: Vec<String>,
}

/// Blobs of attestations are documents; an SBOM of a large program is a few MiB.
const ATTESTATION_LIMIT: u64 = 64 * 1024 * 1024;

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

/// Checks what the registry holds for `options.reference` against the key. Each finding is a
/// status line as it is made; any problem fails it, listing them all.
pub fn verify_remote(options: &VerifyOptions, report: &dyn Reporter) -> Result<Verification> {
    let (repository, which) = parse_reference(&options.reference)?;
    let text =
        crate::input_file::read(&options.key, crate::input_file::KEY_LIMIT).with_context(|| {
            format!(
                "could not read --key {}\nhelp: give the PEM public key the image was signed for",
                options.key.display()
            )
        })?;
    let text = String::from_utf8_lossy(&text);
    let key = VerifyingKey::from_pem(&text, &format!("--key {}", options.key.display()))?;
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
                platform["os"].as_str().unwrap_or("?"),
                platform["architecture"].as_str().unwrap_or("?")
            );
            if let Some(digest) = entry["digest"].as_str().and_then(|d| d.parse().ok()) {
                subjects.push((digest, format!("{name} image")));
            }
        }
        subjects[0].1 = "index".into();
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (digest, what) in &subjects {
        let mut check = Checker {
            session: &session,
            key: &key,
            digest,
            what,
            found: &mut found,
            problems: &mut problems,
            report,
        };
        check.signature(&place)?;
        check.attestations()?;
    }
    let reference = format!("{place}@{}", top.digest);
    if !problems.is_empty() {
        bail!(
            "{reference} did not verify with the {} key {}:\n  - {}\nhelp: sign with `cargo scratchimg --push … --sign-key KEY` using the private key of {}",
            key.kind(),
            &key.keyid()[..16],
            problems.join("\n  - "),
            options.key.display()
        );
    }
    Ok(Verification { reference, found })
}

/// The checks of one subject, collecting what they find.
struct Checker<'a> {
    session: &'a Session<'a>,
    key: &'a VerifyingKey,
    digest: &'a Digest,
    what: &'a str,
    found: &'a mut Vec<String>,
    problems: &'a mut Vec<String>,
    report: &'a dyn Reporter,
}

impl Checker<'_> {
    /// A finding; what it quotes of the registry is cleaned onto one line.
    fn ok(&mut self, line: String) {
        let line = one_line(&line, 500);
        self.report.status("Verified", &line);
        self.found.push(line);
    }

    /// A problem; what it quotes of the registry is cleaned onto one line, which can then
    /// never pass for a line of ours.
    fn problem(&mut self, line: String) {
        self.problems.push(one_line(
            &format!("{} {}: {line}", self.what, short_digest(self.digest)),
            500,
        ));
    }

    /// cosign's signature of the digest.
    fn signature(&mut self, place: &str) -> Result<()> {
        let tag = cosign_tag(self.digest);
        let Some(manifest) = self.session.get_manifest(&tag)? else {
            self.problem(format!("no signature (no tag {tag})"));
            return Ok(());
        };
        let manifest: Value = serde_json::from_slice(&manifest.bytes).unwrap_or_default();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let (Some(digest), Some(signature)) = (
                layer["digest"].as_str(),
                layer["annotations"][cosign::SIGNATURE_ANNOTATION].as_str(),
            ) else {
                continue;
            };
            let Ok(signature) = base64_decode(signature) else {
                continue;
            };
            let payload = self.session.get_blob(digest, ATTESTATION_LIMIT)?;
            if self.key.verify(&payload, &signature)
                && cosign::signed_digest(&payload).as_deref() == Some(self.digest.as_ref())
            {
                self.ok(format!(
                    "{} {}: cosign signature by the {} key ({tag} in {place})",
                    self.what,
                    short_digest(self.digest),
                    self.key.kind()
                ));
                return Ok(());
            }
        }
        self.problem(format!(
            "{tag} holds no signature by this key over this digest"
        ));
        Ok(())
    }

    /// Every SBOM and in-toto referrer: signed by the key, about this digest.
    fn attestations(&mut self) -> Result<()> {
        let (via, referrers) = self.session.referrers(self.digest)?;
        let ours = [
            sbom_types(SbomFormat::Spdx).0,
            sbom_types(SbomFormat::CycloneDx).0,
            statement::MEDIA_TYPE,
        ];
        let mut provenance = false;
        for referrer in &referrers {
            let artifact_type = referrer["artifactType"].as_str().unwrap_or("");
            let Some(digest) = referrer["digest"].as_str() else {
                continue;
            };
            if !ours.contains(&artifact_type) {
                self.report.status(
                    "Skipping",
                    &format!(
                        "referrer {} of type {}",
                        one_line(digest, 80),
                        one_line(artifact_type, 80)
                    ),
                );
                continue;
            }
            let Some(manifest) = self.session.get_manifest(digest)? else {
                self.problem(format!(
                    "the {artifact_type} referrer {digest} is listed but not there"
                ));
                continue;
            };
            let manifest: Value = serde_json::from_slice(&manifest.bytes).unwrap_or_default();
            if manifest["subject"]["digest"] != self.digest.to_string() {
                self.problem(format!(
                    "the {artifact_type} referrer {digest} is about another image"
                ));
                continue;
            }
            for layer in manifest["layers"].as_array().into_iter().flatten() {
                let media_type = layer["mediaType"].as_str().unwrap_or("");
                let Some(blob) = layer["digest"].as_str() else {
                    continue;
                };
                if media_type == EMPTY_MEDIA_TYPE {
                    continue;
                }
                if media_type != dsse::MEDIA_TYPE {
                    self.problem(format!(
                        "the {artifact_type} referrer {digest} is not signed (a {media_type} layer)"
                    ));
                    continue;
                }
                let envelope = self.session.get_blob(blob, ATTESTATION_LIMIT)?;
                let opened = match dsse::open(&envelope, self.key) {
                    Ok(opened) => opened,
                    Err(error) => {
                        self.problem(format!(
                            "the {artifact_type} envelope {blob} does not verify: {error:#}"
                        ));
                        continue;
                    }
                };
                let parsed = match statement::parse(&opened.payload) {
                    Ok(parsed) if opened.payload_type == dsse::IN_TOTO => parsed,
                    Ok(_) => {
                        self.problem(format!(
                            "the envelope {blob} holds a {}, not an in-toto statement",
                            opened.payload_type
                        ));
                        continue;
                    }
                    Err(error) => {
                        self.problem(format!("the envelope {blob}: {error:#}"));
                        continue;
                    }
                };
                if !parsed.digests.iter().any(|d| d == self.digest.as_ref()) {
                    self.problem(format!(
                        "the signed {} statement in {blob} is about {}, not this digest",
                        parsed.predicate_type,
                        parsed.digests.join(", ")
                    ));
                    continue;
                }
                provenance |= parsed.predicate_type == slsa::PREDICATE_TYPE;
                self.ok(format!(
                    "{} {}: {} statement signed by the {} key ({})",
                    self.what,
                    short_digest(self.digest),
                    parsed.predicate_type,
                    self.key.kind(),
                    match via {
                        Via::Api => "referrers API",
                        Via::Tag => "referrers tag schema",
                    }
                ));
            }
        }
        if !provenance {
            self.problem("no signed SLSA provenance among its referrers".into());
        }
        Ok(())
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
