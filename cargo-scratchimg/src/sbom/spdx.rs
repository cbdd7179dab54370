//! SPDX 2.3 JSON. Typed serde structs rather than an SPDX crate: the subset an image needs is
//! small, and the SPDX crates pull in far more (parsers, validators) than one document is worth.

use std::collections::HashSet;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Crate, Sbom, Source, download_location, purl};

const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: &'a str,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    version_info: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_file_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    supplier: &'static str,
    download_location: String,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    license_declared: String,
    copyright_text: &'static str,
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
}

impl Package {
    /// A package that asserts only what we know: the rest is NOASSERTION, as SPDX asks.
    fn new(spdx_id: String, name: String, version: String, purpose: &'static str) -> Package {
        Package {
            spdx_id,
            name,
            version_info: version,
            package_file_name: None,
            summary: None,
            comment: None,
            supplier: NOASSERTION,
            download_location: NOASSERTION.into(),
            files_analyzed: false,
            checksums: Vec::new(),
            license_concluded: NOASSERTION,
            license_declared: NOASSERTION.into(),
            copyright_text: NOASSERTION,
            external_refs: Vec::new(),
            primary_package_purpose: purpose,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

impl Relationship {
    fn new(from: &str, kind: &'static str, to: &str) -> Relationship {
        Relationship {
            spdx_element_id: from.to_string(),
            relationship_type: kind,
            related_spdx_element: to.to_string(),
        }
    }
}

const IMAGE_ID: &str = "SPDXRef-Image";

pub(super) fn render(sbom: &Sbom) -> Result<Vec<u8>> {
    let graph = &sbom.crates;
    let ids = crate_ids(&graph.crates);
    let mut packages = vec![Package {
        summary: Some("an OCI image made by cargo-scratchimg".into()),
        ..Package::new(
            IMAGE_ID.into(),
            sbom.subject.image.clone(),
            graph.root().version.clone(),
            "CONTAINER",
        )
    }];
    let mut relationships = vec![Relationship::new("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)];

    for (i, c) in graph.runtime() {
        let is_root = i == graph.root;
        let checksum = sbom.sha256(i);
        packages.push(Package {
            package_file_name: is_root.then(|| sbom.subject.path.clone()),
            download_location: download_location(c).unwrap_or_else(|| NOASSERTION.into()),
            checksums: checksum
                .into_iter()
                .map(|value| Checksum {
                    algorithm: "SHA256",
                    checksum_value: value,
                })
                .collect(),
            license_declared: c.license.clone().unwrap_or_else(|| NOASSERTION.into()),
            external_refs: vec![purl_ref(purl(c))],
            ..Package::new(
                ids[i].clone(),
                c.name.clone(),
                c.version.clone(),
                if is_root { "APPLICATION" } else { "LIBRARY" },
            )
        });
        for &dep in &c.dependencies {
            if graph.crates[dep].kind == super::Kind::Runtime {
                relationships.push(Relationship::new(&ids[i], "DEPENDS_ON", &ids[dep]));
            }
        }
    }
    relationships.push(Relationship::new(IMAGE_ID, "CONTAINS", &ids[graph.root]));

    // C libraries the crates' build scripts linked into the binary.
    for library in &sbom.c_libraries {
        let Some(linked_by) = super::linked::linker(library, graph) else {
            continue;
        };
        let id = format!(
            "SPDXRef-C-{}-{}",
            clean(&library.name),
            library
                .version
                .as_deref()
                .map_or("NOASSERTION".into(), clean)
        );
        let mut refs = Vec::new();
        if let Some(cpe) = &library.cpe {
            refs.push(ExternalRef {
                reference_category: "SECURITY",
                reference_type: "cpe23Type",
                reference_locator: cpe.clone(),
            });
        }
        refs.push(purl_ref(library.purl.clone()));
        packages.push(Package {
            comment: Some(library.comment.clone()),
            external_refs: refs,
            ..Package::new(
                id.clone(),
                library.name.clone(),
                library
                    .version
                    .clone()
                    .unwrap_or_else(|| NOASSERTION.into()),
                "LIBRARY",
            )
        });
        relationships.push(Relationship::new(&ids[linked_by], "STATIC_LINK", &id));
    }

    for component in &sbom.base {
        let id = format!("SPDXRef-Base-{}", component.name);
        packages.push(Package {
            package_file_name: Some(component.path.clone()),
            summary: Some(component.summary.clone()),
            external_refs: vec![purl_ref(component.purl.clone())],
            ..Package::new(
                id.clone(),
                component.name.to_string(),
                component.version.clone(),
                "OTHER",
            )
        });
        relationships.push(Relationship::new(IMAGE_ID, "CONTAINS", &id));
    }

    let document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: &sbom.subject.image,
        // Unique per binary, yet the same on every rebuild of it.
        document_namespace: format!(
            "https://spdx.org/spdxdocs/cargo-scratchimg/{}-{}-{}",
            graph.root().name,
            graph.root().version,
            sbom.subject.sha256
        ),
        creation_info: CreationInfo {
            created: sbom.created.to_string(),
            creators: vec![format!(
                "Tool: {}",
                crate::image::CREATED_BY.replace(' ', "-")
            )],
        },
        packages,
        relationships,
    };
    serde_json::to_vec_pretty(&document).context("could not encode the SPDX document")
}

fn purl_ref(locator: String) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_type: "purl",
        reference_locator: locator,
    }
}

/// `text` with what SPDX ids may not hold replaced.
fn clean(text: &str) -> String {
    text.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '.' {
                ch
            } else {
                '-'
            }
        })
        .collect()
}

/// `SPDXRef-Crate-<name>-<version>`, with what SPDX ids may not hold replaced, unique.
fn crate_ids(crates: &[Crate]) -> Vec<String> {
    let mut seen = HashSet::new();
    crates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut id = format!("SPDXRef-Crate-{}-{}", clean(&c.name), clean(&c.version));
            if matches!(c.source, Source::Git { .. } | Source::Registry(_))
                || !seen.insert(id.clone())
            {
                id = format!("{id}-{i}");
                seen.insert(id.clone());
            }
            id
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::sbom::tests::sbom;

    #[test]
    fn lists_the_runtime_crates_and_the_base() {
        let doc: Value = serde_json::from_slice(&render(&sbom()).unwrap()).unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
        let names: Vec<&str> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        // The build-only `cc` is not in the binary, so not in the document.
        assert_eq!(
            names,
            [
                "app:1.0.0",
                "app",
                "git_dep",
                "serde",
                "ca-certificates",
                "tzdata"
            ]
        );
        let app = &doc["packages"][1];
        assert_eq!(app["packageFileName"], "/app/app");
        assert_eq!(app["checksums"][0]["checksumValue"], "cd".repeat(32));
        assert_eq!(app["licenseDeclared"], "MIT OR Apache-2.0");
        let serde = &doc["packages"][3];
        assert_eq!(serde["SPDXID"], "SPDXRef-Crate-serde-1.0.0");
        assert_eq!(
            serde["externalRefs"][0]["referenceLocator"],
            "pkg:cargo/serde@1.0.0"
        );
        assert_eq!(serde["checksums"][0]["checksumValue"], "ab".repeat(32));
        let relationships = doc["relationships"].as_array().unwrap();
        assert!(
            relationships
                .iter()
                .any(|r| r["spdxElementId"] == "SPDXRef-Crate-app-1.0.0"
                    && r["relationshipType"] == "DEPENDS_ON"
                    && r["relatedSpdxElement"] == "SPDXRef-Crate-serde-1.0.0")
        );
        assert!(
            !relationships
                .iter()
                .any(|r| r["relatedSpdxElement"].as_str().unwrap().contains("-cc-"))
        );
    }

    #[test]
    fn linked_c_libraries_are_packages_with_a_cpe() {
        let doc: Value =
            serde_json::from_slice(&render(&crate::sbom::tests::with_c_libraries()).unwrap())
                .unwrap();
        let package = |name: &str| {
            doc["packages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{name} is not listed"))
                .clone()
        };
        let zstd = package("zstd");
        assert_eq!(zstd["versionInfo"], "1.5.7");
        assert_eq!(zstd["externalRefs"][0]["referenceType"], "cpe23Type");
        assert_eq!(
            zstd["externalRefs"][0]["referenceLocator"],
            "cpe:2.3:a:facebook:zstandard:1.5.7:*:*:*:*:*:*:*"
        );
        assert_eq!(
            zstd["externalRefs"][1]["referenceLocator"],
            "pkg:generic/zstd@1.5.7"
        );
        // A version that could not be read is no assertion, with the crate's in a comment.
        let sqlite = package("sqlite");
        assert_eq!(sqlite["versionInfo"], "NOASSERTION");
        assert!(
            sqlite["comment"]
                .as_str()
                .unwrap()
                .contains("libsqlite3-sys 0.35.0"),
            "{sqlite}"
        );
        let relationships = doc["relationships"].as_array().unwrap();
        for id in ["SPDXRef-C-zstd-1.5.7", "SPDXRef-C-sqlite-NOASSERTION"] {
            assert!(
                relationships.iter().any(
                    |r| r["relationshipType"] == "STATIC_LINK" && r["relatedSpdxElement"] == id
                ),
                "{id}"
            );
        }
        // A library whose crate is not in this binary is not listed.
        assert!(
            !doc["packages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "elsewhere")
        );
    }

    #[test]
    fn ids_are_valid_and_unique() {
        let mut crates = sbom().crates.crates;
        crates.push(crates[3].clone());
        crates[0].version = "1.0.0+build.1".into();
        let ids = crate_ids(&crates);
        assert_eq!(ids[0], "SPDXRef-Crate-app-1.0.0-build.1");
        assert_eq!(ids[3], "SPDXRef-Crate-serde-1.0.0");
        assert_eq!(ids[4], "SPDXRef-Crate-serde-1.0.0-4");
        assert_eq!(ids[2], "SPDXRef-Crate-git-dep-1.0.0-2");
    }
}
