//! Where an image came from, as annotations on its manifest: the source repository and
//! revision, the toolchain, this tool, and the build settings that change the binary.
//!
//! Nothing here may depend on the building machine, or rebuilds elsewhere would differ: a
//! repository that is only a local path is left out, and credentials in a URL are removed.

use std::collections::BTreeMap;

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

const PREFIX: &str = "dev.cargo-scratchimg";

impl Provenance {
    /// Ours under `dev.cargo-scratchimg.*`, and `org.opencontainers.image.source`. The caller
    /// merges them under the standard annotations from Cargo.toml and git (title, version,
    /// revision, source), which keep their values.
    pub(crate) fn annotations(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            map.insert(key.to_string(), value.to_string());
        };
        if let Some(source) = &self.source {
            put("org.opencontainers.image.source", source);
        }
        put(&format!("{PREFIX}.tool"), crate::image::CREATED_BY);
        put(&format!("{PREFIX}.rustc"), self.toolchain.trim());
        put(&format!("{PREFIX}.features"), &self.features.join(","));
        put(&format!("{PREFIX}.profile"), &self.profile);
        put(&format!("{PREFIX}.target"), &self.target);
        put(
            &format!("{PREFIX}.auditable"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
