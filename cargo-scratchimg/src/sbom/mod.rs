//! What the image is made of, for scanners and auditors: the crates compiled into the binary
//! ([`crates`]), carried in the binary itself ([`auditable`]) and described with the base files
//! in an SBOM document ([`spdx`], [`cyclonedx`]).
//!
//! An [`Sbom`] is a value; the pipeline puts its bytes into the app layer and beside the output.
//! It holds nothing from the building machine (no paths, no clock), so it is reproducible too.

pub(crate) mod auditable;
pub(crate) mod crates;
mod cyclonedx;
pub(crate) mod linked;
mod spdx;
pub(crate) mod vendored;

use anyhow::Result;

pub(crate) use crates::{Crate, CrateGraph, Kind, Source};
pub(crate) use linked::{BuildScript, CLibrary};

/// The directory of the image that holds the SBOM.
pub(crate) const IMAGE_DIR: &str = "usr/share/doc/sbom";

/// Which SBOM document `--sbom` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    #[default]
    Spdx,
    /// CycloneDX 1.5 JSON.
    CycloneDx,
}

impl SbomFormat {
    /// Its name in `--sbom` and in the provenance: `spdx` or `cyclonedx`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "spdx",
            SbomFormat::CycloneDx => "cyclonedx",
        }
    }

    /// The file name suffix the formats' own tools expect.
    pub fn extension(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "spdx.json",
            SbomFormat::CycloneDx => "cdx.json",
        }
    }
}

/// A part of the image besides the binary that has a version of its own (the CA bundle, the
/// tz database), as the SBOM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Component {
    pub name: &'static str,
    pub version: String,
    /// Where it lives in the image, absolute.
    pub path: String,
    pub summary: String,
    /// The package URL of where its data comes from.
    pub purl: String,
}

/// The binary as the SBOM names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DescribedBinary {
    /// The image name, e.g. `hello:0.1.0`.
    pub image: String,
    /// Where the binary is in the image, absolute.
    pub path: String,
    /// Hex SHA-256 of the binary.
    pub sha256: String,
}

/// Everything an SBOM document of the image says.
#[derive(Debug, Clone)]
pub(crate) struct Sbom {
    pub subject: DescribedBinary,
    pub crates: CrateGraph,
    /// The C libraries the build scripts of the binary's crates linked into it.
    pub c_libraries: Vec<CLibrary>,
    pub base: Vec<Component>,
    /// The build's one timestamp, not the wall clock.
    pub created: jiff::Timestamp,
}

impl Sbom {
    /// The document in `format`, pretty-printed with fields in a fixed order.
    pub(crate) fn render(&self, format: SbomFormat) -> Result<Vec<u8>> {
        match format {
            SbomFormat::Spdx => spdx::render(self),
            SbomFormat::CycloneDx => cyclonedx::render(self),
        }
    }

    /// The SHA-256 the documents give crate `index`: the binary's for the root crate, since that
    /// is what the image holds, and `Cargo.lock`'s for the others.
    fn sha256(&self, index: usize) -> Option<String> {
        if index == self.crates.root {
            Some(self.subject.sha256.clone())
        } else {
            self.crates.crates[index].checksum.clone()
        }
    }
}

/// The path of the SBOM of binary `bin` inside the image, relative to its root.
pub(crate) fn image_path(bin: &str, format: SbomFormat) -> String {
    format!("{IMAGE_DIR}/{bin}.{}", format.extension())
}

/// The package URL of a crate (purl-spec's `cargo` type), which scanners match advisories on.
fn purl(c: &Crate) -> String {
    format!("pkg:cargo/{}@{}", c.name, c.version)
}

/// Where a crate can be fetched from, without anything of the building machine.
fn download_location(c: &Crate) -> Option<String> {
    match &c.source {
        Source::CratesIo => Some(format!(
            "https://crates.io/api/v1/crates/{}/{}/download",
            c.name, c.version
        )),
        Source::Git { url, rev } => Some(format!("git+{url}@{rev}")),
        Source::Registry(_) | Source::Path => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sbom() -> Sbom {
        let c = |name: &str, kind, source, dependencies: Vec<usize>| Crate {
            name: name.into(),
            version: "1.0.0".into(),
            source,
            license: Some("MIT/Apache-2.0".replace('/', " OR ")),
            checksum: Some("ab".repeat(32)),
            kind,
            dependencies,
            features: Vec::new(),
        };
        Sbom {
            subject: DescribedBinary {
                image: "app:1.0.0".into(),
                path: "/app/app".into(),
                sha256: "cd".repeat(32),
            },
            crates: CrateGraph {
                crates: vec![
                    c("app", Kind::Runtime, Source::Path, vec![1, 2, 3]),
                    c("cc", Kind::Build, Source::CratesIo, vec![]),
                    c(
                        "git_dep",
                        Kind::Runtime,
                        Source::Git {
                            url: "https://example.com/g".into(),
                            rev: "abc".into(),
                        },
                        vec![],
                    ),
                    c("serde", Kind::Runtime, Source::CratesIo, vec![]),
                ],
                root: 0,
                features: Vec::new(),
            },
            c_libraries: Vec::new(),
            base: vec![
                Component {
                    name: "ca-certificates",
                    version: "1.0.4".into(),
                    path: "/etc/ssl/certs/ca-certificates.crt".into(),
                    summary: "Mozilla's root certificates (146 roots) from webpki-root-certs 1.0.4"
                        .into(),
                    purl: "pkg:cargo/webpki-root-certs@1.0.4".into(),
                },
                Component {
                    name: "tzdata",
                    version: "2026a".into(),
                    path: "/usr/share/zoneinfo".into(),
                    summary: "the IANA time zone database 2026a".into(),
                    purl: "pkg:generic/tzdata@2026a".into(),
                },
            ],
            created: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        }
    }

    /// [`sbom`] with zstd-sys (zstd 1.5.7) and libsqlite3-sys (a SQLite whose version was not
    /// read) in the binary, and a library of a crate that is not.
    pub(crate) fn with_c_libraries() -> Sbom {
        let mut sbom = sbom();
        for (name, version) in [
            ("zstd-sys", "2.0.15+zstd.1.5.7"),
            ("libsqlite3-sys", "0.35.0"),
        ] {
            sbom.crates.crates.push(Crate {
                name: name.into(),
                version: version.into(),
                ..sbom.crates.crates[3].clone()
            });
        }
        sbom.crates.crates[0].dependencies.extend([4, 5]);
        let library = |name: &str, krate: &str, krate_version: &str| {
            let scripts = [BuildScript {
                krate: krate.into(),
                version: krate_version.into(),
                manifest_dir: "/nonexistent".into(),
                out_dir: "/nonexistent".into(),
                features: Vec::new(),
                static_libs: vec![name.into()],
            }];
            linked::libraries(&scripts).remove(0)
        };
        sbom.c_libraries = vec![
            library("zstd", "zstd-sys", "2.0.15+zstd.1.5.7"),
            library("sqlite3", "libsqlite3-sys", "0.35.0"),
            library("elsewhere", "not-linked", "1.0.0"),
        ];
        sbom
    }

    #[test]
    fn locations_hold_no_local_paths() {
        let s = sbom();
        let locations: Vec<_> = s.crates.crates.iter().map(download_location).collect();
        assert_eq!(locations[0], None);
        assert_eq!(
            locations[2].as_deref(),
            Some("git+https://example.com/g@abc")
        );
        assert_eq!(
            locations[3].as_deref(),
            Some("https://crates.io/api/v1/crates/serde/1.0.0/download")
        );
    }
}
