//! The command line on bad input: one clear error, a non-zero exit, and no output file.
//! Each case runs the real binary on a fixture crate (tests/fixtures at the repo root); the
//! snapshots are in `snapshots/` beside this file (refresh with `SNAPSHOTS=overwrite`).

use std::path::Path;

use scratchimg_tests::{
    BareToolchain, assert_no_output, assert_nothing_built, assert_stopped_before_building,
    fixture_copy, host_musl_target, path_with_failing, require_musl_target, shared_target_dir,
    tool,
};
use snapbox::cmd::Command;
use snapbox::{Assert, Redactions, str};

mod engines_and_registries;
mod files;
mod help;
mod outputs;
mod project;
mod settings;
mod signing;
mod targets;

/// The tool in `dir`, with its output compared after `dir` is replaced by `[ROOT]`.
fn scratchimg(dir: &Path) -> Command {
    let mut redactions = Redactions::new();
    redactions.insert("[ROOT]", dir.to_path_buf()).unwrap();
    redactions.insert("[TARGET]", host_musl_target()).unwrap();
    let assert = Assert::new()
        .action_env(snapbox::assert::DEFAULT_ACTION_ENV)
        .redact_with(redactions);
    Command::from_std(tool(dir)).with_assert(assert)
}

/// A copy of the multi-bin fixture with `table` as its [package.metadata.scratchimg].
fn with_settings(table: &str) -> tempfile::TempDir {
    let dir = fixture_copy("multi-bin");
    let manifest = dir.path().join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("\n[package.metadata.scratchimg]\n");
    text.push_str(table);
    std::fs::write(manifest, text).unwrap();
    dir
}

/// A `podman` first on PATH that fails the way a broken installation does, and a `DOCKER_HOST`
/// where no daemon listens: no engine answers.
fn without_engines(dir: &Path) -> Command {
    let path = path_with_failing(
        &dir.join("fake-bin"),
        "podman",
        "Error: podman is broken here",
    );
    scratchimg(dir)
        .env("PATH", path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
}

/// `-t UPPER` fails after the settings are read and before cargo: the warnings show alone.
fn warnings_before(dir: &Path, args: &[&str]) -> snapbox::cmd::OutputAssert {
    scratchimg(dir)
        .args(["-o", "out.tar", "-t", "UPPER"])
        .args(args)
        .assert()
        .code(1)
}
