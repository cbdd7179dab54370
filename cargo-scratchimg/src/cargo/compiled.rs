//! What cargo compiles for a build, as `cargo tree` lists it: everything (build scripts and
//! what they use included), and what the binaries link. The crate graphs keep only these.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::command::BuildRequest;
use crate::target::Target;
use crate::text::quoted;

/// What `cargo tree` says cargo compiles for the request's binaries, as `(name, version)`.
pub(super) struct Compiled {
    /// Everything, build dependencies and what they use included.
    pub all: HashSet<(String, String)>,
    /// What the binaries link: reached from them by normal edges, with the features the
    /// binaries' own compilation gives each crate.
    pub runtime: HashSet<(String, String)>,
}

/// Both trees of [`Compiled`], side by side. `cargo tree` resolves features as `cargo build`
/// does, build scripts' apart from the binaries'.
pub(super) fn compiled(cargo: &Path, request: &BuildRequest, target: &Target) -> Result<Compiled> {
    let (all, runtime) = std::thread::scope(|scope| {
        let runtime = scope.spawn(|| tree(cargo, request, target, "normal"));
        (
            tree(cargo, request, target, "normal,build"),
            crate::util::join(runtime),
        )
    });
    Ok(Compiled {
        all: all?,
        runtime: runtime?,
    })
}

/// `cargo tree --edges EDGES` of the request's packages for `target`, as `(name, version)`.
fn tree(
    cargo: &Path,
    request: &BuildRequest,
    target: &Target,
    edges: &str,
) -> Result<HashSet<(String, String)>> {
    let mut command = Command::new(cargo);
    command
        .args([
            "tree", "--edges", edges, "--prefix", "none", "--format", "{p}",
        ])
        .args(request.package_args())
        .args(["--target", &target.triple])
        .args(request.resolution_flags());
    let output = crate::process::output(&mut command)
        .with_context(|| format!("could not run `{} tree`", cargo.display()))?;
    if !output.status.success() {
        bail!(
            "`cargo tree` failed for {}: {}\nhelp: run `cargo tree --target {} --manifest-path {}` to see why",
            request.package_names(),
            quoted(&output.stderr),
            target.triple,
            request.manifest_path.display()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lines_give_names_and_versions() {
        let tree = "app v0.1.0 (/src/app)\nserde v1.0.229\nserde_derive v1.0.229 (proc-macro)\nsyn v2.0.1 (*)\n";
        let set = parse_tree(tree);
        assert_eq!(set.len(), 4);
        assert!(set.contains(&("serde_derive".into(), "1.0.229".into())));
        assert!(set.contains(&("app".into(), "0.1.0".into())));
    }
}
