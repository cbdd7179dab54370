//! `cargo scratchimg` end to end: select, configure, build, check, assemble, write.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cargo_metadata::Package;
use serde::Serialize;

use crate::build::early::{self, Early};
use crate::build::linker::{self, LinkContext};
use crate::build::toolchain::{self, Install};
use crate::build::{
    self, BuildExtras, BuildPlan, BuildRoots, BuiltBinary, CargoOptions, PathRemap, Workspace, elf,
};
use crate::cache::{GraphCache, Hit, LayerCache, VersionCache};
use crate::config::{self, ImageFlags, Settings};
use crate::git::GitFacts;
use crate::image::{
    Artifact, EntryKind, Image, ImageBuilder, ImageRef, Index, Layer, LayerBuilder, Owner,
    Repository, sha256, split_tag, validate,
};
use crate::provenance::{self, Provenance};
use crate::registry::{ClientOptions, MountSources, Registry};
use crate::rootfs::{self, BaseFiles};
use crate::sbom::{self, CrateGraph, GraphQuery, Sbom, SbomFormat, Subject, auditable};
use crate::shell::{Shell, Verbosity};
use crate::sink::{
    ArchiveSink, DaemonSink, Engine, Format, OciDirSink, PendingFile, RegistrySink, Sink,
};
use crate::source_date::SourceDate;
use crate::target::{Target, parse_platforms};

/// Which engine `--load` loads into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Docker when its daemon answers, else podman.
    Auto,
    Engine(Engine),
}

/// Everything one run needs, as plain values; `main` fills it from the command line.
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
    /// The cargo to run: `$CARGO` when cargo started us.
    pub cargo_program: PathBuf,
    /// The value of `SOURCE_DATE_EPOCH`, read once by the caller.
    pub source_date_epoch: Option<String>,
    /// What relative paths in flags are relative to.
    pub cwd: PathBuf,
    /// `--push` values as given: `REGISTRY/REPO[:TAG]`, or empty for `$SCRATCHIMG_REPO/<name>`.
    /// With any, the image is pushed, and written to a file only when `output` is given.
    pub push: Vec<String>,
    /// `SCRATCHIMG_REPO`: the registry and namespace pushes go to when they do not name one.
    pub default_repo: Option<String>,
    /// How to reach registries and where to find credentials.
    pub registry: ClientOptions,
    /// The binaries carry their dependency lists (`.dep-v0`); `--no-auditable` turns it off.
    /// It needs `rustc_wrapper`, which links each binary's list into it.
    pub auditable: bool,
    /// `--sbom`: the document put into each image and beside the output; `None` for none.
    pub sbom: Option<SbomFormat>,
    /// `--verify`: build again in a fresh target directory and fail if the digests differ.
    pub verify: bool,
    /// This executable, which cargo runs as its rustc wrapper to take local paths out of the
    /// binaries and link in their dependency lists; `None` does neither.
    pub rustc_wrapper: Option<PathBuf>,
    /// `$CARGO_HOME` and `$RUSTUP_HOME` as cargo and rustup find them, read by the caller.
    pub cargo_home: Option<PathBuf>,
    pub rustup_home: Option<PathBuf>,
}

/// What a run produced for one image; `--message-format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The file or directory written; `None` when the image was only pushed.
    pub path: Option<PathBuf>,
    pub format: &'static str,
    /// The manifest digest.
    pub digest: String,
    pub config_digest: String,
    pub tags: Vec<String>,
    pub platform: String,
    pub layers: Vec<LayerSummary>,
    /// Compressed size of the configs and layers, each blob counted once.
    pub size: u64,
    /// One entry per platform; `platform`, `config_digest` and `layers` above describe the
    /// one for this machine (or the first).
    pub images: Vec<PlatformImage>,
    pub loaded_into: Option<String>,
    /// `REF@sha256:…` of each tag pushed.
    pub pushed: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformImage {
    pub platform: String,
    pub digest: String,
    pub config_digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub comment: String,
}

/// An output path claimed before the build, written after it.
enum Output {
    Archive(ArchiveSink),
    OciDir(OciDirSink),
}

impl Output {
    fn claim(path: &Path, format: Format, mtime: u64) -> Result<Output> {
        Ok(match format {
            Format::Archive => Output::Archive(ArchiveSink::create(path, mtime)?),
            Format::OciDir => Output::OciDir(OciDirSink::create(path)?),
        })
    }

    fn sink(&mut self) -> &mut dyn Sink {
        match self {
            Output::Archive(sink) => sink,
            Output::OciDir(sink) => sink,
        }
    }
}

/// One image to make, with everything checked before cargo builds.
struct Job {
    package: Package,
    bins: Vec<String>,
    settings: Settings,
    tags: Vec<ImageRef>,
    /// What git says of the package's directory: its timestamp, revision and origin.
    git: GitFacts,
    date: SourceDate,
    /// The file or directory to write; `None` when the image is only pushed.
    path: Option<PathBuf>,
    output: Option<Output>,
    push_to: Vec<ImageRef>,
    files: Option<LayerBuilder<'static>>,
}

pub fn run(options: &Options, shell: &mut Shell) -> Result<Vec<Outcome>> {
    let started = Instant::now();
    let cargo = &options.cargo_program;
    let manifest = build::find_manifest(options.cargo.manifest_path.as_deref())?;
    let manifest_dir = match manifest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let flag_targets = match (&options.platforms, &options.target) {
        (Some(platforms), _) => Some(
            parse_platforms(platforms)?
                .into_iter()
                .map(Target::musl)
                .collect(),
        ),
        (None, Some(triple)) => Some(vec![Target::parse(triple)?]),
        (None, None) => None,
    };
    let likely_targets = match &flag_targets {
        Some(targets) => targets.clone(),
        None => vec![Target::host_musl()?],
    };
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
    // What needs nothing from cargo runs beside `cargo metadata` and `cargo build`, on the
    // other core: the look for the targets' standard libraries, and what git says.
    std::thread::scope(|scope| {
        let probes = scope.spawn(|| {
            let probe = |t: &Target| (t.clone(), toolchain::probe(t, manifest_dir, cargo));
            likely_targets.iter().map(probe).collect::<Vec<_>>()
        });
        // Most runs make an image of the manifest's own package: ask git about it now.
        let manifest_git = scope.spawn(|| GitFacts::read(manifest_dir));

        // Reach the registries and check the credentials beside `cargo metadata`, before the
        // build: a wrong host, password or certificate fails in a second, not after the compile.
        let hosts = push_hosts(&options.push, options.default_repo.as_deref());
        let client = &options.registry;
        let connecting = (!hosts.is_empty()).then(|| {
            scope.spawn(move || {
                hosts
                    .iter()
                    .map(|host| Registry::connect(host, client))
                    .collect::<Result<Vec<_>>>()
            })
        });

        let mut early = start_early(options, &manifest, manifest_dir, shell.verbosity());
        if early.started() {
            shell.verbose(
                "Building",
                "early: the last run's build, while cargo reads the workspace",
            );
        }
        let workspace = Workspace::read(cargo, &manifest, &options.cargo)?;
        let versions = VersionCache::in_target_dir(workspace.target_directory());
        let toolchain = scope.spawn(move || provenance::toolchain(cargo, manifest_dir, &versions));
        let manifest_git = join(manifest_git);
        let mut jobs = Vec::new();
        for package in workspace.packages(&options.cargo)? {
            let git = manifest_git.for_dir(build::package_dir(&package));
            jobs.push(plan_job(&workspace, package, git, options, shell)?);
        }
        let targets = match flag_targets {
            Some(targets) => targets,
            None => settings_targets(&jobs)?,
        };
        // Each distinct base layer, from the layer cache: compressing one is most of the work
        // of a run whose build is up to date, and it is the same run after run.
        let layer_cache = LayerCache::in_target_dir(workspace.target_directory());
        let mut base_files: Vec<&BaseFiles> = Vec::new();
        for job in &jobs {
            if !base_files.contains(&&job.settings.base) {
                base_files.push(&job.settings.base);
            }
        }
        let making_bases: Vec<_> = base_files
            .into_iter()
            .map(|base| {
                let (base, cache) = (base.clone(), layer_cache.clone());
                scope.spawn(move || {
                    let (layer, _) =
                        cache.layer(&rootfs::base_files(&base)?, rootfs::base_comment(&base))?;
                    anyhow::Ok((base, layer))
                })
            })
            .collect();
        let engine = match options.load {
            None => None,
            Some(Load::Auto) => Some(Engine::detect()?),
            Some(Load::Engine(engine)) => Some(engine.check()?),
        };

        // One platform after another, in one target directory, so incremental builds stay warm.
        let install = if options.cargo.offline || options.cargo.frozen {
            Install::Forbidden
        } else {
            Install::Allowed
        };
        let registries = connecting.map(join).transpose()?;
        for registry in registries.iter().flatten() {
            for retry in registry.take_retries() {
                shell.warn(retry);
            }
            shell.verbose("Registry", registry.describe());
        }
        let mut probes = join(probes);
        let plan = build_plan(&jobs, &options.cargo)?;
        // The crate graphs are resolved beside the look at the platforms.
        let (platforms, sbom_outputs, graphs) = std::thread::scope(|beside| {
            let resolving = (options.auditable || options.sbom.is_some())
                .then(|| beside.spawn(|| resolve_graphs(options, &workspace, &plan, &targets)));
            let mut platforms = Vec::new();
            for target in &targets {
                let probe = match probes.iter().position(|(t, _)| t == target) {
                    Some(i) => probes.remove(i).1?,
                    None => toolchain::probe(target, manifest_dir, cargo)?,
                };
                let libdir = probe.libdir.clone();
                toolchain::ensure_target(target, probe, manifest_dir, install, shell)?;
                let env = cross_env(target, &libdir, &workspace, &manifest, options)?;
                for (var, value) in &env {
                    shell.verbose("Linking", format!("{} with {var}={value}", target.triple));
                }
                platforms.push(Platform {
                    target: target.clone(),
                    env,
                    // <sysroot>/lib/rustlib/<target>/lib
                    sysroot: libdir.ancestors().nth(4).map(Path::to_path_buf),
                });
            }
            let sbom_outputs = claim_sboms(&jobs, &platforms, &targets, options.sbom)?;
            let graphs = match resolving {
                Some(handle) => {
                    let resolved = join(handle)?;
                    for (target, (_, hit)) in targets.iter().zip(&resolved) {
                        let how = match hit {
                            Hit::Cached => "reused",
                            Hit::Miss => "resolved",
                        };
                        shell.verbose(
                            "Cache",
                            format!("{how} the crate graph for {}", target.triple),
                        );
                    }
                    resolved.into_iter().map(|(graphs, _)| graphs).collect()
                }
                None => vec![Vec::new(); targets.len()],
            };
            anyhow::Ok((platforms, sbom_outputs, graphs))
        })?;
        let toolchain = join(toolchain)?;

        let assembly = Assembly {
            options,
            workspace: &workspace,
            jobs: &jobs,
            plan: &plan,
            platforms: &platforms,
            graphs: &graphs,
            toolchain: &toolchain,
        };
        let compiled = assembly.compile(workspace.target_directory(), Some(&mut early), shell)?;
        // The base layers were made beside the build.
        let made_bases = making_bases
            .into_iter()
            .map(join)
            .collect::<Result<Vec<_>>>()?;
        let bases: Vec<Layer> = jobs
            .iter()
            .map(|job| {
                let (_, layer) = made_bases
                    .iter()
                    .find(|(base, _)| *base == job.settings.base)
                    .expect("a base layer for every job");
                layer.clone()
            })
            .collect();
        let made = assembly.assemble(&compiled, &bases, shell)?;
        if options.verify {
            verify(&assembly, &made, &bases, shell)?;
        }

        let mut outcomes = Vec::new();
        for ((job, made), sbom_outputs) in jobs.into_iter().zip(made).zip(sbom_outputs) {
            let Made { artifact, sboms } = made;
            let mut outcome = write(
                job.path,
                job.output,
                &job.tags,
                job.date.seconds,
                &artifact,
                engine,
                options.format,
                shell,
            )?;
            for (target, bin, pending) in sbom_outputs {
                let document = sboms
                    .iter()
                    .find(|(t, b, _)| *t == target && *b == bin)
                    .map(|(_, _, d)| d)
                    .expect("an SBOM for every platform and binary");
                shell.status("Writing", pending.path().display());
                pending.commit(document)?;
            }
            if let Some(registries) = &registries {
                let mounts = MountSources::load(
                    &workspace
                        .target_directory()
                        .join("scratchimg/cache/registry-mounts.json"),
                );
                let mut sink = RegistrySink::new(registries, mounts, shell);
                sink.write(&artifact, &job.push_to)?;
                outcome.pushed = sink.pushed;
            }
            summarize(&outcome, shell);
            outcomes.push(outcome);
        }
        let what = match outcomes.as_slice() {
            [one] => format!("image `{}`", one.tags.join("`, `")),
            many => format!("{} images", many.len()),
        };
        shell.status(
            "Finished",
            format!("{what} in {:.2}s", started.elapsed().as_secs_f64()),
        );
        Ok(outcomes)
    })
}

/// The `platforms` setting, which every package built together must agree on; else the host's.
fn settings_targets(jobs: &[Job]) -> Result<Vec<Target>> {
    let mut wanted = jobs.iter().filter_map(|j| j.settings.platforms.as_ref());
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

/// Starts the build the last run like this one planned ([`build::early`]), if it can build:
/// its target installed.
fn start_early(
    options: &Options,
    manifest: &Path,
    manifest_dir: &Path,
    verbosity: Verbosity,
) -> Early {
    // Runs with the same manifest and flags mostly plan the same build.
    let key = format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{}\n{:?}\n{verbosity:?}",
        std::fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_path_buf()),
        options.cargo,
        options.target,
        options.platforms,
        options.auditable,
        options.sbom,
    );
    let env_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let target_dir = early::likely_target_dir(
        manifest_dir,
        options.cargo.target_dir.as_deref(),
        env_dir.as_deref(),
    );
    Early::start(&key, target_dir.as_deref(), |triple| {
        // Never rustc's "can't find crate for `std`".
        Target::parse(triple).is_ok_and(|target| {
            toolchain::probe(&target, manifest_dir, &options.cargo_program)
                .is_ok_and(|probe| probe.installed)
        })
    })
}

/// Each platform's crate graphs (one per package of the plan), from the cache when nothing
/// they depend on changed.
fn resolve_graphs(
    options: &Options,
    workspace: &Workspace,
    plan: &BuildPlan<'_>,
    targets: &[Target],
) -> Result<Vec<(Vec<CrateGraph>, Hit)>> {
    let cache = GraphCache::in_target_dir(workspace.target_directory());
    targets
        .iter()
        .map(|target| {
            let query = GraphQuery {
                cargo: &options.cargo_program,
                plan,
                target,
                options: &options.cargo,
                workspace_root: workspace.root(),
            };
            cache.resolve(query, options.cargo_home.as_deref())
        })
        .collect()
}

/// Each job's SBOM files beside its output, claimed before compiling as the output is:
/// `(target, bin, file)`.
fn claim_sboms(
    jobs: &[Job],
    platforms: &[Platform],
    targets: &[Target],
    sbom: Option<SbomFormat>,
) -> Result<Vec<Vec<(Target, String, PendingFile)>>> {
    let mut claims = Vec::new();
    for job in jobs {
        let mut pending = Vec::new();
        if let (Some(format), Some(path)) = (sbom, &job.path) {
            for platform in platforms {
                for bin in &job.bins {
                    let file = sbom_beside(path, &platform.target, bin, targets, &job.bins);
                    let file = beside(&file, format.extension());
                    pending.push((
                        platform.target.clone(),
                        bin.clone(),
                        PendingFile::create(&file)?,
                    ));
                }
            }
        }
        claims.push(pending);
    }
    Ok(claims)
}

/// The linker a cross build needs, unless the user configured one.
fn cross_env(
    target: &Target,
    libdir: &Path,
    workspace: &Workspace,
    manifest: &Path,
    options: &Options,
) -> Result<Vec<(String, String)>> {
    let host = crate::target::Arch::host();
    if host == Some(target.arch) {
        return Ok(Vec::new());
    }
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from);
    let configured = std::env::var_os(linker::linker_env(target)).is_some()
        || linker::configured_in_files(target, workspace.root(), cargo_home.as_deref());
    let cross_gcc = linker::on_path(&format!("{}-linux-musl-gcc", target.arch.rust_arch()));
    let mut context = LinkContext {
        configured,
        cross_gcc,
        ..LinkContext::default()
    };
    if !context.configured && context.cross_gcc.is_none() {
        // <sysroot>/lib/rustlib/<target>/lib: rust-lld lives in <sysroot>/lib/rustlib/<host>/bin.
        let rustlib = libdir.parent().and_then(Path::parent);
        context.rust_lld = rustlib
            .and_then(|r| std::fs::read_dir(r).ok())
            .is_some_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().join("bin/rust-lld").is_file())
            });
        context.c_packages = build::c_packages(
            &options.cargo_program,
            manifest,
            &target.triple,
            &options.cargo,
        )?;
    }
    linker::cross_env(target, host, &context)
}

/// Reads and checks a package's settings, picks its binaries and tags, and claims its output.
fn plan_job(
    workspace: &Workspace,
    package: Package,
    git: GitFacts,
    options: &Options,
    shell: &mut Shell,
) -> Result<Job> {
    let manifests = config::read_tables(
        package.manifest_path.as_std_path(),
        &workspace.manifest_path(),
    )?;
    let settings = config::resolve(&manifests.tables, &options.image, &options.cwd)?;
    for warning in config::warnings(&manifests, &settings, &package.name) {
        shell.warn(warning);
    }
    let bins = build::select_bins(
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
    let push_to = push_refs(&options.push, options.default_repo.as_deref(), &tags)?;
    let date = SourceDate::resolve(options.source_date_epoch.as_deref(), git.last_commit_time)?;
    shell.verbose(
        "Timestamp",
        format!("{} (from {:?})", date.timestamp()?, date.origin),
    );
    // Claim the output before compiling: a bad path fails now, and the old output stays.
    // A push writes no file unless -o asks for one.
    let name = output_name(&image_name, &version, options.format);
    let path = match (&options.output, options.cargo.workspace) {
        (Some(dir), true) => Some(dir.join(name)),
        (Some(path), false) => Some(path.clone()),
        (None, _) if push_to.is_empty() => {
            Some(workspace.target_directory().join("scratchimg").join(name))
        }
        (None, _) => None,
    };
    let output = path
        .as_deref()
        .map(|path| Output::claim(path, options.format, date.seconds))
        .transpose()?;
    let files = rootfs::files_layer(&settings.files, &settings.base, &bins, date.seconds)?;
    Ok(Job {
        package,
        bins,
        settings,
        tags,
        git,
        date,
        path,
        output,
        push_to,
        files,
    })
}

/// One cargo invocation for every job: features and profile from flags, else from settings.
fn build_plan<'a>(jobs: &'a [Job], options: &CargoOptions) -> Result<BuildPlan<'a>> {
    let several = jobs.len() > 1;
    let features = if options.features.is_empty() {
        jobs.iter()
            .flat_map(|job| {
                let qualify = move |f: &String| {
                    if several {
                        format!("{}/{f}", job.package.name)
                    } else {
                        f.clone()
                    }
                };
                job.settings.features.iter().flatten().map(qualify)
            })
            .collect()
    } else {
        options.features.clone()
    };
    let profile = match &options.profile {
        Some(profile) => profile.clone(),
        None => {
            let profiles: std::collections::BTreeSet<&str> = jobs
                .iter()
                .filter_map(|j| j.settings.profile.as_deref())
                .collect();
            match profiles.into_iter().collect::<Vec<_>>().as_slice() {
                [] => "release".to_string(),
                [one] => one.to_string(),
                many => bail!(
                    "the packages ask for different profiles ({}), but one cargo build has one\nhelp: pass --profile",
                    many.join(", ")
                ),
            }
        }
    };
    let packages = jobs
        .iter()
        .map(|job| (&job.package, job.bins.clone()))
        .collect();
    Ok(BuildPlan {
        packages,
        features,
        profile,
        env: Vec::new(),
    })
}

/// One platform to build for, as settled before compiling.
struct Platform {
    target: Target,
    /// The cross linker's environment, if any.
    env: Vec<(String, String)>,
    /// The toolchain's sysroot, whose paths the remapping takes out of the binaries.
    sysroot: Option<PathBuf>,
}

/// Everything settled before compiling: [`Assembly::compile`] builds every platform and
/// [`Assembly::assemble`] makes every job's image or index from that; `--verify` does both
/// twice.
struct Assembly<'a> {
    options: &'a Options,
    workspace: &'a Workspace,
    jobs: &'a [Job],
    plan: &'a BuildPlan<'a>,
    platforms: &'a [Platform],
    /// Each platform's crate graphs, one per package of the plan; empty without SBOM or list.
    graphs: &'a [Vec<CrateGraph>],
    toolchain: &'a str,
}

/// One binary's SBOM document: `(bin, document)`.
type SbomDocument = (String, Vec<u8>);

/// What one platform's `cargo build` gave: its binaries, and the crate graph of each package.
struct Compiled<'a> {
    target: Target,
    binaries: Vec<BuiltBinary>,
    graphs: &'a [CrateGraph],
}

/// A job's image or index, and its SBOM documents: `(target, bin, document)`.
struct Made {
    artifact: Artifact,
    sboms: Vec<(Target, String, Vec<u8>)>,
}

impl Assembly<'_> {
    /// Compiles every platform into `target_dir`: one `cargo build` each, one after another, so
    /// incremental builds stay warm. The first is `early`'s build when that is the same one.
    fn compile(
        &self,
        target_dir: &Path,
        mut early: Option<&mut Early>,
        shell: &mut Shell,
    ) -> Result<Vec<Compiled<'_>>> {
        let options = self.options;
        let mut built = Vec::new();
        for (platform, graphs) in self.platforms.iter().zip(self.graphs) {
            let target = &platform.target;
            let mut plan = self.plan.clone();
            plan.env = platform.env.clone();
            let extras = self.extras(&plan, graphs, platform, target_dir)?;
            let mut cargo_options = options.cargo.clone();
            cargo_options.target_dir = Some(target_dir.to_path_buf());
            if self.platforms.len() > 1 {
                shell.status("Building", target.arch.platform());
            }
            let command = build::command(
                &options.cargo_program,
                &plan,
                target,
                &cargo_options,
                &extras,
                shell.verbosity(),
            );
            let running = match early.take() {
                Some(early) => {
                    let (running, adopted) =
                        early.run(command, extras.inputs.clone(), target_dir)?;
                    if adopted {
                        shell.verbose(
                            "Building",
                            "went on with the build started early: the plan is the last run's",
                        );
                    }
                    running
                }
                None => build::spawn(command)?,
            };
            let mut binaries = build::collect(running, &plan, target)?;
            // cargo cannot see the link arguments the wrapper adds, so a binary it linked
            // without them (by an older cargo-scratchimg, say) stays "fresh". Such binaries are
            // found by their missing or different list, cleaned, and built once more.
            let stale = stale_lists(&plan, graphs, &binaries, &extras)?;
            if !stale.is_empty() {
                let names: Vec<&str> = stale.iter().map(|p| p.name.as_str()).collect();
                shell.status(
                    "Relinking",
                    format!("{}: the dependency list is out of date", names.join(", ")),
                );
                build::clean(
                    &options.cargo_program,
                    &plan,
                    &stale,
                    target,
                    &cargo_options,
                    options.auditable,
                )?;
                let command = build::command(
                    &options.cargo_program,
                    &plan,
                    target,
                    &cargo_options,
                    &extras,
                    shell.verbosity(),
                );
                binaries = build::collect(build::spawn(command)?, &plan, target)?;
                if !stale_lists(&plan, graphs, &binaries, &extras)?.is_empty() {
                    bail!(
                        "the binaries of {} do not carry their dependency list after relinking\nhelp: pass --no-auditable, and report this",
                        names.join(", ")
                    );
                }
            }
            for binary in &binaries {
                elf::check_static(&binary.path, &binary.bytes, target)?;
            }
            built.push(Compiled {
                target: target.clone(),
                binaries,
                graphs,
            });
        }
        Ok(built)
    }

    /// Each job's image, or index of one image per platform, on its base layer.
    fn assemble(
        &self,
        built: &[Compiled<'_>],
        bases: &[Layer],
        shell: &mut Shell,
    ) -> Result<Vec<Made>> {
        let cache = LayerCache::in_target_dir(self.workspace.target_directory());
        let mut made = Vec::new();
        for (i, (job, base)) in self.jobs.iter().zip(bases).enumerate() {
            shell.status("Packing", base.comment());
            let mut images = Vec::new();
            let mut sboms = Vec::new();
            for Compiled {
                target,
                binaries,
                graphs,
            } in built
            {
                let mine: Vec<BuiltBinary> = binaries
                    .iter()
                    .filter(|b| {
                        b.package == job.package.name.as_str() && job.bins.contains(&b.name)
                    })
                    .cloned()
                    .collect();
                let (image, documents) = self.pack(
                    job,
                    base.clone(),
                    &mine,
                    graphs.get(i),
                    target,
                    &cache,
                    shell,
                )?;
                sboms.extend(
                    documents
                        .into_iter()
                        .map(|(bin, document)| (target.clone(), bin, document)),
                );
                images.push(image);
            }
            let artifact = match images.len() {
                1 => Artifact::Image(images.pop().expect("one image")),
                _ => Artifact::Index(Index::new(images)?),
            };
            made.push(Made { artifact, sboms });
        }
        Ok(made)
    }

    /// The rustc wrapper with its path remapping, and each binary's dependency list to link.
    fn extras(
        &self,
        plan: &BuildPlan<'_>,
        graphs: &[CrateGraph],
        platform: &Platform,
        target_dir: &Path,
    ) -> Result<BuildExtras> {
        let options = self.options;
        let Some(program) = &options.rustc_wrapper else {
            return Ok(BuildExtras::default());
        };
        let remap = PathRemap::new(&BuildRoots {
            workspace: self.workspace.root().to_path_buf(),
            target_dir: target_dir.to_path_buf(),
            cargo_home: options.cargo_home.clone(),
            rustup_home: options.rustup_home.clone(),
            sysroot: platform.sysroot.clone(),
        });
        let mut bin_flags = Vec::new();
        let mut inputs = Vec::new();
        if options.auditable {
            // Every binary of a package gets the package's list: they share its dependencies.
            for ((package, bins), graph) in plan.packages.iter().zip(graphs) {
                let object = dependency_object(graph, &platform.target, target_dir)?;
                inputs.push(object.clone());
                for bin in bins {
                    bin_flags.push((
                        package.name.to_string(),
                        bin.clone(),
                        auditable::link_args(&object),
                    ));
                }
            }
        }
        Ok(BuildExtras {
            wrapper: Some((program.clone(), remap)),
            bin_flags,
            inputs,
            auditable: options.auditable,
        })
    }

    /// The image of one job for one platform: base, files and app layers, config and manifest;
    /// and the SBOM document of each binary, which the app layer holds too.
    #[allow(clippy::too_many_arguments)]
    fn pack(
        &self,
        job: &Job,
        base: Layer,
        binaries: &[BuiltBinary],
        graph: Option<&CrateGraph>,
        target: &Target,
        cache: &LayerCache,
        shell: &mut Shell,
    ) -> Result<(Image, Vec<SbomDocument>)> {
        let options = self.options;
        let created = job.date.timestamp()?;
        let mut builder = ImageBuilder::new(target.arch, created).layer(base);
        if let Some(files) = &job.files {
            let count = files
                .entries()
                .filter(|(_, e)| matches!(e.kind, EntryKind::File(_)))
                .count();
            let (layer, _) = cache.layer(files, format!("files: {count} from `files` settings"))?;
            shell.status("Packing", layer.comment());
            builder = builder.layer(layer);
        }
        let mut app_files = rootfs::app_files(binaries, job.date.seconds)?;
        let mut comment = rootfs::app_comment(binaries);
        let mut documents = Vec::new();
        if let (Some(format), Some(graph)) = (options.sbom, graph) {
            for binary in binaries {
                let document = Sbom {
                    subject: Subject {
                        image: job.tags[0].familiar(),
                        path: rootfs::app_path(&binary.name),
                        sha256: sha256(&binary.bytes).digest().to_string(),
                    },
                    crates: graph.clone(),
                    base: rootfs::base_components(&job.settings.base),
                    created,
                }
                .render(format)?;
                let file = sbom::image_path(&binary.name, format);
                app_files.file(&file, document.clone(), 0o644, Owner::ROOT)?;
                comment.push_str(&format!(" + /{file}"));
                documents.push((binary.name.clone(), document));
            }
        }
        let (app, hit) = cache.layer(&app_files, comment)?;
        shell.status("Packing", app.comment());
        let reuse = if hit == Hit::Cached {
            "reused"
        } else {
            "stored"
        };
        shell.verbose("Cache", format!("{reuse} layer {}", app.blob().digest()));

        let derived = config::standard_annotations(
            &job.package,
            job.git.revision.as_deref(),
            &created.to_string(),
        );
        // Ours under dev.cargo-scratchimg.*; for org.opencontainers.image.* keys the values
        // derived from Cargo.toml win (source falls back to the git remote), the user's over all.
        let provenance = Provenance {
            source: provenance::source(
                job.package.repository.as_deref(),
                job.git.origin.as_deref(),
            ),
            toolchain: self.toolchain.to_string(),
            features: graph.map(|g| g.features.clone()).unwrap_or_default(),
            profile: self.plan.profile.clone(),
            target: target.triple.clone(),
            auditable: options.auditable && options.rustc_wrapper.is_some(),
        };
        let mut annotations = derived.clone();
        for (key, value) in provenance.annotations() {
            annotations.entry(key).or_insert(value);
        }
        let image = builder
            .layer(app)
            .run_config(job.settings.run_config(&job.bins, &derived))
            .annotations(job.settings.manifest_annotations(&annotations))
            .build()?;
        if cfg!(debug_assertions) {
            validate(&image).context("the image is inconsistent (a bug in cargo-scratchimg)")?;
        }
        Ok((image, documents))
    }
}

/// `--verify`: compiles everything again in a fresh target directory and insists on the same
/// images and indexes, so what one machine builds, another can check.
fn verify(
    assembly: &Assembly<'_>,
    first: &[Made],
    bases: &[Layer],
    shell: &mut Shell,
) -> Result<()> {
    let parent = assembly.workspace.target_directory().join("scratchimg");
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("could not create {}", parent.display()))?;
    let fresh = tempfile::Builder::new()
        .prefix("verify-")
        .tempdir_in(&parent)
        .with_context(|| format!("could not create a directory in {}", parent.display()))?;
    shell.status(
        "Verifying",
        format!("by building again in {}", fresh.path().display()),
    );
    let compiled = assembly.compile(fresh.path(), None, shell)?;
    let second = assembly.assemble(&compiled, bases, shell)?;
    for (a, b) in first.iter().zip(&second) {
        let (a, b) = (&a.artifact, &b.artifact);
        if a.digest() == b.digest() {
            shell.status("Verified", format!("both builds give {}", a.digest()));
            continue;
        }
        let differing: Vec<&str> = a
            .images()
            .iter()
            .zip(b.images())
            .flat_map(|(a, b)| a.layers().iter().zip(b.layers()))
            .filter(|(a, b)| a.diff_id() != b.diff_id())
            .map(|(a, _)| a.comment())
            .collect();
        bail!(
            "the image is not reproducible: two builds gave {} and {}\n\
             layers that differ: {}\n\
             help: look for build scripts or macros that embed the time, random values or absolute \
             paths; `diffoscope` on the two binaries shows where they differ",
            a.digest(),
            b.digest(),
            if differing.is_empty() {
                "none (the config or manifest differs)".to_string()
            } else {
                differing.join("; ")
            }
        )
    }
    Ok(())
}

/// Where a binary's SBOM goes beside the output, before the format's extension: the output
/// itself for one platform and binary; else with `.<os>-<arch>` for each platform of an index
/// (one document per platform image, as each lists what that platform compiled) and `.<bin>`
/// for each of several binaries.
fn sbom_beside(
    output: &Path,
    target: &Target,
    bin: &str,
    targets: &[Target],
    bins: &[String],
) -> PathBuf {
    let mut path = output.to_path_buf();
    if targets.len() > 1 {
        path = beside(&path, &format!("linux-{}", target.arch.oci_arch()));
    }
    if bins.len() > 1 {
        path = beside(&path, bin);
    }
    path
}

/// The packages of `plan` with a binary whose `.dep-v0` section is not the list `extras` links.
fn stale_lists<'a>(
    plan: &BuildPlan<'a>,
    graphs: &[CrateGraph],
    binaries: &[BuiltBinary],
    extras: &BuildExtras,
) -> Result<Vec<&'a cargo_metadata::Package>> {
    let mut stale = Vec::new();
    if extras.bin_flags.is_empty() {
        return Ok(stale);
    }
    for ((package, _), graph) in plan.packages.iter().zip(graphs) {
        let expected = auditable::compressed(graph)?;
        for binary in binaries
            .iter()
            .filter(|b| b.package == package.name.as_str())
        {
            if auditable::section(&binary.bytes).as_deref() != Some(expected.as_slice()) {
                stale.push(*package);
                break;
            }
        }
    }
    Ok(stale)
}

/// `<output>.<extension>`, e.g. `hello-0.1.0.tar.spdx.json`.
fn beside(output: &Path, extension: &str) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

/// Writes the object file with the dependency list under the target directory, named by its
/// content, so each binary and platform links its own.
fn dependency_object(crates: &CrateGraph, target: &Target, target_dir: &Path) -> Result<PathBuf> {
    let object = auditable::object_file(target, &auditable::compressed(crates)?)?;
    let dir = target_dir.join("scratchimg").join("auditable");
    let path = dir.join(format!(
        "{}-{}.o",
        crates.root().name,
        &sha256(&object).digest()[..16]
    ));
    if std::fs::read(&path).is_ok_and(|existing| existing == object) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    PendingFile::create(&path)?.commit(&object)?;
    Ok(path)
}

/// Writes a job's image or index to its output, and loads it when asked.
#[allow(clippy::too_many_arguments)]
fn write(
    path: Option<PathBuf>,
    output: Option<Output>,
    tags: &[ImageRef],
    mtime: u64,
    artifact: &Artifact,
    engine: Option<Engine>,
    format: Format,
    shell: &mut Shell,
) -> Result<Outcome> {
    if let (Some(path), Some(mut output)) = (&path, output) {
        shell.status("Writing", path.display());
        output.sink().write(artifact, tags)?;
    }
    let loaded_into = match engine {
        Some(engine) => {
            let mut daemon = DaemonSink::new(engine, mtime);
            daemon
                .write(artifact, tags)
                .with_context(|| format!("could not load the image into {engine}"))?;
            for line in daemon.report.lines() {
                let name = line.trim_start_matches("Loaded image: ");
                shell.status("Loaded", format!("{name} ({engine})"));
            }
            Some(engine.to_string())
        }
        None => None,
    };
    Ok(outcome(artifact, path, format, tags, loaded_into))
}

fn outcome(
    artifact: &Artifact,
    path: Option<PathBuf>,
    format: Format,
    tags: &[ImageRef],
    loaded_into: Option<String>,
) -> Outcome {
    let images = artifact.images();
    let primary = artifact
        .image_for(crate::target::Arch::host())
        .unwrap_or(&images[0]);
    let mut blobs: Vec<_> = images
        .iter()
        .flat_map(|i| i.blobs().map(|b| (b.digest().to_string(), b.size())))
        .collect();
    blobs.sort();
    blobs.dedup();
    Outcome {
        path,
        format: match format {
            Format::Archive => "archive",
            Format::OciDir => "oci-dir",
        },
        digest: artifact.digest().to_string(),
        config_digest: primary.config().digest().to_string(),
        tags: tags.iter().map(ImageRef::familiar).collect(),
        platform: primary.arch().platform(),
        layers: primary
            .layers()
            .iter()
            .map(|l| LayerSummary {
                digest: l.blob().digest().to_string(),
                diff_id: l.diff_id().to_string(),
                size: l.blob().size(),
                comment: l.comment().to_string(),
            })
            .collect(),
        size: blobs.iter().map(|(_, size)| size).sum(),
        images: images
            .iter()
            .map(|i| PlatformImage {
                platform: i.arch().platform(),
                digest: i.digest().to_string(),
                config_digest: i.config().digest().to_string(),
                size: i.compressed_size(),
            })
            .collect(),
        loaded_into,
        pushed: Vec::new(),
    }
}

/// The result of a scoped thread, with its panic passed on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// `-t` values; else `name` with each of `tags` (or the version); else `<bin>:<version>`.
/// All checked before anything is built.
fn image_tags(
    given: &[String],
    settings: &Settings,
    default_name: &str,
    version: &str,
) -> Result<Vec<ImageRef>> {
    if !given.is_empty() {
        return given.iter().map(|tag| tag.parse()).collect();
    }
    // Repository names are lowercase; binary names need not be.
    let name = settings
        .name
        .clone()
        .unwrap_or_else(|| default_name.to_lowercase());
    let tags = if settings.tags.is_empty() {
        vec![ImageRef::tag_for_version(version)]
    } else {
        settings.tags.clone()
    };
    tags.iter()
        .map(|tag| {
            format!("{name}:{tag}").parse().with_context(|| {
                format!("`{name}` does not make a valid image name\nhelp: name the image with -t NAME[:TAG] or `name` in [package.metadata.scratchimg]")
            })
        })
        .collect()
}

/// The references `--push` names, completed with the image's tags where they have none, and
/// prefixed with `SCRATCHIMG_REPO` where they name no registry.
fn push_refs(
    given: &[String],
    default_repo: Option<&str>,
    tags: &[ImageRef],
) -> Result<Vec<ImageRef>> {
    let mut refs: Vec<ImageRef> = Vec::new();
    for value in given {
        let context = || format!("invalid --push `{value}`");
        if value.is_empty() {
            let prefix = default_repo.context(
                "--push without a reference needs SCRATCHIMG_REPO\n\
                 help: set SCRATCHIMG_REPO to a registry and namespace, e.g. `ghcr.io/acme`, or give --push REGISTRY/REPO[:TAG]",
            )?;
            for tag in tags {
                let name = tag
                    .repository()
                    .rsplit('/')
                    .next()
                    .unwrap_or(tag.repository());
                let repo = Repository::under_prefix(prefix, name)
                    .with_context(|| format!("invalid SCRATCHIMG_REPO `{prefix}`"))?;
                refs.push(repo.tagged(tag.tag()));
            }
            continue;
        }
        let (name, tag) = split_tag(value).with_context(context)?;
        let name = match default_repo {
            Some(prefix) if !Repository::names_registry(name) => {
                format!("{}/{name}", prefix.trim_end_matches('/'))
            }
            _ => name.to_string(),
        };
        match tag {
            Some(tag) => refs.push(format!("{name}:{tag}").parse().with_context(context)?),
            None => {
                let repo: Repository = name.parse().with_context(context)?;
                refs.extend(tags.iter().map(|t| repo.tagged(t.tag())));
            }
        }
    }
    let mut unique = Vec::new();
    for r in refs {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    Ok(unique)
}

/// The registries `--push` names, known before the image's tags are: the tags change
/// repositories, never registries. Empty when a reference is invalid; `push_refs` says why.
fn push_hosts(given: &[String], default_repo: Option<&str>) -> Vec<String> {
    let any_tag: ImageRef = "any:latest".parse().expect("a valid reference");
    let refs = push_refs(given, default_repo, &[any_tag]).unwrap_or_default();
    let mut hosts: Vec<String> = Vec::new();
    for host in refs.iter().map(ImageRef::registry) {
        if !hosts.iter().any(|h| h == host) {
            hosts.push(host.to_string());
        }
    }
    hosts
}

fn output_name(name: &str, version: &str, format: Format) -> String {
    match format {
        Format::Archive => format!("{name}-{version}.tar"),
        Format::OciDir => format!("{name}-{version}"),
    }
}

fn summarize(outcome: &Outcome, shell: &mut Shell) {
    let platforms: Vec<&str> = outcome.images.iter().map(|i| i.platform.as_str()).collect();
    let kind = if platforms.len() > 1 { "index of " } else { "" };
    shell.status(
        "Image",
        format!(
            "{} ({kind}{})",
            outcome.tags.join(", "),
            platforms.join(", ")
        ),
    );
    shell.status("Digest", &outcome.digest);
    if platforms.len() > 1 {
        for image in &outcome.images {
            shell.status(
                "Platform",
                format!(
                    "{:<15} {}  {}",
                    image.platform,
                    image.digest,
                    human_size(image.size)
                ),
            );
        }
        if outcome.format == "archive" {
            shell.status(
                "Note",
                format!(
                    "docker load gets {} from this tar (one platform per name)",
                    outcome.platform
                ),
            );
        }
        shell.status("Layers", format!("of {}:", outcome.platform));
    }
    for layer in &outcome.layers {
        shell.status(
            "Layer",
            format!("{:>10}  {}", human_size(layer.size), layer.comment),
        );
    }
    let what = if platforms.len() > 1 {
        "compressed, all platforms, shared blobs once"
    } else {
        "compressed, config included"
    };
    shell.status("Total", format!("{:>10}  {what}", human_size(outcome.size)));
}

pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(name: Option<&str>, tags: &[&str]) -> Settings {
        let mut s = config::resolve(&[], &ImageFlags::default(), Path::new("/")).unwrap();
        s.name = name.map(str::to_string);
        s.tags = tags.iter().map(|t| t.to_string()).collect();
        s
    }

    #[test]
    fn tags_come_from_flags_then_settings_then_the_binary() {
        let familiar =
            |tags: Vec<ImageRef>| tags.iter().map(ImageRef::familiar).collect::<Vec<_>>();
        let none = settings(None, &[]);
        assert_eq!(
            familiar(image_tags(&[], &none, "hello", "0.1.0+build.7").unwrap()),
            ["hello:0.1.0_build.7"]
        );
        assert_eq!(
            familiar(image_tags(&[], &none, "My_Tool", "1.0.0").unwrap()),
            ["my_tool:1.0.0"]
        );
        let named = settings(Some("ghcr.io/acme/web"), &["latest", "v1"]);
        assert_eq!(
            familiar(image_tags(&[], &named, "web", "1.0.0").unwrap()),
            ["ghcr.io/acme/web:latest", "ghcr.io/acme/web:v1"]
        );
        let name_only = settings(Some("acme/web"), &[]);
        assert_eq!(
            familiar(image_tags(&[], &name_only, "web", "1.0.0").unwrap()),
            ["acme/web:1.0.0"]
        );
        assert_eq!(
            familiar(image_tags(&["x:1".into()], &named, "web", "1.0.0").unwrap()),
            ["x:1"]
        );
        assert!(image_tags(&["ok:1".into(), "a:b:c".into()], &none, "hello", "0.1.0").is_err());
    }

    #[test]
    fn push_references_take_tags_and_the_default_repo() {
        let none = settings(None, &[]);
        let tags = image_tags(
            &["hello:0.1.0".into(), "acme/hello:latest".into()],
            &none,
            "x",
            "1",
        )
        .unwrap();
        let refs = |given: &[&str], repo: Option<&str>| {
            let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
            push_refs(&given, repo, &tags)
                .map(|r| r.iter().map(ImageRef::familiar).collect::<Vec<_>>())
        };
        assert_eq!(
            refs(&["localhost:5000/hello"], None).unwrap(),
            ["localhost:5000/hello:0.1.0", "localhost:5000/hello:latest"]
        );
        assert_eq!(
            refs(&["ghcr.io/acme/hello:v1", "ghcr.io/acme/hello:v1"], None).unwrap(),
            ["ghcr.io/acme/hello:v1"]
        );
        assert_eq!(
            refs(&[""], Some("ghcr.io/acme/")).unwrap(),
            ["ghcr.io/acme/hello:0.1.0", "ghcr.io/acme/hello:latest"]
        );
        assert_eq!(
            refs(&["svc:v2", "quay.io/o/svc"], Some("ghcr.io/acme")).unwrap(),
            [
                "ghcr.io/acme/svc:v2",
                "quay.io/o/svc:0.1.0",
                "quay.io/o/svc:latest"
            ]
        );
        assert_eq!(refs(&["acme/hello:1"], None).unwrap(), ["acme/hello:1"]);
        let error = |given: &[&str], repo| format!("{:#}", refs(given, repo).unwrap_err());
        assert!(error(&[""], None).contains("needs SCRATCHIMG_REPO"));
        assert!(
            error(&["localhost:5000/Hello"], None)
                .starts_with("invalid --push `localhost:5000/Hello`")
        );
        assert!(error(&["reg.io/a@sha256:00"], None).contains("has a digest"));
        assert!(error(&[""], Some("ghcr.io/Acme")).starts_with("invalid SCRATCHIMG_REPO"));
        let hosts = |given: &[&str], repo| {
            let given: Vec<String> = given.iter().map(|s| s.to_string()).collect();
            push_hosts(&given, repo)
        };
        assert_eq!(
            hosts(&["a.io/x", "b.io/y:1", "a.io/z", "w"], Some("b.io/team")),
            ["a.io", "b.io"]
        );
        assert_eq!(hosts(&["", "acme/w"], None), Vec::<String>::new());
        assert_eq!(hosts(&["acme/w"], None), ["docker.io"]);
    }

    #[test]
    fn output_names_follow_the_image() {
        assert_eq!(
            output_name("hello", "0.1.0", Format::Archive),
            "hello-0.1.0.tar"
        );
        assert_eq!(output_name("hello", "0.1.0", Format::OciDir), "hello-0.1.0");
    }

    #[test]
    fn sboms_beside_the_output_name_the_platform_and_binary_when_there_are_several() {
        let amd64 = Target::parse("x86_64-unknown-linux-musl").unwrap();
        let arm64 = Target::parse("aarch64-unknown-linux-musl").unwrap();
        let out = Path::new("/o/web-1.0.0.tar");
        let one_bin = ["web".to_string()];
        let two_bins = ["web".to_string(), "migrate".to_string()];
        let beside_spdx = |target: &Target, bin: &str, targets: &[Target], bins: &[String]| {
            beside(&sbom_beside(out, target, bin, targets, bins), "spdx.json")
        };
        assert_eq!(
            beside_spdx(&amd64, "web", std::slice::from_ref(&amd64), &one_bin),
            Path::new("/o/web-1.0.0.tar.spdx.json")
        );
        let both = [amd64.clone(), arm64.clone()];
        assert_eq!(
            beside_spdx(&arm64, "web", &both, &one_bin),
            Path::new("/o/web-1.0.0.tar.linux-arm64.spdx.json")
        );
        assert_eq!(
            beside_spdx(&amd64, "migrate", &both, &two_bins),
            Path::new("/o/web-1.0.0.tar.linux-amd64.migrate.spdx.json")
        );
        assert_eq!(
            beside_spdx(&amd64, "migrate", std::slice::from_ref(&amd64), &two_bins),
            Path::new("/o/web-1.0.0.tar.migrate.spdx.json")
        );
    }

    #[test]
    fn sizes_read_like_cargo() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
