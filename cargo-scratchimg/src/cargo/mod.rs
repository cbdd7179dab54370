//! Everything that runs cargo or rustc: reading the workspace ([`workspace`]), resolving crate
//! graphs ([`graph`], from what `cargo tree` says is compiled: `compiled`), the `cargo build`
//! itself ([`command`]) and its `strip` ([`strip`]), cargo's stderr ([`stderr`]), what the
//! build is told for arm64's larger pages ([`page_size`]), the one started early
//! ([`early`]) and the binaries read while it runs ([`preread`]), the target's standard library
//! and `rustc -vV` ([`toolchain`]), cross linkers ([`linker`]), this executable as rustc's
//! wrapper ([`wrapper`], [`remap`]) and the `rustc` the user's own wrapper runs ([`shim`]), and the check that what cargo built is static ([`elf`]).

pub(crate) mod command;
mod compiled;
pub(crate) mod early;
pub(crate) mod elf;
pub(crate) mod graph;
pub(crate) mod linker;
pub(crate) mod page_size;
pub(crate) mod preread;
pub(crate) mod remap;
pub(crate) mod shim;
pub(crate) mod stderr;
pub(crate) mod strip;
pub(crate) mod toolchain;
pub(crate) mod workspace;
pub(crate) mod wrapper;
pub(crate) mod zig;

use std::path::PathBuf;
use std::sync::Arc;

use cargo_metadata::{Metadata, MetadataCommand};

use crate::target::Target;

/// Runs `cargo metadata` as [`MetadataCommand::exec`] does, with the same errors, in a process
/// group of its own: an interrupt ends it, and with it a download of the index.
pub(crate) fn metadata(command: &MetadataCommand) -> cargo_metadata::Result<Metadata> {
    let output = crate::process::output(&mut command.cargo_command())?;
    if !output.status.success() {
        return Err(cargo_metadata::Error::CargoMetadata {
            stderr: String::from_utf8(output.stderr)?,
        });
    }
    let stdout = std::str::from_utf8(&output.stdout)?
        .lines()
        .find(|line| line.starts_with('{'))
        .ok_or(cargo_metadata::Error::NoJson)?;
    MetadataCommand::parse(stdout)
}

/// cargo's own flags, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CargoOptions {
    pub manifest_path: Option<PathBuf>,
    pub package: Option<String>,
    pub bin: Option<String>,
    /// `--workspace`: an image of every binary package.
    pub workspace: bool,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    /// `--profile`; the `profile` setting, else `release`, when `None`.
    pub profile: Option<String>,
    pub target_dir: Option<PathBuf>,
    pub locked: bool,
    pub frozen: bool,
    pub offline: bool,
    /// Images to make, each of a package and maybe one of its binaries, instead of `package`,
    /// `bin` and `workspace`: what `resolve` found referenced.
    pub selected: Vec<Selected>,
}

/// A package, and the binary of it to put in an image (its default binary when `None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selected {
    pub package: String,
    pub bin: Option<String>,
}

impl CargoOptions {
    /// `--locked`, `--frozen` and `--offline` as given: every cargo command we run takes them.
    pub(crate) fn lock_flags(&self) -> Vec<String> {
        [
            (self.locked, "--locked"),
            (self.frozen, "--frozen"),
            (self.offline, "--offline"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, flag)| flag.to_string())
        .collect()
    }

    /// Whether cargo and rustup may reach the network.
    pub(crate) fn network_allowed(&self) -> bool {
        !(self.offline || self.frozen)
    }
}

/// An executable cargo built, and what it was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuiltBinary {
    pub path: PathBuf,
    /// The executable's bytes, read once: checked, hashed and packed from memory.
    pub bytes: Arc<[u8]>,
    /// The SHA-256 of `bytes`, computed as they were read.
    pub sha256: oci_spec::image::Digest,
    /// Read while cargo ran, since it was up to date (see [`preread`]).
    pub read_ahead: bool,
    /// The binary target's name, e.g. `hello`.
    pub name: String,
    pub package: String,
    pub version: String,
    pub target: Target,
}

impl BuiltBinary {
    /// Its bytes for a layer, with the digest computed when they were read: the layer's cache
    /// key and the SBOM use it, so they are not hashed again.
    pub(crate) fn content(&self) -> crate::image::Content {
        crate::image::Content::hashed(self.bytes.clone(), self.sha256.clone())
    }
}
