//! The root filesystem of the image: a base layer of files every program expects (CA roots,
//! time zones, users), built from data embedded in this tool, and a layer with the program.

mod capabilities;
mod certs;
pub(crate) mod files;
mod tzdata;
mod users;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;

use crate::image::{Content, LayerBuilder, Owner, Xattrs};
use crate::sbom::Component;
pub(crate) use capabilities::{Cap, Capabilities, FileCaps};
pub(crate) use files::{FileCopy, files_layer};
pub(crate) use users::{NOBODY, NONROOT, ROOT};

/// Where programs go, and so the image's `PATH`.
pub(crate) const APP_DIR: &str = "/app";

/// The base layer's mtime. It does not follow `SOURCE_DATE_EPOCH`, so its bytes depend only on
/// this tool's version (and the `tz` and `ca-certs` settings): images share the blob.
const BASE_MTIME: u64 = 0;

/// Which zones go into `/usr/share/zoneinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Zones {
    #[default]
    All,
    None,
    /// These canonical names, and UTC.
    Only(BTreeSet<&'static str>),
}

/// A PEM file appended to the CA bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtraCa {
    pub path: PathBuf,
    pub count: usize,
    /// Its certificates written anew, without the text around them.
    pub pem: Vec<u8>,
}

impl ExtraCa {
    /// The certificates of the PEM file at `path`, each checked to be an X.509 certificate; the
    /// error says which block is wrong and how to fix it.
    pub(crate) fn parse(path: PathBuf, pem: &[u8]) -> Result<ExtraCa, String> {
        let ders = certs::certificates(pem, &path)?;
        Ok(ExtraCa {
            path,
            count: ders.len(),
            pem: certs::pem(ders.iter().map(Vec::as_slice)),
        })
    }
}

/// What goes into the CA bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaCerts {
    pub mozilla: bool,
    pub extra: Vec<ExtraCa>,
}

impl Default for CaCerts {
    fn default() -> Self {
        CaCerts {
            mozilla: true,
            extra: Vec::new(),
        }
    }
}

impl CaCerts {
    fn is_empty(&self) -> bool {
        !self.mozilla && self.extra.is_empty()
    }
}

/// The choices the base layer depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BaseFiles {
    pub zones: Zones,
    pub ca: CaCerts,
}

/// The files of the base layer, before compression.
pub(crate) fn base_files(base: &BaseFiles) -> Result<LayerBuilder> {
    let mut layer = LayerBuilder::new(BASE_MTIME);
    if !base.ca.is_empty() {
        let mut bundle = if base.ca.mozilla {
            certs::bundle()
        } else {
            Vec::new()
        };
        for extra in &base.ca.extra {
            bundle.extend_from_slice(&extra.pem);
            if !extra.pem.ends_with(b"\n") {
                bundle.push(b'\n');
            }
        }
        layer.file(certs::PATH, bundle, 0o644, Owner::ROOT)?;
    }
    let names = match &base.zones {
        Zones::All => None,
        Zones::None => Some(BTreeSet::new()),
        Zones::Only(names) => Some(names.iter().copied().chain(["UTC"]).collect()),
    };
    if names.as_ref().is_none_or(|n| !n.is_empty()) {
        for zone in tzdata::zones(names.as_ref()) {
            let path = |name: &str| format!("{}/{name}", tzdata::DIR);
            match zone {
                tzdata::Zone::File { name, data } => {
                    layer.file(&path(name), data, 0o644, Owner::ROOT)?
                }
                tzdata::Zone::Link { name, target } => {
                    layer.hardlink(&path(name), &path(target))?
                }
            };
        }
    }
    layer
        .file(
            "etc/passwd",
            users::passwd().into_bytes(),
            0o644,
            Owner::ROOT,
        )?
        .file("etc/group", users::group().into_bytes(), 0o644, Owner::ROOT)?
        .file(
            "etc/nsswitch.conf",
            users::NSSWITCH.as_bytes(),
            0o644,
            Owner::ROOT,
        )?
        .dir(ROOT.home, 0o700, ROOT.owner())?
        .dir(NONROOT.home, 0o700, NONROOT.owner())?
        .dir("tmp", 0o1777, Owner::ROOT)?;
    Ok(layer)
}

/// What the base layer holds, for the image history.
pub(crate) fn base_comment(base: &BaseFiles) -> String {
    let mut ca = Vec::new();
    if base.ca.mozilla {
        ca.push(format!("Mozilla, {} roots", certs::count()));
    }
    for extra in &base.ca.extra {
        let name = extra
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        ca.push(format!("{} from {name}", extra.count));
    }
    let ca = if ca.is_empty() {
        "no ca-certificates".to_string()
    } else {
        format!("ca-certificates ({})", ca.join(", "))
    };
    let tz = match &base.zones {
        Zones::All => format!("tzdata {}", tzdata::version()),
        Zones::None => "no tzdata".to_string(),
        Zones::Only(names) => {
            let names: Vec<&str> = names
                .iter()
                .copied()
                .chain(["UTC"])
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            format!("tzdata {} ({})", tzdata::version(), names.join(", "))
        }
    };
    format!("base: {ca}, {tz}, passwd/group (root, nonroot, nobody)")
}

/// Whether the bundle exists, so `SSL_CERT_FILE` can point at it.
pub(crate) fn has_ca_bundle(base: &BaseFiles) -> bool {
    !base.ca.is_empty()
}

/// What `base` puts into the base layer that has a version: Mozilla's CA bundle and the tz
/// database, each only when the settings keep it. Extra CA files have no version to list.
pub(crate) fn base_components(base: &BaseFiles) -> Vec<Component> {
    let mut components = Vec::new();
    if base.ca.mozilla {
        components.push(Component {
            name: "ca-certificates",
            version: certs::VERSION.to_string(),
            path: format!("/{}", certs::PATH),
            summary: format!(
                "Mozilla's root certificates ({} roots) from webpki-root-certs {}",
                certs::count(),
                certs::VERSION
            ),
            purl: format!("pkg:cargo/webpki-root-certs@{}", certs::VERSION),
        });
    }
    let zones = match &base.zones {
        Zones::All => Some(String::new()),
        Zones::None => None,
        Zones::Only(names) => Some(format!(" ({} zones and UTC)", names.len())),
    };
    if let Some(zones) = zones {
        components.push(Component {
            name: "tzdata",
            version: tzdata::version().to_string(),
            path: format!("/{}", tzdata::DIR),
            summary: format!("the IANA time zone database {}{zones}", tzdata::version()),
            purl: format!("pkg:generic/tzdata@{}", tzdata::version()),
        });
    }
    components
}

/// The first of Mozilla's roots as PEM, for tests that need a real certificate.
#[cfg(test)]
pub(crate) fn mozilla_pem_sample() -> String {
    let bundle = String::from_utf8(certs::bundle()).unwrap();
    let end = "-----END CERTIFICATE-----\n";
    bundle[..bundle.find(end).unwrap() + end.len()].to_string()
}

/// The programs at `/app/<bin>`, owned by root and not writable by the user they run as, each
/// with its file capabilities.
pub(crate) fn app_files<'a>(
    programs: impl IntoIterator<Item = (&'a str, Content)>,
    capabilities: &Capabilities,
    mtime: u64,
) -> Result<LayerBuilder> {
    let mut layer = LayerBuilder::new(mtime);
    for (bin, content) in programs {
        let xattrs: Xattrs = (capabilities.of(bin).xattr().into_iter())
            .map(|value| (capabilities::XATTR.to_string(), value))
            .collect();
        layer.file_with_xattrs(&app_path(bin), content, 0o755, Owner::ROOT, xattrs)?;
    }
    Ok(layer)
}

pub(crate) fn app_path(bin: &str) -> String {
    format!("{APP_DIR}/{bin}")
}

/// `/etc/ssl/certs/ca-certificates.crt`, for `SSL_CERT_FILE`.
pub(crate) fn ca_bundle_path() -> String {
    format!("/{}", certs::PATH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Layer;

    fn base_layer(base: &BaseFiles) -> Result<Layer> {
        base_files(base)?.build(base_comment(base))
    }

    fn gunzip(layer: &Layer) -> Vec<u8> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&layer.blob().read_all()[..]),
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn base_layer_is_the_same_every_time() {
        let a = base_layer(&BaseFiles::default()).unwrap();
        let b = base_layer(&BaseFiles::default()).unwrap();
        assert_eq!(a.blob().digest(), b.blob().digest());
    }

    #[test]
    fn base_layer_has_distroless_layout() {
        let tar = gunzip(&base_layer(&BaseFiles::default()).unwrap());
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = std::collections::BTreeMap::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            seen.insert(
                e.path().unwrap().to_string_lossy().into_owned(),
                (
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.entry_type(),
                ),
            );
        }
        use tar::EntryType::*;
        assert_eq!(seen["tmp/"], (0o1777, 0, 0, Directory));
        assert_eq!(seen["home/nonroot/"], (0o700, 65532, 65532, Directory));
        assert_eq!(seen["root/"], (0o700, 0, 0, Directory));
        assert_eq!(seen["etc/passwd"], (0o644, 0, 0, Regular));
        assert_eq!(
            seen["etc/ssl/certs/ca-certificates.crt"],
            (0o644, 0, 0, Regular)
        );
        assert_eq!(seen["usr/share/zoneinfo/Asia/Tokyo"].3, Regular);
        assert!(seen.values().any(|v| v.3 == Link));
        assert!(seen.keys().all(|k| !k.starts_with('/')));
    }

    #[test]
    fn zones_and_certificates_can_be_chosen() {
        let only_berlin = BaseFiles {
            zones: Zones::Only(BTreeSet::from(["Europe/Berlin"])),
            ca: CaCerts {
                mozilla: false,
                extra: Vec::new(),
            },
        };
        let tar = gunzip(&base_layer(&only_berlin).unwrap());
        let mut archive = tar::Archive::new(&tar[..]);
        let paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .filter(|p| p.starts_with("usr/share/zoneinfo/") || p.starts_with("etc/ssl"))
            .collect();
        assert_eq!(
            paths,
            [
                "usr/share/zoneinfo/",
                "usr/share/zoneinfo/Europe/",
                "usr/share/zoneinfo/Europe/Berlin",
                "usr/share/zoneinfo/UTC"
            ]
        );
        assert!(base_comment(&only_berlin).contains("no ca-certificates, tzdata"));
        assert!(base_comment(&only_berlin).contains("(Europe/Berlin, UTC)"));
    }
}
