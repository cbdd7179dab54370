//! Which package and binary to build, from `cargo metadata` and `-p`/`--bin`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Metadata, MetadataCommand, Package, TargetKind};

use super::CargoOptions;

/// The binary target picked for the image, with what we need to know about its package.
#[derive(Debug, Clone)]
pub struct Selection {
    pub package: Package,
    pub bin: String,
    pub workspace_root: PathBuf,
    /// cargo's target directory, honouring `--target-dir`, `CARGO_TARGET_DIR` and config.
    pub target_directory: PathBuf,
}

impl Selection {
    pub fn package_dir(&self) -> &Path {
        self.package
            .manifest_path
            .parent()
            .map(|p| p.as_std_path())
            .unwrap_or(&self.workspace_root)
    }
}

/// Reads the workspace of `manifest` with `cargo metadata` and picks the package and binary.
pub fn select(cargo: &Path, manifest: &Path, options: &CargoOptions) -> Result<Selection> {
    let mut command = MetadataCommand::new();
    command.cargo_path(cargo).manifest_path(manifest).no_deps();
    let mut flags = Vec::new();
    for (on, flag) in [
        (options.locked, "--locked"),
        (options.frozen, "--frozen"),
        (options.offline, "--offline"),
    ] {
        if on {
            flags.push(flag.to_string());
        }
    }
    command.other_options(flags);
    if let Some(dir) = &options.target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let metadata = command
        .exec()
        .with_context(|| format!("could not read the cargo project at {}", manifest.display()))?;
    let package = select_package(&metadata, options)?;
    let bin = select_bin(&package, options.bin.as_deref())?;
    Ok(Selection {
        bin,
        workspace_root: metadata.workspace_root.clone().into_std_path_buf(),
        target_directory: metadata.target_directory.clone().into_std_path_buf(),
        package,
    })
}

/// The manifest to read: `--manifest-path`, else the nearest `Cargo.toml` upwards, as cargo does.
pub fn find_manifest(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!(
                "manifest path `{}` does not exist\nhelp: pass the path of a Cargo.toml to --manifest-path",
                path.display()
            );
        }
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().context("could not read the current directory")?;
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

fn is_bin(package: &Package) -> bool {
    package
        .targets
        .iter()
        .any(|t| t.kind.contains(&TargetKind::Bin))
}

fn bins(package: &Package) -> Vec<&str> {
    package
        .targets
        .iter()
        .filter(|t| t.kind.contains(&TargetKind::Bin))
        .map(|t| t.name.as_str())
        .collect()
}

fn select_package(metadata: &Metadata, options: &CargoOptions) -> Result<Package> {
    let members = metadata.workspace_packages();
    if let Some(spec) = &options.package {
        let name = spec.split('@').next().unwrap_or(spec);
        return match members.iter().find(|p| p.name.as_str() == name) {
            Some(p) => Ok((*p).clone()),
            None => bail!(
                "package `{spec}` is not in this workspace\nhelp: workspace members: {}",
                members
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    // `--bin NAME` without `-p` finds the member that has it, as `cargo build --bin` does.
    if let Some(bin) = &options.bin {
        let root_has_it = metadata
            .root_package()
            .is_some_and(|p| bins(p).contains(&bin.as_str()));
        if !root_has_it && let Some(p) = members.iter().find(|p| bins(p).contains(&bin.as_str())) {
            return Ok((*p).clone());
        }
    }
    if let Some(root) = metadata.root_package() {
        return Ok(root.clone());
    }
    let candidates: Vec<&Package> = metadata
        .workspace_default_packages()
        .into_iter()
        .filter(|p| is_bin(p))
        .collect();
    match candidates.as_slice() {
        [only] => Ok((*only).clone()),
        [] => bail!(
            "no package in the workspace at {} has a binary\nhelp: cargo scratchimg packages a binary; add one with `cargo new --bin`",
            metadata.workspace_root
        ),
        several => bail!(
            "the workspace at {} has several binary packages: {}\nhelp: pick one with -p, e.g. `cargo scratchimg -p {}`",
            metadata.workspace_root,
            several
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            several[0].name
        ),
    }
}

fn select_bin(package: &Package, bin: Option<&str>) -> Result<String> {
    let available = bins(package);
    let name = &package.name;
    if available.is_empty() {
        bail!(
            "package `{name}` has no binary to put in an image (it is a library)\n\
             help: add src/main.rs or a [[bin]] target, or pick a binary package with -p"
        );
    }
    match bin {
        Some(bin) if available.contains(&bin) => Ok(bin.to_string()),
        Some(bin) => bail!(
            "package `{name}` has no binary named `{bin}`\nhelp: its binaries are: {}",
            available.join(", ")
        ),
        None => match (available.as_slice(), &package.default_run) {
            ([only], _) => Ok(only.to_string()),
            (_, Some(default)) => Ok(default.clone()),
            (several, None) => bail!(
                "package `{name}` has several binaries: {}\nhelp: pick one with --bin, e.g. `cargo scratchimg --bin {}`",
                several.join(", "),
                several[0]
            ),
        },
    }
}
