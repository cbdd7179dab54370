//! The crates compiled into each binary of a build: `cargo metadata` resolved for the target
//! and features, kept to what `cargo tree` says cargo compiles, walked from each package, with
//! checksums from `Cargo.lock`.
//!
//! `cargo metadata` and `cargo tree` together take over 100 ms, most of a run whose build is up
//! to date, so the graphs are kept between runs. What cargo resolves is fixed by `Cargo.lock`
//! (registry crates are immutable, git ones pinned), the manifests on this machine (features,
//! path dependencies), cargo's config files and rustflags (cfg for `--filter-platform`), the
//! flags, the packages and the target. The key holds all but the manifests, which are known
//! only once resolved: an entry records them with their digests and is used only while each is
//! unchanged, as cargo's dep-info fingerprints do.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, Node, PackageId};
use serde::{Deserialize, Serialize};

use super::command::BuildRequest;
use super::compiled::{Compiled, compiled};
use super::linker::cargo_config_files;
use crate::cache::{Hit, Keyed, file_digest};
use crate::env::Env;
use crate::report::Reporter;
use crate::sbom::{Crate, CrateGraph, Kind, Source};
use crate::target::Target;
use crate::tool_dir::ToolDir;

/// Entries kept: a few per platform, feature set and package selection.
const KEEP: usize = 32;

/// Where resolutions are kept: the `graphs` cache of a target directory.
pub(crate) fn cache(tool_dir: &ToolDir) -> Keyed<Resolution> {
    Keyed::open(tool_dir, "graphs", KEEP)
}

/// Bumped when the same inputs resolve to other graphs: 2 marks crates that only build scripts
/// use as build crates even where the unified graph reaches them by normal edges.
const SCHEMA: u32 = 2;

/// Each package's crate graph, by package name.
pub(crate) type Graphs = BTreeMap<String, CrateGraph>;

/// A kept resolution: the graphs, and each manifest on this machine they were read from, with
/// its digest then.
#[derive(Serialize, Deserialize)]
pub(crate) struct Resolution {
    manifests: Vec<(PathBuf, String)>,
    graphs: Graphs,
}

/// Everything the graphs depend on besides the manifests, hashed into the entry's name.
#[derive(Serialize)]
struct Key<'a> {
    /// What a kept graph means: bumped when the same inputs give other graphs.
    schema: u32,
    cargo: &'a Path,
    /// The cargo executable's modification time: a new toolchain may resolve differently.
    cargo_modified: Option<std::time::SystemTime>,
    target: &'a str,
    flags: Vec<String>,
    packages: Vec<&'a str>,
    lock: String,
    /// Cargo config files that exist, with their digests.
    config: Vec<(PathBuf, String)>,
    /// cargo's variables (rustflags, target settings) as the environment has them.
    vars: &'a BTreeMap<String, String>,
}

/// The crate graph of each package of `request` for `target`, from `cache` while nothing it
/// depends on has changed; else from `cargo metadata` and `cargo tree`, run side by side for
/// every package together, as the one `cargo build` resolves them (features unified).
pub(crate) fn resolve(
    request: &BuildRequest,
    target: &Target,
    workspace_root: &Path,
    env: &Env,
    cache: &Keyed<Resolution>,
    report: &dyn Reporter,
) -> Result<(Graphs, Hit)> {
    let key = || key(request, target, workspace_root, env);
    if let Some(key) = key()
        && let Some(kept) = cache.get(&key, report)
        && kept
            .manifests
            .iter()
            .all(|(path, digest)| file_digest(path).as_ref() == Some(digest))
    {
        return Ok((kept.graphs, Hit::Cached));
    }
    let (graphs, manifests) = resolve_now(request, target, workspace_root, &env.cargo)?;
    let resolution = Resolution {
        manifests: manifests
            .into_iter()
            .filter_map(|path| Some((path.clone(), file_digest(&path)?)))
            .collect(),
        graphs,
    };
    // Keyed after resolving, as cargo may just have written Cargo.lock.
    if let Some(key) = key() {
        cache.put(&key, &resolution);
    }
    Ok((resolution.graphs, Hit::Miss))
}

/// The entry's key for these inputs; `None` without a `Cargo.lock`.
fn key<'a>(
    request: &'a BuildRequest,
    target: &'a Target,
    workspace_root: &Path,
    env: &'a Env,
) -> Option<Key<'a>> {
    let lock = file_digest(&workspace_root.join("Cargo.lock"))?;
    // cargo reads config from the directory it runs in and the manifest's, up to the root.
    let mut config_files = cargo_config_files(env);
    config_files.sort();
    config_files.dedup();
    Some(Key {
        schema: SCHEMA,
        cargo: &env.cargo,
        cargo_modified: std::fs::metadata(&env.cargo)
            .and_then(|m| m.modified())
            .ok(),
        target: &target.triple,
        flags: request.resolution_flags(),
        packages: request
            .packages
            .iter()
            .map(|p| p.id.repr.as_str())
            .collect(),
        lock,
        config: config_files
            .into_iter()
            .filter_map(|path| file_digest(&path).map(|digest| (path, digest)))
            .collect(),
        vars: &env.cargo_vars,
    })
}

/// Runs `cargo metadata` and `cargo tree` side by side: the graphs, and the manifests on this
/// machine (workspace members and path dependencies) they were read from.
fn resolve_now(
    request: &BuildRequest,
    target: &Target,
    workspace_root: &Path,
    cargo: &Path,
) -> Result<(Graphs, Vec<PathBuf>)> {
    let mut command = MetadataCommand::new();
    command
        .cargo_path(cargo)
        .manifest_path(&request.manifest_path)
        .other_options(
            [
                vec![format!("--filter-platform={}", target.triple)],
                request.resolution_flags(),
            ]
            .concat(),
        );
    let (metadata, compiled) = std::thread::scope(|scope| {
        let compiled = scope.spawn(|| compiled(cargo, request, target));
        (super::metadata(&command), crate::util::join(compiled))
    });
    let metadata = metadata.with_context(|| {
        format!(
            "could not resolve the dependencies of {}\nhelp: run `cargo metadata --manifest-path {}` to see why",
            request.package_names(),
            request.manifest_path.display()
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
    let resolved = Resolved::new(&metadata, &compiled, &lock)?;
    let graphs = request
        .packages
        .iter()
        .map(|package| {
            let graph = graph_of(&metadata, &resolved, &package.id)?;
            Ok((package.name.clone(), graph))
        })
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
    Ok((graphs, manifests))
}

/// What every package's graph is cut from, made once for all of them: the crates cargo
/// compiles, their names and versions, and the checksums of `Cargo.lock`.
struct Resolved<'a> {
    compiled: &'a Compiled,
    versions: HashMap<&'a PackageId, (String, String)>,
    nodes: HashMap<&'a PackageId, &'a Node>,
    checksums: HashMap<(String, String, String), String>,
}

impl<'a> Resolved<'a> {
    /// `lock` is the text of `Cargo.lock`.
    fn new(metadata: &'a Metadata, compiled: &'a Compiled, lock: &str) -> Result<Resolved<'a>> {
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
        // The resolve lists optional crates that only weak features (`dep?/feature`) name,
        // which cargo never compiles: keep only what `cargo tree` says is built.
        let nodes = resolve
            .nodes
            .iter()
            .filter(|n| {
                versions
                    .get(&n.id)
                    .is_some_and(|v| compiled.all.contains(v))
            })
            .map(|n| (&n.id, n))
            .collect();
        Ok(Resolved {
            compiled,
            versions,
            nodes,
            checksums: checksums(lock)?,
        })
    }
}

/// The graph below `root`, without dev-dependencies and without what is not compiled.
fn graph_of(metadata: &Metadata, resolved: &Resolved, root: &PackageId) -> Result<CrateGraph> {
    let Resolved {
        compiled,
        versions,
        nodes,
        checksums,
    } = resolved;
    let mut kinds = walk(nodes, root)?;
    // The resolve gives a crate one set of features for all its compilations, so the
    // dependencies that only a build script's features pull in (syntect's plist and yaml-rust
    // when a build script also uses syntect, as xh does) hang off it by normal edges. The
    // binaries' own tree says what they link.
    for (id, kind) in kinds.iter_mut() {
        if !versions
            .get(id)
            .is_some_and(|v| compiled.runtime.contains(v))
        {
            *kind = Kind::Build;
        }
    }

    let mut members: Vec<&cargo_metadata::Package> = metadata
        .packages
        .iter()
        .filter(|p| kinds.contains_key(&p.id))
        .collect();
    members.sort_by(|a, b| {
        (a.name.as_str(), &a.version, &a.id.repr).cmp(&(b.name.as_str(), &b.version, &b.id.repr))
    });
    let index: HashMap<&PackageId, usize> = members
        .iter()
        .enumerate()
        .map(|(i, p)| (&p.id, i))
        .collect();
    let crates: Vec<Crate> = members
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
                features: {
                    let mut features: Vec<String> = nodes[&package.id]
                        .features
                        .iter()
                        .map(|f| f.to_string())
                        .collect();
                    features.sort();
                    features
                },
            }
        })
        .collect();
    Ok(CrateGraph {
        features: crates[index[root]].features.clone(),
        crates,
        root: index[root],
    })
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

    use crate::cargo::CargoOptions;
    use crate::cargo::command::{PackageBins, Profile};
    use crate::cargo::workspace::Workspace;
    use crate::report::{Capture, Verbosity};

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A package with a path dependency, its graph resolved by the real cargo.
    #[test]
    fn graphs_are_kept_until_the_lock_or_a_local_manifest_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            &root.join("Cargo.toml"),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\ndep = { path = \"dep\" }\n\n[workspace]\n",
        );
        write(&root.join("src/main.rs"), "fn main() {}\n");
        let dep_manifest = root.join("dep/Cargo.toml");
        write(
            &dep_manifest,
            "[package]\nname = \"dep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        );
        write(&root.join("dep/src/lib.rs"), "");

        let env = Env {
            cargo: env!("CARGO").into(),
            cwd: root.to_path_buf(),
            ..Env::default()
        };
        let options = CargoOptions::default();
        let workspace = Workspace::read(&env.cargo, &root.join("Cargo.toml"), &options).unwrap();
        let app = workspace.packages(&options).unwrap().remove(0);
        let request = BuildRequest {
            manifest_path: app.manifest_path.clone().into_std_path_buf(),
            packages: vec![PackageBins {
                id: app.id.clone(),
                name: "app".into(),
                version: "0.1.0".into(),
                bins: vec!["app".into()],
            }],
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            lock_flags: Vec::new(),
            profile: Profile {
                requested: "release".into(),
                auditable: true,
                strip: crate::cargo::strip::Strip::Symbols,
            },
            verbosity: Verbosity::Normal,
        };
        let target = Target::host_musl().unwrap();
        let cache = super::cache(&ToolDir::new(&root.join("target")));
        let report = Capture::new(Verbosity::Normal);
        let resolve =
            || super::resolve(&request, &target, workspace.root(), &env, &cache, &report).unwrap();

        let (first, hit) = resolve();
        assert_eq!(hit, Hit::Miss);
        let names: Vec<&str> = first["app"]
            .crates
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["app", "dep"]);
        let (again, hit) = resolve();
        assert_eq!((again, hit), (first.clone(), Hit::Cached));

        // The path dependency's manifest is one the entry depends on.
        let text = std::fs::read_to_string(&dep_manifest).unwrap();
        std::fs::write(&dep_manifest, format!("{text}license = \"MIT\"\n")).unwrap();
        let (changed, hit) = resolve();
        assert_eq!(hit, Hit::Miss);
        assert_eq!(changed["app"].crates[1].license.as_deref(), Some("MIT"));
        assert_eq!(resolve().1, Hit::Cached);

        // So is Cargo.lock, through the key.
        let lock = root.join("Cargo.lock");
        let text = std::fs::read_to_string(&lock).unwrap();
        std::fs::write(&lock, format!("# edited\n{text}")).unwrap();
        assert_eq!(resolve().1, Hit::Miss);
    }

    /// tests/fixtures/vendored-c, resolved by the real cargo: the features let the check before
    /// the build see that openssl-sys (openssl-src's OpenSSL) and zstd-sys build their own.
    #[test]
    fn bundled_c_libraries_are_seen_in_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/vendored-c");
        for file in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
            write(
                &dir.path().join(file),
                &std::fs::read_to_string(fixture.join(file)).unwrap(),
            );
        }
        let root = dir.path();
        let env = Env {
            cargo: env!("CARGO").into(),
            cwd: root.to_path_buf(),
            ..Env::default()
        };
        let options = CargoOptions::default();
        let workspace = Workspace::read(&env.cargo, &root.join("Cargo.toml"), &options).unwrap();
        let app = workspace.packages(&options).unwrap().remove(0);
        let request = BuildRequest {
            manifest_path: app.manifest_path.clone().into_std_path_buf(),
            packages: vec![PackageBins {
                id: app.id.clone(),
                name: "vendored-c".into(),
                version: "0.1.0".into(),
                bins: vec!["vendored-c".into()],
            }],
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            lock_flags: vec!["--locked".into()],
            profile: Profile {
                requested: "release".into(),
                auditable: true,
                strip: crate::cargo::strip::Strip::Symbols,
            },
            verbosity: Verbosity::Normal,
        };
        let target = Target::parse("x86_64-unknown-linux-musl").unwrap();
        let (graph, _) = resolve_now(&request, &target, workspace.root(), &env.cargo).unwrap();
        let graph = &graph["vendored-c"];
        let openssl_sys = graph
            .crates
            .iter()
            .find(|c| c.name == "openssl-sys")
            .unwrap();
        assert!(
            openssl_sys.features.iter().any(|f| f == "vendored"),
            "{openssl_sys:?}"
        );
        use crate::sbom::vendored::{BuildInputs, Lookups, Musl, native};
        let lookups = Lookups::default();
        for krate in graph.crates.iter().filter(|c| c.name.ends_with("-sys")) {
            let probe = BuildInputs {
                krate,
                graph,
                lookups: &lookups,
            };
            let musl = (native(&krate.name).unwrap().musl)(&probe);
            assert_eq!(musl, Musl::Bundled, "{}", krate.name);
        }
        // Not in cargo-auditable's list: that is the crates, as scanners expect it.
        let list = String::from_utf8(crate::sbom::auditable::json(graph).unwrap()).unwrap();
        assert!(
            list.contains("\"openssl-sys\"") && !list.contains("\"openssl\","),
            "{list}"
        );
    }

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
