//! Loading the image into a local container engine with `docker load` or `podman load`.

use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::archive::render;
use super::oci_layout::DockerManifest;
use super::staging::copy;
use crate::image::{Artifact, Blob, Image, ImageRef, Layer, LayerBuilder, Owner, Tar, json};
use crate::target::Arch;
use crate::text::{one_line, quoted};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
    /// containerd, through `ctr` ([`super::Containerd`]).
    Containerd,
}

impl Engine {
    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Containerd => "ctr",
        }
    }

    /// Docker when its daemon answers, else podman when it answers; asked before the build, so
    /// `--load` with no engine fails in a second instead of after the compile.
    pub(crate) fn detect() -> Result<Answered> {
        let mut tried = Vec::new();
        for engine in [Engine::Docker, Engine::Podman] {
            match engine.answer() {
                Ok(answered) => return Ok(answered),
                Err(why) => tried.push(format!("  {engine}: {why}")),
            }
        }
        bail!(
            "--load found no container engine that answers\n{}\n\
             help: start the docker daemon (or point DOCKER_HOST at one) or install podman, \
             or drop --load and run `docker load -i FILE` yourself",
            tried.join("\n")
        )
    }

    /// Checks before the build that this engine answers, for `--load=docker` and `--load=podman`.
    pub(crate) fn check(self) -> Result<Answered> {
        self.answer().map_err(|why| {
            anyhow::anyhow!(
                "--load={self}: {why}\n\
                 help: start {self}, or use --load to take whichever engine answers"
            )
        })
    }

    /// Asks the engine for its version: the docker CLI asks its daemon, podman its storage.
    /// A Docker daemon that may keep images in containerd (24 and later) is asked which store
    /// it uses.
    fn answer(self) -> std::result::Result<Answered, String> {
        let version = match self {
            Engine::Docker => ask("docker", &["version", "--format", "{{.Server.Version}}"])?,
            Engine::Podman => ask("podman", &["version", "--format", "{{.Version}}"])?,
            // Only that ctr is there: the socket is found by `Containerd::connect`.
            Engine::Containerd => ask("ctr", &["--version"])?,
        };
        let mut answered = Answered {
            engine: self,
            version: one_line(version.trim(), 40),
            containerd_store: false,
        };
        if self == Engine::Docker && answered.major().is_none_or(|major| major >= 24) {
            let status = ask("docker", &["info", "--format", "{{json .DriverStatus}}"])?;
            answered.containerd_store = status.contains("io.containerd.snapshotter");
        }
        Ok(answered)
    }
}

/// Runs `program args` within [`ENGINE_ANSWER_LIMIT`]: its stdout, or why it failed.
fn ask(program: &str, args: &[&str]) -> std::result::Result<String, String> {
    let mut command = Command::new(program);
    command.args(args);
    ask_within(
        command,
        &format!("`{program} {}`", args[0]),
        ENGINE_ANSWER_LIMIT,
    )
}

/// Runs `command`, `shown` in messages, to its end within `limit`: its stdout, or why it did
/// not answer well (it could not run, took too long, or failed: with its first line of stderr).
pub(super) fn ask_within(
    mut command: Command,
    shown: &str,
    limit: Duration,
) -> std::result::Result<String, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run {shown}: {e}"))?;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                // At most a page of it: an engine's answer is one line.
                let _ = pipe.by_ref().take(64 * 1024).read_to_string(&mut text);
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            }
            text
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let Some(status) = crate::process::wait_until(&mut child, deadline) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{shown} gave no answer in {} s", limit.as_secs()));
    };
    let (stdout, text) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    if status.success() {
        return Ok(stdout);
    }
    let said = text
        .lines()
        .map(|l| one_line(l, 200))
        .find(|l| !l.is_empty());
    Err(match said {
        Some(line) => format!("{shown} failed ({status}): {line}"),
        None => format!("{shown} failed ({status})"),
    })
}

/// An engine that answered, and what it said of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answered {
    pub engine: Engine,
    /// Its version, e.g. `20.10.24` or `4.3.1`.
    pub version: String,
    /// A Docker engine that keeps images in containerd, whose image ID is the manifest's
    /// digest, so it gets the compressed image.
    pub containerd_store: bool,
}

impl Answered {
    fn major(&self) -> Option<u32> {
        self.version.split('.').next()?.parse().ok()
    }

    /// Whether it reads zstd layers: Docker 23 and later, podman (containers/image).
    pub(crate) fn reads_zstd(&self) -> bool {
        match self.engine {
            Engine::Docker => self.major().is_some_and(|major| major >= 23),
            Engine::Podman | Engine::Containerd => true,
        }
    }

    /// Whether it takes the image with uncompressed layers and names it by its config's
    /// digest, as Docker's classic store and podman do: nothing needs compressing for it.
    pub(crate) fn loads_plain_layers(&self) -> bool {
        self.engine != Engine::Containerd && !self.containerd_store
    }
}

impl fmt::Display for Answered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.engine.fmt(f)
    }
}

/// How long an engine may take to say its version: a daemon that accepts and never answers
/// must not hold the run.
const ENGINE_ANSWER_LIMIT: Duration = Duration::from_secs(15);

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

/// What an engine loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loaded {
    /// The names it says it loaded, e.g. `hello:0.1.0`.
    pub names: Vec<String>,
}

/// Streams this machine's image of `artifact` into `<engine> load`: as `docker save` writes it,
/// with uncompressed layers, when the engine takes those (no layer is compressed for it, nor
/// decompressed by it, and its image ID is the config's digest either way); else as the
/// archive `-o` writes, an index whole to Docker's containerd store, which keeps it as a pull
/// does and unpacks this machine's platform. `mtime` stamps the archive's entries.
pub(crate) fn load(
    engine: &Answered,
    artifact: &Artifact,
    tags: &[ImageRef],
    mtime: u64,
) -> Result<Loaded> {
    let program = engine.engine.program();
    // An engine stores one platform per name: this machine's.
    let Some(image) = artifact.image_for(Arch::host()) else {
        bail!(
            "the image has no platform that runs on this machine, so it cannot be loaded\n\
             help: add this machine's platform to --platform, or push the index to a registry"
        );
    };
    let archive = match plain_archive(image, tags, mtime) {
        Some(archive) if engine.loads_plain_layers() => archive?,
        _ if engine.containerd_store => render(artifact, tags, mtime)?,
        _ => render(&Artifact::Image(image.clone()), tags, mtime)?,
    };
    let child = Command::new(program)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not run `{program} load`"))?;
    let (output, written) = feed(child, &archive);
    let output = output.with_context(|| format!("could not run `{program} load`"))?;
    if !output.status.success() {
        bail!(
            "`{program} load` failed ({}): {}",
            output.status,
            quoted(&output.stderr)
        );
    }
    written.with_context(|| format!("could not send the image to `{program} load`"))?;
    let names = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.trim().trim_start_matches("Loaded image: "))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Loaded { names })
}

/// `image` as `docker save` writes it: `manifest.json`, the config, and each layer's plain tar,
/// named by its digest; `None` when a layer's tar cannot be read again.
fn plain_archive(image: &Image, tags: &[ImageRef], mtime: u64) -> Option<Result<Tar>> {
    let layers: Vec<&Blob> = image
        .layers()
        .iter()
        .map(Layer::tar)
        .collect::<Option<_>>()?;
    Some((|| {
        let mut tar = LayerBuilder::new(mtime);
        let config = image.config();
        tar.file(
            &config.layout_path(),
            config.content().clone(),
            0o644,
            Owner::ROOT,
        )?;
        for layer in &layers {
            tar.file(
                &layer.layout_path(),
                layer.content().clone(),
                0o644,
                Owner::ROOT,
            )?;
        }
        let manifest = [DockerManifest {
            config: config.layout_path(),
            // Qualified, as podman reads them (it would put `localhost/` before a short name);
            // Docker shows them short.
            repo_tags: tags.iter().map(ImageRef::qualified).collect(),
            layers: layers.iter().map(|l| l.layout_path()).collect(),
        }];
        tar.file(
            "manifest.json",
            json::to_vec(&manifest)?,
            0o644,
            Owner::ROOT,
        )?;
        tar.finish()
    })())
}

/// Writes `archive` to the stdin of `child` (an engine's `load` or `import`) and waits for it:
/// its output, and how the writing went. The writing runs on another thread, as the program
/// may fill its output pipes before it reads all its input.
pub(super) fn feed(
    mut child: std::process::Child,
    archive: &Tar,
) -> (std::io::Result<std::process::Output>, std::io::Result<u64>) {
    let mut stdin = child.stdin.take().expect("stdin is piped");
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || copy(&mut archive.reader(), &mut stdin));
        let output = child.wait_with_output();
        (output, crate::util::join(writer))
    })
}
