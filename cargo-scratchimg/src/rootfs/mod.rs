//! The root filesystem of the image: a base layer of files every program expects (CA roots,
//! time zones, users), built from data embedded in this tool, and a layer with the program.

mod certs;
mod tzdata;
mod users;

use anyhow::Result;

use crate::build::BuiltBinary;
use crate::image::{Layer, LayerBuilder, Owner, RunConfig};
pub use users::{NOBODY, NONROOT, ROOT};

/// Where programs go, and so the image's `PATH`.
pub const APP_DIR: &str = "/app";

/// The base layer's mtime. It does not follow `SOURCE_DATE_EPOCH`, so its bytes depend only on
/// this tool's version and every image made with one version shares the blob.
const BASE_MTIME: u64 = 0;

/// Files every image gets, laid out as distroless `static` does.
pub fn base_layer() -> Result<Layer> {
    let mut layer = LayerBuilder::new(BASE_MTIME);
    layer.file(certs::PATH, certs::bundle(), 0o644, Owner::ROOT)?;
    for zone in tzdata::zones() {
        let path = |name: &str| format!("{}/{name}", tzdata::DIR);
        match zone {
            tzdata::Zone::File { name, data } => {
                layer.file(&path(name), data, 0o644, Owner::ROOT)?
            }
            tzdata::Zone::Link { name, target } => layer.hardlink(&path(name), &path(target))?,
        };
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
    layer.build(base_comment())
}

/// What the base layer holds, for the image history.
pub fn base_comment() -> String {
    format!(
        "base: ca-certificates (Mozilla, {} roots), tzdata {}, passwd/group (root, nonroot, nobody)",
        certs::count(),
        tzdata::version()
    )
}

/// A part of the base layer, as an SBOM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseComponent {
    pub name: &'static str,
    pub version: String,
    /// Where it lives in the image, absolute.
    pub path: String,
    pub summary: String,
    /// The package URL of where its data comes from.
    pub purl: String,
}

/// What the base layer holds that has a version: the CA bundle and the tz database.
pub fn base_components() -> Vec<BaseComponent> {
    vec![
        BaseComponent {
            name: "ca-certificates",
            version: certs::VERSION.to_string(),
            path: format!("/{}", certs::PATH),
            summary: format!(
                "Mozilla's root certificates ({} roots) from webpki-root-certs {}",
                certs::count(),
                certs::VERSION
            ),
            purl: format!("pkg:cargo/webpki-root-certs@{}", certs::VERSION),
        },
        BaseComponent {
            name: "tzdata",
            version: tzdata::version().to_string(),
            path: format!("/{}", tzdata::DIR),
            summary: format!("the IANA time zone database {}", tzdata::version()),
            purl: format!("pkg:generic/tzdata@{}", tzdata::version()),
        },
    ]
}

/// The program at `/app/<bin>`, owned by root and not writable by the user it runs as.
pub fn app_files(binary: &BuiltBinary, data: Vec<u8>, mtime: u64) -> Result<LayerBuilder<'static>> {
    let mut layer = LayerBuilder::new(mtime);
    layer.file(&app_path(&binary.name), data, 0o755, Owner::ROOT)?;
    Ok(layer)
}

/// What the app layer holds, for the image history.
pub fn app_comment(binary: &BuiltBinary) -> String {
    let BuiltBinary {
        package,
        version,
        target,
        ..
    } = binary;
    format!(
        "{} ({package} {version}, {})",
        app_path(&binary.name),
        target.triple
    )
}

pub fn app_path(bin: &str) -> String {
    format!("{APP_DIR}/{bin}")
}

/// How the image runs the program: as nonroot, in its home, with the CA bundle advertised.
pub fn run_config(bin: &str) -> RunConfig {
    RunConfig {
        entrypoint: vec![app_path(bin)],
        cmd: Vec::new(),
        env: vec![
            format!("PATH={APP_DIR}"),
            format!("SSL_CERT_FILE=/{}", certs::PATH),
        ],
        user: NONROOT.user_spec(),
        working_dir: NONROOT.home.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_layer_is_the_same_every_time() {
        let a = base_layer().unwrap();
        let b = base_layer().unwrap();
        assert_eq!(a.blob().digest(), b.blob().digest());
    }

    #[test]
    fn base_layer_has_distroless_layout() {
        let tar = {
            let layer = base_layer().unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(layer.blob().data()),
                &mut out,
            )
            .unwrap();
            out
        };
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
    fn run_config_is_nonroot_with_the_app_on_path() {
        let run = run_config("hello");
        assert_eq!(run.entrypoint, ["/app/hello"]);
        assert_eq!(run.user, "65532:65532");
        assert_eq!(run.working_dir, "/home/nonroot");
        assert_eq!(
            run.env,
            [
                "PATH=/app",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
            ]
        );
    }
}
