//! Step 1: everything settled before cargo builds. Every check that can fail without building
//! fails here: settings, tags, outputs (claimed, so an unwritable path fails in a second and
//! the old output stays until the new one is whole), targets and linkers, registries and
//! their credentials, the container engine.
//!
//! What can run while cargo reads the workspace and the plan is made runs beside it, on the
//! other core ([`Beside`]), each part started as soon as what it needs is known.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use cargo_metadata::Package;

use super::Options;
use super::beside::{Beside, Groundwork};
use super::checks;
use super::names::{image_tags, is_sbom_beside, output_name, push_refs, sbom_beside, sidecar};
use crate::attest::Attach;
use crate::cargo::command::{BuildRequest, PackageBins, Profile};
use crate::cargo::early::Early;
use crate::cargo::graph::Graphs;
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
use crate::sbom::auditable::Linker;
use crate::sign::SigningKey;
use crate::sink::{Answered, Containerd, Destination, Engine, Format, PendingFile};
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
    pub rustc_version: String,
    /// Registries to push to, connected and with their credentials checked.
    pub registries: Vec<Registry>,
    /// The engine `--load` loads into, which answered.
    pub engine: Option<Answered>,
    /// containerd's socket and namespace, for `--load=containerd`.
    pub containerd: Option<Containerd>,
    /// cargo-zigbuild, when `--zig` or `cross = "zig"` asks for zig.
    pub zigbuild: Option<PathBuf>,
    /// Threads that compress layers: one per core. The bytes do not depend on it.
    pub threads: usize,
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

/// One platform to build for.
pub(crate) struct PlatformPlan {
    pub target: Target,
    /// The cross linker's variables, if any.
    pub linker_env: Vec<(String, String)>,
    /// How rustc runs the linker: the dependency list's flags are spelled for it.
    pub linker: Linker,
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
    /// `<output>.intoto.json`, claimed: the provenance beside the output.
    pub provenance: Option<PendingFile>,
    /// SBOM documents an earlier run left beside the output that this run does not write
    /// (another platform set, binaries or format): removed when the output is committed.
    pub stale_sboms: Vec<PathBuf>,
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
    // A key that cannot sign fails now, not after the build.
    let sign_key = options.sign_key.load()?;
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
        for (package, bin) in workspace.selection(&options.cargo)? {
            let git = manifest_git.for_dir(workspace::package_dir(&package));
            let image = plan_image(
                &workspace,
                &layout,
                (package, bin.as_deref()),
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
        let request = build_request(&manifest, &images, options, auditable, report)?;
        // The checks before the build read the graphs too.
        beside.crate_graphs(
            scope,
            &request,
            &targets,
            workspace.root(),
            env,
            &layout,
            report,
        );
        let zigbuild = (options.zig || images.iter().any(|i| i.settings.zig))
            .then(|| crate::cargo::zig::find(env))
            .transpose()?;
        // A wrong host, password or certificate, or no engine, fails before any target is
        // installed.
        let (registries, engine) = beside.connections(report)?;
        let mut platforms = Vec::new();
        for target in &targets {
            let probe = beside.probe(target, &manifest_dir, env)?;
            platforms.push(plan_platform(
                target,
                probe,
                &manifest,
                &manifest_dir,
                zigbuild.is_some(),
                options,
                env,
                report,
            )?);
        }
        for image in &mut images {
            if let Some(format) = options.sbom {
                image.sboms = claim_sboms(image, &targets, format)?;
            }
            image.stale_sboms = stale_sboms(image);
        }
        for image in &mut images {
            image.provenance = image
                .destination
                .as_ref()
                .map(|output| PendingFile::create(&sidecar(output.path(), "intoto.json")))
                .transpose()?;
        }
        let Groundwork {
            rustc_version,
            bases,
            mut graphs,
        } = beside.join()?;
        checks::before_build(&images, &graphs, zigbuild.is_some(), env, report)?;
        for platform in &mut platforms {
            let graphs = graphs.remove(&platform.target).unwrap_or_default();
            if auditable || options.sbom.is_some() {
                platform.graphs = graphs;
            }
        }
        let containerd = match &engine {
            Some(answered) if answered.engine == Engine::Containerd => Some(Containerd::connect(
                env.containerd_address.as_deref(),
                &options.containerd_namespace,
            )?),
            _ => None,
        };
        for image in &mut images {
            image.compression = compression(image, engine.as_ref());
        }
        if let Some(warning) = zstd_warning(&images, engine.as_ref()) {
            report.warn(&warning);
        }
        let plan = Plan {
            workspace,
            layout,
            request,
            platforms,
            bases,
            rustc_version,
            registries,
            engine,
            containerd,
            zigbuild,
            threads,
            format: options.format,
            sbom: options.sbom,
            sbom_in_image: options.sbom_in_image,
            auditable,
            verify: options.verify,
            attach: options.attach.unwrap_or(Attach::All),
            attach_explicit: options.attach.is_some(),
            sign_key,
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

/// One entry per package, with the binaries of every image of it: two images of one package
/// (`resolve`'s `pkg` and `pkg/other-bin`) build in one `--package`.
fn package_bins(images: &[ImagePlan]) -> Vec<PackageBins> {
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

/// Reads and checks a package's settings, picks its binaries and tags, and claims its output.
#[allow(clippy::too_many_arguments)]
fn plan_image(
    workspace: &Workspace,
    layout: &Layout,
    (package, bin): (Package, Option<&str>),
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
        bin,
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
        (None, _) if push_to.is_empty() && !options.skip_output && !loaded => {
            Some(layout.default_output(&name))
        }
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
        provenance: None,
        stale_sboms: Vec::new(),
    })
}

/// How `image`'s layers are compressed: as its settings say when it is written or pushed, or
/// loaded into an engine that wants compressed layers; not at all when it is only loaded into
/// an engine that takes plain ones (the image ID is the same: the config names the layers by
/// their plain digests).
fn compression(image: &ImagePlan, engine: Option<&Answered>) -> Option<Compression> {
    let needed = image.destination.is_some()
        || !image.push_to.is_empty()
        || engine.is_some_and(|engine| !engine.loads_plain_layers());
    needed.then_some(image.settings.compression)
}

/// The warning, once for the run, when images set to zstd go to an engine that cannot read it.
fn zstd_warning(images: &[ImagePlan], engine: Option<&Answered>) -> Option<String> {
    let engine = engine.filter(|engine| !engine.reads_zstd())?;
    let zstd: Vec<String> = images
        .iter()
        .filter(|image| image.settings.compression.algorithm == Algorithm::Zstd)
        .map(|image| image.package.name.to_string())
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
/// It names the manifest the run was given (any of the workspace serves for `-p name@version`),
/// so the next run, given the same one, can start it early.
fn build_request(
    manifest: &Path,
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
    zig: bool,
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
    // cargo-zigbuild sets the C compiler and linker of every target itself.
    let linker_env = if host == Some(target.arch) || zig {
        Vec::new()
    } else {
        let context = linker::link_context(target, &libdir, env, || {
            workspace::c_packages(&env.cargo, manifest, &target.triple, &options.cargo)
        })?;
        linker::cross_env(target, host, &context)?
    };
    for (var, value) in &linker_env {
        report.verbose("Linking", &|| {
            format!("{} with {var}={value}", target.triple)
        });
    }
    let linker = linker::flavor(target, &linker_env, env);
    Ok(PlatformPlan {
        target: target.clone(),
        linker_env,
        linker,
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
                file: PendingFile::create(&sidecar(&path, format.extension()))?,
            });
        }
    }
    Ok(claims)
}
/// The SBOM documents beside an image's output that an earlier run wrote and this one does
/// not: they would describe the new output, so the commit removes them.
fn stale_sboms(image: &ImagePlan) -> Vec<PathBuf> {
    let Some(output) = &image.destination else {
        return Vec::new();
    };
    let (Some(dir), Some(name)) = (output.path().parent(), output.path().file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.to_string_lossy();
    let mut stale: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|file| is_sbom_beside(&name, &file.to_string_lossy()))
        .filter(|file| {
            !image
                .sboms
                .iter()
                .any(|claim| claim.file.path().file_name() == Some(file.as_os_str()))
        })
        .map(|file| dir.join(file))
        .collect();
    stale.sort();
    stale
}
