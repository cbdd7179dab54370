//! Step 1: everything settled before cargo builds. Every check that can fail without building
//! fails here: settings, tags, outputs (claimed, so an unwritable path fails in a second and
//! the old output stays until the new one is whole), targets and linkers, registries and
//! their credentials, the container engine.
//!
//! [`plan()`] runs as named steps, each a function with a value out: start the background
//! work ([`Background`]), read what each image asks for ([`ImageRequest`]), make each
//! platform's toolchain ready ([`Toolchain`]), claim the outputs ([`Outputs`]); then, with the
//! background work joined and the checks before the build passed, it builds the [`Plan`], its
//! [`PlatformPlan`]s and [`ImagePlan`]s whole. The registries and the engine it connected go
//! beside the plan, in [`Connections`].

mod background;
mod before_build;
mod build;
mod image;
mod outputs;
mod platform;
mod tags;

use std::path::PathBuf;

use anyhow::{Result, bail};

pub(crate) use image::{ImagePlan, PlatformImage};
pub(crate) use outputs::Outputs;
pub(crate) use platform::{PlatformPlan, Toolchain};

use super::Options;
use crate::attest::Attach;
use crate::cache::LayerCache;
use crate::cargo::command::BuildRequest;
use crate::cargo::early::EarlyBuild;
use crate::cargo::workspace::{self, Workspace};
use crate::env::Env;
use crate::image::Algorithm;
use crate::registry::Registry;
use crate::report::Reporter;
use crate::sbom::SbomFormat;
use crate::sign::SigningKey;
use crate::sink::{Answered, Containerd, Engine, Format, PendingFile};
use crate::target::{Target, parse_platforms};
use crate::tool_dir::ToolDir;
use background::Background;
use build::BuildPlan;
use image::{ImageRequest, zstd_warning};

/// What a run will do, settled before cargo builds; the images are [`ImagePlan`]s beside it.
pub(crate) struct Plan {
    pub workspace: Workspace,
    pub tool_dir: ToolDir,
    /// Where pushes record the repositories that hold base layers: the user's cache directory,
    /// for every project of the user, else the target directory.
    pub mount_record: PathBuf,
    /// The layer cache, one for the run: each layer is looked up or made once.
    pub layers: LayerCache,
    /// The one `cargo build` of every image, before a target is chosen.
    pub request: BuildRequest,
    /// One after another, in one target directory, so incremental builds stay warm.
    pub platforms: Vec<PlatformPlan>,
    /// `rustc -vV`, for the provenance.
    pub rustc_version: String,
    /// cargo-zigbuild, when `--zig` or `cross = "zig"` asks for zig.
    pub zigbuild: Option<PathBuf>,
    /// Threads that compress layers: one per core. The bytes do not depend on it.
    pub threads: usize,
    /// Images assembled and written at once: `$SCRATCHIMG_JOBS`, else one per core as memory
    /// allows. Neither the bytes nor the order of what is said depend on it.
    pub jobs: usize,
    pub format: Format,
    pub sbom: Option<SbomFormat>,
    /// The SBOM goes into the image too (`--sbom-in-image`).
    pub sbom_in_image: bool,
    /// The binaries carry their dependency lists: asked for, and our wrapper can link them.
    pub auditable: bool,
    pub verify: bool,
    /// What goes next to pushed images (`--attach`, default all).
    pub attach: Attach,
    /// `--attach` was given: a registry that refuses the artifacts fails the push, and file
    /// outputs hold them too.
    pub attach_explicit: bool,
    /// `--sign-key`, read and checked before the build.
    pub sign_key: Option<SigningKey>,
}

impl Plan {
    /// Whether there are several platforms: an index per image.
    pub(crate) fn multi_platform(&self) -> bool {
        self.platforms.len() > 1
    }
}

/// What the run talks to, connected and checked while planning: beside the plan, not in it.
pub(crate) struct Connections {
    /// Registries to push to, with their credentials checked.
    pub registries: Vec<Registry>,
    /// The engine `--load` loads into, which answered.
    pub engine: Option<Answered>,
    /// containerd's socket and namespace, for `--load=containerd`.
    pub containerd: Option<Containerd>,
}

/// What [`plan`] gives: the plan, its images, what it connected to, and the build started
/// early.
pub(crate) struct Planned {
    pub plan: Plan,
    pub images: Vec<ImagePlan>,
    pub connections: Connections,
    pub early: EarlyBuild,
    /// `--metadata-file`, claimed with the other outputs.
    pub record: Option<PendingFile>,
}

/// What the command line settles before cargo is asked anything.
struct Given {
    manifest: PathBuf,
    manifest_dir: PathBuf,
    /// The targets `--platform` or `--target` name; `None` leaves them to the settings.
    targets: Option<Vec<Target>>,
    /// `$SCRATCHIMG_JOBS`, checked.
    jobs: Option<usize>,
}

pub(crate) fn plan(options: &Options, env: &Env, report: &dyn Reporter) -> Result<Planned> {
    let given = Given::read(options, env)?;
    // A key that cannot sign fails now, not after the build.
    let sign_key = options.sign_key.load(report)?;
    std::thread::scope(|scope| {
        // What needs nothing from cargo starts at once, the rest as soon as it can.
        let mut background = Background::start(scope, options, env, &given, report);
        let workspace = Workspace::read(&env.cargo, &given.manifest, &options.cargo)?;
        let tool_dir = ToolDir::new(workspace.target_directory());
        let layers = LayerCache::open(&tool_dir);
        background.rustc_version(scope, env, &given.manifest_dir, &tool_dir, report);
        let requests =
            ImageRequest::read_all(&workspace, &tool_dir, &mut background, options, env, report)?;
        tags::one_image_per_tag(
            &requests
                .iter()
                .map(ImageRequest::tagged)
                .collect::<Vec<_>>(),
        )?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        background.base_layers(scope, &requests, &layers, threads, report);
        let build = BuildPlan::new(&given, &requests, options, env, report)?;
        // The checks before the build read the graphs too.
        background.crate_graphs(scope, &build, &workspace, env, &tool_dir, report);
        // A wrong host, password or certificate, or no engine, fails before any target is
        // installed.
        let (registries, engine) = background.connections(&requests, report)?;
        let toolchains =
            Toolchain::prepare_all(&build, &mut background, &given, options, env, report)?;
        let outputs = Outputs::claim_all(&requests, &build.targets, options)?;
        let record = outputs::claim_record(options.metadata_file.as_deref(), &outputs)?;
        let prepared = background.join()?;
        before_build::check(&requests, &prepared.graphs, build.zig(), env, report)?;
        let connections = Connections::new(registries, engine, options, env)?;
        if let Some(warning) = zstd_warning(&requests, connections.engine.as_ref()) {
            report.warn(&warning);
        }
        let plan = Plan {
            platforms: PlatformPlan::all(
                toolchains,
                prepared.graphs,
                build.keeps_graphs(),
                env,
                report,
            ),
            rustc_version: prepared.rustc_version,
            mount_record: tool_dir.registry_mounts(env.user_cache.as_deref()),
            workspace,
            tool_dir,
            layers,
            request: build.request,
            zigbuild: build.zigbuild,
            threads,
            jobs: jobs(threads, &requests, given.jobs),
            format: options.format,
            sbom: options.sbom,
            sbom_in_image: options.sbom_in_image,
            auditable: build.auditable,
            verify: options.verify,
            attach: options.attach.unwrap_or(Attach::All),
            attach_explicit: options.attach.is_some(),
            sign_key,
        };
        let engine = connections.engine.as_ref();
        let images = ImagePlan::all(requests, outputs, &plan, prepared.bases, engine)?;
        Ok(Planned {
            plan,
            images,
            connections,
            early: background.early(),
            record,
        })
    })
}

/// What compressing one layer holds in memory per thread, at most: gzip's blocks in flight,
/// libzstd's jobs and windows.
fn memory_per_thread(algorithm: Algorithm) -> u64 {
    match algorithm {
        Algorithm::Gzip => 2 << 20,
        Algorithm::Zstd => 24 << 20,
    }
}

/// Memory the layers compressed at once may hold.
const COMPRESSING: u64 = 512 << 20;

/// How many images are assembled and written at once: `$SCRATCHIMG_JOBS`, else one per core,
/// no more than the compressions of that many images (each on every core) may hold in memory.
fn jobs(threads: usize, requests: &[ImageRequest], set: Option<usize>) -> usize {
    if let Some(jobs) = set {
        return jobs;
    }
    let per_image = requests
        .iter()
        .map(|r| memory_per_thread(r.settings.compression.algorithm))
        .max()
        .unwrap_or(0)
        * threads as u64;
    let by_memory = COMPRESSING.checked_div(per_image).unwrap_or(u64::MAX);
    let by_memory = usize::try_from(by_memory).unwrap_or(usize::MAX).max(1);
    threads.min(by_memory)
}

/// `$SCRATCHIMG_JOBS`: a whole number of images at once, 1 or more.
fn parse_jobs(value: &str) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(jobs) if jobs > 0 => Ok(jobs),
        _ => bail!(
            "SCRATCHIMG_JOBS={} is not a number of images to make at once\nhelp: set it to 1 or more (1 makes them one after another), or unset it for one per core",
            crate::text::one_line(value, 64)
        ),
    }
}

impl Given {
    fn read(options: &Options, env: &Env) -> Result<Given> {
        let manifest = workspace::find_manifest(options.cargo.manifest_path.as_deref(), &env.cwd)?;
        let manifest_dir = match manifest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let targets = match (&options.platforms, &options.target) {
            (Some(platforms), _) => Some(
                parse_platforms(platforms)?
                    .into_iter()
                    .map(Target::musl)
                    .collect(),
            ),
            (None, Some(triple)) => Some(vec![Target::parse(triple)?]),
            (None, None) => None,
        };
        check_workspace_flags(options)?;
        Ok(Given {
            manifest,
            manifest_dir,
            targets,
            jobs: env.jobs.as_deref().map(parse_jobs).transpose()?,
        })
    }
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

impl Connections {
    /// The registries and the engine that answered, and containerd's socket and namespace when
    /// `--load=containerd` chose it.
    fn new(
        registries: Vec<Registry>,
        engine: Option<Answered>,
        options: &Options,
        env: &Env,
    ) -> Result<Connections> {
        let containerd = match &engine {
            Some(answered) if answered.engine == Engine::Containerd => Some(Containerd::connect(
                env.containerd_address.as_deref(),
                &options.containerd_namespace,
            )?),
            _ => None,
        };
        Ok(Connections {
            registries,
            engine,
            containerd,
        })
    }
}
