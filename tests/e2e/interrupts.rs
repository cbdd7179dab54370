//! Interrupts clean up: real signals to a real run whose build script sleeps (the slow-build
//! fixture). SIGINT and SIGTERM end the cargo build the tool started, with every process under
//! it, remove the temporary files and `verify-*` directories, and the tool exits with the
//! signal's code. A run that fails while its early build runs (a registry that never answers)
//! leaves no cargo or rustc behind either.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use scratchimg_tests::proxy::Silent;
use scratchimg_tests::{assert_success, fixture_copy, require_musl_target, tool};

const MARKER: &str = "SCRATCHIMG_TEST_MARKER";
const SLEEP_IN: &str = "SCRATCHIMG_TEST_SLEEP_IN";

/// The tool on `dir` with `args`, its build script sleeping where `sleep_in` says (see the
/// fixture's build.rs), writing its process id to `marker`.
fn start(dir: &Path, args: &[&str], marker: &Path, sleep_in: &str) -> Child {
    tool(dir)
        .args(args)
        .env(MARKER, marker)
        .env(SLEEP_IN, sleep_in)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the sleeping build script has written its process id; panics with the tool's
/// output if the tool ends first.
fn sleeping_build_script(tool: &mut Child, marker: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(text) = std::fs::read_to_string(marker)
            && let Some(pid) = text.strip_suffix('\n')
        {
            return pid.parse().unwrap();
        }
        if let Ok(Some(status)) = tool.try_wait() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(tool.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("the tool ended ({status}) before the build script slept:\n{stderr}");
        }
        assert!(Instant::now() < deadline, "the build script never slept");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Whether process `pid` is gone (or a zombie waiting for whoever reaps it).
fn gone(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'))
}

/// Live processes whose working directory or command line is in `dir`: cargo, rustc, build
/// scripts and linkers of its build.
fn processes_in(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).unwrap();
    let text = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !gone(*pid))
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
            (cmdline.contains(&text) || cwd.is_some_and(|cwd| cwd.starts_with(&dir)))
                .then(|| format!("{pid}: {cmdline}"))
        })
        .collect()
}

/// No process of the run is left: the build script is gone, and nothing runs in `dir`.
fn assert_no_process_left(dir: &Path, build_script: u32) {
    // What the signal killed is reaped by init, which may take a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(gone(build_script) && processes_in(dir).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gone(build_script),
        "the build script {build_script} outlived the run"
    );
    let left = processes_in(dir);
    assert!(left.is_empty(), "processes outlived the run: {left:#?}");
}

/// Names in `dir` that a run writes for a while only: temporary outputs and `verify-*`.
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let scratch = dir.join("target/scratchimg");
    [dir.to_path_buf(), scratch]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(".out.tar.") || name.starts_with("verify-")
        })
        .collect()
}

/// Sends `name` to a run while its build script sleeps, and checks how it ended.
fn interrupted(args: &[&str], sleep_in: &str, name: &str, code: i32) {
    require_musl_target();
    let dir = fixture_copy("slow-build");
    let marker = dir.path().join("marker");
    let out = dir.path().join("out.tar");
    let mut all = args.to_vec();
    all.extend(["-o", out.to_str().unwrap()]);
    let mut run = start(dir.path(), &all, &marker, sleep_in);
    let build_script = sleeping_build_script(&mut run, &marker);
    let pending = temporary_files(dir.path());
    // The output was claimed (its folder proven writable) before the build; its file is made
    // only when the image is written.
    assert!(
        !pending.iter().any(|p| p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".out.tar.")),
        "no file is held for the output while the build runs: {pending:?}"
    );
    if !sleep_in.is_empty() {
        assert!(
            pending.iter().any(|p| p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("verify-")),
            "the verify build runs in its own directory: {pending:?}"
        );
    }
    signal(run.id(), name);
    let Output { status, stderr, .. } = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stderr);
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(
        !stderr.contains("error:"),
        "an interrupt is no error:\n{stderr}"
    );
    assert_no_process_left(dir.path(), build_script);
    assert_eq!(temporary_files(dir.path()), Vec::<PathBuf>::new());
    assert!(!out.exists(), "nothing written");
}

#[test]
fn sigterm_during_the_build_ends_it_and_leaves_no_file() {
    interrupted(&[], "", "TERM", 143);
}

/// --verify's second build runs in `target/scratchimg/verify-*`, which goes with the signal.
#[test]
fn sigint_during_the_verify_build_ends_it_and_removes_its_directory() {
    interrupted(&["--verify"], "/scratchimg/verify-", "INT", 130);
}

/// The next run starts the last run's build before planning; when the plan then fails (a
/// registry that never answers its check), that build stops with everything it started.
#[test]
fn a_failed_plan_stops_the_build_it_started_early() {
    require_musl_target();
    let dir = fixture_copy("slow-build");
    let out = dir.path().join("out.tar");
    let first = tool(dir.path()).arg("-o").arg(&out).output().unwrap();
    assert_success(&tool(dir.path()), &first);
    let written = std::fs::read(&out).unwrap();

    let silent = Silent::start();
    let marker = dir.path().join("marker");
    let reference = format!("{}/scratchimg-e2e/slow:v1", silent.host);
    let mut run = start(
        dir.path(),
        &[
            "-o",
            out.to_str().unwrap(),
            "--push",
            &reference,
            "--registry-timeout",
            "1s",
        ],
        &marker,
        "",
    );
    // The early build reran the build script (its variables changed), which sleeps.
    let build_script = sleeping_build_script(&mut run, &marker);
    let Output { status, stderr, .. } = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: registry {} did not answer GET /v2/ within 1s",
            silent.host
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Compiling"),
        "the stopped build never shows:\n{stderr}"
    );
    assert_no_process_left(dir.path(), build_script);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        written,
        "the output is untouched"
    );
    assert_eq!(temporary_files(dir.path()), Vec::<PathBuf>::new());
}
