//! Importing the image into containerd with `ctr images import`, through its socket, for the
//! users of nerdctl, k3s and kind-like setups (`--load=containerd`), and running it there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Engine;
use super::archive::render;
use super::daemon::{Loaded, ask_within, feed};
use crate::image::{Artifact, ImageRef};
use crate::target::Arch;
use crate::text::quoted;

/// Where containerd listens, in the order they are tried when `CONTAINERD_ADDRESS` is not set:
/// a system containerd, k3s's, and Docker's own.
const SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/run/docker/containerd/containerd.sock",
];

/// How long `ctr version` may take to answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(15);

/// A containerd that answered, and the namespace images go into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Containerd {
    pub address: PathBuf,
    pub namespace: String,
}

impl Containerd {
    /// Finds the containerd `address` names (`$CONTAINERD_ADDRESS`), else the first of the
    /// standard sockets that answers `ctr version`: before the build, not after it.
    pub(crate) fn connect(address: Option<&Path>, namespace: &str) -> Result<Containerd> {
        let namespace = if namespace.is_empty() {
            "default"
        } else {
            namespace
        };
        let candidates: Vec<PathBuf> = match address {
            Some(address) => vec![address.to_path_buf()],
            None => SOCKETS.iter().map(PathBuf::from).collect(),
        };
        let mut tried = Vec::new();
        for socket in candidates {
            if address.is_none() && !socket.exists() {
                tried.push(format!("  {}: no such socket", socket.display()));
                continue;
            }
            match answer(&socket) {
                Ok(()) => {
                    return Ok(Containerd {
                        address: socket,
                        namespace: namespace.to_string(),
                    });
                }
                Err(why) => tried.push(format!("  {}: {why}", socket.display())),
            }
        }
        bail!(
            "--load=containerd found no containerd that answers\n{}\n\
             help: start containerd, or point CONTAINERD_ADDRESS at its socket; `ctr` comes with containerd (Debian: apt install containerd)",
            tried.join("\n")
        )
    }

    /// `ctr --address A --namespace N ARGS`.
    pub(crate) fn ctr(&self) -> Command {
        let mut command = Command::new(Engine::Containerd.program());
        command
            .arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(&self.namespace);
        command
    }

    /// Pipes `artifact` into `ctr images import -`; containerd names it by the archive's
    /// `io.containerd.image.name` annotations, one per tag. An index goes in whole, as a pull
    /// would give it: containerd takes this machine's platform of it and unpacks that, and
    /// the image has the index's digest, as in a registry.
    pub(crate) fn import(
        &self,
        artifact: &Artifact,
        tags: &[ImageRef],
        mtime: u64,
    ) -> Result<Loaded> {
        if artifact.image_for(Arch::host()).is_none() {
            bail!(
                "the image has no platform that runs on this machine, so it cannot be imported\n\
                 help: add this machine's platform to --platform, or push the index to a registry"
            );
        }
        let archive = render(artifact, tags, mtime)?;
        let child = self
            .ctr()
            .args(["images", "import", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("could not run `ctr images import`\nhelp: install containerd's ctr (Debian: apt install containerd)")?;
        let (output, written) = feed(child, &archive);
        let output = output.context("could not run `ctr images import`")?;
        if !output.status.success() {
            bail!(
                "`ctr images import` into {} (namespace {}) failed ({}): {}",
                self.address.display(),
                self.namespace,
                output.status,
                quoted(&output.stderr)
            );
        }
        written.context("could not send the image to `ctr images import`")?;
        Ok(Loaded {
            names: tags
                .iter()
                .map(|t| format!("{} (namespace {})", t.qualified(), self.namespace))
                .collect(),
        })
    }
}

/// Asks containerd at `socket` for its version, within [`ANSWER_LIMIT`].
fn answer(socket: &Path) -> std::result::Result<(), String> {
    let mut command = Command::new(Engine::Containerd.program());
    command.arg("--address").arg(socket).arg("version");
    ask_within(command, "`ctr version`", ANSWER_LIMIT).map(drop)
}
