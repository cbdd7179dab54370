//! The OCI image spec's pre-defined annotations, derived from the package's Cargo.toml and git.

use std::collections::BTreeMap;

use cargo_metadata::Package;

const PREFIX: &str = "org.opencontainers.image.";

/// `org.opencontainers.image.*` for a package; keys whose source is empty are left out.
pub(crate) fn standard_annotations(
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
                format!("{PREFIX}{key}"),
                value.filter(|v| !v.is_empty())?.to_string(),
            ))
        })
        .collect()
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
        let a = standard_annotations(&package, Some("abc123"), "2023-11-14T22:13:20Z");
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
}
