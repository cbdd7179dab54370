//! `cargo scratchimg` end to end: select, build, check, assemble, write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::build::toolchain::{self, Install};
use crate::build::{self, BuildExtras, BuildRoots, CargoOptions, PathRemap, Selection, elf};
use crate::cache::{Hit, LayerCache};
use crate::image::{Image, ImageBuilder, ImageRef, Layer, Owner, sha256, validate};
use crate::provenance::{self, Provenance};
use crate::rootfs;
use crate::sbom::{self, CrateGraph, Sbom, SbomFormat, Subject, auditable};
use crate::shell::Shell;
use crate::sink::{ArchiveSink, DaemonSink, Engine, Format, OciDirSink, PendingFile, Sink};
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
#[derive(Debug, Clone)]
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
    /// The binary carries its dependency list (`.dep-v0`); `--no-auditable` turns it off.
    pub auditable: bool,
    /// `--sbom`: the document put into the image and beside the output; `None` for none.
    pub sbom: Option<SbomFormat>,
    /// `--verify`: build again in a fresh target directory and fail if the digests differ.
    pub verify: bool,
    /// This executable, which cargo runs as its rustc wrapper to take local paths out of the
    /// binary; `None` leaves them in.
    pub rustc_wrapper: Option<PathBuf>,
    /// `$CARGO_HOME` and `$RUSTUP_HOME` as cargo and rustup find them, read by the caller.
    pub cargo_home: Option<PathBuf>,
    pub rustup_home: Option<PathBuf>,
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

        // Claim the outputs before compiling: a bad path fails now, and the old output stays.
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
        let sbom_output = match options.sbom {
            Some(format) => Some(PendingFile::create(&beside(&path, format.extension()))?),
            None => None,
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
        let sysroot = probe.libdir.ancestors().nth(4).map(Path::to_path_buf);
        toolchain::ensure_target(&target, probe, manifest_dir, install, shell)?;

        let crates = CrateGraph::resolve(cargo, &selection, &target, &options.cargo)?;
        let bin_flags = if options.auditable {
            let object = dependency_object(&crates, &target, &selection.target_directory)?;
            auditable::link_args(&object)
        } else {
            Vec::new()
        };
        let provenance = Provenance {
            source: provenance::source(
                selection.package.repository.as_deref(),
                selection.package_dir(),
            ),
            revision: provenance::revision(selection.package_dir()),
            version: version.clone(),
            toolchain: provenance::toolchain(manifest_dir)?,
            features: crates.features.clone(),
            profile: options.cargo.profile.clone(),
            target: target.triple.clone(),
            auditable: options.auditable,
        };
        let base = join(base)?;
        shell.status("Packing", base.comment());
        let build = Build {
            options,
            selection: &selection,
            target: &target,
            crates: &crates,
            bin_flags: &bin_flags,
            sysroot: sysroot.as_deref(),
            image_name: tags[0].familiar(),
            created,
            date: date.seconds,
            base: &base,
            annotations: provenance.annotations(),
        };
        let built = build.image(&selection.target_directory, shell)?;
        if options.verify {
            verify(&build, &built.image, shell)?;
        }
        let image = built.image;

        shell.status("Writing", path.display());
        output.sink().write(&image, &tags)?;
        if let (Some(pending), Some(document)) = (sbom_output, &built.sbom) {
            shell.status("Writing", pending.path().display());
            pending.commit(document)?;
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

/// Everything settled before compiling: one [`Build::image`] call compiles and assembles.
struct Build<'a> {
    options: &'a Options,
    selection: &'a Selection,
    target: &'a Target,
    crates: &'a CrateGraph,
    bin_flags: &'a [String],
    sysroot: Option<&'a Path>,
    image_name: String,
    created: jiff::Timestamp,
    date: u64,
    base: &'a Layer,
    annotations: BTreeMap<String, String>,
}

/// An image and the SBOM document inside it.
struct Built {
    image: Image,
    sbom: Option<Vec<u8>>,
}

impl Build<'_> {
    /// Compiles the binary into `target_dir` and assembles the image around it.
    fn image(&self, target_dir: &Path, shell: &mut Shell) -> Result<Built> {
        let options = self.options;
        let mut cargo_options = options.cargo.clone();
        cargo_options.target_dir = Some(target_dir.to_path_buf());
        let wrapper = options.rustc_wrapper.as_ref().map(|program| {
            let remap = PathRemap::new(&BuildRoots {
                workspace: self.selection.workspace_root.clone(),
                target_dir: target_dir.to_path_buf(),
                cargo_home: options.cargo_home.clone(),
                rustup_home: options.rustup_home.clone(),
                sysroot: self.sysroot.map(Path::to_path_buf),
            });
            (program.clone(), remap)
        });
        let extras = BuildExtras {
            wrapper,
            bin_flags: self.bin_flags.to_vec(),
        };
        let binary = build::build(
            &options.cargo_program,
            self.selection,
            self.target,
            &cargo_options,
            &extras,
            shell.verbosity(),
        )?;
        elf::check_static(&binary.path, self.target)?;

        let cache = LayerCache::in_target_dir(&self.selection.target_directory);
        let data = std::fs::read(&binary.path)
            .with_context(|| format!("could not read {}", binary.path.display()))?;
        let binary_sha256 = sha256(&data).digest().to_string();
        let mut app_files = rootfs::app_files(&binary, data, self.date)?;
        let mut comment = rootfs::app_comment(&binary);
        let sbom = match options.sbom {
            Some(format) => {
                let document = Sbom {
                    subject: Subject {
                        image: self.image_name.clone(),
                        path: rootfs::app_path(&binary.name),
                        sha256: binary_sha256,
                    },
                    crates: self.crates.clone(),
                    base: rootfs::base_components(),
                    created: self.created,
                }
                .render(format)?;
                let file = sbom::image_path(&binary.name, format);
                app_files.file(&file, document.clone(), 0o644, Owner::ROOT)?;
                comment.push_str(&format!(" + /{file}"));
                Some(document)
            }
            None => None,
        };
        let (app, hit) = cache.layer(&app_files, comment)?;
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
        let image = ImageBuilder::new(self.target.arch, self.created)
            .run_config(rootfs::run_config(&binary.name))
            .annotations(self.annotations.clone())
            .layer(self.base.clone())
            .layer(app)
            .build()?;
        if cfg!(debug_assertions) {
            validate(&image).context("the image is inconsistent (a bug in cargo-scratchimg)")?;
        }
        Ok(Built { image, sbom })
    }
}

/// `--verify`: compiles everything again in a fresh target directory and insists on the same
/// image, so what one machine builds, another can check.
fn verify(build: &Build<'_>, first: &Image, shell: &mut Shell) -> Result<()> {
    let parent = build.selection.target_directory.join("scratchimg");
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
    let second = build.image(fresh.path(), shell)?.image;
    if second.digest() == first.digest() {
        shell.status("Verified", format!("both builds give {}", first.digest()));
        return Ok(());
    }
    let differing: Vec<&str> = first
        .layers()
        .iter()
        .zip(second.layers())
        .filter(|(a, b)| a.diff_id() != b.diff_id())
        .map(|(a, _)| a.comment())
        .collect();
    bail!(
        "the image is not reproducible: two builds gave {} and {}\n\
         layers that differ: {}\n\
         help: look for build scripts or macros that embed the time, random values or absolute \
         paths; `diffoscope` on the two binaries shows where they differ",
        first.digest(),
        second.digest(),
        if differing.is_empty() {
            "none (the config or manifest differs)".to_string()
        } else {
            differing.join("; ")
        }
    )
}

/// `<output>.<extension>`, e.g. `hello-0.1.0.tar.spdx.json`.
fn beside(output: &Path, extension: &str) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

/// Writes the object file with the dependency list under the target directory, named by its
/// content, so a changed list is a changed rustc flag and cargo relinks the binary.
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
