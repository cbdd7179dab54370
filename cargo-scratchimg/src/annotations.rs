//! What an image says about itself in its manifest and config, and which value wins, decided
//! here and nowhere else:
//!
//! - the OCI spec's `org.opencontainers.image.*` from Cargo.toml and git ([`standard`]);
//! - where the image came from, ours under `dev.cargo-scratchimg.*` ([`Provenance`]): the
//!   toolchain, this tool, the build settings that change the binary, and the source
//!   repository, which Cargo.toml's `repository` wins over;
//! - the user's `labels` and `annotations`, which win over both ([`labels`], [`manifest`]).
//!
//! Nothing here may depend on the building machine, or rebuilds elsewhere would differ: a
//! repository that is only a local path is left out, and credentials in a URL are removed.

use std::collections::BTreeMap;

use cargo_metadata::Package;

/// Where the OCI spec's pre-defined annotations live.
const STANDARD: &str = "org.opencontainers.image.";

/// The facts the annotations state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Provenance {
    /// `package.repository`, else the `origin` remote when it is a URL.
    pub source: Option<String>,
    /// `rustc -vV` of the toolchain that built the binary.
    pub toolchain: String,
    /// The features enabled on the binary's package, sorted.
    pub features: Vec<String>,
    pub profile: String,
    pub target: String,
    /// Whether the binary carries its dependency list.
    pub auditable: bool,
}

/// Where ours live.
const OURS: &str = "dev.cargo-scratchimg";

impl Provenance {
    /// Ours under `dev.cargo-scratchimg.*`, and `org.opencontainers.image.source`; [`manifest`]
    /// puts them under the standard annotations, which keep their values.
    pub(crate) fn annotations(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            map.insert(key.to_string(), value.to_string());
        };
        if let Some(source) = &self.source {
            put(&format!("{STANDARD}source"), source);
        }
        put(&format!("{OURS}.tool"), crate::image::CREATED_BY);
        put(&format!("{OURS}.rustc"), self.toolchain.trim());
        put(&format!("{OURS}.features"), &self.features.join(","));
        put(&format!("{OURS}.profile"), &self.profile);
        put(&format!("{OURS}.target"), &self.target);
        put(
            &format!("{OURS}.auditable"),
            if self.auditable { "true" } else { "false" },
        );
        map
    }
}

/// `package.repository` if given, else `origin`'s URL without credentials, if it is a URL.
pub(crate) fn source(repository: Option<&str>, origin: Option<&str>) -> Option<String> {
    if let Some(repository) = repository {
        return Some(repository.to_string());
    }
    public_url(origin?)
}

fn public_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = match rest.split_once('@') {
        Some((userinfo, host)) if !userinfo.contains('/') => host,
        _ => rest,
    };
    Some(format!("{scheme}://{rest}"))
}

/// `org.opencontainers.image.*` for a package; keys whose source is empty are left out.
pub(crate) fn standard(
    package: &Package,
    revision: Option<&str>,
    created: &str,
) -> BTreeMap<String, String> {
    let authors = (!package.authors.is_empty()).then(|| package.authors.join(", "));
    let version = package.version.to_string();
    let pairs = [
        ("title", Some(package.name.as_str())),
        ("description", package.description.as_deref()),
        ("version", Some(version.as_str())),
        ("licenses", package.license.as_deref()),
        ("source", package.repository.as_deref()),
        (
            "url",
            package
                .homepage
                .as_deref()
                .or(package.repository.as_deref()),
        ),
        ("documentation", package.documentation.as_deref()),
        ("authors", authors.as_deref()),
        ("revision", revision),
        ("created", Some(created)),
    ];
    pairs
        .into_iter()
        .filter_map(|(key, value)| {
            Some((
                format!("{STANDARD}{key}"),
                value.filter(|v| !v.is_empty())?.to_string(),
            ))
        })
        .collect()
}

/// The config's labels: the standard annotations, under the user's `labels`.
pub(crate) fn labels(
    standard: &BTreeMap<String, String>,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = standard.clone();
    labels.extend(user.clone());
    labels
}

/// The manifest's annotations: ours from `provenance` under the standard ones (which keep
/// `source` when Cargo.toml names a repository), and the user's `annotations` over all.
pub(crate) fn manifest(
    standard: &BTreeMap<String, String>,
    provenance: &Provenance,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut annotations = standard.clone();
    for (key, value) in provenance.annotations() {
        annotations.entry(key).or_insert(value);
    }
    annotations.extend(user.clone());
    annotations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_come_from_the_package() {
        let package: Package = serde_json::from_value(serde_json::json!({
            "name": "web", "version": "1.2.3", "id": "web 1.2.3", "license": "MIT",
            "description": "A web server", "repository": "https://github.com/acme/web",
            "authors": ["A <a@x>", "B"], "dependencies": [], "targets": [], "features": {},
            "manifest_path": "/w/Cargo.toml", "edition": "2021", "source": null,
            "categories": [], "keywords": [], "readme": null, "homepage": null,
            "documentation": null, "links": null, "publish": null, "metadata": null,
        }))
        .unwrap();
        let a = standard(&package, Some("abc123"), "2023-11-14T22:13:20Z");
        assert_eq!(a["org.opencontainers.image.title"], "web");
        assert_eq!(a["org.opencontainers.image.version"], "1.2.3");
        assert_eq!(a["org.opencontainers.image.licenses"], "MIT");
        assert_eq!(
            a["org.opencontainers.image.source"],
            "https://github.com/acme/web"
        );
        assert_eq!(
            a["org.opencontainers.image.url"],
            "https://github.com/acme/web"
        );
        assert_eq!(a["org.opencontainers.image.authors"], "A <a@x>, B");
        assert_eq!(a["org.opencontainers.image.revision"], "abc123");
        assert_eq!(
            a["org.opencontainers.image.created"],
            "2023-11-14T22:13:20Z"
        );
        assert!(!a.contains_key("org.opencontainers.image.documentation"));
    }

    #[test]
    fn urls_lose_credentials_and_paths_are_left_out() {
        assert_eq!(
            public_url("https://user:token@github.com/a/b.git").as_deref(),
            Some("https://github.com/a/b.git")
        );
        assert_eq!(
            public_url("ssh://git@example.com/a/b").as_deref(),
            Some("ssh://example.com/a/b")
        );
        assert_eq!(public_url("/home/me/origin"), None);
        assert_eq!(public_url("git@github.com:a/b.git"), None);
    }

    #[test]
    fn annotations_name_the_build() {
        let provenance = Provenance {
            source: Some("https://github.com/a/b".into()),
            toolchain: "rustc 1.96.0\nhost: x86_64-unknown-linux-gnu\n".into(),
            features: vec!["default".into(), "tls".into()],
            profile: "release".into(),
            target: "x86_64-unknown-linux-musl".into(),
            auditable: true,
        };
        let map = provenance.annotations();
        assert_eq!(
            map["org.opencontainers.image.source"],
            "https://github.com/a/b"
        );
        assert_eq!(map["dev.cargo-scratchimg.features"], "default,tls");
        assert_eq!(
            map["dev.cargo-scratchimg.rustc"],
            "rustc 1.96.0\nhost: x86_64-unknown-linux-gnu"
        );
        assert_eq!(
            map["dev.cargo-scratchimg.target"],
            "x86_64-unknown-linux-musl"
        );
        assert!(map["dev.cargo-scratchimg.tool"].starts_with("cargo-scratchimg "));
    }

    #[test]
    fn the_user_wins_then_cargo_toml_then_ours() {
        let standard = BTreeMap::from([
            (
                "org.opencontainers.image.source".into(),
                "https://a/cargo".into(),
            ),
            ("org.opencontainers.image.title".into(), "web".into()),
        ]);
        let provenance = Provenance {
            source: Some("https://a/git-origin".into()),
            ..Provenance::default()
        };
        let user = BTreeMap::from([("org.opencontainers.image.title".into(), "mine".into())]);
        let annotations = manifest(&standard, &provenance, &user);
        assert_eq!(annotations["org.opencontainers.image.title"], "mine");
        assert_eq!(
            annotations["org.opencontainers.image.source"],
            "https://a/cargo"
        );
        assert_eq!(annotations["dev.cargo-scratchimg.auditable"], "false");
        let without_cargo_source = BTreeMap::new();
        let annotations = manifest(&without_cargo_source, &provenance, &BTreeMap::new());
        assert_eq!(
            annotations["org.opencontainers.image.source"],
            "https://a/git-origin"
        );
        let labels = labels(&standard, &user);
        assert_eq!(labels["org.opencontainers.image.title"], "mine");
        assert!(!labels.keys().any(|k| k.starts_with("dev.")), "{labels:?}");
    }
}
