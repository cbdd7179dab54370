//! The crates compiled into the binary: `cargo metadata` resolved for the target and features,
//! walked from the binary's package, with checksums from `Cargo.lock`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, Node, PackageId};
use serde::{Deserialize, Serialize};

use crate::build::{BuildPlan, CargoOptions, forwarded_flags};
use crate::shell::Verbosity;
use crate::target::Target;

/// How a crate takes part in the binary, strongest last (as cargo-auditable orders them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// Only build scripts or their dependencies use it: it ran, but is not in the binary.
    Build,
    /// Reached from the binary by normal dependencies: its code is (or may be) in the binary.
    Runtime,
}

/// Where a crate's source came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
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
pub struct Crate {
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
}

/// The crates of one binary, sorted by name, version and source; the root is the binary's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateGraph {
    pub crates: Vec<Crate>,
    pub root: usize,
    /// The features cargo enables on the root package, sorted.
    pub features: Vec<String>,
}

/// The crate graphs of a plan's packages, and the manifests on this machine they were read
/// from (workspace members and other path dependencies), which say when they are out of date.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub graphs: Vec<CrateGraph>,
    pub manifests: Vec<PathBuf>,
}

/// What the crate graphs of a plan are resolved from.
#[derive(Clone, Copy)]
pub struct GraphQuery<'a> {
    pub cargo: &'a Path,
    pub plan: &'a BuildPlan<'a>,
    pub target: &'a Target,
    pub options: &'a CargoOptions,
    pub workspace_root: &'a Path,
}

impl CrateGraph {
    /// Runs `cargo metadata` and `cargo tree` (side by side) for every package of the plan
    /// together, as the one `cargo build` of the plan resolves them for the target (features
    /// unified across packages), and gives the graph of each package, in plan order. The
    /// binaries of a package share it.
    pub fn resolve(query: GraphQuery<'_>) -> Result<Resolution> {
        let GraphQuery {
            cargo,
            plan,
            target,
            options,
            workspace_root,
        } = query;
        let Some((first, _)) = plan.packages.first() else {
            return Ok(Resolution {
                graphs: Vec::new(),
                manifests: Vec::new(),
            });
        };
        let manifest = first.manifest_path.as_std_path();
        let flags = forwarded_flags(&plan.features, options, Verbosity::Quiet);
        let mut command = MetadataCommand::new();
        command
            .cargo_path(cargo)
            .manifest_path(manifest)
            .other_options(
                [
                    vec![format!("--filter-platform={}", target.triple)],
                    flags.clone(),
                ]
                .concat(),
            );
        let (metadata, compiled) = std::thread::scope(|scope| {
            let compiled = scope.spawn(|| compiled(cargo, plan, target, &flags));
            let metadata = command.exec();
            (
                metadata,
                compiled.join().expect("cargo tree thread panicked"),
            )
        });
        let metadata = metadata.with_context(|| {
            format!(
                "could not resolve the dependencies of {}\nhelp: run `cargo metadata --manifest-path {}` to see why",
                first.name,
                manifest.display()
            )
        })?;
        let compiled = compiled?;
        let lock_path = workspace_root.join("Cargo.lock");
        let lock = std::fs::read_to_string(&lock_path).with_context(|| {
            format!(
                "could not read {}\nhelp: run `cargo generate-lockfile`",
                lock_path.display()
            )
        })?;
        let graphs = plan
            .packages
            .iter()
            .map(|(package, _)| CrateGraph::from_metadata(&metadata, &package.id, &lock, &compiled))
            .collect::<Result<_>>()?;
        let mut manifests: Vec<PathBuf> = metadata
            .packages
            .iter()
            .filter(|p| p.source.is_none())
            .map(|p| p.manifest_path.clone().into_std_path_buf())
            .chain([workspace_root.join("Cargo.toml")])
            .collect();
        manifests.sort();
        manifests.dedup();
        Ok(Resolution { graphs, manifests })
    }

    /// The graph below `root`, without dev-dependencies and without what is not `compiled`;
    /// `lock` is the text of `Cargo.lock`.
    pub fn from_metadata(
        metadata: &Metadata,
        root: &PackageId,
        lock: &str,
        compiled: &HashSet<(String, String)>,
    ) -> Result<CrateGraph> {
        let Some(resolve) = &metadata.resolve else {
            bail!(
                "cargo metadata gave no dependency graph\nhelp: update cargo, or run `cargo metadata` to see why"
            );
        };
        let versions: HashMap<&PackageId, (String, String)> = metadata
            .packages
            .iter()
            .map(|p| (&p.id, (p.name.to_string(), p.version.to_string())))
            .collect();
        // The resolve lists optional crates that only weak features (`dep?/feature`) name, which
        // cargo never compiles: keep only what `cargo tree` says is built.
        let nodes: HashMap<&PackageId, &Node> = resolve
            .nodes
            .iter()
            .filter(|n| versions.get(&n.id).is_some_and(|v| compiled.contains(v)))
            .map(|n| (&n.id, n))
            .collect();
        let kinds = walk(&nodes, root)?;
        let checksums = checksums(lock)?;

        let mut members: Vec<&cargo_metadata::Package> = metadata
            .packages
            .iter()
            .filter(|p| kinds.contains_key(&p.id))
            .collect();
        members.sort_by(|a, b| {
            (a.name.as_str(), &a.version, &a.id.repr).cmp(&(
                b.name.as_str(),
                &b.version,
                &b.id.repr,
            ))
        });
        let index: HashMap<&PackageId, usize> = members
            .iter()
            .enumerate()
            .map(|(i, p)| (&p.id, i))
            .collect();
        let crates = members
            .iter()
            .map(|package| {
                let source_repr = package.source.as_ref().map(|s| s.repr.as_str());
                let mut dependencies: Vec<usize> = nodes[&package.id]
                    .deps
                    .iter()
                    .filter(|dep| edge_kind(dep).is_some())
                    .filter_map(|dep| index.get(&dep.pkg).copied())
                    .collect();
                dependencies.sort_unstable();
                dependencies.dedup();
                Crate {
                    name: package.name.to_string(),
                    version: package.version.to_string(),
                    source: source_repr.map_or(Source::Path, parse_source),
                    license: package.license.as_deref().map(spdx_expression),
                    checksum: source_repr.and_then(|source| {
                        checksums
                            .get(&(
                                package.name.to_string(),
                                package.version.to_string(),
                                source.to_string(),
                            ))
                            .cloned()
                    }),
                    kind: kinds[&package.id],
                    dependencies,
                }
            })
            .collect();
        let mut features: Vec<String> =
            nodes[root].features.iter().map(|f| f.to_string()).collect();
        features.sort();
        Ok(CrateGraph {
            crates,
            root: index[root],
            features,
        })
    }

    /// The crates whose code goes into the binary, root included.
    pub fn runtime(&self) -> impl Iterator<Item = (usize, &Crate)> {
        self.crates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == Kind::Runtime)
    }

    pub fn root(&self) -> &Crate {
        &self.crates[self.root]
    }
}

/// The kind of a resolve edge: `None` for dev-only edges.
fn edge_kind(dep: &cargo_metadata::NodeDep) -> Option<Kind> {
    // Old cargo gives no kinds: count such an edge as normal, as cargo-auditable does.
    if dep.dep_kinds.is_empty() {
        return Some(Kind::Runtime);
    }
    dep.dep_kinds
        .iter()
        .filter_map(|k| match k.kind {
            DependencyKind::Normal => Some(Kind::Runtime),
            DependencyKind::Build => Some(Kind::Build),
            _ => None,
        })
        .max()
}

/// Every crate reachable from `root`, with the strongest kind of any path to it: a crate is
/// runtime only if a chain of normal edges leads to it.
fn walk<'a>(
    nodes: &HashMap<&'a PackageId, &'a Node>,
    root: &'a PackageId,
) -> Result<BTreeMap<&'a PackageId, Kind>> {
    let mut kinds = BTreeMap::from([(root, Kind::Runtime)]);
    let mut queue = vec![root];
    while let Some(id) = queue.pop() {
        let Some(node) = nodes.get(id) else {
            bail!("cargo metadata lists no dependencies for {}", id.repr);
        };
        let parent = kinds[id];
        for dep in node.deps.iter().filter(|dep| nodes.contains_key(&dep.pkg)) {
            let Some(kind) = edge_kind(dep) else { continue };
            let kind = kind.min(parent);
            if kinds.get(&dep.pkg).is_none_or(|seen| *seen < kind) {
                kinds.insert(&dep.pkg, kind);
                queue.push(&dep.pkg);
            }
        }
    }
    Ok(kinds)
}

/// `(name, version)` of every crate cargo compiles for the plan's binaries, build dependencies
/// included, as `cargo tree` shows them: it resolves features as `cargo build` does.
fn compiled(
    cargo: &Path,
    plan: &BuildPlan<'_>,
    target: &Target,
    flags: &[String],
) -> Result<HashSet<(String, String)>> {
    let Some((first, _)) = plan.packages.first() else {
        return Ok(HashSet::new());
    };
    let mut command = Command::new(cargo);
    command
        .args([
            "tree",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .arg("--manifest-path")
        .arg(first.manifest_path.as_std_path());
    for (package, _) in &plan.packages {
        command.args([
            "--package",
            &format!("{}@{}", package.name, package.version),
        ]);
    }
    let output = command
        .args(["--target", &target.triple])
        .args(flags)
        .output()
        .with_context(|| format!("could not run `{} tree`", cargo.display()))?;
    if !output.status.success() {
        bail!(
            "`cargo tree` failed for package `{}`: {}\nhelp: run `cargo tree --target {}` in {} to see why",
            first.name,
            String::from_utf8_lossy(&output.stderr).trim(),
            target.triple,
            crate::build::package_dir(first).display()
        );
    }
    Ok(parse_tree(&String::from_utf8_lossy(&output.stdout)))
}

/// Lines such as `serde v1.0.0`, `syn v2.0.1 (*)` or `app v0.1.0 (/path)`.
fn parse_tree(text: &str) -> HashSet<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some((name.to_string(), version.to_string()))
        })
        .collect()
}

const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// cargo's source id (`registry+URL`, `sparse+URL`, `git+URL?branch=x#REV`) as a [`Source`].
fn parse_source(repr: &str) -> Source {
    if repr == CRATES_IO || repr == "sparse+https://index.crates.io/" {
        return Source::CratesIo;
    }
    match repr.split_once('+') {
        Some(("git", rest)) => {
            let (url, rev) = rest.split_once('#').unwrap_or((rest, ""));
            let url = url.split('?').next().unwrap_or(url);
            Source::Git {
                url: url.to_string(),
                rev: rev.to_string(),
            }
        }
        Some((_, url)) => Source::Registry(url.to_string()),
        None => Source::Registry(repr.to_string()),
    }
}

/// Cargo accepted `MIT/Apache-2.0` before it required SPDX expressions; SBOM readers do not.
fn spdx_expression(license: &str) -> String {
    license
        .split('/')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" OR ")
}

#[derive(Deserialize)]
struct Lockfile {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

/// `(name, version, source) → checksum` from the text of a `Cargo.lock` (format 3 or later).
fn checksums(lock: &str) -> Result<HashMap<(String, String, String), String>> {
    let lock: Lockfile = toml::from_str(lock).context("Cargo.lock is not valid TOML")?;
    Ok(lock
        .package
        .into_iter()
        .filter_map(|p| Some(((p.name, p.version, p.source?), p.checksum?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_named_as_scanners_expect() {
        assert_eq!(parse_source(CRATES_IO), Source::CratesIo);
        assert_eq!(
            parse_source("git+https://github.com/a/b?branch=main#0123abc"),
            Source::Git {
                url: "https://github.com/a/b".into(),
                rev: "0123abc".into()
            }
        );
        assert_eq!(
            parse_source("sparse+https://my.registry/index/"),
            Source::Registry("https://my.registry/index/".into())
        );
    }

    #[test]
    fn tree_lines_give_names_and_versions() {
        let tree = "app v0.1.0 (/src/app)\nserde v1.0.229\nserde_derive v1.0.229 (proc-macro)\nsyn v2.0.1 (*)\n";
        let set = parse_tree(tree);
        assert_eq!(set.len(), 4);
        assert!(set.contains(&("serde_derive".into(), "1.0.229".into())));
        assert!(set.contains(&("app".into(), "0.1.0".into())));
    }

    #[test]
    fn old_slash_licenses_become_expressions() {
        assert_eq!(spdx_expression("MIT/Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(spdx_expression("MIT OR Apache-2.0"), "MIT OR Apache-2.0");
    }

    #[test]
    fn checksums_come_from_the_lockfile() {
        let lock = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["serde"]

[[package]]
name = "serde"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "abc123"
"#;
        let sums = checksums(lock).unwrap();
        assert_eq!(sums.len(), 1);
        assert_eq!(
            sums[&("serde".into(), "1.0.0".into(), CRATES_IO.into())],
            "abc123"
        );
    }
}
