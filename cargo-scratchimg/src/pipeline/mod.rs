//! `cargo scratchimg` end to end, in five steps, each a value in and a value out:
//!
//! 1. [`plan()`]: read the workspace and the settings, check everything that can be checked
//!    before cargo builds, and claim the outputs: a [`Plan`], one [`ImagePlan`] per image, and
//!    the [`Connections`] (registries, engine) beside them. The last run's build starts at once
//!    ([`crate::cargo::early`]); toolchain probes, git, registries and the engine run beside
//!    `cargo metadata`, and `rustc -vV`, the base layers and the crate graphs as soon as what
//!    each needs is known.
//! 2. [`compile()`]: one `cargo build` per platform, checked static: [`PlatformBuild`]s.
//! 3. [`assemble()`]: each image, or index of one image per platform, on its base layer, with
//!    its SBOMs and attestations: [`AssembledImage`]s, each carrying its [`ImagePlan`]. The
//!    layers of images to push go up as they are compressed ([`Uploads`]).
//! 4. [`reproduce()`] (`--verify`): steps 2 and 3 again in a fresh target directory, insisting
//!    on the same digests.
//! 5. [`publish()`]: write, load and push each image: an [`Outcome`] each.

mod assemble;
mod compile;
mod in_order;
mod options;
mod plan;
mod publish;
mod reproduce;

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

pub(crate) use assemble::{AssembledImage, assemble};
pub(crate) use compile::{PlatformBuild, compile};
pub use options::{Load, Options};
pub(crate) use plan::{Connections, ImagePlan, Plan, Planned, PlatformImage, PlatformPlan, plan};
pub(crate) use publish::publish;
pub(crate) use reproduce::reproduce;

use crate::cargo::early::EarlyBuild;
use crate::env::Env;
use crate::outcome::Outcome;
use crate::report::Reporter;
use crate::sink::Uploads;

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
    compile: impl Fn(&Plan, &Env, &Path, EarlyBuild, &dyn Reporter) -> Result<Vec<PlatformBuild>>,
) -> Result<Vec<Outcome>> {
    let started = Instant::now();
    // 1. Plan; the last run's build and the work that needs no plan start beside it.
    let outcomes = execute(plan(options, env, report)?, env, report, compile)?;
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
pub(crate) fn execute(
    planned: Planned,
    env: &Env,
    report: &dyn Reporter,
    compile: impl Fn(&Plan, &Env, &Path, EarlyBuild, &dyn Reporter) -> Result<Vec<PlatformBuild>>,
) -> Result<Vec<Outcome>> {
    let Planned {
        plan,
        images,
        connections,
        early,
        record,
    } = planned;
    // 2. Compile every platform.
    let builds = compile(&plan, env, plan.workspace.target_directory(), early, report)?;
    // 3. Assemble every image on its base layer; layers of images to push go up meanwhile.
    let uploads = Uploads::new(&connections.registries);
    let images = assemble(&plan, images, &builds, &uploads, report)?;
    // 4. Verify: the same bytes from a fresh target directory.
    if plan.verify {
        // Without the user's rustc wrapper: a compile cache would hand back the crates of the
        // first build, and the second would prove nothing about them.
        let uncached = Env {
            rustc_wrapper: None,
            ..env.clone()
        };
        let again = |dir: &Path| compile(&plan, &uncached, dir, EarlyBuild::none(), report);
        reproduce(&plan, &images, again, report)?;
    }
    // 5. Publish: write, load, push.
    publish(&plan, &connections, &uploads, images, record, report)
}

#[cfg(test)]
mod tests;
