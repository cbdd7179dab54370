//! One image: what it asks for, read while cargo reads the workspace ([`ImageRequest`]), and
//! its plan, built whole once the background work is in ([`ImagePlan`]): everything the later
//! steps need of it, each value derived once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use cargo_metadata::Package;
use jiff::Timestamp;
use serde_json::json;

use super::background::Background;
use super::outputs::output_name;
use super::tags::{Tagged, image_tags, push_refs};
use super::{Outputs, Plan};
use crate::annotations::{self, Provenance};
use crate::attest::slsa::{BaseLayer, BuildFacts};
use crate::cargo::strip::Strip;
use crate::cargo::workspace::{self, Workspace};
use crate::config::{self, Settings};
use crate::env::Env;
use crate::git::GitFacts;
use crate::image::{Algorithm, Compression, ImageRef, Layer, LayerBuilder, RunConfig};
use crate::pipeline::Options;
use crate::report::Reporter;
use crate::rootfs;
use crate::sbom::CrateGraph;
use crate::sink::Answered;
use crate::source_date::SourceDate;
use crate::target::Target;
use crate::tool_dir::ToolDir;

/// What one image asks for: its package's settings and the flags, checked.
pub(crate) struct ImageRequest {
    pub package: Package,
    pub bins: Vec<String>,
    pub settings: Settings,
    pub tags: Vec<ImageRef>,
    /// What git says of the package's directory: its timestamp, revision and origin.
    pub git: GitFacts,
    pub date: SourceDate,
    pub created: Timestamp,
    /// The `files` setting's layer, if any.
    pub files: Option<LayerBuilder>,
    pub push_to: Vec<ImageRef>,
    /// The file or directory to write, claimed with the other outputs; `None` when the image
    /// is only pushed or loaded.
    pub output: Option<PathBuf>,
}

/// One image to make, with everything checked and derived.
pub(crate) struct ImagePlan {
    pub package: Package,
    pub bins: Vec<String>,
    pub settings: Settings,
    pub tags: Vec<ImageRef>,
    /// The first tag as people write it (`hello:0.1.0`): what the SBOMs and statements call
    /// the image.
    pub name: String,
    /// `SOURCE_DATE_EPOCH`, else the last commit's time: every file's mtime.
    pub date: SourceDate,
    /// The same, as the config's and the documents' timestamp.
    pub created: Timestamp,
    /// The layer of the CA roots, tzdata and users, compressed as the image's layers are
    /// (plain when they are not).
    pub base: Layer,
    /// The `files` setting's layer, if any.
    pub files: Option<LayerBuilder>,
    /// How the layers are compressed; `None` when they need not be: the image is only loaded
    /// into an engine that takes plain layers, so nothing is written or pushed.
    pub compression: Option<Compression>,
    pub run_config: RunConfig,
    /// What the image is on each platform of the plan, in its order.
    pub platforms: Vec<PlatformImage>,
    /// What its provenance states.
    pub facts: BuildFacts,
    pub push_to: Vec<ImageRef>,
    pub outputs: Outputs,
}

/// An image on one platform: its manifest's annotations, and its package's crate graph there.
pub(crate) struct PlatformImage {
    pub target: Target,
    /// For the SBOM and the annotations; `None` when the run resolves no graphs.
    pub graph: Option<CrateGraph>,
    pub annotations: BTreeMap<String, String>,
}

impl ImageRequest {
    /// Every selected package's image, in the selection's order.
    pub(super) fn read_all(
        workspace: &Workspace,
        tool_dir: &ToolDir,
        background: &mut Background<'_>,
        options: &Options,
        env: &Env,
        report: &dyn Reporter,
    ) -> Result<Vec<ImageRequest>> {
        let manifest_git = background.git();
        let mut warned = Vec::new();
        let selection = workspace.selection(&options.cargo)?;
        let dirs: Vec<&std::path::Path> = selection
            .iter()
            .map(|(package, _)| workspace::package_dir(package))
            .collect();
        // Each package's last commit dates its image unless SOURCE_DATE_EPOCH does.
        let dated = crate::source_date::SourceDate::set(env.source_date_epoch.as_deref()).is_none();
        let gits = manifest_git.for_dirs(&dirs, dated, tool_dir, report);
        selection
            .into_iter()
            .zip(gits)
            .map(|((package, bin), git)| {
                let read = Read {
                    workspace,
                    tool_dir,
                    options,
                    env,
                    report,
                };
                read.image(package, bin.as_deref(), git, &mut warned)
            })
            .collect()
    }
}

impl ImageRequest {
    /// The image as its tags and pushed references name it.
    pub(super) fn tagged(&self) -> Tagged<'_> {
        Tagged {
            package: self.package.name.as_str(),
            bins: &self.bins,
            refs: self.tags.iter().chain(&self.push_to).collect(),
        }
    }
}

/// What reading an image's request needs.
struct Read<'a> {
    workspace: &'a Workspace,
    tool_dir: &'a ToolDir,
    options: &'a Options,
    env: &'a Env,
    report: &'a dyn Reporter,
}

impl Read<'_> {
    /// Reads and checks a package's settings, picks its binaries, tags and output.
    fn image(
        &self,
        package: Package,
        bin: Option<&str>,
        git: GitFacts,
        warned: &mut Vec<String>,
    ) -> Result<ImageRequest> {
        let Read {
            workspace,
            tool_dir,
            options,
            env,
            report,
        } = *self;
        let manifests = config::read_tables(
            package.manifest_path.as_std_path(),
            &workspace.manifest_path(),
        )?;
        let settings = config::resolve(&manifests.tables, &options.image, &env.cwd)?;
        for warning in config::warnings(&manifests, &settings, &package.name) {
            // The workspace's tables are every package's: say what is wrong with them once.
            if !warned.contains(&warning) {
                report.warn(&warning);
                warned.push(warning);
            }
        }
        let bins = workspace::select_bins(
            &package,
            bin,
            settings.bin.as_deref(),
            settings.bins.as_deref(),
        )?;
        (settings.capabilities)
            .check_bins(&package.name, &workspace::bins(&package))
            .map_err(anyhow::Error::msg)?;
        let version = package.version.to_string();
        let image_name = if bins.len() == 1 {
            bins[0].clone()
        } else {
            package.name.to_string()
        };
        let mut tags = image_tags(&options.tags, &settings, &image_name, &version)?;
        if let Some(tag) = &options.retag {
            tags = vec![tags[0].repo().tagged(tag)];
        }
        let date = SourceDate::resolve(env.source_date_epoch.as_deref(), git.last_commit_time)?;
        let files = rootfs::files_layer(&settings.files, &settings.base, &bins, date.seconds)?;
        let push_to = push_refs(&options.push, env.default_repo.as_deref(), &tags)?;
        let created = date.timestamp()?;
        report.verbose("Timestamp", &|| {
            format!("{created} (from {:?})", date.source)
        });
        // A push or a load writes no file unless -o asks for one.
        let name = output_name(&image_name, &version, options.format);
        let loaded = options.load.is_some();
        let output = match (&options.output, options.cargo.workspace) {
            (Some(dir), true) => Some(dir.join(name)),
            (Some(path), false) => Some(path.clone()),
            (None, _) if push_to.is_empty() && !options.skip_output && !loaded => {
                Some(tool_dir.default_output(&name))
            }
            (None, _) => None,
        };
        Ok(ImageRequest {
            package,
            bins,
            settings,
            tags,
            git,
            date,
            created,
            files,
            push_to,
            output,
        })
    }
}

impl ImagePlan {
    /// Every image's plan, from its request and its claimed outputs.
    pub(super) fn all(
        requests: Vec<ImageRequest>,
        outputs: Vec<Outputs>,
        plan: &Plan,
        bases: Vec<Layer>,
        engine: Option<&Answered>,
    ) -> Result<Vec<ImagePlan>> {
        // Read once for every image, after cargo may have written it while the plan was made.
        let lockfile = crate::cache::file_digest(&plan.workspace.root().join("Cargo.lock"));
        requests
            .into_iter()
            .zip(outputs)
            .zip(bases)
            .map(|((request, outputs), base)| {
                ImagePlan::new(request, outputs, plan, base, lockfile.clone(), engine)
            })
            .collect()
    }

    fn new(
        request: ImageRequest,
        outputs: Outputs,
        plan: &Plan,
        base: Layer,
        lockfile: Option<String>,
        engine: Option<&Answered>,
    ) -> Result<ImagePlan> {
        let ImageRequest {
            package,
            bins,
            settings,
            tags,
            git,
            date,
            created,
            files,
            push_to,
            output: _,
        } = request;
        let compression = compression(&settings, &outputs, &push_to, engine);
        let standard =
            annotations::standard(&package, git.revision.as_deref(), &created.to_string());
        let run_config = settings.run_config(&bins, &standard);
        let source = annotations::source(package.repository.as_deref(), git.origin.as_deref());
        let platforms = plan
            .platforms
            .iter()
            .map(|platform| {
                let graph = platform.graphs.get(package.name.as_str()).cloned();
                let provenance = Provenance {
                    source: source.clone(),
                    toolchain: plan.rustc_version.clone(),
                    features: graph
                        .as_ref()
                        .map(|g| g.features.clone())
                        .unwrap_or_default(),
                    profile: plan.request.profile.requested.clone(),
                    target: platform.target().triple.clone(),
                    auditable: plan.auditable,
                };
                PlatformImage {
                    target: platform.target().clone(),
                    annotations: annotations::manifest(
                        &standard,
                        &provenance,
                        &settings.annotations,
                    ),
                    graph,
                }
            })
            .collect::<Vec<_>>();
        let base = match compression {
            Some(_) => base,
            None => base
                .to_uncompressed()
                .context("the base layer could not be read again (a bug in cargo-scratchimg)")?,
        };
        let facts = BuildFacts {
            package: package.name.to_string(),
            version: package.version.to_string(),
            binaries: bins.clone(),
            features: platforms
                .first()
                .and_then(|p| p.graph.as_ref())
                .map(|g| g.features.clone())
                .unwrap_or_default(),
            profile: plan.request.profile.requested.clone(),
            targets: plan
                .platforms
                .iter()
                .map(|p| p.target().triple.clone())
                .collect(),
            platforms: plan
                .platforms
                .iter()
                .map(|p| p.target().arch.platform())
                .collect(),
            auditable: plan.auditable,
            sbom: plan.sbom.map(|format| format.name().to_string()),
            settings: settings_stated(&settings, &bins, &run_config, &base),
            strip: (plan.request.profile.strip != Strip::default())
                .then(|| plan.request.profile.strip.name().to_string()),
            build_environment: plan
                .platforms
                .iter()
                .filter(|p| !p.cargo_env.is_empty())
                .map(|p| {
                    let vars = p.cargo_env.iter().cloned().collect();
                    (p.target().triple.clone(), vars)
                })
                .collect(),
            source,
            revision: git.revision.clone(),
            lockfile_sha256: lockfile,
            rustc: plan.rustc_version.clone(),
            // The base layer as the image holds it: compressed as its layers are, or plain.
            base: vec![BaseLayer {
                digest: base.blob().digest().to_string(),
                media_type: base.blob().media_type().to_string(),
                contents: base.comment().to_string(),
            }],
        };
        Ok(ImagePlan {
            name: tags[0].familiar(),
            package,
            bins,
            settings,
            tags,
            date,
            created,
            base,
            files,
            compression,
            run_config,
            platforms,
            facts,
            push_to,
            outputs,
        })
    }
}

/// The settings the provenance states: how the image runs its program and what it holds
/// besides. Settings added later are stated only when they are used, so the provenance of an
/// image that does not use them stays the same.
fn settings_stated(
    settings: &Settings,
    bins: &[String],
    run: &RunConfig,
    base: &Layer,
) -> serde_json::Value {
    let mut stated = json!({
        "entrypoint": run.entrypoint,
        "cmd": run.cmd,
        "env": run.env,
        "user": run.user,
        "workdir": run.working_dir,
        "ports": run.exposed_ports,
        "volumes": run.volumes,
        "labels": settings.labels,
        "annotations": settings.annotations,
        "stopSignal": run.stop_signal,
        "files": settings
            .files
            .iter()
            .map(|f| json!({ "dst": f.dst, "mode": f.mode.map(|m| format!("{m:04o}")) }))
            .collect::<Vec<_>>(),
        "base": base.comment(),
    });
    let capabilities = settings.capabilities.stated(bins);
    if !capabilities.is_empty() {
        stated["capabilities"] = json!(capabilities);
    }
    stated
}

/// How an image's layers are compressed: as its settings say when it is written or pushed,
/// or loaded into an engine that wants compressed layers; not at all when it is only loaded
/// into an engine that takes plain ones (the image ID is the same: the config names the
/// layers by their plain digests).
fn compression(
    settings: &Settings,
    outputs: &Outputs,
    push_to: &[ImageRef],
    engine: Option<&Answered>,
) -> Option<Compression> {
    let needed = outputs.destination.is_some()
        || !push_to.is_empty()
        || engine.is_some_and(|engine| !engine.loads_plain_layers());
    needed.then_some(settings.compression)
}

/// The warning, once for the run, when images set to zstd go to an engine that cannot read it.
pub(super) fn zstd_warning(requests: &[ImageRequest], engine: Option<&Answered>) -> Option<String> {
    let engine = engine.filter(|engine| !engine.reads_zstd())?;
    let zstd: Vec<String> = requests
        .iter()
        .filter(|request| request.settings.compression.algorithm == Algorithm::Zstd)
        .map(|request| request.package.name.to_string())
        .collect();
    let which = match &zstd[..] {
        [] => return None,
        [_] => "the same image".to_string(),
        _ => format!("the same images ({})", zstd.join(", ")),
    };
    Some(format!(
        "{} {} reads no zstd layers (Docker 23 and later do): --load gives it the layers \
         uncompressed, {which}; pulls and `docker load` of zstd images fail there",
        engine.engine, engine.version
    ))
}
