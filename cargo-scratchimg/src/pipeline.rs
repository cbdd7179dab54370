//! `cargo scratchimg` end to end: select, configure, build, check, assemble, write.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cargo_metadata::Package;
use serde::Serialize;

use crate::build::toolchain::{self, Install};
use crate::build::{self, BuildPlan, BuiltBinary, CargoOptions, Workspace, elf};
use crate::cache::{Hit, LayerCache};
use crate::config::{self, ImageFlags, Settings};
use crate::image::{Image, ImageBuilder, ImageRef, Layer, LayerBuilder, validate};
use crate::rootfs::{self, BaseFiles};
use crate::shell::Shell;
use crate::sink::{ArchiveSink, DaemonSink, Engine, Format, OciDirSink, Sink};
use crate::source_date::{SourceDate, git_revision};
use crate::target::Target;

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
}

/// What a run produced for one image; `--message-format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub path: PathBuf,
    pub format: &'static str,
    /// The manifest digest.
    pub digest: String,
    pub config_digest: String,
    pub tags: Vec<String>,
    pub platform: String,
    pub layers: Vec<LayerSummary>,
    /// Compressed size of config and layers.
    pub size: u64,
    pub loaded_into: Option<String>,
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
    date: SourceDate,
    path: PathBuf,
    output: Output,
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
    let target = match &options.target {
        Some(triple) => Target::parse(triple)?,
        None => Target::host_musl()?,
    };
    if options.cargo.workspace && !options.tags.is_empty() {
        bail!(
            "-t cannot name the images of --workspace\nhelp: set `name` and `tags` in each package's [package.metadata.scratchimg]"
        );
    }
    // What needs nothing from cargo runs beside `cargo metadata` and `cargo build`, on the
    // other core: the default base layer, and the look for the target's standard library.
    std::thread::scope(|scope| {
        let default_base = scope.spawn(|| rootfs::base_layer(&BaseFiles::default()));
        let probe = scope.spawn(|| toolchain::probe(&target, manifest_dir, cargo));

        let workspace = Workspace::read(cargo, &manifest, &options.cargo)?;
        let mut jobs = Vec::new();
        for package in workspace.packages(&options.cargo)? {
            jobs.push(plan_job(&workspace, package, options, shell)?);
        }
        let custom_bases: Vec<_> = jobs
            .iter()
            .map(|job| {
                let base = job.settings.base.clone();
                (base != BaseFiles::default())
                    .then(|| scope.spawn(move || rootfs::base_layer(&base)))
            })
            .collect();
        let engine = match options.load {
            None => None,
            Some(Load::Auto) => Some(Engine::detect()?),
            Some(Load::Engine(engine)) => Some(engine),
        };

        let install = if options.cargo.offline || options.cargo.frozen {
            Install::Forbidden
        } else {
            Install::Allowed
        };
        toolchain::ensure_target(&target, join(probe)?, manifest_dir, install, shell)?;
        let plan = build_plan(&jobs, &options.cargo)?;
        let binaries = build::build(cargo, &plan, &target, &options.cargo, shell.verbosity())?;
        for binary in &binaries {
            elf::check_static(&binary.path, &target)?;
        }

        let default_base = join(default_base)?;
        let cache = LayerCache::in_target_dir(workspace.target_directory());
        let mut outcomes = Vec::new();
        for (job, custom_base) in jobs.into_iter().zip(custom_bases) {
            let base = match custom_base {
                Some(handle) => join(handle)?,
                None => default_base.clone(),
            };
            let mine: Vec<BuiltBinary> = binaries
                .iter()
                .filter(|b| b.package == job.package.name.as_str() && job.bins.contains(&b.name))
                .cloned()
                .collect();
            outcomes.push(make_image(
                job,
                base,
                &mine,
                &target,
                &cache,
                engine,
                options.format,
                shell,
            )?);
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

/// Reads and checks a package's settings, picks its binaries and tags, and claims its output.
fn plan_job(
    workspace: &Workspace,
    package: Package,
    options: &Options,
    shell: &mut Shell,
) -> Result<Job> {
    let tables = config::read_tables(
        package.manifest_path.as_std_path(),
        &workspace.manifest_path(),
    )?;
    let settings = config::resolve(&tables, &options.image, &options.cwd)?;
    if settings.user.is_root() {
        shell.warn(format!(
            "the image of `{}` runs as root; a scratch image rarely needs to",
            package.name
        ));
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
    let date = SourceDate::resolve(
        options.source_date_epoch.as_deref(),
        build::package_dir(&package),
    )?;
    shell.verbose(
        "Timestamp",
        format!("{} (from {:?})", date.timestamp()?, date.origin),
    );
    // Claim the output before compiling: a bad path fails now, and the old output stays.
    let path = match (&options.output, options.cargo.workspace) {
        (Some(dir), true) => dir.join(output_name(&image_name, &version, options.format)),
        (Some(path), false) => path.clone(),
        (None, _) => workspace
            .target_directory()
            .join("scratchimg")
            .join(output_name(&image_name, &version, options.format)),
    };
    let output = Output::claim(&path, options.format, date.seconds)?;
    let files = rootfs::files_layer(&settings.files, date.seconds)?;
    Ok(Job {
        package,
        bins,
        settings,
        tags,
        date,
        path,
        output,
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
    })
}

/// Layers, config and manifest for one job, then its outputs.
#[allow(clippy::too_many_arguments)]
fn make_image(
    mut job: Job,
    base: Layer,
    binaries: &[BuiltBinary],
    target: &Target,
    cache: &LayerCache,
    engine: Option<Engine>,
    format: Format,
    shell: &mut Shell,
) -> Result<Outcome> {
    let created = job.date.timestamp()?;
    shell.status("Packing", base.comment());
    let mut builder = ImageBuilder::new(target.arch, created).layer(base);
    if let Some(files) = &job.files {
        let count = files
            .entries()
            .filter(|(_, e)| matches!(e.kind, crate::image::EntryKind::File(_)))
            .count();
        let (layer, _) = cache.layer(files, format!("files: {count} from `files` settings"))?;
        shell.status("Packing", layer.comment());
        builder = builder.layer(layer);
    }
    let app_files = rootfs::app_files(binaries, job.date.seconds)?;
    let (app, hit) = cache.layer(&app_files, rootfs::app_comment(binaries))?;
    shell.status("Packing", app.comment());
    let reuse = if hit == Hit::Cached {
        "reused"
    } else {
        "stored"
    };
    shell.verbose("Cache", format!("{reuse} layer {}", app.blob().digest()));

    let revision = git_revision(build::package_dir(&job.package));
    let derived =
        config::standard_annotations(&job.package, revision.as_deref(), &created.to_string());
    let image = builder
        .layer(app)
        .run_config(job.settings.run_config(&job.bins, &derived))
        .annotations(job.settings.manifest_annotations(&derived))
        .build()?;
    if cfg!(debug_assertions) {
        validate(&image).context("the image is inconsistent (a bug in cargo-scratchimg)")?;
    }

    shell.status("Writing", job.path.display());
    job.output.sink().write(&image, &job.tags)?;
    let loaded_into = match engine {
        Some(engine) => {
            let mut daemon = DaemonSink::new(engine, job.date.seconds);
            daemon
                .write(&image, &job.tags)
                .with_context(|| format!("could not load the image into {engine}"))?;
            for line in daemon.report.lines() {
                let name = line.trim_start_matches("Loaded image: ");
                shell.status("Loaded", format!("{name} ({engine})"));
            }
            Some(engine.to_string())
        }
        None => None,
    };
    let outcome = outcome(&image, job.path, format, &job.tags, target, loaded_into);
    summarize(&outcome, shell);
    Ok(outcome)
}

fn outcome(
    image: &Image,
    path: PathBuf,
    format: Format,
    tags: &[ImageRef],
    target: &Target,
    loaded_into: Option<String>,
) -> Outcome {
    Outcome {
        path,
        format: match format {
            Format::Archive => "archive",
            Format::OciDir => "oci-dir",
        },
        digest: image.digest().to_string(),
        config_digest: image.config().digest().to_string(),
        tags: tags.iter().map(ImageRef::familiar).collect(),
        platform: format!("linux/{}", target.arch.oci_arch()),
        layers: image
            .layers()
            .iter()
            .map(|l| LayerSummary {
                digest: l.blob().digest().to_string(),
                diff_id: l.diff_id().to_string(),
                size: l.blob().size(),
                comment: l.comment().to_string(),
            })
            .collect(),
        size: image.compressed_size(),
        loaded_into,
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

fn output_name(name: &str, version: &str, format: Format) -> String {
    match format {
        Format::Archive => format!("{name}-{version}.tar"),
        Format::OciDir => format!("{name}-{version}"),
    }
}

fn summarize(outcome: &Outcome, shell: &mut Shell) {
    shell.status(
        "Image",
        format!("{} ({})", outcome.tags.join(", "), outcome.platform),
    );
    shell.status("Digest", &outcome.digest);
    for layer in &outcome.layers {
        shell.status(
            "Layer",
            format!("{:>10}  {}", human_size(layer.size), layer.comment),
        );
    }
    shell.status(
        "Total",
        format!(
            "{:>10}  compressed, config included",
            human_size(outcome.size)
        ),
    );
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
    fn output_names_follow_the_image() {
        assert_eq!(
            output_name("hello", "0.1.0", Format::Archive),
            "hello-0.1.0.tar"
        );
        assert_eq!(output_name("hello", "0.1.0", Format::OciDir), "hello-0.1.0");
    }

    #[test]
    fn sizes_read_like_cargo() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
