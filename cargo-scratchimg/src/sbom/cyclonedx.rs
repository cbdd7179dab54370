//! CycloneDX 1.5 JSON, as typed serde structs for the same reason as SPDX: the subset is small.

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Sbom, download_location, purl};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<License>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<Reference>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct License {
    expression: String,
}

#[derive(Serialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

fn sha256(hex: &Option<String>) -> Vec<Hash> {
    hex.iter()
        .map(|content| Hash {
            alg: "SHA-256",
            content: content.clone(),
        })
        .collect()
}

pub(super) fn render(sbom: &Sbom) -> Result<Vec<u8>> {
    let graph = &sbom.crates;
    let root = graph.root();
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    for (i, c) in graph.runtime() {
        let is_root = i == graph.root;
        let checksum = sbom.sha256(i);
        components.push(Component {
            kind: if is_root { "application" } else { "library" },
            bom_ref: Some(purl(c)),
            name: c.name.clone(),
            version: c.version.clone(),
            description: is_root.then(|| sbom.subject.path.clone()),
            hashes: sha256(&checksum),
            licenses: c
                .license
                .iter()
                .map(|expression| License {
                    expression: expression.clone(),
                })
                .collect(),
            cpe: None,
            purl: Some(purl(c)),
            external_references: download_location(c)
                .map(|url| Reference {
                    kind: "distribution",
                    url,
                })
                .into_iter()
                .collect(),
        });
        dependencies.push(Dependency {
            reference: purl(c),
            depends_on: c
                .dependencies
                .iter()
                .map(|&d| &graph.crates[d])
                .filter(|d| d.kind == super::Kind::Runtime)
                .map(purl)
                .collect(),
        });
    }
    // C libraries the crates' build scripts linked into the binary. A version that could not
    // be read is left out (CycloneDX makes it optional), the crate's said in the description.
    for library in &sbom.c_libraries {
        let Some(linked_by) = super::linked::linker(library, graph) else {
            continue;
        };
        components.push(Component {
            kind: "library",
            bom_ref: Some(library.purl.clone()),
            name: library.name.clone(),
            version: library.version.clone().unwrap_or_default(),
            description: Some(library.comment.clone()),
            cpe: library.cpe.clone(),
            purl: Some(library.purl.clone()),
            ..Component::default()
        });
        let linker = purl(&graph.crates[linked_by]);
        if let Some(dependency) = dependencies.iter_mut().find(|d| d.reference == linker) {
            dependency.depends_on.push(library.purl.clone());
        }
        dependencies.push(Dependency {
            reference: library.purl.clone(),
            depends_on: Vec::new(),
        });
    }
    for component in &sbom.base {
        components.push(Component {
            kind: "data",
            bom_ref: Some(component.purl.clone()),
            name: component.name.to_string(),
            version: component.version.clone(),
            description: Some(format!("{}: {}", component.path, component.summary)),
            purl: Some(component.purl.clone()),
            ..Component::default()
        });
    }
    // A UUID made from the binary's digest: unique per binary, stable across rebuilds.
    let hex = &sbom.subject.sha256;
    let serial_number = format!(
        "urn:uuid:{}-{}-5{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    );
    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.5",
        serial_number,
        version: 1,
        metadata: Metadata {
            timestamp: sbom.created.to_string(),
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "cargo-scratchimg".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Component::default()
                }],
            },
            component: Component {
                kind: "container",
                bom_ref: Some(sbom.subject.image.clone()),
                name: sbom.subject.image.clone(),
                version: root.version.clone(),
                ..Component::default()
            },
        },
        components,
        dependencies,
    };
    serde_json::to_vec_pretty(&bom).context("could not encode the CycloneDX document")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::sbom::tests::sbom;

    #[test]
    fn lists_the_runtime_crates_and_the_base() {
        let bom: Value = serde_json::from_slice(&render(&sbom()).unwrap()).unwrap();
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(
            bom["serialNumber"],
            "urn:uuid:cdcdcdcd-cdcd-5dcd-8dcd-cdcdcdcdcdcd"
        );
        let purls: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["purl"].as_str().unwrap())
            .collect();
        assert_eq!(
            purls[..3],
            [
                "pkg:cargo/app@1.0.0",
                "pkg:cargo/git_dep@1.0.0",
                "pkg:cargo/serde@1.0.0"
            ]
        );
        assert_eq!(purls.len(), 5);
        assert_eq!(
            bom["dependencies"][0]["dependsOn"][1],
            "pkg:cargo/serde@1.0.0"
        );
        assert_eq!(
            bom["components"][2]["hashes"][0]["content"],
            "ab".repeat(32)
        );
    }

    #[test]
    fn linked_c_libraries_are_components() {
        let bom: Value =
            serde_json::from_slice(&render(&crate::sbom::tests::with_c_libraries()).unwrap())
                .unwrap();
        let components = bom["components"].as_array().unwrap();
        let component = |name: &str| components.iter().find(|c| c["name"] == name);
        let zstd = component("zstd").expect("zstd");
        assert_eq!(zstd["version"], "1.5.7");
        assert_eq!(
            zstd["cpe"],
            "cpe:2.3:a:facebook:zstandard:1.5.7:*:*:*:*:*:*:*"
        );
        let sqlite = component("sqlite").expect("sqlite");
        assert!(sqlite.get("version").is_none(), "{sqlite}");
        assert!(
            sqlite["description"]
                .as_str()
                .unwrap()
                .contains("libsqlite3-sys 0.35.0")
        );
        assert!(component("elsewhere").is_none());
        let zstd_sys = bom["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ref"] == "pkg:cargo/zstd-sys@2.0.15+zstd.1.5.7")
            .unwrap();
        assert_eq!(zstd_sys["dependsOn"][0], "pkg:generic/zstd@1.5.7");
    }
}
