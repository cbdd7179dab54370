//! Image settings: built-in defaults, overridden by `[workspace.metadata.scratchimg]`, then by
//! `[package.metadata.scratchimg]`, then by flags. Everything is checked here, before cargo
//! builds anything, and every error names the key, the file and line, and the valid choices.

mod manifest;
mod overrides;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;

pub(crate) use manifest::{ManifestText, Table};
pub(crate) use overrides::resolve;
pub(crate) use values::User;

use crate::cargo::strip::Strip;
use crate::checks::Check;
use crate::image::{Compression, RunConfig};
use crate::rootfs::{
    APP_DIR, BaseFiles, Capabilities, FileCopy, app_path, ca_bundle_path, has_ca_bundle,
};
use crate::sign::SignFormat;
use crate::target::Arch;

/// Image settings given as flags; `None` or empty means not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFlags {
    pub entrypoint: Option<String>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE`
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub ports: Vec<String>,
    /// `KEY=VALUE`
    pub labels: Vec<String>,
    /// `KEY=VALUE`
    pub annotations: Vec<String>,
    /// `SRC:DST`
    pub files: Vec<String>,
    /// `all`, `none`, or zone names separated by commas.
    pub tz: Option<String>,
    pub ca_certs: Vec<PathBuf>,
    /// `gzip` or `zstd`, with `:LEVEL` or not.
    pub compression: Option<String>,
    pub sign_format: Option<SignFormat>,
    /// `--cap`: capabilities of every binary, names as capabilities(7) gives them.
    pub capabilities: Vec<String>,
    pub strip: Option<Strip>,
}

/// The settings of one image, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The image name without a tag, e.g. `ghcr.io/acme/web`.
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: User,
    pub ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub files: Vec<FileCopy>,
    pub base: BaseFiles,
    pub bin: Option<String>,
    pub bins: Option<Vec<String>>,
    pub features: Option<Vec<String>>,
    pub profile: Option<String>,
    pub platforms: Option<Vec<Arch>>,
    /// The checks before the build that `allow` turns off.
    pub allow: Vec<Check>,
    /// `cross = "zig"`: C code and linking through cargo-zigbuild.
    pub zig: bool,
    /// Of the layers; the base layer uses the same algorithm at its smallest.
    pub compression: Compression,
    /// How signatures and signed attestations go next to the image, with a key.
    pub sign_format: SignFormat,
    /// The file capabilities of the binaries.
    pub capabilities: Capabilities,
    /// What cargo strips; `None` leaves it to the other packages of the build, else symbols.
    pub strip: Option<Strip>,
}

impl Settings {
    /// How the image runs its programs: `entrypoint` or the first binary, as `user`, in
    /// `workdir` or the user's home, with `PATH=/app` and `SSL_CERT_FILE` unless `env` says
    /// otherwise. `derived` labels (from Cargo.toml and git) give way to the user's
    /// ([`crate::annotations::labels`]).
    pub(crate) fn run_config(
        &self,
        bins: &[String],
        derived: &BTreeMap<String, String>,
    ) -> RunConfig {
        let entrypoint = match (&self.entrypoint, bins.first()) {
            (Some(entrypoint), _) => entrypoint.clone(),
            (None, Some(bin)) => vec![app_path(bin)],
            (None, None) => Vec::new(),
        };
        let mut builtin = vec![("PATH", APP_DIR.to_string())];
        if has_ca_bundle(&self.base) {
            builtin.push(("SSL_CERT_FILE", ca_bundle_path()));
        }
        // Built-ins first, in their order, with the user's value where the user set one.
        let mut env: Vec<String> = builtin
            .iter()
            .map(|(k, v)| format!("{k}={}", self.env.get(*k).unwrap_or(v)))
            .collect();
        let is_builtin = |key: &str| builtin.iter().any(|(k, _)| *k == key);
        env.extend(
            self.env
                .iter()
                .filter(|(k, _)| !is_builtin(k))
                .map(|(k, v)| format!("{k}={v}")),
        );
        let home = self.user.home();
        let labels = crate::annotations::labels(derived, &self.labels);
        RunConfig {
            entrypoint,
            cmd: self.cmd.clone(),
            env,
            user: self.user.spec(),
            working_dir: self.workdir.clone().unwrap_or_else(|| home.to_string()),
            exposed_ports: self.ports.iter().cloned().collect(),
            volumes: self.volumes.iter().cloned().collect(),
            labels,
            stop_signal: self.stop_signal.clone(),
        }
    }
}

/// The settings tables of a package, and warnings about tables that look like a typo of ours.
#[derive(Debug, Clone, Default)]
pub(crate) struct Manifests {
    /// Lowest precedence first: the workspace's, then the package's own.
    pub tables: Vec<(Table, ManifestText)>,
    pub typos: Vec<String>,
}

/// Reads the tables of a package, lowest precedence first: the workspace's (in the workspace
/// root's Cargo.toml) and its own.
pub(crate) fn read_tables(package_manifest: &Path, workspace_manifest: &Path) -> Result<Manifests> {
    let workspace = ManifestText::read(workspace_manifest)?;
    let workspace_tables = manifest::read(&workspace)?;
    let (package, package_tables) = if package_manifest == workspace_manifest {
        (workspace.clone(), workspace_tables.clone())
    } else {
        let package = ManifestText::read(package_manifest)?;
        let tables = manifest::read(&package)?;
        (package, tables)
    };
    let layers = [
        (workspace_tables.workspace, workspace),
        (package_tables.package, package),
    ];
    Ok(Manifests {
        tables: layers
            .into_iter()
            .filter_map(|(table, source)| Some((table?, source)))
            .collect(),
        typos: [
            workspace_tables.workspace_typos,
            package_tables.package_typos,
        ]
        .concat(),
    })
}

/// What is worth a warning in a package's settings: a table that looks like a typo of ours,
/// and an image that runs as root, however the user is spelled.
pub(crate) fn warnings(manifests: &Manifests, settings: &Settings, package: &str) -> Vec<String> {
    let mut warnings = manifests.typos.clone();
    if settings.user.is_root() {
        warnings.push(format!(
            "the image of `{package}` runs as root; a scratch image rarely needs to"
        ));
    }
    let mut beyond: Vec<_> = (settings.capabilities.sets().into_iter())
        .flat_map(|caps| caps.beyond_engine_defaults())
        .collect();
    beyond.sort();
    beyond.dedup();
    for (cap, engines) in beyond {
        let short = cap.name().to_ascii_uppercase();
        warnings.push(format!(
            "the image of `{package}` gives its program {cap}, which {} containers lack unless started with `--cap-add={short}`: \
             the kernel refuses to run a program whose file capabilities exceed the container's bounding set, so it fails to start with \"operation not permitted\"\n\
             help: start it with `--cap-add={short}` (in Kubernetes, securityContext.capabilities.add: [\"{short}\"]), or leave {} out of `capabilities`",
            engines.join(" and "),
            cap.name()
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_tables_and_root_are_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("Cargo.toml");
        std::fs::write(
            &ws,
            "[workspace]\nmembers = [\"web\"]\n\n[workspace.metadata.scratch-img]\nuser = \"root\"\n\n[workspace.metadata.release]\nx = 1\n",
        )
        .unwrap();
        let pkg = dir.path().join("web/Cargo.toml");
        std::fs::create_dir(pkg.parent().unwrap()).unwrap();
        std::fs::write(
            &pkg,
            "[package]\nname = \"web\"\n\n[package.metadata.scratchimage]\nuser = \"root\"\n\n[package.metadata.scratchimg]\nuser = \"000:0\"\n",
        )
        .unwrap();
        let manifests = read_tables(&pkg, &ws).unwrap();
        let settings = resolve(&manifests.tables, &ImageFlags::default(), Path::new("/")).unwrap();
        assert_eq!(
            warnings(&manifests, &settings, "web"),
            [
                format!(
                    "{}:4:21: `[workspace.metadata.scratch-img]` is not read by cargo-scratchimg; did you mean `scratchimg`?\n\
                     help: rename it to [workspace.metadata.scratchimg]",
                    ws.display()
                ),
                format!(
                    "{}:4:19: `[package.metadata.scratchimage]` is not read by cargo-scratchimg; did you mean `scratchimg`?\n\
                     help: rename it to [package.metadata.scratchimg]",
                    pkg.display()
                ),
                "the image of `web` runs as root; a scratch image rarely needs to".to_string(),
            ]
        );
        // Another package's table in the workspace root is not this package's business.
        std::fs::write(
            &ws,
            "[workspace]\nmembers = [\"web\"]\n[package]\nname = \"root\"\n[package.metadata.scratch_img]\n",
        )
        .unwrap();
        std::fs::write(&pkg, "[package]\nname = \"web\"\n").unwrap();
        let manifests = read_tables(&pkg, &ws).unwrap();
        assert!(manifests.typos.is_empty(), "{:?}", manifests.typos);
        assert_eq!(read_tables(&ws, &ws).unwrap().typos.len(), 1);
    }

    #[test]
    fn capabilities_the_engines_do_not_grant_are_warnings() {
        let flags = ImageFlags {
            capabilities: vec![
                "net_bind_service".into(),
                "net_raw".into(),
                "sys_admin".into(),
            ],
            ..ImageFlags::default()
        };
        let settings = resolve(&[], &flags, Path::new("/")).unwrap();
        let warnings = warnings(&Manifests::default(), &settings, "web");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("the image of `web` gives its program CAP_NET_RAW, which podman containers lack unless started with `--cap-add=NET_RAW`"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].contains("CAP_SYS_ADMIN, which docker and podman containers lack")
                && warnings[1].contains("fails to start with \"operation not permitted\"\nhelp: start it with `--cap-add=SYS_ADMIN`"),
            "{}",
            warnings[1]
        );
    }

    #[test]
    fn run_config_defaults_and_overrides() {
        let settings = resolve(&[], &ImageFlags::default(), Path::new("/")).unwrap();
        let derived = BTreeMap::from([(
            "org.opencontainers.image.title".to_string(),
            "hello".to_string(),
        )]);
        let run = settings.run_config(&["hello".into()], &derived);
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
        assert_eq!(run.labels, derived);

        let flags = ImageFlags {
            env: vec!["PATH=/app:/bin".into(), "RUST_LOG=info".into()],
            labels: vec!["org.opencontainers.image.title=mine".into()],
            user: Some("root".into()),
            tz: None,
            ..ImageFlags::default()
        };
        let settings = resolve(&[], &flags, Path::new("/")).unwrap();
        let run = settings.run_config(&["a".into(), "b".into()], &derived);
        assert_eq!(
            run.env,
            [
                "PATH=/app:/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                "RUST_LOG=info"
            ]
        );
        assert_eq!(
            run.labels["org.opencontainers.image.title"], "mine",
            "user labels win"
        );
        assert_eq!(
            (run.user.as_str(), run.working_dir.as_str()),
            ("0:0", "/root")
        );
        assert_eq!(run.entrypoint, ["/app/a"]);
    }
}
