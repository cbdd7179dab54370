//! C libraries that `-sys` and `-src` crates build from their own copy of the sources into the
//! binary (OpenSSL from `openssl-src`, zstd from `zstd-sys`, …): packages of their own in the
//! SBOM, with the upstream name and version and the identifiers scanners match advisories on
//! (OpenSSL's CVEs are filed by CPE), since the crate's name and version say nothing of them.
//!
//! Read from the crate graph alone: which crates are compiled, with which features, and their
//! versions, whose SemVer build metadata names the library's release (`300.6.1+3.6.3` is
//! OpenSSL 3.6.3). A crate that may link a system copy instead counts as bundling only when its
//! feature for that is on; those that fall back to their own copy when the target has none (a
//! musl target never has one) count always.

use super::{CrateGraph, Kind};

/// A C library compiled into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CLibrary {
    /// The upstream project's name, e.g. `openssl`.
    pub name: &'static str,
    /// Its release, when the crate says which; else `None`.
    pub version: Option<String>,
    /// `cpe:2.3:a:VENDOR:PRODUCT:VERSION:…`, where the NVD has a product for it.
    pub cpe: Option<String>,
    /// `pkg:generic/NAME@VERSION`.
    pub purl: String,
    /// The index of the crate that links it into the binary (the `-sys` crate).
    pub linked_by: usize,
    /// `openssl-src 300.6.1+3.6.3`: where it came from.
    pub from: String,
}

/// When a crate builds its bundled copy.
enum When {
    Always,
    Feature(&'static [&'static str]),
    Unless(&'static str),
}

/// How a library's release is read from the crate's version.
enum Release {
    /// SemVer build metadata, after this prefix: `+3.6.3`, `+zstd.1.5.7`, `+curl-8.12.1`.
    Metadata(&'static str),
    /// onig_sys: `69.8.1` is Oniguruma 6.9.8.
    Oniguruma,
}

struct Rule {
    krate: &'static str,
    /// The crate that links what `krate` builds, when that is another one.
    linked_by: Option<&'static str>,
    name: &'static str,
    /// NVD's `vendor:product`.
    cpe: Option<&'static str>,
    when: When,
    release: Release,
}

const RULES: &[Rule] = &[
    Rule {
        krate: "openssl-src",
        linked_by: Some("openssl-sys"),
        name: "openssl",
        cpe: Some("openssl:openssl"),
        when: When::Always,
        release: Release::Metadata(""),
    },
    Rule {
        krate: "libgit2-sys",
        linked_by: None,
        name: "libgit2",
        cpe: Some("libgit2_project:libgit2"),
        when: When::Always,
        release: Release::Metadata(""),
    },
    Rule {
        krate: "zstd-sys",
        linked_by: None,
        name: "zstd",
        cpe: Some("facebook:zstandard"),
        when: When::Unless("pkg-config"),
        release: Release::Metadata("zstd."),
    },
    Rule {
        krate: "libz-sys",
        linked_by: None,
        name: "zlib",
        cpe: Some("zlib:zlib"),
        when: When::Feature(&["static"]),
        release: Release::Metadata(""),
    },
    Rule {
        krate: "libz-ng-sys",
        linked_by: None,
        name: "zlib-ng",
        cpe: Some("zlib-ng:zlib-ng"),
        when: When::Always,
        release: Release::Metadata(""),
    },
    Rule {
        krate: "onig_sys",
        linked_by: None,
        name: "oniguruma",
        cpe: Some("oniguruma_project:oniguruma"),
        when: When::Always,
        release: Release::Oniguruma,
    },
    Rule {
        krate: "tikv-jemalloc-sys",
        linked_by: None,
        name: "jemalloc",
        cpe: None,
        when: When::Always,
        release: Release::Metadata(""),
    },
    Rule {
        krate: "jemalloc-sys",
        linked_by: None,
        name: "jemalloc",
        cpe: None,
        when: When::Always,
        release: Release::Metadata(""),
    },
    Rule {
        krate: "libsqlite3-sys",
        linked_by: None,
        name: "sqlite",
        cpe: Some("sqlite:sqlite"),
        when: When::Feature(&[
            "bundled",
            "bundled-sqlcipher",
            "bundled-sqlcipher-vendored-openssl",
        ]),
        release: Release::Metadata(""),
    },
    Rule {
        krate: "curl-sys",
        linked_by: None,
        name: "curl",
        cpe: Some("haxx:curl"),
        when: When::Feature(&["static-curl"]),
        release: Release::Metadata("curl-"),
    },
    Rule {
        krate: "bzip2-sys",
        linked_by: None,
        name: "bzip2",
        cpe: Some("bzip:bzip2"),
        when: When::Always,
        release: Release::Metadata(""),
    },
    Rule {
        krate: "lzma-sys",
        linked_by: None,
        name: "xz",
        cpe: Some("tukaani:xz"),
        when: When::Feature(&["static"]),
        release: Release::Metadata(""),
    },
];

/// The leading `N(.N)*` of `text`, if any.
fn leading_version(text: &str) -> Option<String> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let version = text[..end].trim_end_matches('.');
    (!version.is_empty() && version.contains('.')).then(|| version.to_string())
}

fn release(version: &str, how: &Release) -> Option<String> {
    match how {
        Release::Metadata(prefix) => {
            let (_, metadata) = version.split_once('+')?;
            leading_version(metadata.strip_prefix(prefix).unwrap_or(metadata))
        }
        Release::Oniguruma => {
            let mut parts = version.split(['.', '+', '-']);
            let major = parts.next()?;
            let minor = parts.next()?;
            let (first, second) = major.split_at_checked(1)?;
            Some(format!("{first}.{second}.{minor}"))
        }
    }
}

/// The C libraries bundled into the binary whose crates `graph` holds.
pub(crate) fn detect(graph: &CrateGraph) -> Vec<CLibrary> {
    let mut found: Vec<CLibrary> = Vec::new();
    for rule in RULES {
        for c in graph.crates.iter().filter(|c| c.name == rule.krate) {
            let on = match rule.when {
                When::Always => true,
                When::Feature(features) => {
                    features.iter().any(|f| c.features.iter().any(|g| g == f))
                }
                When::Unless(feature) => !c.features.iter().any(|g| g == feature),
            };
            let linker = rule.linked_by.unwrap_or(rule.krate);
            let Some(linked_by) = graph
                .crates
                .iter()
                .position(|l| l.name == linker && l.kind == Kind::Runtime)
            else {
                continue;
            };
            if !on {
                continue;
            }
            let version = release(&c.version, &rule.release);
            let cpe = rule.cpe.map(|product| {
                format!(
                    "cpe:2.3:a:{product}:{}:*:*:*:*:*:*:*",
                    version.as_deref().unwrap_or("*")
                )
            });
            let purl = match &version {
                Some(v) => format!("pkg:generic/{}@{v}", rule.name),
                None => format!("pkg:generic/{}", rule.name),
            };
            let library = CLibrary {
                name: rule.name,
                version,
                cpe,
                purl,
                linked_by,
                from: format!("{} {}", c.name, c.version),
            };
            if !found.iter().any(|f| f.purl == library.purl) {
                found.push(library);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::{Crate, Source};

    fn graph(crates: &[(&str, &str, Kind, &[&str])]) -> CrateGraph {
        CrateGraph {
            crates: crates
                .iter()
                .map(|(name, version, kind, features)| Crate {
                    name: name.to_string(),
                    version: version.to_string(),
                    source: Source::CratesIo,
                    license: None,
                    checksum: None,
                    kind: *kind,
                    dependencies: Vec::new(),
                    features: features.iter().map(|f| f.to_string()).collect(),
                })
                .collect(),
            root: 0,
            features: Vec::new(),
        }
    }

    #[test]
    fn releases_come_from_the_crate_versions() {
        assert_eq!(
            release("300.6.1+3.6.3", &Release::Metadata("")).as_deref(),
            Some("3.6.3")
        );
        assert_eq!(
            release("2.0.15+zstd.1.5.7", &Release::Metadata("zstd.")).as_deref(),
            Some("1.5.7")
        );
        assert_eq!(
            release(
                "0.6.0+5.3.0-1-ge13ca993e8ccb9ba9847cc330696e02839f328f7",
                &Release::Metadata("")
            )
            .as_deref(),
            Some("5.3.0")
        );
        assert_eq!(
            release("0.5.4+5.3.0-patched", &Release::Metadata("")).as_deref(),
            Some("5.3.0")
        );
        assert_eq!(
            release("0.4.80+curl-8.12.1", &Release::Metadata("curl-")).as_deref(),
            Some("8.12.1")
        );
        assert_eq!(
            release("69.8.1", &Release::Oniguruma).as_deref(),
            Some("6.9.8")
        );
        assert_eq!(release("1.1.22", &Release::Metadata("")), None);
    }

    #[test]
    fn vendored_openssl_is_a_package_of_its_own() {
        // xh 0.24.0 with native-tls's vendored feature: openssl-src is a build dependency.
        let g = graph(&[
            ("xh", "0.24.0", Kind::Runtime, &[]),
            ("openssl-sys", "0.9.109", Kind::Runtime, &["vendored"]),
            ("openssl-src", "300.6.1+3.6.3", Kind::Build, &[]),
        ]);
        let found = detect(&g);
        assert_eq!(found.len(), 1);
        let openssl = &found[0];
        assert_eq!(
            (openssl.name, openssl.version.as_deref()),
            ("openssl", Some("3.6.3"))
        );
        assert_eq!(
            openssl.cpe.as_deref(),
            Some("cpe:2.3:a:openssl:openssl:3.6.3:*:*:*:*:*:*:*")
        );
        assert_eq!(openssl.purl, "pkg:generic/openssl@3.6.3");
        assert_eq!(openssl.linked_by, 1);
        assert_eq!(openssl.from, "openssl-src 300.6.1+3.6.3");
    }

    #[test]
    fn system_copies_are_not_listed() {
        // zstd-sys linking the system's libzstd through pkg-config; libz-sys without `static`;
        // openssl-sys without openssl-src.
        let g = graph(&[
            ("app", "0.1.0", Kind::Runtime, &[]),
            (
                "zstd-sys",
                "2.0.15+zstd.1.5.7",
                Kind::Runtime,
                &["pkg-config"],
            ),
            ("libz-sys", "1.1.22", Kind::Runtime, &["libc"]),
            ("openssl-sys", "0.9.109", Kind::Runtime, &[]),
        ]);
        assert!(detect(&g).is_empty());
        let g = graph(&[
            ("app", "0.1.0", Kind::Runtime, &[]),
            (
                "zstd-sys",
                "2.0.15+zstd.1.5.7",
                Kind::Runtime,
                &["legacy", "std"],
            ),
            ("libz-sys", "1.1.22", Kind::Runtime, &["static"]),
            ("onig_sys", "69.8.1", Kind::Runtime, &[]),
            ("libsqlite3-sys", "0.30.1", Kind::Runtime, &["bundled"]),
        ]);
        let libraries = detect(&g);
        let found: Vec<(&str, Option<&str>)> = libraries
            .iter()
            .map(|l| (l.name, l.version.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("zstd", Some("1.5.7")),
                ("zlib", None),
                ("oniguruma", Some("6.9.8")),
                ("sqlite", None)
            ]
        );
        // A build-only -sys crate (a build script's zstd) is not in the binary.
        let g = graph(&[
            ("app", "0.1.0", Kind::Runtime, &[]),
            ("zstd-sys", "2.0.15+zstd.1.5.7", Kind::Build, &[]),
        ]);
        assert!(detect(&g).is_empty());
    }
}
