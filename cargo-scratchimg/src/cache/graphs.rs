//! The crate graphs of a plan, so that a run with nothing changed skips `cargo metadata` and
//! `cargo tree` (together over 100 ms, most of a run whose build is up to date).
//!
//! What cargo resolves is fixed by `Cargo.lock` (registry crates are immutable, git ones pinned),
//! the manifests on this machine (features, path dependencies), cargo's config files and
//! rustflags (cfg for `--filter-platform`), the flags, the packages and the target. The key
//! holds all but the manifests, which are known only once resolved: an entry records them with
//! their digests and is used only while each is unchanged, as cargo's dep-info fingerprints do.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Hit, Store};
use crate::build::{cargo_config_files, forwarded_flags};
use crate::image::sha256;
use crate::sbom::{CrateGraph, GraphQuery};
use crate::shell::Verbosity;

/// Entries kept: a few per platform, feature set and package selection.
const KEEP: usize = 32;

pub struct GraphCache {
    store: Store,
}

/// Everything the graphs depend on besides the manifests, hashed into the entry's name.
#[derive(Serialize)]
struct Key<'a> {
    cargo: &'a Path,
    /// The cargo executable's modification time: a new toolchain may resolve differently.
    cargo_modified: Option<std::time::SystemTime>,
    target: &'a str,
    flags: Vec<String>,
    packages: Vec<&'a str>,
    lock: String,
    /// Cargo config files that exist, with their digests.
    config: Vec<(PathBuf, String)>,
    rustflags: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    /// Each manifest the graphs were read from, with its digest then.
    manifests: Vec<(PathBuf, String)>,
    graphs: Vec<CrateGraph>,
}

impl GraphCache {
    pub fn in_target_dir(target_directory: &Path) -> GraphCache {
        GraphCache {
            store: Store::in_target_dir(target_directory, "graphs", KEEP),
        }
    }

    /// [`CrateGraph::resolve`], from the cache when nothing it depends on has changed.
    pub fn resolve(
        &self,
        query: GraphQuery<'_>,
        cargo_home: Option<&Path>,
    ) -> Result<(Vec<CrateGraph>, Hit)> {
        let key = || key(query, cargo_home);
        if let Some(name) = key()
            && let Some(graphs) = self.lookup(&name)
        {
            return Ok((graphs, Hit::Cached));
        }
        let resolution = CrateGraph::resolve(query)?;
        // Keyed after resolving, as cargo may just have written Cargo.lock.
        if let Some(name) = key() {
            let entry = Entry {
                manifests: resolution
                    .manifests
                    .iter()
                    .filter_map(|path| Some((path.clone(), file_digest(path)?)))
                    .collect(),
                graphs: resolution.graphs,
            };
            if let Ok(json) = serde_json::to_vec(&entry) {
                let _ = self.store.write(&name, &json);
            }
            return Ok((entry.graphs, Hit::Miss));
        }
        Ok((resolution.graphs, Hit::Miss))
    }

    fn lookup(&self, name: &str) -> Option<Vec<CrateGraph>> {
        let entry: Entry = serde_json::from_slice(&self.store.read(name)?).ok()?;
        let unchanged = entry
            .manifests
            .iter()
            .all(|(path, digest)| file_digest(path).as_ref() == Some(digest));
        unchanged.then_some(entry.graphs)
    }
}

/// The entry name for these inputs; `None` without a `Cargo.lock`.
fn key(query: GraphQuery<'_>, cargo_home: Option<&Path>) -> Option<String> {
    let GraphQuery {
        cargo,
        plan,
        target,
        options,
        workspace_root,
    } = query;
    let lock = file_digest(&workspace_root.join("Cargo.lock"))?;
    // cargo reads config from the directory it runs in and the manifest's, up to the root.
    let mut config_files = cargo_config_files(workspace_root, cargo_home);
    if let Ok(cwd) = std::env::current_dir() {
        config_files.extend(cargo_config_files(&cwd, None));
    }
    config_files.sort();
    config_files.dedup();
    let triple_var = target.triple.to_uppercase().replace('-', "_");
    let rustflags = [
        "RUSTFLAGS".to_string(),
        "CARGO_ENCODED_RUSTFLAGS".to_string(),
        "CARGO_BUILD_RUSTFLAGS".to_string(),
        format!("CARGO_TARGET_{triple_var}_RUSTFLAGS"),
    ];
    let key = Key {
        cargo,
        cargo_modified: std::fs::metadata(cargo).and_then(|m| m.modified()).ok(),
        target: &target.triple,
        flags: forwarded_flags(&plan.features, options, Verbosity::Quiet),
        packages: plan
            .packages
            .iter()
            .map(|(p, _)| p.id.repr.as_str())
            .collect(),
        lock,
        config: config_files
            .into_iter()
            .filter_map(|path| file_digest(&path).map(|digest| (path, digest)))
            .collect(),
        rustflags: rustflags
            .into_iter()
            .filter_map(|var| std::env::var(&var).ok().map(|value| (var, value)))
            .collect(),
    };
    let json = serde_json::to_vec(&key).ok()?;
    Some(format!("{}.json", sha256(&json).digest()))
}

/// The hex SHA-256 of a file's bytes; `None` when it cannot be read.
fn file_digest(path: &Path) -> Option<String> {
    Some(sha256(&std::fs::read(path).ok()?).digest().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{BuildPlan, CargoOptions, Workspace};
    use crate::target::Target;

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

        let cargo = Path::new(env!("CARGO"));
        let options = CargoOptions::default();
        let workspace = Workspace::read(cargo, &root.join("Cargo.toml"), &options).unwrap();
        let app = workspace.packages(&options).unwrap().remove(0);
        let plan = BuildPlan {
            packages: vec![(&app, vec!["app".to_string()])],
            features: Vec::new(),
            profile: "release".into(),
            env: Vec::new(),
        };
        let target = Target::host_musl().unwrap();
        let cache = GraphCache::in_target_dir(&root.join("target"));
        let query = GraphQuery {
            cargo,
            plan: &plan,
            target: &target,
            options: &options,
            workspace_root: workspace.root(),
        };
        let resolve = || cache.resolve(query, None).unwrap();

        let (first, hit) = resolve();
        assert_eq!(hit, Hit::Miss);
        let names: Vec<&str> = first[0].crates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["app", "dep"]);
        let (again, hit) = resolve();
        assert_eq!((again, hit), (first.clone(), Hit::Cached));

        // The path dependency's manifest is one the entry depends on.
        let text = std::fs::read_to_string(&dep_manifest).unwrap();
        std::fs::write(&dep_manifest, format!("{text}license = \"MIT\"\n")).unwrap();
        let (changed, hit) = resolve();
        assert_eq!(hit, Hit::Miss);
        assert_eq!(changed[0].crates[1].license.as_deref(), Some("MIT"));
        assert_eq!(resolve().1, Hit::Cached);

        // So is Cargo.lock, through the key.
        let lock = root.join("Cargo.lock");
        let text = std::fs::read_to_string(&lock).unwrap();
        std::fs::write(&lock, format!("# edited\n{text}")).unwrap();
        assert_eq!(resolve().1, Hit::Miss);
    }
}
