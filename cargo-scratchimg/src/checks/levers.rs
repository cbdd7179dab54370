//! The user's own levers: the features of their package that pull in a crate a check is about,
//! named in its help before the generic advice, since those are what the user can change
//! without editing a crate they did not write.

use std::collections::{BTreeMap, BTreeSet};

use cargo_metadata::Package;

use crate::sbom::CrateGraph;

/// A workspace package's features and dependencies, as its Cargo.toml declares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PackageFeatures {
    pub name: String,
    /// `[features]`: each feature and what it turns on.
    pub features: BTreeMap<String, Vec<String>>,
    /// Its dependencies: the name it knows each by (a rename, or the crate's), the crate's
    /// name, and whether it is optional.
    pub dependencies: Vec<(String, String, bool)>,
}

impl PackageFeatures {
    pub(crate) fn of(package: &Package) -> PackageFeatures {
        PackageFeatures {
            name: package.name.to_string(),
            features: package
                .features
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            dependencies: package
                .dependencies
                .iter()
                .map(|d| {
                    let key = d.rename.clone().unwrap_or_else(|| d.name.clone());
                    (key, d.name.clone(), d.optional)
                })
                .collect(),
        }
    }

    /// Every feature `feature` turns on, itself included, following `[features]`.
    fn closure(&self, feature: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![feature.to_string()];
        while let Some(f) = todo.pop() {
            if seen.insert(f.clone())
                && let Some(values) = self.features.get(&f)
            {
                todo.extend(values.iter().filter(|v| !v.contains([':', '/'])).cloned());
            }
        }
        seen
    }

    /// The features that turn on dependency `krate` itself (when optional), or its feature
    /// `next` (the next crate of a chain, which crates name their optional dependencies by).
    fn pulling(&self, krate: &str, next: Option<&str>) -> Vec<String> {
        let mut found = Vec::new();
        for (key, name, optional) in &self.dependencies {
            if name != krate {
                continue;
            }
            for (feature, values) in &self.features {
                let pulls = values.iter().any(|v| {
                    let enables = *optional
                        && (*v == format!("dep:{key}")
                            || v == key
                            || v.starts_with(&format!("{key}/")));
                    let feature_of = next
                        .is_some_and(|n| *v == format!("{key}/{n}") || *v == format!("{key}?/{n}"));
                    enables || feature_of
                });
                if pulls && !found.contains(feature) {
                    found.push(feature.clone());
                }
            }
        }
        found
    }

    /// `help:` naming the features of this package, on in `graph`, that pull in `krate`
    /// (whose next crate toward what a check is about is `next`), and how to build without
    /// them; `None` when none does.
    pub(crate) fn help(
        &self,
        graph: &CrateGraph,
        krate: &str,
        next: Option<&str>,
    ) -> Option<String> {
        let enabled: BTreeSet<&str> = graph.features.iter().map(String::as_str).collect();
        let direct: Vec<String> = self
            .pulling(krate, next)
            .into_iter()
            .filter(|f| enabled.contains(f.as_str()))
            .collect();
        if direct.is_empty() {
            return None;
        }
        // Every enabled feature that turns one of them on, `default` included.
        let bad: BTreeSet<String> = enabled
            .iter()
            .filter(|f| direct.iter().any(|d| self.closure(f).contains(d)))
            .map(|f| f.to_string())
            .collect();
        let names = direct
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let what = format!(
            "`{}`'s feature{} {names} pull{} in {krate}",
            self.name,
            if direct.len() == 1 { "" } else { "s" },
            if direct.len() == 1 { "s" } else { "" },
        );
        if !bad.contains("default") {
            return Some(format!(
                "help: {what}: leave it out of --features (and the `features` setting)"
            ));
        }
        // The features asked for besides the defaults, and the defaults, less those that pull.
        let defaults = self.closure("default");
        let keep: BTreeSet<&str> = enabled
            .iter()
            .copied()
            .filter(|f| !defaults.contains(*f))
            .chain(
                self.features
                    .get("default")
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            )
            .filter(|f| self.features.contains_key(*f) && !bad.contains(*f) && *f != "default")
            .collect();
        let flags = match keep.is_empty() {
            true => "--no-default-features".to_string(),
            false => format!(
                "--no-default-features --features {}",
                keep.into_iter().collect::<Vec<_>>().join(",")
            ),
        };
        Some(format!(
            "help: {what}, and the default features turn {}: build without {}, `{flags}`",
            if direct.len() == 1 {
                "it on"
            } else {
                "them on"
            },
            if direct.len() == 1 { "it" } else { "them" },
        ))
    }

    /// The features of this package that turn on one of `crates` (an allocator, say).
    pub(crate) fn turning_on(&self, crates: &[&str]) -> Vec<String> {
        let mut found: Vec<String> = crates.iter().flat_map(|c| self.pulling(c, None)).collect();
        found.sort();
        found.dedup();
        found
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sbom::crates::tests::graph;

    /// `app` with `features` and dependencies `(key, crate, optional)`.
    pub(crate) fn package(
        features: &[(&str, &[&str])],
        dependencies: &[(&str, &str, bool)],
    ) -> PackageFeatures {
        PackageFeatures {
            name: "app".into(),
            features: features
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            dependencies: dependencies
                .iter()
                .map(|(k, n, o)| (k.to_string(), n.to_string(), *o))
                .collect(),
        }
    }

    fn with_features(features: &[&str]) -> CrateGraph {
        let mut g = graph(&[("app", &[], &[])]);
        g.features = features.iter().map(|f| f.to_string()).collect();
        g
    }

    /// The case: a `tls` feature, on by default, pulls tokio-native-tls.
    #[test]
    fn the_feature_that_pulls_an_optional_dependency_is_named() {
        let app = package(
            &[
                ("default", &["tls", "cli"]),
                ("tls", &["dep:tokio-native-tls"]),
                ("cli", &[]),
                ("json", &["serde_json/std"]),
            ],
            &[
                ("tokio-native-tls", "tokio-native-tls", true),
                ("serde_json", "serde_json", false),
            ],
        );
        let on = with_features(&["cli", "default", "json", "tls"]);
        assert_eq!(
            app.help(&on, "tokio-native-tls", Some("native-tls"))
                .as_deref(),
            Some(
                "help: `app`'s feature `tls` pulls in tokio-native-tls, and the default features turn it on: build without it, `--no-default-features --features cli,json`"
            )
        );
        let asked = with_features(&["tls"]);
        assert_eq!(
            app.help(&asked, "tokio-native-tls", None).as_deref(),
            Some(
                "help: `app`'s feature `tls` pulls in tokio-native-tls: leave it out of --features (and the `features` setting)"
            )
        );
        // A dependency no feature of the package pulls in: nothing to name.
        assert_eq!(app.help(&on, "serde_json", None), None);
    }

    /// A feature of a dependency named after the next crate of the chain (reqwest's
    /// `native-tls`), renamed dependencies, and allocators.
    #[test]
    fn features_of_dependencies_and_renames_count() {
        let app = package(
            &[
                ("default", &["https"]),
                ("https", &["http/native-tls"]),
                ("mimalloc", &["dep:mi"]),
            ],
            &[("http", "reqwest", false), ("mi", "mimalloc", true)],
        );
        let on = with_features(&["default", "https"]);
        assert_eq!(
            app.help(&on, "reqwest", Some("native-tls")).as_deref(),
            Some(
                "help: `app`'s feature `https` pulls in reqwest, and the default features turn it on: build without it, `--no-default-features`"
            )
        );
        assert_eq!(
            app.turning_on(&["mimalloc", "tikv-jemallocator"]),
            ["mimalloc"]
        );
    }
}
