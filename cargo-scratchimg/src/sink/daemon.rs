//! Loading the image into a local container engine with `docker load` or `podman load`.

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::Sink;
use super::archive::render;
use crate::image::{Artifact, ImageRef};
use crate::target::Arch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// Docker when its daemon answers, else podman when it is installed.
    pub fn detect() -> Result<Engine> {
        let answers = |args: &[&str], program: &str| {
            Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if answers(&["version", "--format", "{{.Server.Version}}"], "docker") {
            Ok(Engine::Docker)
        } else if answers(&["--version"], "podman") {
            Ok(Engine::Podman)
        } else {
            bail!(
                "--load found no container engine: no docker daemon answered and podman is not installed\n\
                 help: start the docker daemon or install podman, or drop --load and load the tar yourself"
            )
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

/// Pipes the image, as the archive `docker save` would write, into `<engine> load`.
pub struct DaemonSink {
    engine: Engine,
    mtime: u64,
    /// What the engine printed, e.g. `Loaded image: hello:0.1.0`.
    pub report: String,
}

impl DaemonSink {
    pub fn new(engine: Engine, mtime: u64) -> DaemonSink {
        DaemonSink {
            engine,
            mtime,
            report: String::new(),
        }
    }
}

impl Sink for DaemonSink {
    fn write(&mut self, artifact: &Artifact, tags: &[ImageRef]) -> Result<()> {
        let program = self.engine.program();
        // An engine stores one platform per name: this machine's.
        let Some(image) = artifact.image_for(Arch::host()) else {
            bail!(
                "the image has no platform that runs on this machine, so it cannot be loaded\n\
                 help: add this machine's platform to --platform, or push the index to a registry"
            );
        };
        let archive = render(&Artifact::Image(image.clone()), tags, self.mtime)?;
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
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        written.with_context(|| format!("could not send the image to `{program} load`"))?;
        self.report = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Ok(())
    }
}
