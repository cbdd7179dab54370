//! The last run's `cargo build`, started again before `cargo metadata` has answered.
//!
//! With the build up to date, a run is mostly cargo starting twice: once to read the workspace,
//! once to find that nothing needs compiling. Most runs plan the very build the run before did,
//! so that build starts at once, beside `cargo metadata`, and is adopted only if the new plan
//! turns out the same [`Build`]. Otherwise it is stopped and the planned build runs. cargo
//! decides what is up to date either way, so a wrong guess costs time, never correctness.
//!
//! What is kept is a [`Build`] value, not a command line: the command is made from it by the
//! same code as any build, with this run's cargo. A kept build is a file in the target
//! directory, so it is checked before it starts: one naming anything this run would not
//! (another wrapper, linker, manifest or target directory; a profile, package, binary or target
//! that is not a plain name; a remapped path or flag this code would not write; files outside
//! the tool's folder) is not started.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Result;

use super::command::{Build, Running};
use super::preread::Preread;
use super::stderr::{self, Held};
use crate::cache::Keyed;
use crate::env::Env;
use crate::image::sha256;
use crate::process::Group;
use crate::report::Reporter;
use crate::sbom::auditable::{Linker, link_args};
use crate::tool_dir::{self, ToolDir};

/// Entries kept: one per way the tool is run on this target directory.
const KEEP: usize = 16;

/// A build started from the last run's [`Build`]; stopped when dropped unless adopted, cargo
/// and every rustc it started (its process group). What it prints is held back until it is
/// adopted, so a stopped build never shows.
struct StartedBuild {
    build: Build,
    child: Option<Group>,
    stderr: Option<(Arc<Mutex<Held>>, JoinHandle<()>)>,
    /// Its binaries, read while it runs.
    preread: Option<Preread>,
}

impl StartedBuild {
    /// Starts `build` with `cargo` if every input it needs is there; `None` if not, or if it
    /// cannot start.
    fn start(build: Build, cargo: &Path, env: &Env) -> Option<StartedBuild> {
        if !build.inputs().iter().all(|input| input.is_file()) {
            return None;
        }
        let mut command = build.command(cargo, &env.terminal);
        let mut child = Group::spawn(&mut command).ok()?;
        let pipe = child.child().stderr.take()?;
        let held = Held::new(false, build.whole_stderr());
        let forward = stderr::forward(pipe, Arc::clone(&held));
        let preread = Some(Preread::start(&build));
        Some(StartedBuild {
            build,
            child: Some(child),
            stderr: Some((held, forward)),
            preread,
        })
    }

    /// The running build, if it is exactly `build`, with what it printed so far shown; else
    /// it is stopped, and its reads of its binaries are handed back.
    fn adopt(mut self, build: &Build) -> Result<Running, Option<Preread>> {
        if self.build != *build {
            return Err(self.preread.take());
        }
        let (Some(child), Some((held, forward))) = (self.child.take(), self.stderr.take()) else {
            return Err(self.preread.take());
        };
        Held::adopt(&held);
        Ok(Running {
            child,
            stderr: Some(forward),
            preread: self.preread.take(),
        })
    }
}

impl Drop for StartedBuild {
    fn drop(&mut self) {
        // Ends the group, so the pipe closes.
        drop(self.child.take());
        if let Some((_, forward)) = self.stderr.take() {
            let _ = forward.join();
        }
    }
}

/// A run's early build, if one started, and the name under which the run keeps the build it
/// plans, for the next run like it.
pub(crate) struct EarlyBuild {
    started: Option<StartedBuild>,
    /// `None` for a build that is not kept.
    key: Option<String>,
}

impl EarlyBuild {
    /// No early build: the planned one starts when planned, and is not kept.
    pub(crate) fn none() -> EarlyBuild {
        EarlyBuild {
            started: None,
            key: None,
        }
    }

    /// Starts the build kept under `key` (the manifest, flags and settings of this kind of run)
    /// in `target_dir` if it is one this run could plan and `can_build` its target triple.
    pub(crate) fn start(
        key: &str,
        manifest: &Path,
        target_dir: Option<&Path>,
        env: &Env,
        report: &dyn Reporter,
        can_build: impl Fn(&str) -> bool,
    ) -> EarlyBuild {
        let key = sha256(key.as_bytes()).digest().to_string();
        // A wrapper of the user's (sccache) may run compilations in a server of its own, which
        // stopping an early build that turns out wrong does not stop: it could still write an
        // rlib the planned build reads. So none starts early then.
        let target_dir = target_dir.filter(|_| {
            let inner = env.rustc_wrapper.is_some();
            if inner {
                report.verbose("Building", &|| {
                    "not early: RUSTC_WRAPPER may compile outside the build's processes".into()
                });
            }
            !inner
        });
        let started = target_dir
            .and_then(|dir| {
                let build = builds(dir).get(&key, report)?;
                let ours = is_ours(&build, manifest, dir, env);
                if !ours {
                    report.verbose("Cache", &|| {
                        "ignored the kept build: it is not one this run would make".into()
                    });
                }
                ours.then_some(build)
            })
            .filter(|build| can_build(&build.target.triple))
            .and_then(|build| StartedBuild::start(build, &env.cargo, env));
        EarlyBuild {
            started,
            key: Some(key),
        }
    }

    pub(crate) fn started(&self) -> bool {
        self.started.is_some()
    }

    /// `build` running, and whether it is the early build (exactly the same build); else it is
    /// started now and kept in its target directory for the next run.
    pub(crate) fn run(&mut self, build: &Build, env: &Env) -> Result<(Running, bool)> {
        // Only a run's first build is kept, and only it can be the early one.
        let key = self.key.take();
        let preread = match self.started.take().map(|early| early.adopt(build)) {
            Some(Ok(running)) => return Ok((running, true)),
            // The build stopped, its reads go on for this one: they are used only where they
            // match what cargo reports.
            Some(Err(preread)) => preread,
            None => None,
        };
        if let Some(key) = key {
            builds(&build.target_dir).put(&key, build);
        }
        let preread = preread
            .filter(|preread| preread.reads(&build.executables()))
            .unwrap_or_else(|| Preread::start(build));
        let mut running = Running::spawn(build, &env.cargo, &env.terminal)?;
        running.preread = Some(preread);
        Ok((running, false))
    }
}

/// The builds kept in a target directory.
fn builds(target_dir: &Path) -> Keyed<Build> {
    Keyed::open(&ToolDir::new(target_dir), "builds", KEEP)
}

/// Whether a kept `build` is one this run could have planned for `manifest` in `target_dir`:
/// this cargo's wrapper (this executable) with the user's own inner wrapper, names cargo
/// accepts for the profile, packages, binaries and target, lock flags, linkers this machine
/// offers, plain remapped paths, and inputs under the tool's folder.
fn is_ours(build: &Build, manifest: &Path, target_dir: &Path, env: &Env) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let request = &build.request;
    let names_ok = is_name(&request.profile.requested)
        && build.target.triple.split(['.', '-']).all(is_name)
        && request
            .packages
            .iter()
            .all(|p| is_name(&p.name) && p.bins.iter().all(|b| is_name(b)));
    let flags_ok = request
        .lock_flags
        .iter()
        .all(|f| matches!(f.as_str(), "--locked" | "--frozen" | "--offline"));
    let linker = build.target.cargo_env("LINKER");
    let gcc = build.target.musl_gcc();
    let env_ok = build.env.iter().all(|(key, value)| {
        *key == linker
            && (value == "rust-lld"
                || env
                    .on_path(&gcc)
                    .is_some_and(|p| p.as_os_str() == value.as_str()))
    });
    let auditable = ToolDir::new(target_dir).auditable();
    let wrapper_ok = build.wrapper.as_ref().is_none_or(|wrapper| {
        Some(&wrapper.program) == env.current_exe.as_ref()
            && wrapper.inner == env.rustc_wrapper
            && wrapper.remap.is_plain()
            && wrapper
                .bin_flags
                .iter()
                .all(|b| is_name(&b.package) && is_name(&b.bin))
            && wrapper
                .inputs
                .iter()
                .all(|input| input.parent() == Some(auditable.as_path()))
            && wrapper.bin_flags.iter().flat_map(|b| &b.flags).all(|flag| {
                wrapper.inputs.iter().any(|input| {
                    [Linker::Driver, Linker::Bare]
                        .into_iter()
                        .any(|linker| link_args(input, linker).contains(flag))
                })
            })
    });
    // cargo-zigbuild runs in cargo's place: only the one on PATH, which `--zig` would use.
    let zigbuild_ok = build
        .zigbuild
        .as_ref()
        .is_none_or(|program| env.on_path("cargo-zigbuild").as_ref() == Some(program));
    canonical(&build.target_dir).is_some_and(|dir| Some(dir) == canonical(target_dir))
        && canonical(&request.manifest_path).is_some()
        && canonical(&request.manifest_path) == canonical(manifest)
        && names_ok
        && flags_ok
        && env_ok
        && wrapper_ok
        && zigbuild_ok
}

/// A name as cargo allows for packages, binaries and profiles: letters, digits, `-` and `_`.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The target directory a run will most likely use, before cargo says: `--target-dir`, else
/// `CARGO_TARGET_DIR` (either relative to `cwd`), else the nearest `target` at or above the
/// manifest's directory that this tool has written to. `None` when there is no such guess (a
/// first run, a target directory set in a config file): the build then starts when planned.
pub(crate) fn likely_target_dir(
    manifest_dir: &Path,
    flag: Option<&Path>,
    env: Option<&Path>,
    cwd: &Path,
) -> Option<PathBuf> {
    if let Some(dir) = flag.or(env) {
        return Some(cwd.join(dir));
    }
    let manifest_dir = std::fs::canonicalize(manifest_dir).ok()?;
    manifest_dir
        .ancestors()
        .map(|dir| dir.join("target"))
        .find(|target| target.join(tool_dir::DIR).is_dir())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::cargo::command::tests::request;
    use crate::report::{Capture, Verbosity};
    use crate::target::Target;

    /// A directory with a manifest, a target directory, and a `cargo` that prints one build
    /// message and the word it was built with (its `--features`).
    struct Fixture {
        dir: tempfile::TempDir,
        env: Env,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
            let cargo = dir.path().join("cargo");
            std::fs::write(
                &cargo,
                "#!/bin/sh\nfor a; do case $a in --features=*) echo \"${a#--features=}\";; esac; done\n\
                 echo '{\"reason\":\"build-finished\",\"success\":true}'\n",
            )
            .unwrap();
            std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::create_dir(dir.path().join("target")).unwrap();
            let env = Env {
                cargo,
                current_exe: Some("/usr/bin/cargo-scratchimg".into()),
                ..Env::default()
            };
            Fixture { dir, env }
        }

        fn target_dir(&self) -> PathBuf {
            self.dir.path().join("target")
        }

        fn build(&self, word: &str) -> Build {
            let mut request = request();
            request.manifest_path = self.dir.path().join("Cargo.toml");
            request.features = vec![word.to_string()];
            Build {
                request,
                target: Target::parse("x86_64-unknown-linux-musl").unwrap(),
                target_dir: self.target_dir(),
                env: Vec::new(),
                wrapper: None,
                zigbuild: None,
            }
        }

        fn start(&self, key: &str, can_build: bool) -> EarlyBuild {
            EarlyBuild::start(
                key,
                &self.dir.path().join("Cargo.toml"),
                Some(&self.target_dir()),
                &self.env,
                &Capture::new(Verbosity::Normal),
                |_| can_build,
            )
        }
    }

    fn output(running: Running) -> String {
        String::from_utf8(running.child.wait_with_output().unwrap().stdout).unwrap()
    }

    #[test]
    fn the_same_build_is_adopted_and_another_is_stopped() {
        let f = Fixture::new();
        let early = StartedBuild::start(f.build("one"), &f.env.cargo, &f.env).expect("started");
        let running = early.adopt(&f.build("one")).ok().expect("adopted");
        assert!(output(running).starts_with("one\n"));
        let early = StartedBuild::start(f.build("one"), &f.env.cargo, &f.env).expect("started");
        // Stopped, it hands over the reads of its binaries.
        let preread = early.adopt(&f.build("two")).err().flatten();
        assert!(preread.is_some_and(|p| p.reads(&f.build("one").executables())));
    }

    #[test]
    fn a_run_keeps_its_build_and_the_next_goes_on_with_it() {
        let mut f = Fixture::new();
        let mut first = f.start("run", true);
        assert!(!first.started(), "nothing kept yet");
        let (running, adopted) = first.run(&f.build("one"), &f.env).unwrap();
        assert!(!adopted);
        assert!(output(running).starts_with("one\n"));

        // Not when the target cannot build, nor for another kind of run.
        assert!(!f.start("run", false).started());
        assert!(!f.start("other", true).started());
        // Nor with a wrapper of the user's, whose compilations a stop may not reach.
        f.env.rustc_wrapper = Some("sccache".into());
        assert!(!f.start("run", true).started());
        f.env.rustc_wrapper = None;

        let mut second = f.start("run", true);
        assert!(second.started());
        let (running, adopted) = second.run(&f.build("one"), &f.env).unwrap();
        assert!(adopted, "the same build goes on");
        assert!(output(running).starts_with("one\n"));

        let mut third = f.start("run", true);
        let (running, adopted) = third.run(&f.build("two"), &f.env).unwrap();
        assert!(!adopted, "another build runs anew");
        assert!(output(running).starts_with("two\n"));
        let mut fourth = f.start("run", true);
        let (_, adopted) = fourth.run(&f.build("two"), &f.env).unwrap();
        assert!(adopted, "and is kept for the next run");
    }

    /// A run of two platforms keeps its first build, and every rerun goes on with it.
    #[test]
    fn with_several_platforms_every_rerun_goes_on_with_the_first() {
        let f = Fixture::new();
        let arm = |mut build: Build| {
            build.target = Target::parse("aarch64-unknown-linux-musl").unwrap();
            build
        };
        let mut adopted = Vec::new();
        for _ in 0..4 {
            let mut early = f.start("run", true);
            let (running, first) = early.run(&f.build("one"), &f.env).unwrap();
            output(running);
            let (running, second) = early.run(&arm(f.build("one")), &f.env).unwrap();
            output(running);
            assert!(!second, "only the first build can be the early one");
            adopted.push(first);
        }
        assert_eq!(adopted, [false, true, true, true]);
    }

    #[test]
    fn missing_inputs_keep_it_from_starting() {
        let f = Fixture::new();
        let auditable = ToolDir::new(&f.target_dir()).auditable();
        let object = auditable.join("deps.o");
        let mut build = f.build("one");
        build.wrapper = Some(crate::cargo::wrapper::Wrapper {
            program: f.env.current_exe.clone().unwrap(),
            remap: Default::default(),
            bin_flags: Vec::new(),
            inner: None,
            inputs: vec![object.clone()],
        });
        assert!(StartedBuild::start(build.clone(), &f.env.cargo, &f.env).is_none());
        std::fs::create_dir_all(&auditable).unwrap();
        std::fs::write(&object, b"").unwrap();
        assert!(StartedBuild::start(build, &f.env.cargo, &f.env).is_some());
    }

    /// A kept build is a file anyone with write access to the target directory could change:
    /// one naming another program, linker, profile or manifest is never started.
    #[test]
    fn kept_builds_this_run_would_not_make_are_ignored() {
        let f = Fixture::new();
        let dir = f.target_dir();
        let manifest = f.dir.path().join("Cargo.toml");
        let ok = f.build("one");
        assert!(is_ours(&ok, &manifest, &dir, &f.env));
        let wrapper = |program: &str, inputs: Vec<PathBuf>, flags: Vec<String>| {
            Some(crate::cargo::wrapper::Wrapper {
                program: program.into(),
                remap: Default::default(),
                bin_flags: vec![crate::cargo::wrapper::BinFlags {
                    package: "app".into(),
                    bin: "app".into(),
                    flags,
                }],
                inner: None,
                inputs,
            })
        };
        let object = ToolDir::new(&dir).auditable().join("deps.o");
        let mut ours = ok.clone();
        ours.wrapper = wrapper(
            "/usr/bin/cargo-scratchimg",
            vec![object.clone()],
            link_args(&object, Linker::Bare),
        );
        assert!(is_ours(&ours, &manifest, &dir, &f.env));

        let mut tampered: Vec<(&str, Build)> = Vec::new();
        let mut b = ours.clone();
        b.wrapper = wrapper("/tmp/evil", vec![object.clone()], Vec::new());
        tampered.push(("another wrapper", b));
        let mut b = ours.clone();
        b.wrapper = wrapper(
            "/usr/bin/cargo-scratchimg",
            vec![object.clone()],
            vec!["-Clink-arg=/tmp/evil.o".into()],
        );
        tampered.push(("a link argument of its own", b));
        let mut b = ours.clone();
        b.wrapper = wrapper(
            "/usr/bin/cargo-scratchimg",
            vec!["/tmp/x.o".into()],
            Vec::new(),
        );
        tampered.push(("an input elsewhere", b));
        let mut b = ok.clone();
        b.env = vec![(b.target.cargo_env("LINKER"), "/bin/sh".into())];
        tampered.push(("another linker", b));
        // The wrapper's flags travel separated by 0x1f: no name or path may hold one.
        let mut b = ours.clone();
        let wrapper = b.wrapper.as_mut().unwrap();
        wrapper.bin_flags[0].bin = "app\x1f-Clink-arg=/tmp/evil.o".into();
        tampered.push(("a binary name with a flag in it", b));
        let mut b = ours.clone();
        b.wrapper.as_mut().unwrap().remap =
            crate::cargo::remap::PathRemap::new(&crate::cargo::remap::BuildRoots {
                workspace: "/w\x1f-Clinker=/tmp/evil".into(),
                target_dir: dir.clone(),
                ..Default::default()
            });
        tampered.push(("a remapped path with a flag in it", b));
        let mut b = ok.clone();
        b.request.packages[0].name = "app --config=x".into();
        tampered.push(("a package that is not a name", b));
        let mut b = ok.clone();
        b.env = vec![("RUSTC".into(), "rust-lld".into())];
        tampered.push(("another variable", b));
        let mut b = ok.clone();
        b.request.profile.requested = "release\"\nbuild.rustc=\"/tmp/evil".into();
        tampered.push(("a profile that is not a name", b));
        let mut b = ok.clone();
        b.request.lock_flags = vec!["--config=build.rustc='/tmp/evil'".into()];
        tampered.push(("a flag of its own", b));
        let mut b = ok.clone();
        b.request.manifest_path = "/etc/Cargo.toml".into();
        tampered.push(("another manifest", b));
        let mut b = ok.clone();
        b.target_dir = "/tmp/elsewhere".into();
        tampered.push(("another target directory", b));
        let mut b = ok.clone();
        b.zigbuild = Some("/tmp/evil".into());
        tampered.push(("another cargo-zigbuild", b));
        for (what, build) in tampered {
            assert!(!is_ours(&build, &manifest, &dir, &f.env), "{what}");
        }
    }

    #[test]
    fn the_target_dir_is_the_flag_the_env_or_one_written_before() {
        let dir = tempfile::tempdir().unwrap();
        let member = dir.path().join("crates/app");
        std::fs::create_dir_all(&member).unwrap();
        let flag = Path::new("/flag");
        let env = Path::new("/env");
        let cwd = Path::new("/cwd");
        assert_eq!(
            likely_target_dir(&member, Some(flag), Some(env), cwd).as_deref(),
            Some(flag)
        );
        assert_eq!(
            likely_target_dir(&member, None, Some(env), cwd).as_deref(),
            Some(env)
        );
        assert_eq!(
            likely_target_dir(&member, Some(Path::new("t")), None, cwd).as_deref(),
            Some(Path::new("/cwd/t")),
            "relative to where the tool runs, as cargo takes it"
        );
        assert_eq!(likely_target_dir(&member, None, None, cwd), None);
        std::fs::create_dir_all(dir.path().join("target/scratchimg")).unwrap();
        assert_eq!(
            likely_target_dir(&member, None, None, cwd),
            Some(std::fs::canonicalize(dir.path()).unwrap().join("target"))
        );
    }
}
