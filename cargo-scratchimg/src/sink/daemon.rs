//! Loading the image into a local container engine with `docker load` or `podman load`.

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::archive::render;
use crate::image::{Artifact, ImageRef};
use crate::report::{one_line, quoted};
use crate::target::Arch;

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
    pub(crate) fn detect() -> Result<Engine> {
        let mut tried = Vec::new();
        for engine in [Engine::Docker, Engine::Podman] {
            match engine.answer() {
                Ok(()) => return Ok(engine),
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
    pub(crate) fn check(self) -> Result<Engine> {
        self.answer().map_err(|why| {
            anyhow::anyhow!(
                "--load={self}: {why}\n\
                 help: start {self}, or use --load to take whichever engine answers"
            )
        })?;
        Ok(self)
    }

    /// Asks the engine for its version: the docker CLI asks its daemon, podman its storage.
    fn answer(self) -> std::result::Result<(), String> {
        let (program, args): (_, &[&str]) = match self {
            Engine::Docker => ("docker", &["version", "--format", "{{.Server.Version}}"]),
            Engine::Podman => ("podman", &["version", "--format", "{{.Version}}"]),
            // Only that ctr is there: the socket is found by `Containerd::connect`.
            Engine::Containerd => ("ctr", &["--version"]),
        };
        let mut command = Command::new(program);
        command.args(args);
        answer_within(
            command,
            &format!("`{program} {}`", args[0]),
            ENGINE_ANSWER_LIMIT,
        )
    }
}

/// Runs `command`, `shown` in messages, to its end within `limit`: `Err` says why it did not
/// answer well (it could not run, took too long, or failed: with its first line of stderr).
pub(super) fn answer_within(
    mut command: Command,
    shown: &str,
    limit: Duration,
) -> std::result::Result<(), String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run {shown}: {e}"))?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} gave no answer in {} s", limit.as_secs()));
            }
        }
    };
    let text = reading.join().unwrap_or_default();
    if status.success() {
        return Ok(());
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

/// Pipes this machine's image of `artifact`, as the archive `docker save` would write, into
/// `<engine> load`. `mtime` stamps the archive's entries.
pub(crate) fn load(
    engine: Engine,
    artifact: &Artifact,
    tags: &[ImageRef],
    mtime: u64,
) -> Result<Loaded> {
    let program = engine.program();
    // An engine stores one platform per name: this machine's.
    let Some(image) = artifact.image_for(Arch::host()) else {
        bail!(
            "the image has no platform that runs on this machine, so it cannot be loaded\n\
             help: add this machine's platform to --platform, or push the index to a registry"
        );
    };
    let archive = render(&Artifact::Image(image.clone()), tags, mtime)?;
    let mut child = Command::new(program)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not run `{program} load`"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Write from another thread: the engine may fill its output pipes before reading all input.
    let writer = std::thread::spawn(move || stdin.write_all(&archive));
    let output = child
        .wait_with_output()
        .with_context(|| format!("could not run `{program} load`"))?;
    let written = writer.join().expect("the writer thread does not panic");
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
