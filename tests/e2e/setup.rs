//! `scripts/test`, the one command a contributor runs: on a machine where everything is there
//! (as it is while this suite runs, which that script started), `--check` changes nothing, and
//! `--quick` runs the crate's own tests without an engine.

use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::{clean_command, path_with_failing, repo_root};

/// What the set-up steps would change: installed packages, rustup's toolchains, the tools venv,
/// the engines' configuration and the running daemons.
fn machine_state() -> Vec<String> {
    let stamp = |path: &Path| match std::fs::metadata(path) {
        Ok(meta) => format!(
            "{}: {:?} {}",
            path.display(),
            meta.modified().ok(),
            meta.len()
        ),
        Err(_) => format!("{}: absent", path.display()),
    };
    let mut state = Vec::new();
    let rustup = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".rustup"));
    let venv = repo_root().join("target/tools-venv");
    for path in [
        PathBuf::from("/var/lib/dpkg/status"),
        PathBuf::from("/etc/containers/containers.conf"),
        rustup.join("toolchains"),
        venv.join("bin"),
        venv.join("lib"),
        repo_root().join("target/tools/mdbook/bin"),
    ] {
        state.push(stamp(&path));
    }
    if let Ok(entries) = std::fs::read_dir(rustup.join("toolchains")) {
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        state.push(format!("toolchains: {names:?}"));
    }
    for daemon in ["dockerd", "redis-server"] {
        let pids = Command::new("pidof").arg(daemon).output().unwrap();
        state.push(format!(
            "{daemon}: {}",
            String::from_utf8_lossy(&pids.stdout).trim()
        ));
    }
    state
}

#[test]
fn check_changes_nothing_where_everything_is_there() {
    let before = machine_state();
    let output = Command::new(repo_root().join("scripts/test"))
        .arg("--check")
        .output()
        .expect("scripts/test runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/test --check failed:\n{stderr}"
    );
    for step in [
        "musl targets",
        "docker engine",
        "podman",
        "redis server",
        "syft",
        "mdbook",
        "everything the tests need",
    ] {
        assert!(
            stderr.contains(step),
            "no status line for {step}:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("Installing") && !stderr.contains("Starting"),
        "{stderr}"
    );
    assert_eq!(
        machine_state(),
        before,
        "scripts/test --check changed the machine"
    );
}

#[test]
fn check_names_what_is_missing_and_exits_non_zero() {
    // A PATH without the engines: each is named, nothing is installed, the exit code says so.
    let bin = tempfile::tempdir().unwrap();
    for tool in [
        "rustup", "rustc", "cargo", "python3", "timeout", "cut", "sort", "tr", "cat", "dirname",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let path = String::from_utf8(found.stdout).unwrap();
        std::os::unix::fs::symlink(path.trim(), bin.path().join(tool)).unwrap();
    }
    let before = machine_state();
    let output = Command::new("/bin/bash")
        .arg(repo_root().join("scripts/test"))
        .arg("--check")
        .env("PATH", bin.path())
        .output()
        .expect("scripts/test runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("missing: programs: ") && stderr.contains("podman"),
        "{stderr}"
    );
    assert!(
        stderr.contains("missing: a docker daemon that answers"),
        "{stderr}"
    );
    assert!(
        stderr.contains("missing: a redis server that answers on target/redis/redis.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("help: run scripts/test"), "{stderr}");
    assert_eq!(
        machine_state(),
        before,
        "scripts/test --check changed the machine"
    );
}

/// Without the musl targets, where rustup cannot download them and no offline build is beside
/// the clone (a contributor's machine): one error that says so, with the command to run where
/// it can, and no step after it.
#[test]
fn without_musl_targets_or_downloads_it_says_what_to_run() {
    // The scripts alone in a clone of their own: no ../shared beside it.
    let clone = tempfile::tempdir().unwrap();
    let scripts = clone.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    for script in ["test", "lib.sh"] {
        std::fs::copy(
            repo_root().join("scripts").join(script),
            scripts.join(script),
        )
        .unwrap();
    }
    // A rustup that cannot download, and a rustc whose toolchains have no musl std.
    let bin = tempfile::tempdir().unwrap();
    path_with_failing(bin.path(), "rustc", "error: no such toolchain");
    let path = path_with_failing(bin.path(), "rustup", "error: could not download");
    let output = Command::new("/bin/bash")
        .arg(scripts.join("test"))
        .env("PATH", path)
        .output()
        .expect("scripts/test runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: rustup could not download the musl targets\n")
            && stderr.contains(
                "help: run `rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl` where rustup can download"
            ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Ready") && !stderr.contains("Running"),
        "{stderr}"
    );
}

/// `scripts/NAME`, with the test runner's cargo variables removed (they would point the builds
/// it starts elsewhere).
fn script(name: &str) -> Command {
    clean_command(repo_root().join("scripts").join(name))
}

/// `scripts/test --quick` with `PATH` as given.
fn quick_command(path: &std::ffi::OsStr) -> Command {
    let mut command = script("test");
    command.arg("--quick").env("PATH", path);
    command
}

/// The inner loop installs nothing: without the musl targets it says so in one line, with what
/// to run, and stops there.
#[test]
fn quick_without_musl_targets_says_so_in_one_line() {
    let bin = tempfile::tempdir().unwrap();
    path_with_failing(bin.path(), "rustc", "error: no such toolchain");
    let path = path_with_failing(bin.path(), "rustup", "error: could not download");
    let output = quick_command(&path).output().expect("scripts/test runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: no toolchain has the musl targets (x86_64-unknown-linux-musl \
         aarch64-unknown-linux-musl), which the unit and CLI tests build for\n\
         help: run scripts/test once to install them, or `rustup target add \
         x86_64-unknown-linux-musl aarch64-unknown-linux-musl`\n"
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
}

/// The inner loop runs formatting, clippy and the crate's unit and CLI tests, with no engine
/// (no daemon on DOCKER_HOST, a podman that fails), and installs or starts nothing.
#[test]
fn quick_checks_and_runs_the_crate_tests_without_an_engine() {
    let bin = tempfile::tempdir().unwrap();
    let path = path_with_failing(bin.path(), "podman", "Error: podman is broken here");
    let before = machine_state();
    let output = quick_command(&path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("scripts/test runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "scripts/test --quick failed:\n{stdout}\n{stderr}"
    );
    let mut rest = stderr.as_ref();
    for line in [
        "Ready musl targets",
        "Ready rustfmt, clippy",
        "Checking formatting (cargo fmt --all --check)",
        "Checking lints (cargo clippy --workspace --all-targets --locked -- -D warnings)",
        "Running cargo test -p cargo-scratchimg --locked\n",
        "Running unittests src/lib.rs",
        "Running tests/cli/main.rs",
    ] {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("no `{line}` after the lines before it:\n{stderr}"));
        rest = &rest[at + line.len()..];
    }
    assert!(
        !stderr.contains("Installing") && !stderr.contains("Starting"),
        "{stderr}"
    );
    assert!(!stderr.contains("tests/e2e/"), "{stderr}");
    assert_eq!(
        machine_state(),
        before,
        "scripts/test --quick changed the machine"
    );
}

/// `scripts/try`, the README's first command.
fn try_command() -> Command {
    script("try")
}

#[test]
fn try_builds_hello_and_runs_it_in_an_engine() {
    let output = try_command().output().expect("scripts/try runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "scripts/try failed:\n{stderr}");
    // hello's own output, from inside the container: the non-root user and Tokyo's time.
    assert!(
        stdout.contains("user: nonroot (uid 65532"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("+09:00 (Asia/Tokyo)"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("run --rm -e TZ=Asia/Tokyo hello:0.1.0"),
        "{stderr}"
    );
}

#[test]
fn try_without_an_engine_writes_the_image_and_says_how_to_run_it() {
    // No daemon on DOCKER_HOST, and a podman that fails: the image is still made.
    let bin = tempfile::tempdir().unwrap();
    let path = path_with_failing(bin.path(), "podman", "Error: podman is broken here");
    // An earlier run's image must not count as this one's.
    let archive = repo_root().join("examples/hello/target/scratchimg/hello-0.1.0.tar");
    let _ = std::fs::remove_file(&archive);
    let output = try_command()
        .env("PATH", path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("scripts/try runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "scripts/try failed:\n{stderr}");
    assert!(archive.is_file(), "no {}:\n{stderr}", archive.display());
    for how in ["docker load -i ", "podman load -i "] {
        assert!(stderr.contains(how), "no `{how}` in:\n{stderr}");
    }
    assert!(stderr.contains("hello-0.1.0.tar"), "{stderr}");
}
