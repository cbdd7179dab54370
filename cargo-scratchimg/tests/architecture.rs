//! The rules ARCHITECTURE.md states that a reader of the sources can check, checked: no module
//! of the crate imports one that imports it back, the stages never import the pipeline or the
//! subcommands, and no source file grows past 700 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's sources, each with the top-level module it belongs to.
fn sources() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap();
                let first = relative.components().next().unwrap();
                let module = Path::new(first.as_os_str())
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                found.push((module, path));
            }
        }
    }
    found.sort();
    found
}

/// Which top-level modules each one names as `crate::<module>`, code, tests and docs alike.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in sources() {
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices("crate::") {
            let named: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !named.is_empty() && named != module {
                edges.entry(module.clone()).or_default().insert(named);
            }
        }
    }
    edges
}

/// A path of imports from `from` back to `to`, if there is one.
fn path_back(
    edges: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in edges.get(from).into_iter().flatten() {
        if next == to {
            return Some(vec![from.to_string(), to.to_string()]);
        }
        if seen.insert(next.clone())
            && let Some(mut rest) = path_back(edges, next, to, seen)
        {
            rest.insert(0, from.to_string());
            return Some(rest);
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let edges = imports();
    for module in edges.keys() {
        if let Some(cycle) = path_back(&edges, module, module, &mut BTreeSet::new()) {
            panic!("a module cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn stages_never_import_the_pipeline_or_the_subcommands() {
    let edges = imports();
    for (module, named) in &edges {
        if module == "pipeline" || module == "commands" {
            continue;
        }
        for flow in ["pipeline", "commands"] {
            assert!(
                !named.contains(flow),
                "`{module}` imports `{flow}`: a stage takes values, the flows call the stages"
            );
        }
    }
    let pipeline = edges.get("pipeline").cloned().unwrap_or_default();
    assert!(
        !pipeline.contains("commands"),
        "the pipeline imports `commands`: the subcommands are flows on the pipeline, not parts of it"
    );
}

#[test]
fn no_source_file_is_over_700_lines() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let mut files: Vec<PathBuf> = sources().into_iter().map(|(_, path)| path).collect();
    for dir in [tests, e2e.join("e2e"), e2e.join("src")] {
        let mut dirs = vec![dir];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines > 700).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by what they hold: {}",
        long.join(", ")
    );
}
