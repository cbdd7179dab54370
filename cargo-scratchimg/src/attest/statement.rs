//! in-toto Statement v1: what an attestation says (its predicate) about which artifacts (its
//! subjects, by digest).

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

pub(crate) const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The media type of a statement as a blob, and its DSSE payload type.
pub(crate) const MEDIA_TYPE: &str = crate::sign::dsse::IN_TOTO;

/// The subject annotation by which a signed SBOM statement names the digest of the SBOM
/// document it carries, so the plain document beside it can be trusted as that one.
pub(crate) const SBOM_DIGEST: &str = "com.github.cargo-scratchimg.sbom.digest";

/// An artifact the statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subject {
    pub name: String,
    pub digest: Digest,
    /// In-toto's free-form annotations of the subject; mostly none.
    pub annotations: BTreeMap<String, String>,
}

impl Subject {
    pub(crate) fn new(name: String, digest: Digest) -> Subject {
        Subject {
            name,
            digest,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Statement<P> {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<SubjectJson>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: P,
}

#[derive(Serialize, Deserialize)]
struct SubjectJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, serde_json::Value>,
}

/// The statement, as canonical JSON.
pub(crate) fn render(
    subjects: &[Subject],
    predicate_type: &str,
    predicate: &serde_json::Value,
) -> Vec<u8> {
    let statement = Statement {
        kind: STATEMENT_V1.to_string(),
        subject: subjects
            .iter()
            .map(|s| SubjectJson {
                name: s.name.clone(),
                digest: [(
                    s.digest.algorithm().as_ref().to_string(),
                    s.digest.digest().to_string(),
                )]
                .into(),
                annotations: s
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect(),
            })
            .collect(),
        predicate_type: predicate_type.to_string(),
        predicate,
    };
    crate::image::json::to_vec(&statement).expect("a statement encodes")
}

/// What [`parse`] reads of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub predicate_type: String,
    /// `sha256:<hex>` of each subject.
    pub digests: Vec<String>,
    /// The SBOM documents its subjects' [`SBOM_DIGEST`] annotations name.
    pub documents: Vec<String>,
}

/// The predicate type and subject digests of a statement's bytes.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed> {
    let statement: Statement<serde_json::Value> =
        serde_json::from_slice(bytes).context("it is not an in-toto statement")?;
    ensure!(
        statement.kind == STATEMENT_V1,
        "it is not an in-toto Statement v1 (its _type is {:?})",
        statement.kind
    );
    Ok(Parsed {
        predicate_type: statement.predicate_type,
        digests: statement
            .subject
            .iter()
            .flat_map(|s| s.digest.iter().map(|(alg, hex)| format!("{alg}:{hex}")))
            .collect(),
        documents: statement
            .subject
            .iter()
            .filter_map(|s| s.annotations.get(SBOM_DIGEST)?.as_str().map(str::to_string))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_their_subjects_by_digest() {
        let digest: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let bytes = render(
            &[Subject::new("hello:0.1.0".into(), digest.clone())],
            "https://slsa.dev/provenance/v1",
            &serde_json::json!({"b": 1, "a": 2}),
        );
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                r#"{{"_type":"https://in-toto.io/Statement/v1","predicate":{{"a":2,"b":1}},"predicateType":"https://slsa.dev/provenance/v1","subject":[{{"digest":{{"sha256":"{}"}},"name":"hello:0.1.0"}}]}}"#,
                "ab".repeat(32)
            )
        );
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.digests, [digest.to_string()]);
        assert!(parsed.documents.is_empty());
        let mut subject = Subject::new("hello:0.1.0".into(), digest.clone());
        subject
            .annotations
            .insert(SBOM_DIGEST.into(), "sha256:00".into());
        let bytes = render(
            &[subject],
            "https://spdx.dev/Document",
            &serde_json::json!({}),
        );
        assert!(String::from_utf8_lossy(&bytes).contains(r#""annotations":{"com.github"#));
        assert_eq!(parse(&bytes).unwrap().documents, ["sha256:00"]);
        assert!(
            parse(b"{\"_type\":\"x\",\"subject\":[],\"predicateType\":\"p\",\"predicate\":{}}")
                .is_err()
        );
    }
}
