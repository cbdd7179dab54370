//! The one `cargo build` every image of the run comes from: its targets, packages and
//! binaries, features and profile, from the flags, else from the settings.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::{Given, ImageRequest};
use crate::cargo::command::{BuildRequest, PackageBins, Profile};
use crate::cargo::strip::Strip;
use crate::env::Env;
use crate::pipeline::Options;
use crate::report::Reporter;
use crate::target::Target;
use crate::util::unique;

/// The build of the run, before any target is made ready.
pub(super) struct BuildPlan {
    pub targets: Vec<Target>,
    pub request: BuildRequest,
    /// The binaries carry their dependency lists: asked for, and our wrapper can link them.
    pub auditable: bool,
    /// cargo-zigbuild, when `--zig` or `cross = "zig"` asks for zig.
    pub zigbuild: Option<PathBuf>,
    /// The run writes SBOMs.
    sbom: bool,
}

impl BuildPlan {
    pub(super) fn new(
        given: &Given,
        requests: &[ImageRequest],
        options: &Options,
        env: &Env,
        report: &dyn Reporter,
    ) -> Result<BuildPlan> {
        let targets = match &given.targets {
            Some(targets) => targets.clone(),
            None => settings_targets(requests)?,
        };
        let auditable = options.auditable && env.current_exe.is_some();
        let request = build_request(&given.manifest, requests, options, auditable, report)?;
        let zigbuild = (options.zig || requests.iter().any(|r| r.settings.zig))
            .then(|| crate::cargo::zig::find(env))
            .transpose()?;
        Ok(BuildPlan {
            targets,
            request,
            auditable,
            zigbuild,
            sbom: options.sbom.is_some(),
        })
    }

    /// Whether C code and linking go through zig.
    pub(super) fn zig(&self) -> bool {
        self.zigbuild.is_some()
    }

    /// Whether the crate graphs are kept: for the SBOMs, or the dependency lists.
    pub(super) fn keeps_graphs(&self) -> bool {
        self.auditable || self.sbom
    }
}

/// The `platforms` setting, which every package built together must agree on; else the host's.
fn settings_targets(requests: &[ImageRequest]) -> Result<Vec<Target>> {
    let mut wanted = requests
        .iter()
        .filter_map(|r| r.settings.platforms.as_ref());
    let Some(first) = wanted.next() else {
        return Ok(vec![Target::host_musl()?]);
    };
    if wanted.any(|other| other != first) {
        bail!(
            "the packages ask for different `platforms`, but they build together\nhelp: pass --platform"
        );
    }
    Ok(first.iter().copied().map(Target::musl).collect())
}

/// One entry per package, with the binaries of every image of it: two images of one package
/// (`resolve`'s `pkg` and `pkg/other-bin`) build in one `--package`.
fn package_bins(images: &[ImageRequest]) -> Vec<PackageBins> {
    let mut packages: Vec<PackageBins> = Vec::new();
    for image in images {
        match packages.iter_mut().find(|p| p.id == image.package.id) {
            Some(known) => {
                let more = image
                    .bins
                    .iter()
                    .filter(|b| !known.bins.contains(b))
                    .cloned();
                let more: Vec<String> = more.collect();
                known.bins.extend(more);
            }
            None => packages.push(PackageBins {
                id: image.package.id.clone(),
                name: image.package.name.to_string(),
                version: image.package.version.to_string(),
                bins: image.bins.clone(),
            }),
        }
    }
    packages
}

/// One cargo invocation for every image: features and profile from flags, else from settings.
/// It names the manifest the run was given (any of the workspace serves for `-p name@version`),
/// so the next run, given the same one, can start it early.
fn build_request(
    manifest: &Path,
    images: &[ImageRequest],
    options: &Options,
    auditable: bool,
    report: &dyn Reporter,
) -> Result<BuildRequest> {
    let several = images.len() > 1;
    let features = if options.cargo.features.is_empty() {
        images
            .iter()
            .flat_map(|image| {
                let qualify = move |f: &String| {
                    if several {
                        format!("{}/{f}", image.package.name)
                    } else {
                        f.clone()
                    }
                };
                image.settings.features.iter().flatten().map(qualify)
            })
            .collect()
    } else {
        options.cargo.features.clone()
    };
    let profile = match &options.cargo.profile {
        Some(profile) => profile.clone(),
        None => {
            let mut profiles: Vec<&str> = images
                .iter()
                .filter_map(|i| i.settings.profile.as_deref())
                .collect();
            profiles.sort();
            match unique(profiles).as_slice() {
                [] => "release".to_string(),
                [one] => one.to_string(),
                many => bail!(
                    "the packages ask for different profiles ({}), but one cargo build has one\nhelp: pass --profile",
                    many.join(", ")
                ),
            }
        }
    };
    let strip = match options.image.strip {
        Some(strip) => strip,
        None => {
            let mut strips: Vec<Strip> = images.iter().filter_map(|i| i.settings.strip).collect();
            strips.sort_by_key(|s| s.name());
            match unique(strips).as_slice() {
                [] => Strip::default(),
                [one] => *one,
                many => bail!(
                    "the packages ask for different `strip` ({}), but one cargo build strips one way\nhelp: pass --strip",
                    many.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
    };
    Ok(BuildRequest {
        manifest_path: manifest.to_path_buf(),
        packages: package_bins(images),
        features,
        all_features: options.cargo.all_features,
        no_default_features: options.cargo.no_default_features,
        lock_flags: options.cargo.lock_flags(),
        profile: Profile {
            requested: profile,
            auditable,
            strip,
        },
        verbosity: report.verbosity(),
    })
}
