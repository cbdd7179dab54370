//! `cargo scratchimg run`: the image built and loaded as always ([`crate::pipeline`]'s plan to
//! publish), tagged `<name>:scratchimg-run` so each run replaces the last, then run
//! in the engine like `cargo run`: removed when it stops, its exit code ours, Ctrl-C passed on,
//! SIGTERM turned into the image's stop signal and a kill after a grace period as `docker stop`
//! does, and nothing left running when the tool itself is killed.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::env::Env;
use crate::image::ImageRef;
use crate::pipeline::{Load, Options, compile, execute, plan};
use crate::process::{self, Watchdog};
use crate::report::Reporter;
use crate::sink::{Containerd, Engine};
use crate::util::lock;

/// The tag a run's image gets: one per image name, replaced by the next run.
const RUN_TAG: &str = "scratchimg-run";

/// How a built image is run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub engine: Load,
    /// `--publish`: `[HOST:]CONTAINER[/PROTO]`; the image's ports when empty.
    pub publish: Vec<String>,
    /// `-e KEY=VALUE`, given to the container.
    pub env: Vec<String>,
    /// The program's arguments, after `--`.
    pub args: Vec<String>,
    /// Give the container a terminal: stdin and stdout are one.
    pub tty: bool,
    /// After SIGTERM, how long the program has to stop before it is killed (`docker stop
    /// --time`).
    pub stop_timeout: Duration,
}

/// Builds, loads and runs the image; the container's exit code.
pub fn run_image(
    options: &Options,
    run: &RunOptions,
    env: &Env,
    report: &dyn Reporter,
) -> Result<u8> {
    let options = Options {
        load: Some(run.engine),
        skip_output: true,
        retag: Some(RUN_TAG.to_string()),
        ..options.clone()
    };
    if options.cargo.workspace {
        bail!("`run` runs one image, not every one of --workspace\nhelp: pick its package with -p");
    }
    let planned = plan(&options, env, report)?;
    let [image] = planned.images.as_slice() else {
        bail!(
            "`run` runs one image, and this run plans {}\nhelp: pick its package with -p",
            planned.images.len()
        );
    };
    let tag = image.tags[0].clone();
    let ports: Vec<String> = image.settings.ports.iter().cloned().collect();
    let stop_signal = image
        .settings
        .stop_signal
        .clone()
        .unwrap_or_else(|| "SIGTERM".to_string());
    let engine = planned
        .connections
        .engine
        .as_ref()
        .map(|answered| answered.engine)
        .context("no engine was chosen (a bug in cargo-scratchimg)")?;
    let containerd = planned.connections.containerd.clone();
    execute(planned, env, report, compile)?;
    let container = Container {
        engine,
        containerd,
        name: format!("scratchimg-run-{}-{}", std::process::id(), nanos()),
        stop_signal,
    };
    let command = container.run_command(&tag, &ports, run)?;
    report.status("Running", &format!("{} in {engine}", tag.familiar()));
    report.verbose("Running", &|| format!("{command:?}"));
    container.run(command, run.tty, run.stop_timeout)
}

/// Some nanoseconds of the clock, so two runs at once name their containers apart.
fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// One run's container, by its name.
struct Container {
    engine: Engine,
    containerd: Option<Containerd>,
    name: String,
    /// What SIGTERM to us becomes: the image's stop signal, as `docker stop` sends.
    stop_signal: String,
}

impl Container {
    /// `docker run --rm …`, `podman run --rm …` or `ctr run --rm …`.
    fn run_command(&self, tag: &ImageRef, ports: &[String], run: &RunOptions) -> Result<Command> {
        let mut command = self.engine_command();
        command.arg("run").arg("--rm");
        if run.tty {
            command.arg("--tty");
        }
        match self.engine {
            Engine::Containerd => {
                // ctr has no port mapping: the host's network.
                command.arg("--net-host");
                for pair in &run.env {
                    command.args(["--env", pair]);
                }
                command.arg(tag.qualified()).arg(&self.name);
            }
            Engine::Docker | Engine::Podman => {
                // We pass the signals on ourselves; the engine's CLI must not as well.
                command.args(["--interactive", "--sig-proxy=false", "--name", &self.name]);
                for pair in &run.env {
                    command.args(["--env", pair]);
                }
                let published: Vec<String> = if run.publish.is_empty() {
                    ports.iter().map(|p| publish_same(p)).collect()
                } else {
                    run.publish.clone()
                };
                if !run.publish.is_empty() || has_bridge(self.engine) {
                    for port in published {
                        command.args(["--publish", &port]);
                    }
                } else {
                    // No bridge network (dockerd --bridge=none): the ports are the host's.
                    command.arg("--network=host");
                }
                command.arg(tag.familiar());
            }
        }
        command.args(&run.args);
        Ok(command)
    }

    /// The engine's CLI, for containerd with its socket and namespace.
    fn engine_command(&self) -> Command {
        match &self.containerd {
            Some(containerd) if self.engine == Engine::Containerd => containerd.ctr(),
            _ => Command::new(self.engine.program()),
        }
    }

    /// Runs `command` to its end, passing signals on; the container's exit code. SIGTERM
    /// sends the stop signal, then SIGKILL after `stop_timeout`, as `docker stop` does. The
    /// engine's CLI dies with the tool, and a [`Watchdog`] stops and removes the container
    /// then, so a tool killed outright leaves nothing running.
    fn run(&self, mut command: Command, tty: bool, stop_timeout: Duration) -> Result<u8> {
        if !tty {
            // Its own process group: Ctrl-C reaches the container once, through us.
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        process::dies_with_parent(&mut command);
        let mut signals =
            Signals::new([SIGINT, SIGTERM]).context("could not listen for Ctrl-C and SIGTERM")?;
        let handle = signals.handle();
        let watchdog = Watchdog::start(&self.stop_commands(stop_timeout))
            .context("could not start `sh`, which ends the container if the tool is killed")?;
        let child = command
            .spawn()
            .with_context(|| format!("could not run `{} run`", self.engine.program()))?;
        let child = Arc::new(Mutex::new(child));
        // When the stop signal sent for a SIGTERM turns into SIGKILL.
        let kill_at: Mutex<Option<Instant>> = Mutex::new(None);
        // The signals are the container's now, not the tool's interrupt.
        let status = crate::interrupt::passed_on(|| {
            std::thread::scope(|scope| {
                let forwarding = scope.spawn(|| {
                    let mut received = 0;
                    for signal in signals.forever() {
                        received += 1;
                        let sent = match (received, signal) {
                            (1, SIGINT) => "SIGINT",
                            (1, _) => {
                                *lock(&kill_at) = Some(Instant::now() + stop_timeout);
                                self.stop_signal.as_str()
                            }
                            // A second Ctrl-C or SIGTERM does not wait for the program.
                            _ => "SIGKILL",
                        };
                        self.signal(sent, &child);
                    }
                });
                let status = wait(&child, || {
                    let due = lock(&kill_at).is_some_and(|at| Instant::now() >= at);
                    if due {
                        *lock(&kill_at) = None;
                        self.signal("SIGKILL", &child);
                    }
                });
                handle.close();
                let _ = forwarding.join();
                status
            })
        })?;
        if status.code().is_none() {
            // The engine's CLI itself was killed: the container may outlive it.
            self.remove();
        }
        watchdog.done();
        Ok(exit_code(status))
    }

    /// What stops and removes the container when the tool cannot: the engine's `stop`, its
    /// stop signal then SIGKILL after `stop_timeout`, and its `rm`.
    fn stop_commands(&self, stop_timeout: Duration) -> Vec<Command> {
        let seconds = stop_timeout.as_secs().to_string();
        let mut stop = self.engine_command();
        let mut remove = self.engine_command();
        match self.engine {
            Engine::Containerd => {
                stop.args(["tasks", "kill", "--signal", "SIGKILL", &self.name]);
                remove.args(["containers", "rm", &self.name]);
            }
            _ => {
                stop.args(["stop", "--time", &seconds, &self.name]);
                remove.args(["rm", "--force", &self.name]);
            }
        }
        vec![stop, remove]
    }

    /// Sends `signal` to the container; to the engine's CLI when the container is not there
    /// yet.
    fn signal(&self, signal: &str, child: &Mutex<Child>) {
        let mut command = self.engine_command();
        match self.engine {
            Engine::Containerd => command.args(["tasks", "kill", "--signal", signal, &self.name]),
            _ => command.args(["kill", "--signal", signal, &self.name]),
        };
        let sent = run_quietly(command);
        if !sent && let Ok(mut child) = child.lock() {
            let _ = child.kill();
        }
    }

    /// Removes the container, if it is still there.
    fn remove(&self) {
        let mut command = self.engine_command();
        match self.engine {
            Engine::Containerd => {
                let mut kill = self.engine_command();
                kill.args(["tasks", "kill", "--signal", "SIGKILL", &self.name]);
                run_quietly(kill);
                command.args(["containers", "rm", &self.name])
            }
            _ => command.args(["rm", "--force", &self.name]),
        };
        run_quietly(command);
    }
}

/// Waits for the child without holding its lock, so a signal can still reach it; `tick` runs
/// at every look.
fn wait(child: &Mutex<Child>, tick: impl Fn()) -> Result<ExitStatus> {
    loop {
        tick();
        let polled = child
            .lock()
            .map_err(|_| anyhow::anyhow!("the engine's process lock was poisoned"))?
            .try_wait()
            .context("could not wait for the engine")?;
        if let Some(status) = polled {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exit code a shell gives: the code, or 128 + the signal that killed the process.
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => (128 + signal).min(255) as u8,
        (None, None) => 1,
    }
}

/// `8080/tcp` published as `8080:8080/tcp`.
fn publish_same(port: &str) -> String {
    let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
    format!("{number}:{number}/{proto}")
}

/// Whether the engine has its default bridge network (dockerd `--bridge=none` has not).
fn has_bridge(engine: Engine) -> bool {
    let network = match engine {
        Engine::Docker => "bridge",
        Engine::Podman => "podman",
        Engine::Containerd => return false,
    };
    let mut command = Command::new(engine.program());
    command.args(["network", "inspect", network]);
    run_quietly(command)
}

/// Runs a short engine command with a deadline; whether it succeeded.
fn run_quietly(mut command: Command) -> bool {
    let Ok(mut child) = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    match crate::process::wait_until(&mut child, deadline) {
        Some(status) => status.success(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_publish_as_themselves_and_codes_pass_through() {
        assert_eq!(publish_same("8080/tcp"), "8080:8080/tcp");
        assert_eq!(publish_same("53/udp"), "53:53/udp");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
    }
}
