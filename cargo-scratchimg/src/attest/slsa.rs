//! SLSA Provenance v1 of an image: how it was built (the build type, the parameters a user
//! chose, what the build resolved) and by what. Reproducible as the image is: it holds no clock
//! and no path of the building machine, so a rebuild gives the same bytes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

pub(crate) const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// This tool's build type: a Rust package built for musl into a `FROM scratch` image.
pub(crate) const BUILD_TYPE: &str =
    "https://github.com/cargo-scratchimg/cargo-scratchimg/blob/main/docs/build-type-v1.md";
const BUILDER_ID: &str = "https://github.com/cargo-scratchimg/cargo-scratchimg";

/// What the provenance states, gathered by the pipeline.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BuildFacts {
    pub package: String,
    pub version: String,
    pub binaries: Vec<String>,
    /// The features cargo enabled on the package, sorted.
    pub features: Vec<String>,
    pub profile: String,
    /// One musl target triple per platform.
    pub targets: Vec<String>,
    /// `linux/amd64`-style.
    pub platforms: Vec<String>,
    pub auditable: bool,
    /// `spdx`, `cyclonedx`, or none.
    pub sbom: Option<String>,
    /// How the image runs its program and what it holds besides: entrypoint, user, env, …
    pub settings: Value,
    /// What cargo stripped, when not the default (`symbols`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip: Option<String>,
    /// Variables this tool set for cargo, per target triple (`JEMALLOC_SYS_WITH_LG_PAGE`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub build_environment: BTreeMap<String, BTreeMap<String, String>>,
    /// The source repository (a URL, never a local path) and its revision.
    #[serde(skip)]
    pub source: Option<String>,
    #[serde(skip)]
    pub revision: Option<String>,
    /// Hex SHA-256 of `Cargo.lock`.
    #[serde(skip)]
    pub lockfile_sha256: Option<String>,
    /// `rustc -vV`.
    #[serde(skip)]
    pub rustc: String,
    /// The base layers, as the image holds them.
    #[serde(skip)]
    pub base: Vec<BaseLayer>,
}

/// A base layer as the provenance names it: the blob the image holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BaseLayer {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its compression's layer media type, or the plain tar's.
    pub media_type: String,
    /// What it holds, in words.
    pub contents: String,
}

/// The first line of `rustc -vV`'s `release:` and `commit-hash:` fields.
fn rustc_field<'a>(rustc: &'a str, field: &str) -> Option<&'a str> {
    rustc
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(": "))
        .map(str::trim)
}

/// The predicate: SLSA Provenance v1's `buildDefinition` and `runDetails`.
pub(crate) fn predicate(facts: &BuildFacts) -> Value {
    let mut dependencies = Vec::new();
    if let Some(source) = &facts.source {
        let mut dependency = json!({ "uri": format!("git+{}", source.trim_start_matches("git+")) });
        if let Some(revision) = &facts.revision {
            dependency["digest"] = json!({ "gitCommit": revision });
            dependency["uri"] = json!(format!(
                "git+{}@{revision}",
                source.trim_start_matches("git+")
            ));
        }
        dependencies.push(dependency);
    } else if let Some(revision) = &facts.revision {
        dependencies.push(json!({ "name": "source", "digest": { "gitCommit": revision } }));
    }
    if let Some(lock) = &facts.lockfile_sha256 {
        dependencies.push(json!({ "name": "Cargo.lock", "digest": { "sha256": lock } }));
    }
    if !facts.rustc.trim().is_empty() {
        let release = rustc_field(&facts.rustc, "release").unwrap_or("unknown");
        let mut toolchain = json!({
            "name": "rustc",
            "uri": format!("pkg:generic/rustc@{release}"),
            "annotations": { "rustc -vV": facts.rustc.trim() },
        });
        if let Some(commit) = rustc_field(&facts.rustc, "commit-hash").filter(|c| c.len() == 40) {
            toolchain["digest"] = json!({ "gitCommit": commit });
        }
        dependencies.push(toolchain);
    }
    for base in &facts.base {
        let (alg, hex) = (base.digest.split_once(':')).unwrap_or(("sha256", &base.digest));
        dependencies.push(json!({
            "name": "base layer",
            "mediaType": base.media_type,
            "digest": { alg: hex },
            "annotations": { "contents": base.contents },
        }));
    }
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": facts,
            "internalParameters": { "tool": crate::image::CREATED_BY },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {
                "id": BUILDER_ID,
                "version": { "cargo-scratchimg": env!("CARGO_PKG_VERSION") },
            },
            "metadata": {},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_names_the_build_and_nothing_of_the_machine() {
        let facts = BuildFacts {
            package: "hello".into(),
            version: "0.1.0".into(),
            binaries: vec!["hello".into()],
            profile: "release".into(),
            targets: vec!["x86_64-unknown-linux-musl".into()],
            platforms: vec!["linux/amd64".into()],
            auditable: true,
            sbom: Some("spdx".into()),
            settings: json!({"user": "65532:65532"}),
            source: Some("https://github.com/a/b".into()),
            revision: Some("0123456789abcdef0123456789abcdef01234567".into()),
            lockfile_sha256: Some("cd".repeat(32)),
            rustc: "rustc 1.96.0 (abc 2026-01-01)\nbinary: rustc\ncommit-hash: 0123456789abcdef0123456789abcdef01234567\nrelease: 1.96.0\n".into(),
            base: vec![BaseLayer {
                digest: format!("sha256:{}", "ef".repeat(32)),
                media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
                contents: "ca-certificates".into(),
            }],
            ..BuildFacts::default()
        };
        let p = predicate(&facts);
        let build = &p["buildDefinition"];
        assert_eq!(build["buildType"], BUILD_TYPE);
        assert_eq!(build["externalParameters"]["package"], "hello");
        assert_eq!(build["externalParameters"]["platforms"][0], "linux/amd64");
        let deps = build["resolvedDependencies"].as_array().unwrap();
        assert_eq!(
            deps[0]["uri"],
            "git+https://github.com/a/b@0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(deps[1]["digest"]["sha256"], "cd".repeat(32));
        assert_eq!(deps[2]["uri"], "pkg:generic/rustc@1.96.0");
        assert_eq!(deps[3]["digest"]["sha256"], "ef".repeat(32));
        assert_eq!(
            deps[3]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        assert!(
            p["runDetails"]["builder"]["id"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        assert_eq!(p, predicate(&facts));
    }
}
