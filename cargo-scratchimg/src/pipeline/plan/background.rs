//! The work that runs beside `cargo metadata` and the planning, on the other cores: the last
//! run's build, toolchain probes, git, registry connections, the engine, `rustc -vV`, the base
//! layers and the crate graphs. [`Background`] starts each as soon as what it needs is known, and
//! hands back what it gave: the probes and git facts as the plan asks for them, the
//! connections before any target is installed, the rest in [`Background::join`].

use std::path::Path;
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::Result;

use super::Given;
use super::build::BuildPlan;
use super::image::ImageRequest;
use super::tags::push_hosts;
use crate::cache::LayerCache;
use crate::cargo::early::{self, EarlyBuild};
use crate::cargo::graph::{self, Graphs};
use crate::cargo::toolchain::{self, Probe};
use crate::cargo::workspace::Workspace;
use crate::env::Env;
use crate::git::GitFacts;
use crate::image::{Algorithm, Compression, Layer};
use crate::pipeline::{Load, Options};
use crate::registry::Registry;
use crate::report::Reporter;
use crate::rootfs::{self, BaseFiles};
use crate::sink::{Answered, Engine};
use crate::target::Target;
use crate::tool_dir::ToolDir;
use crate::util::{join, unique};

/// What the work beside the plan gave, joined.
pub(super) struct Prepared {
    pub rustc_version: String,
    /// Each image's base layer, in the order of the requests.
    pub bases: Vec<Layer>,
    pub graphs: std::collections::BTreeMap<Target, Graphs>,
}

/// Each target's standard library, as looked for.
type Probes = Vec<(Target, Result<Probe>)>;

/// Each target's crate graphs.
type GraphsByTarget = Vec<(Target, Graphs)>;

/// The work that runs beside `cargo metadata` and the planning, on the other cores: started by
/// its methods as soon as what each needs is known, joined in [`Background::join`] (the git facts
/// and the probes, which the plan itself needs, as they are asked for).
pub(super) struct Background<'scope> {
    /// The last run's build, started at once: after a `rustc` probe that its target is
    /// installed, which runs beside `cargo metadata` rather than before it.
    early: Option<ScopedJoinHandle<'scope, EarlyBuild>>,
    /// The standard library of the targets the flags name (or the host's).
    probes: Option<ScopedJoinHandle<'scope, Probes>>,
    probed: Probes,
    /// Most runs make an image of the manifest's own package: git is asked about it at once.
    git: Option<ScopedJoinHandle<'scope, GitFacts>>,
    /// A wrong host, password or certificate fails in a second, not after the compile.
    registries: Option<ScopedJoinHandle<'scope, Result<Vec<Registry>>>>,
    engine: Option<ScopedJoinHandle<'scope, Result<Answered>>>,
    rustc_version: Option<ScopedJoinHandle<'scope, Result<String>>>,
    /// Each distinct base layer, made once however many images stand on it.
    bases: Vec<ScopedJoinHandle<'scope, Result<Layer>>>,
    /// Which of `bases` each image stands on, in the order of the requests.
    base_of: Vec<usize>,
    graphs: Option<ScopedJoinHandle<'scope, Result<GraphsByTarget>>>,
}

impl<'scope> Background<'scope> {
    /// Starts what needs nothing from cargo: the early build, the probes, git, the registries
    /// and the engine.
    pub(super) fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        options: &'env Options,
        env: &'env Env,
        given: &'env Given,
        report: &'env dyn Reporter,
    ) -> Background<'scope> {
        let (manifest, manifest_dir) = (&given.manifest, &given.manifest_dir);
        let early = scope.spawn(move || {
            let early = start_early(options, env, manifest, manifest_dir, report);
            if early.started() {
                report.verbose("Building", &|| {
                    "early: the last run's build, while cargo reads the workspace".into()
                });
            }
            early
        });
        let likely_targets = given
            .targets
            .clone()
            .or_else(|| Target::host_musl().ok().map(|t| vec![t]));
        let probes = scope.spawn(move || {
            likely_targets
                .into_iter()
                .flatten()
                .map(|t| {
                    let probe = toolchain::probe(&t, manifest_dir, env);
                    (t, probe)
                })
                .collect()
        });
        let git = scope.spawn(move || GitFacts::read(manifest_dir));
        let hosts = push_hosts(&options.push, env.default_repo.as_deref());
        let registries = (!hosts.is_empty()).then(|| {
            scope.spawn(move || {
                hosts
                    .iter()
                    .map(|host| Registry::connect(host, &options.registry, report))
                    .collect()
            })
        });
        let engine = options.load.map(|load| {
            scope.spawn(move || match load {
                Load::Auto => Engine::detect(),
                Load::Engine(engine) => engine.check(),
            })
        });
        Background {
            early: Some(early),
            probes: Some(probes),
            probed: Vec::new(),
            git: Some(git),
            registries,
            engine,
            rustc_version: None,
            bases: Vec::new(),
            base_of: Vec::new(),
            graphs: None,
        }
    }

    /// Starts `rustc -vV` (kept in the tool directory's cache).
    pub(super) fn rustc_version<'env>(
        &mut self,
        scope: &'scope Scope<'scope, 'env>,
        env: &'env Env,
        dir: &'env Path,
        tool_dir: &ToolDir,
        report: &'env dyn Reporter,
    ) {
        let tool_dir = tool_dir.clone();
        self.rustc_version =
            Some(scope.spawn(move || toolchain::rustc_version(env, dir, &tool_dir, report)));
    }

    /// Starts each distinct base layer, from the layer cache: compressing one is most of the
    /// work of a run whose build is up to date, and it is the same run after run. It gets the
    /// smallest output: it is compressed once and shared by every image.
    pub(super) fn base_layers<'env>(
        &mut self,
        scope: &'scope Scope<'scope, 'env>,
        requests: &[ImageRequest],
        cache: &LayerCache,
        threads: usize,
        report: &'env dyn Reporter,
    ) {
        let wanted: Vec<(&BaseFiles, Algorithm)> = requests
            .iter()
            .map(|r| (&r.settings.base, r.settings.compression.algorithm))
            .collect();
        let distinct = unique(wanted.iter().copied());
        self.base_of = wanted
            .iter()
            .map(|w| distinct.iter().position(|d| d == w).unwrap_or_default())
            .collect();
        for (base, algorithm) in distinct {
            let (files, cache) = (base.clone(), cache.clone());
            let making = scope.spawn(move || {
                let builder = rootfs::base_files(&files)?;
                let comment = rootfs::base_comment(&files);
                let compression = Compression::smallest(algorithm);
                let (layer, _) =
                    cache.layer(&builder, comment, compression, threads, &mut |_| {}, report)?;
                Ok(layer)
            });
            self.bases.push(making);
        }
    }

    /// Starts resolving the crate graphs of every target.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn crate_graphs<'env>(
        &mut self,
        scope: &'scope Scope<'scope, 'env>,
        build: &BuildPlan,
        workspace: &Workspace,
        env: &'env Env,
        tool_dir: &ToolDir,
        report: &'env dyn Reporter,
    ) {
        let cache = graph::cache(tool_dir);
        let (request, targets) = (build.request.clone(), build.targets.clone());
        let root = workspace.root().to_path_buf();
        self.graphs = Some(scope.spawn(move || {
            targets
                .into_iter()
                .map(|target| {
                    let (graphs, hit) =
                        graph::resolve(&request, &target, &root, env, &cache, report)?;
                    report.verbose("Cache", &|| {
                        format!("{} the crate graph for {}", hit.verb(), target.triple)
                    });
                    Ok((target, graphs))
                })
                .collect()
        }));
    }

    /// What git says of the manifest's directory.
    pub(super) fn git(&mut self) -> GitFacts {
        self.git.take().map(join).unwrap_or_default()
    }

    /// `target`'s standard library: probed beside `cargo metadata` when the flags named it,
    /// else now.
    pub(super) fn probe(&mut self, target: &Target, dir: &Path, env: &Env) -> Result<Probe> {
        if let Some(probing) = self.probes.take() {
            self.probed = join(probing);
        }
        match self.probed.iter().position(|(t, _)| t == target) {
            Some(i) => self.probed.remove(i).1,
            None => toolchain::probe(target, dir, env),
        }
    }

    /// The registries, connected and with their credentials checked for the pushes of
    /// `requests` (a token registry gives a token with their push scopes now), and the engine.
    pub(super) fn connections(
        &mut self,
        requests: &[ImageRequest],
        report: &dyn Reporter,
    ) -> Result<(Vec<Registry>, Option<Answered>)> {
        let registries = self
            .registries
            .take()
            .map(join)
            .transpose()?
            .unwrap_or_default();
        for registry in &registries {
            report.verbose("Registry", &|| registry.describe());
            registry.authorize(requests.iter().flat_map(|r| &r.push_to), report)?;
        }
        let engine = self.engine.take().map(join).transpose()?;
        Ok((registries, engine))
    }

    /// The last run's build, started at once.
    pub(super) fn early(&mut self) -> EarlyBuild {
        self.early.take().map(join).unwrap_or_else(EarlyBuild::none)
    }

    /// Joins the rest.
    pub(super) fn join(&mut self) -> Result<Prepared> {
        let rustc_version = match self.rustc_version.take() {
            Some(handle) => join(handle)?,
            None => String::new(),
        };
        let made = std::mem::take(&mut self.bases)
            .into_iter()
            .map(join)
            .collect::<Result<Vec<Layer>>>()?;
        let bases = self.base_of.iter().map(|&i| made[i].clone()).collect();
        let graphs = match self.graphs.take() {
            Some(handle) => join(handle)?.into_iter().collect(),
            None => Default::default(),
        };
        Ok(Prepared {
            rustc_version,
            bases,
            graphs,
        })
    }
}

/// Starts the build the last run like this one planned ([`early`]), if it can build: its
/// target installed.
fn start_early(
    options: &Options,
    env: &Env,
    manifest: &Path,
    manifest_dir: &Path,
    report: &dyn Reporter,
) -> EarlyBuild {
    // Runs with the same manifest and flags mostly plan the same build.
    let key = format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{}\n{:?}\n{:?}",
        std::fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_path_buf()),
        options.cargo,
        options.target,
        options.platforms,
        options.auditable,
        options.sbom,
        report.verbosity(),
    );
    let target_dir = early::likely_target_dir(
        manifest_dir,
        options.cargo.target_dir.as_deref(),
        env.target_dir.as_deref(),
        &env.cwd,
    );
    EarlyBuild::start(
        &key,
        manifest,
        target_dir.as_deref(),
        env,
        report,
        |triple| {
            // Never rustc's "can't find crate for `std`".
            Target::parse(triple).is_ok_and(|target| {
                toolchain::probe(&target, manifest_dir, env).is_ok_and(|probe| probe.installed)
            })
        },
    )
}
