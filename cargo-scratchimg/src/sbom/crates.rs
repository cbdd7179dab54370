//! The crates compiled into a binary, as a graph: what the SBOM and the dependency list
//! describe, as cargo resolves it (the `cargo` module's `graph`).

use serde::{Deserialize, Serialize};

/// How a crate takes part in the binary, strongest last (as cargo-auditable orders them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// Only build scripts or their dependencies use it: it ran, but is not in the binary.
    Build,
    /// Reached from the binary by normal dependencies: its code is (or may be) in the binary.
    Runtime,
}

/// Where a crate's source came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Source {
    CratesIo,
    /// Another registry, by its index URL.
    Registry(String),
    /// A git repository at a commit.
    Git {
        url: String,
        rev: String,
    },
    /// A path on the building machine; never recorded, so SBOMs are the same on every machine.
    Path,
}

/// One crate of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Crate {
    pub name: String,
    pub version: String,
    pub source: Source,
    /// The SPDX expression of `package.license`, if the crate declares one.
    pub license: Option<String>,
    /// The SHA-256 `Cargo.lock` records for registry crates.
    pub checksum: Option<String>,
    pub kind: Kind,
    /// Indices of the crates it depends on (normal and build edges), ascending.
    pub dependencies: Vec<usize>,
    /// The features cargo enables on it, sorted: whether a `-sys` crate builds its bundled C
    /// library ([`super::vendored`]), and what the checks before the build read.
    #[serde(default)]
    pub features: Vec<String>,
}

/// The crates of one binary, sorted by name, version and source; the root is the binary's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CrateGraph {
    pub crates: Vec<Crate>,
    pub root: usize,
    /// The features cargo enables on the root package, sorted.
    pub features: Vec<String>,
}

impl CrateGraph {
    /// The crates whose code goes into the binary, root included.
    pub(crate) fn runtime(&self) -> impl Iterator<Item = (usize, &Crate)> {
        self.crates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == Kind::Runtime)
    }

    pub(crate) fn root(&self) -> &Crate {
        &self.crates[self.root]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A graph of `(name, features, dependencies)`, the first the root, every crate runtime
    /// unless its name ends in `!build`.
    pub(crate) fn graph(crates: &[(&str, &[&str], &[usize])]) -> CrateGraph {
        CrateGraph {
            crates: crates
                .iter()
                .map(|(name, features, deps)| {
                    let (name, kind) = match name.strip_suffix("!build") {
                        Some(name) => (name, Kind::Build),
                        None => (*name, Kind::Runtime),
                    };
                    Crate {
                        name: name.to_string(),
                        version: "1.0.0".into(),
                        source: Source::CratesIo,
                        license: None,
                        checksum: None,
                        kind,
                        dependencies: deps.to_vec(),
                        features: features.iter().map(|f| f.to_string()).collect(),
                    }
                })
                .collect(),
            root: 0,
            features: Vec::new(),
        }
    }
}
