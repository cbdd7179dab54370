//! `cargo scratchimg` end to end, in five steps, each a value in and a value out:
//!
//! 1. [`plan()`]: read the workspace and the settings, check everything that can be checked
//!    before cargo builds, and claim the outputs: a [`Plan`], and one [`ImagePlan`] per image.
//!    The last run's build starts at once ([`crate::cargo::early`]); toolchain probes, git,
//!    registries and the engine run beside `cargo metadata`, and `rustc -vV`, the base layers
//!    and the crate graphs as soon as what each needs is known (`beside.rs`).
//! 2. [`compile()`]: one `cargo build` per platform, checked static: [`PlatformBuild`]s.
//! 3. [`assemble()`]: each image, or index of one image per platform, on its base layer, with
//!    its SBOM: [`AssembledImage`]s, each carrying its [`ImagePlan`].
//! 4. [`verify()`] (`--verify`): steps 2 and 3 again in a fresh target directory, insisting on
//!    the same digests.
//! 5. [`publish()`]: write, load and push each image: an [`Outcome`] each.

mod assemble;
mod attest;
mod beside;
mod checks;
mod compile;
mod index;
mod names;
mod plan;
mod publish;
mod resolve;
mod run;
mod verify;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

pub(crate) use assemble::assemble;
pub(crate) use compile::{PlatformBuild, compile};
pub use index::{IndexOptions, IndexOutcome, index};
pub(crate) use plan::{ImagePlan, Plan, Planned, plan};
pub(crate) use publish::publish;
pub use resolve::{ResolveOptions, resolve};
pub use run::{RunOptions, run_image};
pub(crate) use verify::verify;

use crate::attest::Attach;
use crate::cargo::CargoOptions;
use crate::cargo::early::Early;
use crate::config::ImageFlags;
use crate::env::Env;
use crate::outcome::Outcome;
use crate::registry::ClientOptions;
use crate::report::Reporter;
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
}

/// Runs `cargo scratchimg`: builds, assembles and publishes every image `options` asks for,
/// reporting each [`Outcome`] to `report` as it is published.
pub fn run(options: &Options, env: &Env, report: &dyn Reporter) -> Result<Vec<Outcome>> {
    run_with(options, env, report, compile)
}

/// [`run`] with another compile step: tests put prebuilt binaries in cargo's place.
pub(crate) fn run_with(
    options: &Options,
    env: &Env,
    report: &dyn Reporter,
    compile: impl Fn(&Plan, &Env, &Path, Early, &dyn Reporter) -> Result<Vec<PlatformBuild>>,
) -> Result<Vec<Outcome>> {
    let started = Instant::now();
    // 1. Plan; the last run's build and the work that needs no plan start beside it.
    let Planned {
        plan,
        images,
        early,
    } = plan(options, env, report)?;
    let outcomes = execute(plan, images, early, env, report, compile)?;
    let what = match outcomes.as_slice() {
        [one] => format!("image `{}`", one.tags.join("`, `")),
        many => format!("{} images", many.len()),
    };
    report.status(
        "Finished",
        &format!("{what} in {:.2}s", started.elapsed().as_secs_f64()),
    );
    Ok(outcomes)
}

/// Steps 2 to 5 of a planned run.
fn execute(
    plan: Plan,
    images: Vec<ImagePlan>,
    early: Early,
    env: &Env,
    report: &dyn Reporter,
    compile: impl Fn(&Plan, &Env, &Path, Early, &dyn Reporter) -> Result<Vec<PlatformBuild>>,
) -> Result<Vec<Outcome>> {
    // 2. Compile every platform.
    let builds = compile(&plan, env, plan.workspace.target_directory(), early, report)?;
    // 3. Assemble every image on its base layer.
    let images = assemble(&plan, images, &builds, report)?;
    // 4. Verify: the same bytes from a fresh target directory.
    if plan.verify {
        let again = |dir: &Path| compile(&plan, env, dir, Early::none(), report);
        verify(&plan, &images, again, report)?;
    }
    // 5. Publish: write, load, push.
    publish(plan, images, report)
}

#[cfg(test)]
mod tests;
