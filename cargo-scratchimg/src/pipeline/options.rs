//! What one run is asked to do, as plain values: `main` fills [`Options`] from the command line,
//! and the library never sees clap's types.

use std::path::PathBuf;

use crate::attest::Attach;
use crate::cargo::CargoOptions;
use crate::config::ImageFlags;
use crate::registry::ClientOptions;
use crate::sbom::SbomFormat;
use crate::sign::KeySource;
use crate::sink::{Engine, Format};

/// Which engine `--load` loads into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Docker when its daemon answers, else podman.
    Auto,
    Engine(Engine),
}

/// Everything one run is asked to do, as plain values; `main` fills it from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub cargo: CargoOptions,
    pub image: ImageFlags,
    /// `--target`; the host architecture's musl target when `None`.
    pub target: Option<String>,
    /// `--platform`: several platforms make an image index.
    pub platforms: Option<String>,
    /// `-o`; `<target-dir>/scratchimg/<bin>-<version>.tar` when `None`; a directory with
    /// `--workspace`.
    pub output: Option<PathBuf>,
    pub format: Format,
    /// `--metadata-file`: where the run's record goes, a JSON document of every image, pushed
    /// reference, file and referrer.
    pub metadata_file: Option<PathBuf>,
    /// `-t` as given; from the settings, else `<bin>:<version>`, when empty.
    pub tags: Vec<String>,
    pub load: Option<Load>,
    /// `--containerd-namespace`: where `--load=containerd` imports; `default` when empty.
    pub containerd_namespace: String,
    /// `--zig`: cross C code and linking through cargo-zigbuild (also `cross = "zig"`).
    pub zig: bool,
    /// No file is written, not even the default output: `run` only loads, `resolve` pushes.
    pub skip_output: bool,
    /// `--push` values as given: `REGISTRY/REPO[:TAG]`, or empty for `$SCRATCHIMG_REPO/<name>`.
    /// With any, the image is pushed, and written to a file only when `output` is given.
    pub push: Vec<String>,
    /// How to reach registries and where to find credentials.
    pub registry: ClientOptions,
    /// The binaries carry their dependency lists (`.dep-v0`); `--no-auditable` turns it off.
    pub auditable: bool,
    /// `--sbom`: the document beside the output and attached to a push; `None` for none.
    pub sbom: Option<SbomFormat>,
    /// `--sbom-in-image`: the document goes into the image too.
    pub sbom_in_image: bool,
    /// `--verify`: build again in a fresh target directory and fail if the digests differ.
    pub verify: bool,
    /// `--attach`: the attestations that go next to the image. `None` is the default: all of
    /// them next to pushed images, none inside file outputs (the provenance goes beside them).
    pub attach: Option<Attach>,
    /// `--sign-key` or `--sign-key-stdin`: signs the attestations and the manifests.
    pub sign_key: KeySource,
    /// Every image gets this one tag, on its name, instead of its tags: `run` tags each run's
    /// image `<name>:scratchimg-run`.
    pub retag: Option<String>,
}
