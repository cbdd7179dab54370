//! The files a run writes: each image's output, and the SBOM and provenance documents beside
//! it, claimed before the build ([`Outputs`]) so an unwritable path fails in a second, and
//! named here.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::ImageRequest;
use crate::pipeline::Options;
use crate::sbom::SbomFormat;
use crate::sink::{Destination, Format, PendingFile};
use crate::target::Target;

/// An image's files, claimed.
pub(crate) struct Outputs {
    /// The file or directory to write; `None` when the image is only pushed or loaded.
    pub destination: Option<Destination>,
    /// The SBOM files beside the output, one per platform and binary, in the order the
    /// documents are made: each platform's, in the plan's order, each binary's in the image's.
    pub sboms: Vec<SbomClaim>,
    /// `<output>.intoto.json`: the provenance beside the output.
    pub provenance: Option<PendingFile>,
    /// SBOM documents an earlier run left beside the output that this run does not write
    /// (another platform set, binaries or format): removed when the output is committed.
    pub stale_sboms: Vec<PathBuf>,
}

/// An SBOM file beside the output.
pub(crate) struct SbomClaim {
    pub target: Target,
    pub bin: String,
    pub file: PendingFile,
}

impl Outputs {
    /// Every image's outputs, claimed once every check before has passed.
    pub(super) fn claim_all(
        requests: &[ImageRequest],
        targets: &[Target],
        options: &Options,
    ) -> Result<Vec<Outputs>> {
        // Each directory is read once, however many outputs it holds.
        let mut listings = Listings::new();
        requests
            .iter()
            .map(|request| Outputs::claim(request, targets, options, &mut listings))
            .collect()
    }

    fn claim(
        request: &ImageRequest,
        targets: &[Target],
        options: &Options,
        listings: &mut Listings,
    ) -> Result<Outputs> {
        let Some(path) = &request.output else {
            return Ok(Outputs {
                destination: None,
                sboms: Vec::new(),
                provenance: None,
                stale_sboms: Vec::new(),
            });
        };
        let destination = Destination::claim(path, options.format, request.date.seconds)?;
        let mut sboms = Vec::new();
        if let Some(format) = options.sbom {
            for target in targets {
                for bin in &request.bins {
                    let beside = sbom_beside(path, target, bin, targets, &request.bins);
                    sboms.push(SbomClaim {
                        target: target.clone(),
                        bin: bin.clone(),
                        file: PendingFile::create(&sidecar(&beside, format.extension()))?,
                    });
                }
            }
        }
        Ok(Outputs {
            stale_sboms: stale_sboms(path, &sboms, listings),
            provenance: Some(PendingFile::create(&sidecar(path, "intoto.json"))?),
            sboms,
            destination: Some(destination),
        })
    }
}

/// `--metadata-file`, claimed: a path no other output of the run has, nor inside an OCI
/// directory the run writes (its layout is replaced whole).
pub(super) fn claim_record(
    path: Option<&Path>,
    outputs: &[Outputs],
) -> Result<Option<PendingFile>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let taken = outputs.iter().flat_map(|o| {
        let beside = o.sboms.iter().map(|claim| claim.file.path());
        (o.destination.iter().map(Destination::path))
            .chain(o.provenance.iter().map(PendingFile::path))
            .chain(beside)
    });
    let inside = |destination: &Destination| {
        matches!(destination, Destination::OciDir(_)) && path.starts_with(destination.path())
    };
    if let Some(layout) = (outputs.iter())
        .flat_map(|o| o.destination.iter())
        .find(|destination| inside(destination))
    {
        bail!(
            "--metadata-file {} is inside the OCI directory {}, which the run replaces whole\nhelp: give the record a path outside it, e.g. --metadata-file build.json",
            path.display(),
            layout.path().display()
        );
    }
    for other in taken {
        if other == path {
            bail!(
                "--metadata-file {} is also an output of the run\nhelp: give the record a path of its own, e.g. --metadata-file build.json",
                path.display()
            );
        }
    }
    PendingFile::create(path).map(Some)
}

/// The names of the files in each directory outputs go to, read once.
type Listings = HashMap<PathBuf, Vec<OsString>>;

/// The SBOM documents beside `output` that an earlier run wrote and this one, which writes
/// `sboms`, does not: they would describe the new output, so the commit removes them.
fn stale_sboms(output: &Path, sboms: &[SbomClaim], listings: &mut Listings) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (output.parent(), output.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.to_string_lossy();
    let listing = listings.entry(dir.to_path_buf()).or_insert_with(|| {
        let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
        entries.map(|entry| entry.file_name()).collect()
    });
    let mut stale: Vec<PathBuf> = listing
        .iter()
        .filter(|file| is_sbom_beside(&name, &file.to_string_lossy()))
        .filter(|file| {
            !sboms
                .iter()
                .any(|claim| claim.file.path().file_name() == Some(file.as_os_str()))
        })
        .map(|file| dir.join(file))
        .collect();
    stale.sort();
    stale
}

pub(super) fn output_name(name: &str, version: &str, format: Format) -> String {
    match format {
        Format::Archive => format!("{name}-{version}.tar"),
        Format::OciDir => format!("{name}-{version}"),
    }
}

/// Where a binary's SBOM goes beside the output, before the format's extension: the output
/// itself for one platform and binary; else with `.<os>-<arch>` for each platform of an index
/// (one document per platform image, as each lists what that platform compiled) and `.<bin>`
/// for each of several binaries.
fn sbom_beside(
    output: &Path,
    target: &Target,
    bin: &str,
    targets: &[Target],
    bins: &[String],
) -> PathBuf {
    let mut path = output.to_path_buf();
    if targets.len() > 1 {
        path = sidecar(&path, &format!("linux-{}", target.arch.oci_arch()));
    }
    if bins.len() > 1 {
        path = sidecar(&path, bin);
    }
    path
}

/// Whether `name` is that of an SBOM document some run writes beside an output named `output`
/// ([`sbom_beside`] with a format's extension): `<output>[.<os>-<arch>][.<bin>].<ext>`.
fn is_sbom_beside(output: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(output).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    let Some(middle) = [SbomFormat::Spdx, SbomFormat::CycloneDx]
        .iter()
        .find_map(|format| rest.strip_suffix(format.extension()))
    else {
        return false;
    };
    if middle.is_empty() {
        return true;
    }
    let Some(middle) = middle.strip_suffix('.') else {
        return false;
    };
    let parts: Vec<&str> = middle.split('.').collect();
    // Platforms and binary names: cargo's target names are letters, digits, `-` and `_`.
    parts.len() <= 2
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// `<output>.<extension>`, e.g. `hello-0.1.0.tar.spdx.json`.
fn sidecar(output: &Path, extension: &str) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_of_earlier_runs_are_known_by_their_names() {
        let out = "web-1.0.0.tar";
        for name in [
            "web-1.0.0.tar.spdx.json",
            "web-1.0.0.tar.cdx.json",
            "web-1.0.0.tar.linux-arm64.spdx.json",
            "web-1.0.0.tar.migrate.cdx.json",
            "web-1.0.0.tar.linux-amd64.migrate_tool.spdx.json",
        ] {
            assert!(is_sbom_beside(out, name), "{name}");
        }
        for name in [
            "web-1.0.0.tar",
            "web-1.0.0.tar.json",
            "web-1.0.0.tar.notes.txt",
            "web-1.0.0.tarx.spdx.json",
            "web-1.0.0.tar..spdx.json",
            "web-1.0.0.tar.a.b.c.spdx.json",
            "other.tar.spdx.json",
        ] {
            assert!(!is_sbom_beside(out, name), "{name}");
        }
    }

    #[test]
    fn output_names_follow_the_image() {
        assert_eq!(
            output_name("hello", "0.1.0", Format::Archive),
            "hello-0.1.0.tar"
        );
        assert_eq!(output_name("hello", "0.1.0", Format::OciDir), "hello-0.1.0");
    }

    #[test]
    fn sboms_beside_the_output_name_the_platform_and_binary_when_there_are_several() {
        let amd64 = Target::parse("x86_64-unknown-linux-musl").unwrap();
        let arm64 = Target::parse("aarch64-unknown-linux-musl").unwrap();
        let out = Path::new("/o/web-1.0.0.tar");
        let one_bin = ["web".to_string()];
        let two_bins = ["web".to_string(), "migrate".to_string()];
        let beside_spdx = |target: &Target, bin: &str, targets: &[Target], bins: &[String]| {
            sidecar(&sbom_beside(out, target, bin, targets, bins), "spdx.json")
        };
        assert_eq!(
            beside_spdx(&amd64, "web", std::slice::from_ref(&amd64), &one_bin),
            Path::new("/o/web-1.0.0.tar.spdx.json")
        );
        let both = [amd64.clone(), arm64.clone()];
        assert_eq!(
            beside_spdx(&arm64, "web", &both, &one_bin),
            Path::new("/o/web-1.0.0.tar.linux-arm64.spdx.json")
        );
        assert_eq!(
            beside_spdx(&amd64, "migrate", &both, &two_bins),
            Path::new("/o/web-1.0.0.tar.linux-amd64.migrate.spdx.json")
        );
        assert_eq!(
            beside_spdx(&amd64, "migrate", std::slice::from_ref(&amd64), &two_bins),
            Path::new("/o/web-1.0.0.tar.migrate.spdx.json")
        );
    }
}
