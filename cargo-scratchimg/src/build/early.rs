//! The last run's `cargo build`, started again before `cargo metadata` has answered.
//!
//! With the build up to date, a run is mostly cargo starting twice: once to read the workspace,
//! once to find that nothing needs compiling. Most runs plan the very build the run before did,
//! so that build starts at once, beside `cargo metadata`, and is adopted only if the new plan
//! turns out the same: the same program, arguments and environment. Otherwise it is stopped
//! and the planned build runs. cargo decides what is up to date either way, so a wrong guess
//! costs time, never correctness.

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::Running;
use crate::cache::BuildCache;
use crate::image::sha256;

/// A `cargo build` command as plain values, to keep and compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    program: PathBuf,
    args: Vec<OsString>,
    /// Variables set (`Some`) or removed (`None`) on top of the inherited environment, sorted.
    envs: Vec<(OsString, Option<OsString>)>,
    /// Files the build reads that cargo does not track (the dependency-list objects the rustc
    /// wrapper links): a build is not started early without them.
    inputs: Vec<PathBuf>,
}

impl BuildSpec {
    /// `command`'s program, arguments and environment; `inputs` as [`BuildSpec::inputs`] says.
    pub fn of(command: &Command, inputs: Vec<PathBuf>) -> BuildSpec {
        let mut envs: Vec<(OsString, Option<OsString>)> = command
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
            .collect();
        envs.sort();
        BuildSpec {
            program: PathBuf::from(command.get_program()),
            args: command.get_args().map(ToOwned::to_owned).collect(),
            envs,
            inputs,
        }
    }

    /// The triple after `--target`.
    pub fn target(&self) -> Option<&str> {
        let mut args = self.args.iter();
        args.find(|a| *a == "--target")?;
        args.next()?.to_str()
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (key, value) in &self.envs {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        command
    }
}

/// A build started from the last run's [`BuildSpec`]; stopped when dropped unless adopted.
/// What it prints is held back until it is adopted, so a stopped build never shows.
struct EarlyBuild {
    spec: BuildSpec,
    child: Option<Child>,
    stderr: Option<(Arc<Mutex<Held>>, JoinHandle<()>)>,
}

/// cargo's stderr: kept until adopted, then passed through.
#[derive(Default)]
struct Held {
    adopted: bool,
    bytes: Vec<u8>,
}

impl EarlyBuild {
    /// Starts `spec` if every input it needs is there; `None` if not, or if it cannot start.
    fn start(spec: BuildSpec) -> Option<EarlyBuild> {
        if !spec.inputs.iter().all(|input| input.is_file()) {
            return None;
        }
        let mut command = spec.command();
        command.stderr(Stdio::piped());
        // cargo colors, and draws its progress bar, only on a terminal: its output will be shown
        // on ours. The user's own settings win.
        let unset = |var: &str| std::env::var_os(var).is_none();
        if std::io::stderr().is_terminal() && unset("CARGO_TERM_COLOR") {
            command.env("CARGO_TERM_COLOR", "always");
        }
        if let Some((terminal_size::Width(width), _)) =
            terminal_size::terminal_size_of(std::io::stderr())
            && unset("CARGO_TERM_PROGRESS_WHEN")
            && unset("CARGO_TERM_PROGRESS_WIDTH")
        {
            command
                .env("CARGO_TERM_PROGRESS_WHEN", "always")
                .env("CARGO_TERM_PROGRESS_WIDTH", width.to_string());
        }
        let mut child = command.spawn().ok()?;
        let mut pipe = child.stderr.take()?;
        let held = Arc::new(Mutex::new(Held::default()));
        let forward = {
            let held = Arc::clone(&held);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
                    if held.adopted {
                        let _ = std::io::stderr().write_all(&chunk[..n]);
                    } else {
                        held.bytes.extend_from_slice(&chunk[..n]);
                    }
                }
            })
        };
        Some(EarlyBuild {
            spec,
            child: Some(child),
            stderr: Some((held, forward)),
        })
    }

    /// The running build, if it is exactly `spec`, with what it printed so far shown; else
    /// `None`, and it is stopped.
    fn adopt(mut self, spec: &BuildSpec) -> Option<Running> {
        if self.spec != *spec {
            return None;
        }
        let child = self.child.take()?;
        let (held, forward) = self.stderr.take()?;
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::io::stderr().write_all(&held.bytes);
        held.adopted = true;
        Some(Running {
            child,
            stderr: Some(forward),
        })
    }
}

impl Drop for EarlyBuild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((_, forward)) = self.stderr.take() {
            let _ = forward.join();
        }
    }
}

/// A run's early build, if one started, and the name under which the run keeps the build it
/// plans, for the next run like it.
pub struct Early {
    started: Option<EarlyBuild>,
    key: String,
}

impl Early {
    /// Starts the build kept under `key` in `target_dir` if `can_build` its target triple.
    pub fn start(key: &str, target_dir: Option<&Path>, can_build: impl Fn(&str) -> bool) -> Early {
        let key = sha256(key.as_bytes()).digest().to_string();
        let started = target_dir
            .and_then(|dir| BuildCache::in_target_dir(dir).get(&key))
            .filter(|spec| spec.target().is_some_and(&can_build))
            .and_then(EarlyBuild::start);
        Early { started, key }
    }

    pub fn started(&self) -> bool {
        self.started.is_some()
    }

    /// `command` running, and whether it is the early build (exactly the same command); else
    /// `command` is started now and kept under `target_dir` for the next run.
    pub fn run(
        &mut self,
        command: Command,
        inputs: Vec<PathBuf>,
        target_dir: &Path,
    ) -> Result<(Running, bool)> {
        let spec = BuildSpec::of(&command, inputs);
        if let Some(running) = self.started.take().and_then(|early| early.adopt(&spec)) {
            return Ok((running, true));
        }
        BuildCache::in_target_dir(target_dir).put(&self.key, &spec);
        Ok((super::spawn(command)?, false))
    }
}

/// The target directory a run will most likely use, before cargo says: `--target-dir`, else
/// `CARGO_TARGET_DIR`, else the nearest `target` at or above the manifest's directory that this
/// tool has written to. `None` when there is no such guess (a first run, a target directory set
/// in a config file): the build then simply starts when planned.
pub fn likely_target_dir(
    manifest_dir: &Path,
    flag: Option<&Path>,
    env: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(dir) = flag.or(env) {
        return Some(dir.to_path_buf());
    }
    let manifest_dir = std::fs::canonicalize(manifest_dir).ok()?;
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("target"))
        .find(|target| target.join("scratchimg").is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(program: &str, inputs: Vec<PathBuf>) -> BuildSpec {
        let mut command = Command::new(program);
        command
            .args([
                "-c",
                "echo '{\"reason\":\"build-finished\",\"success\":true}'",
            ])
            .env("B", "2")
            .env("A", "1")
            .env_remove("C");
        BuildSpec::of(&command, inputs)
    }

    #[test]
    fn specs_keep_the_whole_command_and_survive_json() {
        let spec = spec("sh", Vec::new());
        assert_eq!(
            spec.envs,
            vec![
                ("A".into(), Some("1".into())),
                ("B".into(), Some("2".into())),
                ("C".into(), None)
            ]
        );
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<BuildSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn the_same_spec_is_adopted_and_another_is_stopped() {
        let early = EarlyBuild::start(spec("sh", Vec::new())).expect("started");
        let running = early.adopt(&spec("sh", Vec::new())).expect("adopted");
        let output = running.child.wait_with_output().unwrap();
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stdout).contains("build-finished"));

        let early = EarlyBuild::start(spec("sh", Vec::new())).expect("started");
        assert!(early.adopt(&spec("bash", Vec::new())).is_none());
    }

    #[test]
    fn a_run_keeps_its_build_and_the_next_goes_on_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let command = |word: &str| {
            let mut command = Command::new("sh");
            command
                .args([
                    "-c",
                    &format!("echo {word}"),
                    "--target",
                    "x86_64-unknown-linux-musl",
                ])
                .stdout(Stdio::piped());
            command
        };
        let output = |running: Running| running.child.wait_with_output().unwrap().stdout;

        let mut first = Early::start("run", Some(dir.path()), |_| true);
        assert!(!first.started(), "nothing kept yet");
        let (running, adopted) = first.run(command("one"), Vec::new(), dir.path()).unwrap();
        assert!(!adopted);
        assert_eq!(output(running), b"one\n");

        // Not when the target cannot build, nor for another kind of run.
        assert!(!Early::start("run", Some(dir.path()), |_| false).started());
        assert!(!Early::start("other", Some(dir.path()), |_| true).started());

        let mut second = Early::start("run", Some(dir.path()), |t| t.contains("musl"));
        assert!(second.started());
        let (running, adopted) = second.run(command("one"), Vec::new(), dir.path()).unwrap();
        assert!(adopted, "the same command goes on");
        assert_eq!(output(running), b"one\n");

        let mut third = Early::start("run", Some(dir.path()), |_| true);
        let (running, adopted) = third.run(command("two"), Vec::new(), dir.path()).unwrap();
        assert!(!adopted, "another command runs anew");
        assert_eq!(output(running), b"two\n");
        let mut fourth = Early::start("run", Some(dir.path()), |_| true);
        let (_, adopted) = fourth.run(command("two"), Vec::new(), dir.path()).unwrap();
        assert!(adopted, "and is kept for the next run");
    }

    #[test]
    fn missing_inputs_keep_it_from_starting() {
        let dir = tempfile::tempdir().unwrap();
        let object = dir.path().join("deps.o");
        assert!(EarlyBuild::start(spec("sh", vec![object.clone()])).is_none());
        std::fs::write(&object, b"").unwrap();
        assert!(EarlyBuild::start(spec("sh", vec![object])).is_some());
    }

    #[test]
    fn the_target_dir_is_the_flag_the_env_or_one_written_before() {
        let dir = tempfile::tempdir().unwrap();
        let member = dir.path().join("crates/app");
        std::fs::create_dir_all(&member).unwrap();
        let flag = Path::new("/flag");
        let env = Path::new("/env");
        assert_eq!(
            likely_target_dir(&member, Some(flag), Some(env)).as_deref(),
            Some(flag)
        );
        assert_eq!(
            likely_target_dir(&member, None, Some(env)).as_deref(),
            Some(env)
        );
        assert_eq!(likely_target_dir(&member, None, None), None);
        std::fs::create_dir_all(dir.path().join("target/scratchimg")).unwrap();
        assert_eq!(
            likely_target_dir(&member, None, None),
            Some(std::fs::canonicalize(dir.path()).unwrap().join("target"))
        );
    }
}
