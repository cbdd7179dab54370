//! `cargo scratchimg` end to end: select, build, check, assemble, write.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::build::toolchain::{self, Install};
use crate::build::{self, CargoOptions, elf};
use crate::cache::{Hit, LayerCache};
use crate::image::{ImageBuilder, ImageRef, Repository, split_tag, validate};
use crate::registry::{ClientOptions, MountSources, Registry};
use crate::rootfs;
use crate::shell::Shell;
use crate::sink::{ArchiveSink, DaemonSink, Engine, Format, OciDirSink, RegistrySink, Sink};
use crate::source_date::SourceDate;
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
    /// `--target`; the host architecture's musl target when `None`.
    pub target: Option<String>,
    /// `-o`; `<target-dir>/scratchimg/<bin>-<version>.tar` when `None`.
    pub output: Option<PathBuf>,
    pub format: Format,
    /// `-t` as given; `<bin>:<version>` when empty.
    pub tags: Vec<String>,
    pub load: Option<Load>,
    /// The cargo to run: `$CARGO` when cargo started us.
    pub cargo_program: PathBuf,
    /// The value of `SOURCE_DATE_EPOCH`, read once by the caller.
    pub source_date_epoch: Option<String>,
    /// `--push` values as given: `REGISTRY/REPO[:TAG]`, or empty for `$SCRATCHIMG_REPO/<name>`.
    /// With any, the image is pushed, and written to a file only when `output` is given.
    pub push: Vec<String>,
    /// `SCRATCHIMG_REPO`: the registry and namespace pushes go to when they do not name one.
    pub default_repo: Option<String>,
    /// How to reach registries and where to find credentials.
    pub registry: ClientOptions,
}

/// What a run produced; `--message-format json` prints it.
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
    /// Compressed size of config and layers.
    pub size: u64,
    pub loaded_into: Option<String>,
    /// `REF@sha256:…` of each tag pushed.
    pub pushed: Vec<String>,
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
    fn sink(&mut self) -> &mut dyn Sink {
        match self {
            Output::Archive(sink) => sink,
            Output::OciDir(sink) => sink,
        }
    }
}

pub fn run(options: &Options, shell: &mut Shell) -> Result<Outcome> {
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
    // What needs nothing from cargo runs beside `cargo metadata` and `cargo build`, on the
    // other core: the base layer, and the look for the target's standard library.
    std::thread::scope(|scope| {
        let base = scope.spawn(rootfs::base_layer);
        let probe = scope.spawn(|| toolchain::probe(&target, manifest_dir, cargo));
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

        let selection = build::select(cargo, &manifest, &options.cargo)?;
        let version = selection.package.version.to_string();
        let tags = parse_tags(&options.tags, &selection.bin, &version)?;
        let push_to = push_refs(&options.push, options.default_repo.as_deref(), &tags)?;
        let date = SourceDate::resolve(
            options.source_date_epoch.as_deref(),
            selection.package_dir(),
        )?;
        let created = date.timestamp()?;
        shell.verbose("Timestamp", format!("{created} (from {:?})", date.origin));

        // Claim the output before compiling: a bad path fails now, and the old output stays.
        // A push writes no file unless -o asks for one.
        let path = match &options.output {
            Some(path) => Some(path.clone()),
            None if push_to.is_empty() => Some(default_output(
                &selection.target_directory,
                &selection.bin,
                &version,
                options.format,
            )),
            None => None,
        };
        let mut output = match (&path, options.format) {
            (None, _) => None,
            (Some(path), Format::Archive) => {
                Some(Output::Archive(ArchiveSink::create(path, date.seconds)?))
            }
            (Some(path), Format::OciDir) => Some(Output::OciDir(OciDirSink::create(path)?)),
        };
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
        let probe = join(probe)?;
        let registries = connecting.map(join).transpose()?;
        for registry in registries.iter().flatten() {
            for retry in registry.take_retries() {
                shell.warn(retry);
            }
            shell.verbose("Registry", registry.describe());
        }
        toolchain::ensure_target(&target, probe, manifest_dir, install, shell)?;
        let binary = build::build(
            cargo,
            &selection,
            &target,
            &options.cargo,
            shell.verbosity(),
        )?;
        elf::check_static(&binary.path, &target)?;

        let base = join(base)?;
        shell.status("Packing", base.comment());
        let cache = LayerCache::in_target_dir(&selection.target_directory);
        let app_files = rootfs::app_files(&binary, date.seconds)?;
        let (app, hit) = cache.layer(&app_files, rootfs::app_comment(&binary))?;
        shell.status("Packing", app.comment());
        shell.verbose(
            "Cache",
            format!(
                "{} layer {}",
                if hit == Hit::Cached {
                    "reused"
                } else {
                    "stored"
                },
                app.blob().digest()
            ),
        );
        let image = ImageBuilder::new(target.arch, created)
            .run_config(rootfs::run_config(&binary.name))
            .layer(base)
            .layer(app)
            .build()?;
        if cfg!(debug_assertions) {
            validate(&image).context("the image is inconsistent (a bug in cargo-scratchimg)")?;
        }

        if let (Some(path), Some(output)) = (&path, &mut output) {
            shell.status("Writing", path.display());
            output.sink().write(&image, &tags)?;
        }
        let loaded_into = match engine {
            Some(engine) => {
                let mut daemon = DaemonSink::new(engine, date.seconds);
                daemon
                    .write(&image, &tags)
                    .with_context(|| format!("could not load the image into {engine}"))?;
                for line in daemon.report.lines() {
                    let name = line.trim_start_matches("Loaded image: ");
                    shell.status("Loaded", format!("{name} ({engine})"));
                }
                Some(engine.to_string())
            }
            None => None,
        };
        let pushed = match &registries {
            Some(registries) => {
                let mounts = MountSources::load(
                    &selection
                        .target_directory
                        .join("scratchimg/cache/registry-mounts.json"),
                );
                let mut sink = RegistrySink::new(registries, mounts, shell);
                sink.write(&image, &push_to)?;
                sink.pushed
            }
            None => Vec::new(),
        };

        let outcome = Outcome {
            path,
            format: match options.format {
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
            pushed,
        };
        summarize(&outcome, shell);
        shell.status(
            "Finished",
            format!(
                "image `{}` in {:.2}s",
                outcome.tags.join("`, `"),
                started.elapsed().as_secs_f64()
            ),
        );
        Ok(outcome)
    })
}

/// The result of a scoped thread, with its panic passed on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// `-t` values, or `<bin>:<version>` by default; all checked before anything is built.
fn parse_tags(given: &[String], bin: &str, version: &str) -> Result<Vec<ImageRef>> {
    if given.is_empty() {
        // Repository names are lowercase; binary names need not be.
        let default = format!(
            "{}:{}",
            bin.to_lowercase(),
            ImageRef::tag_for_version(version)
        );
        let tag = default.parse().with_context(|| {
            format!("binary `{bin}` does not make a valid image name\nhelp: name the image with -t NAME[:TAG]")
        })?;
        return Ok(vec![tag]);
    }
    given.iter().map(|tag| tag.parse()).collect()
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

fn default_output(target_dir: &Path, bin: &str, version: &str, format: Format) -> PathBuf {
    let stem = format!("{bin}-{version}");
    let name = match format {
        Format::Archive => format!("{stem}.tar"),
        Format::OciDir => stem,
    };
    target_dir.join("scratchimg").join(name)
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

    #[test]
    fn default_tag_and_output_follow_the_binary() {
        let tags = parse_tags(&[], "hello", "0.1.0+build.7").unwrap();
        assert_eq!(tags[0].familiar(), "hello:0.1.0_build.7");
        assert_eq!(
            default_output(Path::new("/t"), "hello", "0.1.0", Format::Archive),
            Path::new("/t/scratchimg/hello-0.1.0.tar")
        );
        assert_eq!(
            default_output(Path::new("/t"), "hello", "0.1.0", Format::OciDir),
            Path::new("/t/scratchimg/hello-0.1.0")
        );
    }

    #[test]
    fn any_bad_tag_fails_the_run() {
        let given = vec!["ok:1".to_string(), "a:b:c".to_string()];
        assert!(parse_tags(&given, "hello", "0.1.0").is_err());
        assert_eq!(
            parse_tags(&[], "My_Tool", "1.0.0").unwrap()[0].familiar(),
            "my_tool:1.0.0"
        );
    }

    #[test]
    fn push_references_take_tags_and_the_default_repo() {
        let tags = parse_tags(
            &["hello:0.1.0".into(), "acme/hello:latest".into()],
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
    fn sizes_read_like_cargo() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
