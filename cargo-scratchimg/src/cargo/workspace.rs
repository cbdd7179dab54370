//! Which packages and binaries to build, from `cargo metadata`, `-p`, `--bin`, `--workspace`
//! and the `bin`/`bins` settings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Metadata, MetadataCommand, Package, TargetKind};

use super::CargoOptions;

/// The workspace as `cargo metadata` sees it.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    metadata: Metadata,
}

impl Workspace {
    /// Reads the workspace of `manifest` with `cargo metadata --no-deps`.
    pub(crate) fn read(cargo: &Path, manifest: &Path, options: &CargoOptions) -> Result<Workspace> {
        let mut command = MetadataCommand::new();
        command
            .cargo_path(cargo)
            .manifest_path(manifest)
            .no_deps()
            .other_options(options.lock_flags());
        if let Some(dir) = &options.target_dir {
            command.env("CARGO_TARGET_DIR", dir);
        }
        let metadata = super::metadata(&command).with_context(|| {
            format!("could not read the cargo project at {}", manifest.display())
        })?;
        Ok(Workspace { metadata })
    }

    pub(crate) fn root(&self) -> &Path {
        self.metadata.workspace_root.as_std_path()
    }

    /// The workspace's own Cargo.toml, where `[workspace.metadata]` lives.
    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.root().join("Cargo.toml")
    }

    /// cargo's target directory, honouring `--target-dir`, `CARGO_TARGET_DIR` and config.
    pub(crate) fn target_directory(&self) -> &Path {
        self.metadata.target_directory.as_std_path()
    }

    /// The packages to make images of: `-p`, every binary package with `--workspace`, the one
    /// that has `--bin`, the package of the manifest, or the only binary package.
    pub(crate) fn packages(&self, options: &CargoOptions) -> Result<Vec<Package>> {
        let metadata = &self.metadata;
        let members = metadata.workspace_packages();
        let names = |packages: &[&Package]| {
            packages
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if options.workspace {
            let binaries: Vec<Package> = members
                .iter()
                .filter(|p| has_bin(p))
                .map(|p| (*p).clone())
                .collect();
            if binaries.is_empty() {
                bail!(
                    "no package in the workspace at {} has a binary\nhelp: add one with `cargo new --bin`",
                    metadata.workspace_root
                );
            }
            return Ok(binaries);
        }
        if let Some(spec) = &options.package {
            let name = spec.split('@').next().unwrap_or(spec);
            return match members.iter().find(|p| p.name.as_str() == name) {
                Some(p) => Ok(vec![(*p).clone()]),
                None => bail!(
                    "package `{spec}` is not in this workspace\nhelp: workspace members: {}",
                    names(&members)
                ),
            };
        }
        // `--bin NAME` without `-p` finds the member that has it, as `cargo build --bin` does.
        if let Some(bin) = &options.bin {
            let root_has_it = metadata
                .root_package()
                .is_some_and(|p| bins(p).contains(&bin.as_str()));
            if !root_has_it
                && let Some(p) = members.iter().find(|p| bins(p).contains(&bin.as_str()))
            {
                return Ok(vec![(*p).clone()]);
            }
        }
        if let Some(root) = metadata.root_package() {
            return Ok(vec![root.clone()]);
        }
        let candidates: Vec<&Package> = metadata
            .workspace_default_packages()
            .into_iter()
            .filter(|p| has_bin(p))
            .collect();
        match candidates.as_slice() {
            [only] => Ok(vec![(*only).clone()]),
            [] => bail!(
                "no package in the workspace at {} has a binary\nhelp: cargo scratchimg packages a binary; add one with `cargo new --bin`",
                metadata.workspace_root
            ),
            several => bail!(
                "the workspace at {} has several binary packages: {}\n\
                 help: pick one with -p, e.g. `cargo scratchimg -p {}`, or make an image of each with --workspace",
                metadata.workspace_root,
                names(several),
                several[0].name
            ),
        }
    }
}

impl Workspace {
    /// The images to make, each a package and maybe the binary `--bin` (or `resolve`) names:
    /// [`CargoOptions::selected`] when given, else [`Workspace::packages`].
    pub(crate) fn selection(
        &self,
        options: &CargoOptions,
    ) -> Result<Vec<(Package, Option<String>)>> {
        if options.selected.is_empty() {
            let packages = self.packages(options)?;
            return Ok(packages
                .into_iter()
                .map(|p| (p, options.bin.clone()))
                .collect());
        }
        options
            .selected
            .iter()
            .map(|selected| {
                let by_name = CargoOptions {
                    package: Some(selected.package.clone()),
                    ..CargoOptions::default()
                };
                let package = self.packages(&by_name)?.remove(0);
                Ok((package, selected.bin.clone()))
            })
            .collect()
    }
}

/// Packages of the dependency graph for `triple` that compile C code: those whose build
/// script build-depends on `cc` or `cmake`. Needs the full `cargo metadata`, so it is only
/// asked when a cross build has no C compiler.
pub(crate) fn c_packages(
    cargo: &Path,
    manifest: &Path,
    triple: &str,
    options: &CargoOptions,
) -> Result<Vec<String>> {
    let mut command = MetadataCommand::new();
    command.cargo_path(cargo).manifest_path(manifest);
    let mut flags = vec!["--filter-platform".to_string(), triple.to_string()];
    flags.extend(options.lock_flags());
    command.other_options(flags);
    let metadata = super::metadata(&command)
        .with_context(|| format!("could not read the dependencies of {}", manifest.display()))?;
    let in_graph: std::collections::HashSet<_> = metadata
        .resolve
        .iter()
        .flat_map(|r| r.nodes.iter().map(|n| n.id.clone()))
        .collect();
    let mut names: Vec<String> = metadata
        .packages
        .iter()
        .filter(|p| in_graph.contains(&p.id))
        .filter(|p| {
            p.dependencies.iter().any(|d| {
                d.kind == cargo_metadata::DependencyKind::Build
                    && matches!(d.name.as_str(), "cc" | "cmake")
            })
        })
        .map(|p| p.name.to_string())
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The directory of a package's Cargo.toml.
pub(crate) fn package_dir(package: &Package) -> &Path {
    package
        .manifest_path
        .parent()
        .map(|p| p.as_std_path())
        .unwrap_or(Path::new("."))
}

fn has_bin(package: &Package) -> bool {
    !bins(package).is_empty()
}

/// The names of the package's binaries.
pub(crate) fn bins(package: &Package) -> Vec<&str> {
    package
        .targets
        .iter()
        .filter(|t| t.kind.contains(&TargetKind::Bin))
        .map(|t| t.name.as_str())
        .collect()
}

/// The binaries that can be built for Linux: those whose `required-features` turn on only
/// dependencies of other systems (`[target.'cfg(windows)'.dependencies]`) are left out of the
/// candidates for `--bin`.
fn linux_bins(package: &Package) -> Vec<&str> {
    package
        .targets
        .iter()
        .filter(|t| t.kind.contains(&TargetKind::Bin))
        .filter(|t| {
            t.required_features
                .iter()
                .all(|feature| !feature_is_for_other_systems(package, feature))
        })
        .map(|t| t.name.as_str())
        .collect()
}

/// Whether `feature` turns on optional dependencies, all declared for other systems than
/// Linux only.
fn feature_is_for_other_systems(package: &Package, feature: &str) -> bool {
    let mut todo = vec![feature.to_string()];
    let mut seen = std::collections::BTreeSet::new();
    let mut dependencies = Vec::new();
    while let Some(f) = todo.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let Some(values) = package.features.get(&f) else {
            continue;
        };
        for value in values {
            if let Some(dep) = value.strip_prefix("dep:") {
                dependencies.push(dep.to_string());
            } else if let Some((dep, _)) = value.split_once('/') {
                // `dep?/feature` turns nothing on.
                if !dep.ends_with('?') {
                    dependencies.push(dep.to_string());
                }
            } else {
                todo.push(value.clone());
                dependencies.push(value.clone());
            }
        }
    }
    let declared: Vec<&cargo_metadata::Dependency> = package
        .dependencies
        .iter()
        .filter(|d| d.optional)
        .filter(|d| dependencies.contains(d.rename.as_ref().unwrap_or(&d.name)))
        .collect();
    !declared.is_empty()
        && declared
            .iter()
            .all(|d| d.target.as_ref().is_some_and(|t| linux(t) == Some(false)))
}

/// Whether a dependency's `target` holds for a Linux musl target: `Some(false)` for
/// `cfg(windows)`, `cfg(target_os = "macos")` and the like, `None` where it depends on what
/// the platform does not say (an architecture).
fn linux(platform: &cargo_metadata::cargo_platform::Platform) -> Option<bool> {
    use cargo_metadata::cargo_platform::{Cfg, CfgExpr, Platform};
    /// `all` (`decisive` false) or `any` (true) of three-valued answers.
    fn combine(values: Vec<Option<bool>>, decisive: bool) -> Option<bool> {
        if values.contains(&Some(decisive)) {
            Some(decisive)
        } else if values.iter().all(|v| *v == Some(!decisive)) {
            Some(!decisive)
        } else {
            None
        }
    }
    fn eval(expr: &CfgExpr) -> Option<bool> {
        match expr {
            CfgExpr::True => Some(true),
            CfgExpr::False => Some(false),
            CfgExpr::Not(inner) => eval(inner).map(|b| !b),
            CfgExpr::All(all) => combine(all.iter().map(eval).collect(), false),
            CfgExpr::Any(any) => combine(any.iter().map(eval).collect(), true),
            CfgExpr::Value(Cfg::Name(name)) => match name.as_str() {
                "unix" => Some(true),
                "windows" => Some(false),
                _ => None,
            },
            CfgExpr::Value(Cfg::KeyPair(key, value)) => match key.as_str() {
                "target_os" => Some(value == "linux"),
                "target_family" => Some(value == "unix"),
                "target_env" => Some(value == "musl"),
                _ => None,
            },
        }
    }
    match platform {
        Platform::Name(triple) => Some(triple.contains("-linux-")),
        Platform::Cfg(expr) => eval(expr),
    }
}

/// The binaries that go into a package's image: `--bin`, else the `bins` or `bin` setting,
/// else the only one or `default-run`.
pub(crate) fn select_bins(
    package: &Package,
    flag: Option<&str>,
    setting_bin: Option<&str>,
    setting_bins: Option<&[String]>,
) -> Result<Vec<String>> {
    let available = bins(package);
    // The ones to suggest or pick: those that build for Linux.
    let candidates = linux_bins(package);
    let name = &package.name;
    if available.is_empty() {
        bail!(
            "package `{name}` has no binary to put in an image (it is a library)\n\
             help: add src/main.rs or a [[bin]] target, or pick a binary package with -p"
        );
    }
    let check = |bin: &str, from: &str| {
        if available.contains(&bin) {
            Ok(bin.to_string())
        } else {
            bail!(
                "package `{name}` has no binary named `{bin}`{from}\nhelp: its binaries are: {}",
                candidates.join(", ")
            )
        }
    };
    let setting = " (from `bins`/`bin` in [package.metadata.scratchimg])";
    match (flag, setting_bins, setting_bin) {
        (Some(bin), _, _) => Ok(vec![check(bin, "")?]),
        (None, Some(list), _) if !list.is_empty() => {
            list.iter().map(|b| check(b, setting)).collect()
        }
        (None, _, Some(bin)) => Ok(vec![check(bin, setting)?]),
        _ => match (candidates.as_slice(), &package.default_run) {
            (_, Some(default)) => Ok(vec![default.clone()]),
            ([only], _) => Ok(vec![only.to_string()]),
            (several, None) => bail!(
                "package `{name}` has several binaries: {}\nhelp: pick one with --bin, e.g. `cargo scratchimg --bin {}`",
                several.join(", "),
                several[0]
            ),
        },
    }
}

/// The manifest to read: `--manifest-path`, else the nearest `Cargo.toml` upwards from `cwd`, as
/// cargo does.
pub(crate) fn find_manifest(given: Option<&Path>, cwd: &Path) -> Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!(
                "manifest path `{}` does not exist\nhelp: pass the path of a Cargo.toml to --manifest-path",
                path.display()
            );
        }
        return Ok(path.to_path_buf());
    }
    match cwd
        .ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|m| m.is_file())
    {
        Some(manifest) => Ok(manifest),
        None => bail!(
            "could not find `Cargo.toml` in `{}` or any parent directory\n\
             help: run `cargo scratchimg` inside a cargo project, or pass --manifest-path PATH/Cargo.toml",
            cwd.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_judged_for_a_linux_musl_target() {
        let linux_of = |text: &str| linux(&text.parse().unwrap());
        assert_eq!(linux_of("cfg(windows)"), Some(false));
        assert_eq!(linux_of("cfg(target_os = \"macos\")"), Some(false));
        assert_eq!(
            linux_of("cfg(any(windows, target_os = \"macos\"))"),
            Some(false)
        );
        assert_eq!(linux_of("cfg(unix)"), Some(true));
        assert_eq!(linux_of("cfg(not(windows))"), Some(true));
        assert_eq!(linux_of("cfg(target_arch = \"x86_64\")"), None);
        assert_eq!(linux_of("cfg(all(unix, target_arch = \"x86_64\"))"), None);
        assert_eq!(linux_of("x86_64-pc-windows-msvc"), Some(false));
        assert_eq!(linux_of("aarch64-unknown-linux-musl"), Some(true));
    }
}
