//! Step 1: everything settled before cargo builds. Every check that can fail without building
//! fails here: settings, tags, outputs (claimed, so an unwritable path fails in a second and
//! the old output stays until the new one is whole), targets and linkers, registries and
//! their credentials, the container engine.
//!
//! What needs nothing from the plan runs beside it, on the other core ([`Beside`]).

use std::path::{Path, PathBuf};
use std::thread::{Scope, ScopedJoinHandle};

use anyhow::{Result, bail};
use cargo_metadata::Package;

use super::tags::{beside, image_tags, output_name, push_hosts, push_refs, sbom_beside};
use super::{Load, Options};
use crate::cache::{Hit, Keyed, LayerCache};
use crate::cargo::command::{BuildRequest, PackageBins, Profile};
use crate::cargo::early::{self, Early};
use crate::cargo::graph::{self, Graphs};
use crate::cargo::linker;
use crate::cargo::toolchain::{self, Install, Probe};
use crate::cargo::workspace::{self, Workspace};
use crate::config::{self, Settings};
use crate::env::Env;
use crate::git::GitFacts;
use crate::image::{Algorithm, Compression, ImageRef, Layer, LayerBuilder};
use crate::layout::Layout;
use crate::registry::Registry;
use crate::report::Reporter;
use crate::rootfs::{self, BaseFiles};
use crate::sbom::SbomFormat;
use crate::sink::{Answered, Destination, Engine, Format, PendingFile};
use crate::source_date::SourceDate;
use crate::target::{Arch, Target, parse_platforms};
use crate::util::{join, unique};

/// What a run will do, settled before cargo builds; the images are [`ImagePlan`]s beside it.
pub(crate) struct Plan {
    pub workspace: Workspace,
    pub layout: Layout,
    /// The one `cargo build` of every image, before a target is chosen.
    pub request: BuildRequest,
    /// One after another, in one target directory, so incremental builds stay warm.
    pub platforms: Vec<PlatformPlan>,
    /// Each distinct base layer the images stand on, compressed with each algorithm they use.
    pub bases: Vec<(BaseFiles, Algorithm, Layer)>,
    /// `rustc -vV`, for the provenance annotations.
    pub toolchain: String,
    /// Registries to push to, connected and with their credentials checked.
    pub registries: Vec<Registry>,
    /// The engine `--load` loads into, which answered.
    pub engine: Option<Answered>,
    /// Threads that compress layers: one per core. The bytes do not depend on it.
    pub threads: usize,
    pub format: Format,
    pub sbom: Option<SbomFormat>,
    /// The binaries carry their dependency lists: asked for, and our wrapper can link them.
    pub auditable: bool,
    pub verify: bool,
}

/// One platform to build for.
pub(crate) struct PlatformPlan {
    pub target: Target,
    /// The cross linker's variables, if any.
    pub linker_env: Vec<(String, String)>,
    /// The toolchain's sysroot, whose paths the remapping takes out of the binaries.
    pub sysroot: Option<PathBuf>,
    /// Each package's crate graph for this target; empty without an SBOM or dependency list.
    pub graphs: Graphs,
}

/// One image to make, with everything checked.
pub(crate) struct ImagePlan {
    pub package: Package,
    pub bins: Vec<String>,
    pub settings: Settings,
    pub tags: Vec<ImageRef>,
    /// What git says of the package's directory: its timestamp, revision and origin.
    pub git: GitFacts,
    pub date: SourceDate,
    /// The `files` setting's layer, if any.
    pub files: Option<LayerBuilder>,
    /// How the layers are compressed; `None` when they need not be: the image is only loaded
    /// into an engine that takes plain layers, so nothing is written or pushed.
    pub compression: Option<Compression>,
    /// The file or directory to write, claimed; `None` when the image is only pushed.
    pub destination: Option<Destination>,
    pub push_to: Vec<ImageRef>,
    /// The SBOM files beside the output, claimed.
    pub sboms: Vec<SbomClaim>,
}

/// An SBOM file beside the output: one per platform and binary.
pub(crate) struct SbomClaim {
    pub target: Target,
    pub bin: String,
    pub file: PendingFile,
}

/// What [`plan`] gives: the plan, its images, and the build started early.
pub(crate) struct Planned {
    pub plan: Plan,
    pub images: Vec<ImagePlan>,
    pub early: Early,
}

impl Plan {
    /// The base layer of `base` compressed with `algorithm`, made while planning.
    pub(crate) fn base_layer(&self, base: &BaseFiles, algorithm: Algorithm) -> &Layer {
        self.bases
            .iter()
            .find(|(files, a, _)| files == base && *a == algorithm)
            .map(|(_, _, layer)| layer)
            .expect("a base layer for every image's settings")
    }

    /// Whether there are several platforms: an index per image.
    pub(crate) fn multi_platform(&self) -> bool {
        self.platforms.len() > 1
    }
}

pub(crate) fn plan(options: &Options, env: &Env, report: &dyn Reporter) -> Result<Planned> {
    let manifest = workspace::find_manifest(options.cargo.manifest_path.as_deref(), &env.cwd)?;
    let manifest_dir = match manifest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let flag_targets = flag_targets(options)?;
    check_workspace_flags(options)?;
    std::thread::scope(|scope| {
        let mut beside = Beside::start(
            scope,
            options,
            env,
            &manifest,
            &manifest_dir,
            flag_targets.clone(),
            report,
        );
        let workspace = Workspace::read(&env.cargo, &manifest, &options.cargo)?;
        let layout = Layout::new(workspace.target_directory());
        beside.rustc_version(scope, env, &manifest_dir, &layout, report);

        let manifest_git = beside.git();
        let mut images = Vec::new();
        let mut warned = Vec::new();
        for package in workspace.packages(&options.cargo)? {
            let git = manifest_git.for_dir(workspace::package_dir(&package));
            let image = plan_image(
                &workspace,
                &layout,
                package,
                git,
                options,
                env,
                &mut warned,
                report,
            )?;
            images.push(image);
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        beside.base_layers(scope, &images, &layout, threads, report);
        let targets = match flag_targets {
            Some(targets) => targets,
            None => settings_targets(&images)?,
        };
        let auditable = options.auditable && env.current_exe.is_some();
        let request = build_request(&images, options, auditable, report)?;
        if options.auditable || options.sbom.is_some() {
            beside.crate_graphs(
                scope,
                &request,
                &targets,
                workspace.root(),
                env,
                &layout,
                report,
            );
        }
        let mut platforms = Vec::new();
        for target in &targets {
            let probe = beside.probe(target, &manifest_dir, env)?;
            platforms.push(plan_platform(
                target,
                probe,
                &manifest,
                &manifest_dir,
                &workspace,
                options,
                env,
                report,
            )?);
        }
        if let Some(format) = options.sbom {
            for image in &mut images {
                image.sboms = claim_sboms(image, &targets, format)?;
            }
        }
        let Groundwork {
            registries,
            engine,
            toolchain,
            bases,
            mut graphs,
        } = beside.join(report)?;
        for platform in &mut platforms {
            platform.graphs = graphs.remove(&platform.target).unwrap_or_default();
        }
        for image in &mut images {
            image.compression = compression(image, engine.as_ref(), report);
        }
        let plan = Plan {
            workspace,
            layout,
            request,
            platforms,
            bases,
            toolchain,
            registries,
            engine,
            threads,
            format: options.format,
            sbom: options.sbom,
            auditable,
            verify: options.verify,
        };
        Ok(Planned {
            plan,
            images,
            early: beside.early.take().map(join).unwrap_or_else(Early::none),
        })
    })
}

/// The targets `--platform` or `--target` name; `None` leaves it to the settings.
fn flag_targets(options: &Options) -> Result<Option<Vec<Target>>> {
    Ok(match (&options.platforms, &options.target) {
        (Some(platforms), _) => Some(
            parse_platforms(platforms)?
                .into_iter()
                .map(Target::musl)
                .collect(),
        ),
        (None, Some(triple)) => Some(vec![Target::parse(triple)?]),
        (None, None) => None,
    })
}

fn check_workspace_flags(options: &Options) -> Result<()> {
    if options.cargo.workspace && !options.tags.is_empty() {
        bail!(
            "-t cannot name the images of --workspace\nhelp: set `name` and `tags` in each package's [package.metadata.scratchimg]"
        );
    }
    if options.cargo.workspace && options.push.iter().any(|r| !r.is_empty()) {
        bail!(
            "--push REF would push every image of --workspace to one repository\nhelp: set SCRATCHIMG_REPO and pass --push alone: each image goes to $SCRATCHIMG_REPO/<name>"
        );
    }
    Ok(())
}

/// Reads and checks a package's settings, picks its binaries and tags, and claims its output.
#[allow(clippy::too_many_arguments)]
fn plan_image(
    workspace: &Workspace,
    layout: &Layout,
    package: Package,
    git: GitFacts,
    options: &Options,
    env: &Env,
    warned: &mut Vec<String>,
    report: &dyn Reporter,
) -> Result<ImagePlan> {
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
        options.cargo.bin.as_deref(),
        settings.bin.as_deref(),
        settings.bins.as_deref(),
    )?;
    let version = package.version.to_string();
    let image_name = if bins.len() == 1 {
        bins[0].clone()
    } else {
        package.name.to_string()
    };
    let tags = image_tags(&options.tags, &settings, &image_name, &version)?;
    let date = SourceDate::resolve(env.source_date_epoch.as_deref(), git.last_commit_time)?;
    let files = rootfs::files_layer(&settings.files, &settings.base, &bins, date.seconds)?;
    let push_to = push_refs(&options.push, env.default_repo.as_deref(), &tags)?;
    let loaded = options.load.is_some();
    let timestamp = date.timestamp()?;
    report.verbose("Timestamp", &|| {
        format!("{timestamp} (from {:?})", date.source)
    });
    // Claimed last, once every check has passed. A push or a load writes no file unless -o
    // asks for one.
    let name = output_name(&image_name, &version, options.format);
    let path = match (&options.output, options.cargo.workspace) {
        (Some(dir), true) => Some(dir.join(name)),
        (Some(path), false) => Some(path.clone()),
        (None, _) if push_to.is_empty() && !loaded => Some(layout.default_output(&name)),
        (None, _) => None,
    };
    let destination = path
        .as_deref()
        .map(|path| Destination::claim(path, options.format, date.seconds))
        .transpose()?;
    Ok(ImagePlan {
        package,
        bins,
        settings,
        tags,
        git,
        date,
        files,
        compression: None,
        destination,
        push_to,
        sboms: Vec::new(),
    })
}

/// How `image`'s layers are compressed: as its settings say when it is written or pushed, or
/// loaded into an engine that wants compressed layers; not at all when it is only loaded into
/// an engine that takes plain ones (the image ID is the same: the config names the layers by
/// their plain digests). Warns when the engine cannot read the layers.
fn compression(
    image: &ImagePlan,
    engine: Option<&Answered>,
    report: &dyn Reporter,
) -> Option<Compression> {
    let settings = image.settings.compression;
    if let Some(engine) = engine
        && settings.algorithm == Algorithm::Zstd
        && !engine.reads_zstd()
    {
        report.warn(&format!(
            "{} {} reads no zstd layers (Docker 23 and later do): --load gives it the layers \
             uncompressed, the same image; pulls and `docker load` of zstd images fail there",
            engine.engine, engine.version
        ));
    }
    let needed = image.destination.is_some()
        || !image.push_to.is_empty()
        || engine.is_some_and(|engine| !engine.loads_plain_layers());
    needed.then_some(settings)
}

/// The `platforms` setting, which every package built together must agree on; else the host's.
fn settings_targets(images: &[ImagePlan]) -> Result<Vec<Target>> {
    let mut wanted = images.iter().filter_map(|i| i.settings.platforms.as_ref());
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

/// One cargo invocation for every image: features and profile from flags, else from settings.
fn build_request(
    images: &[ImagePlan],
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
    let first = images
        .first()
        .expect("a workspace gives at least one image");
    Ok(BuildRequest {
        manifest_path: first.package.manifest_path.clone().into_std_path_buf(),
        packages: images
            .iter()
            .map(|image| PackageBins {
                id: image.package.id.clone(),
                name: image.package.name.to_string(),
                version: image.package.version.to_string(),
                bins: image.bins.clone(),
            })
            .collect(),
        features,
        all_features: options.cargo.all_features,
        no_default_features: options.cargo.no_default_features,
        lock_flags: options.cargo.lock_flags(),
        profile: Profile {
            inherits: profile,
            auditable,
        },
        verbosity: report.verbosity(),
    })
}

/// Makes sure `target`'s standard library is there, and chooses its linker.
#[allow(clippy::too_many_arguments)]
fn plan_platform(
    target: &Target,
    probe: Probe,
    manifest: &Path,
    manifest_dir: &Path,
    workspace: &Workspace,
    options: &Options,
    env: &Env,
    report: &dyn Reporter,
) -> Result<PlatformPlan> {
    let libdir = probe.libdir.clone();
    let install = if options.cargo.network_allowed() {
        Install::Allowed
    } else {
        Install::Forbidden
    };
    toolchain::ensure_target(target, probe, manifest_dir, install, report)?;
    let host = Arch::host();
    let linker_env = if host == Some(target.arch) {
        Vec::new()
    } else {
        let context = linker::link_context(target, &libdir, workspace.root(), env, || {
            workspace::c_packages(&env.cargo, manifest, &target.triple, &options.cargo)
        })?;
        linker::cross_env(target, host, &context)?
    };
    for (var, value) in &linker_env {
        report.verbose("Linking", &|| {
            format!("{} with {var}={value}", target.triple)
        });
    }
    Ok(PlatformPlan {
        target: target.clone(),
        linker_env,
        // <sysroot>/lib/rustlib/<target>/lib
        sysroot: libdir.ancestors().nth(4).map(Path::to_path_buf),
        graphs: Graphs::new(),
    })
}

/// An image's SBOM files beside its output, claimed before compiling as the output is.
fn claim_sboms(
    image: &ImagePlan,
    targets: &[Target],
    format: SbomFormat,
) -> Result<Vec<SbomClaim>> {
    let Some(output) = &image.destination else {
        return Ok(Vec::new());
    };
    let mut claims = Vec::new();
    for target in targets {
        for bin in &image.bins {
            let path = sbom_beside(output.path(), target, bin, targets, &image.bins);
            claims.push(SbomClaim {
                target: target.clone(),
                bin: bin.clone(),
                file: PendingFile::create(&beside(&path, format.extension()))?,
            });
        }
    }
    Ok(claims)
}

/// What the work beside the plan gave, joined.
struct Groundwork {
    registries: Vec<Registry>,
    engine: Option<Answered>,
    toolchain: String,
    bases: Vec<(BaseFiles, Algorithm, Layer)>,
    graphs: std::collections::BTreeMap<Target, Graphs>,
}

/// Each target's standard library, as looked for.
type Probes = Vec<(Target, Result<Probe>)>;

/// Each target's crate graphs.
type GraphsByTarget = Vec<(Target, Graphs)>;

/// The work that runs beside `cargo metadata` and the planning, on the other core: started by
/// its methods as soon as what each needs is known, joined in [`Beside::join`] (the git facts
/// and the probes, which the plan itself needs, as they are asked for).
struct Beside<'scope> {
    /// The last run's build, started at once: after a `rustc` probe that its target is
    /// installed, which runs beside `cargo metadata` rather than before it.
    early: Option<ScopedJoinHandle<'scope, Early>>,
    /// The standard library of the targets the flags name (or the host's).
    probes: Option<ScopedJoinHandle<'scope, Probes>>,
    probed: Probes,
    /// Most runs make an image of the manifest's own package: git is asked about it at once.
    git: Option<ScopedJoinHandle<'scope, GitFacts>>,
    /// A wrong host, password or certificate fails in a second, not after the compile.
    registries: Option<ScopedJoinHandle<'scope, Result<Vec<Registry>>>>,
    engine: Option<ScopedJoinHandle<'scope, Result<Answered>>>,
    toolchain: Option<ScopedJoinHandle<'scope, Result<String>>>,
    bases: Vec<(
        BaseFiles,
        Algorithm,
        ScopedJoinHandle<'scope, Result<Layer>>,
    )>,
    graphs: Option<ScopedJoinHandle<'scope, Result<GraphsByTarget>>>,
}

impl<'scope> Beside<'scope> {
    /// Starts what needs nothing from cargo: the early build, the probes, git, the registries
    /// and the engine.
    fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        options: &'env Options,
        env: &'env Env,
        manifest: &'env Path,
        manifest_dir: &'env Path,
        flag_targets: Option<Vec<Target>>,
        report: &'env dyn Reporter,
    ) -> Beside<'scope> {
        let early = scope.spawn(move || {
            let early = start_early(options, env, manifest, manifest_dir, report);
            if early.started() {
                report.verbose("Building", &|| {
                    "early: the last run's build, while cargo reads the workspace".into()
                });
            }
            early
        });
        let likely_targets = flag_targets.or_else(|| Target::host_musl().ok().map(|t| vec![t]));
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
        Beside {
            early: Some(early),
            probes: Some(probes),
            probed: Vec::new(),
            git: Some(git),
            registries,
            engine,
            toolchain: None,
            bases: Vec::new(),
            graphs: None,
        }
    }

    /// Starts `rustc -vV` (kept in the layout's cache).
    fn rustc_version<'env>(
        &mut self,
        scope: &'scope Scope<'scope, 'env>,
        env: &'env Env,
        dir: &'env Path,
        layout: &Layout,
        report: &'env dyn Reporter,
    ) {
        let cache = Keyed::open(layout, "rustc", 8);
        self.toolchain =
            Some(scope.spawn(move || toolchain::rustc_version(env, dir, &cache, report)));
    }

    /// Starts each distinct base layer, from the layer cache: compressing one is most of the
    /// work of a run whose build is up to date, and it is the same run after run. It gets the
    /// smallest output: it is compressed once and shared by every image.
    fn base_layers<'env>(
        &mut self,
        scope: &'scope Scope<'scope, 'env>,
        images: &[ImagePlan],
        layout: &Layout,
        threads: usize,
        report: &'env dyn Reporter,
    ) {
        let cache = LayerCache::open(layout);
        let wanted = images
            .iter()
            .map(|i| (&i.settings.base, i.settings.compression.algorithm));
        for (base, algorithm) in unique(wanted) {
            let (files, cache) = (base.clone(), cache.clone());
            let making = scope.spawn(move || {
                let builder = rootfs::base_files(&files)?;
                let comment = rootfs::base_comment(&files);
                let compression = Compression::smallest(algorithm);
                let (layer, _) =
                    cache.layer(&builder, comment, compression, threads, &mut |_| {}, report)?;
                Ok(layer)
            });
            self.bases.push((base.clone(), algorithm, making));
        }
    }

    /// Starts resolving the crate graphs of every target.
    #[allow(clippy::too_many_arguments)]
    fn crate_graphs<'env>(
        &mut self,
        scope: &'scope Scope<'scope, 'env>,
        request: &BuildRequest,
        targets: &[Target],
        workspace_root: &Path,
        env: &'env Env,
        layout: &Layout,
        report: &'env dyn Reporter,
    ) {
        let cache = Keyed::open(layout, "graphs", graph::KEEP);
        let (request, targets) = (request.clone(), targets.to_vec());
        let root = workspace_root.to_path_buf();
        self.graphs = Some(scope.spawn(move || {
            targets
                .into_iter()
                .map(|target| {
                    let (graphs, hit) =
                        graph::resolve(&request, &target, &root, env, &cache, report)?;
                    let how = match hit {
                        Hit::Cached => "reused",
                        Hit::Miss => "resolved",
                    };
                    report.verbose("Cache", &|| {
                        format!("{how} the crate graph for {}", target.triple)
                    });
                    Ok((target, graphs))
                })
                .collect()
        }));
    }

    /// What git says of the manifest's directory.
    fn git(&mut self) -> GitFacts {
        self.git.take().map(join).unwrap_or_default()
    }

    /// `target`'s standard library: probed beside `cargo metadata` when the flags named it,
    /// else now.
    fn probe(&mut self, target: &Target, dir: &Path, env: &Env) -> Result<Probe> {
        if let Some(probing) = self.probes.take() {
            self.probed = join(probing);
        }
        match self.probed.iter().position(|(t, _)| t == target) {
            Some(i) => self.probed.remove(i).1,
            None => toolchain::probe(target, dir, env),
        }
    }

    /// Joins the rest: the first error wins, as it would have one after another.
    fn join(&mut self, report: &dyn Reporter) -> Result<Groundwork> {
        let registries = self
            .registries
            .take()
            .map(join)
            .transpose()?
            .unwrap_or_default();
        for registry in &registries {
            report.verbose("Registry", &|| registry.describe());
        }
        let engine = self.engine.take().map(join).transpose()?;
        let toolchain = match self.toolchain.take() {
            Some(handle) => join(handle)?,
            None => String::new(),
        };
        let bases = std::mem::take(&mut self.bases)
            .into_iter()
            .map(|(files, algorithm, making)| Ok((files, algorithm, join(making)?)))
            .collect::<Result<_>>()?;
        let graphs = match self.graphs.take() {
            Some(handle) => join(handle)?.into_iter().collect(),
            None => Default::default(),
        };
        Ok(Groundwork {
            registries,
            engine,
            toolchain,
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
) -> Early {
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
    );
    Early::start(
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
