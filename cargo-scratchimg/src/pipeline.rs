//! `cargo scratchimg` end to end: select, build, check, assemble, write.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::build::toolchain::{self, Install};
use crate::build::{self, CargoOptions, elf};
use crate::cache::{Hit, LayerCache};
use crate::image::{ImageBuilder, ImageRef, validate};
use crate::rootfs;
use crate::shell::Shell;
use crate::sink::{ArchiveSink, DaemonSink, Engine, Format, OciDirSink, Sink};
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
}

/// What a run produced; `--message-format json` prints it.
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

        let selection = build::select(cargo, &manifest, &options.cargo)?;
        let version = selection.package.version.to_string();
        let tags = parse_tags(&options.tags, &selection.bin, &version)?;
        let date = SourceDate::resolve(
            options.source_date_epoch.as_deref(),
            selection.package_dir(),
        )?;
        let created = date.timestamp()?;
        shell.verbose("Timestamp", format!("{created} (from {:?})", date.origin));

        // Claim the output before compiling: a bad path fails now, and the old output stays.
        let path = match &options.output {
            Some(path) => path.clone(),
            None => default_output(
                &selection.target_directory,
                &selection.bin,
                &version,
                options.format,
            ),
        };
        let mut output = match options.format {
            Format::Archive => Output::Archive(ArchiveSink::create(&path, date.seconds)?),
            Format::OciDir => Output::OciDir(OciDirSink::create(&path)?),
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

        shell.status("Writing", path.display());
        output.sink().write(&image, &tags)?;
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
    fn sizes_read_like_cargo() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
