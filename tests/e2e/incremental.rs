//! What one run keeps for the next: the next run starts the last run's `cargo build` before
//! planning and goes on with it only when the plan is the same; a changed plan or a failed
//! run never shows the build it stopped.

use std::path::Path;
use std::process::Output;

use scratchimg_tests::{assert_success, fixture_copy, require_musl_target, tool};

const STARTED: &str = "early: the last run's build";
const WENT_ON: &str = "went on with the build started early";

/// `cargo scratchimg -v --bin server` in `dir`, with the default target directory.
fn run(dir: &Path) -> Output {
    tool(dir)
        .args(["-v", "--bin", "server", "--message-format", "json"])
        .output()
        .unwrap()
}

fn ok(dir: &Path) -> (serde_json::Value, String) {
    let output = run(dir);
    assert_success(&tool(dir), &output);
    let result = serde_json::from_slice(&output.stdout).unwrap();
    (result, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The lines where cargo says it finished a build.
fn cargo_finished(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Finished `"))
        .collect()
}

#[test]
fn a_rerun_goes_on_with_the_build_it_started_and_a_new_plan_stops_it() {
    require_musl_target();
    let dir = fixture_copy("multi-bin");

    let (first, stderr) = ok(dir.path());
    assert!(
        !stderr.contains(STARTED),
        "nothing to start early yet:\n{stderr}"
    );

    let (second, stderr) = ok(dir.path());
    assert!(
        stderr.contains(WENT_ON),
        "the rerun plans the same build:\n{stderr}"
    );
    assert_eq!(
        cargo_finished(&stderr).len(),
        1,
        "one build shown:\n{stderr}"
    );
    assert_eq!(second["digest"], first["digest"]);

    // Another profile from the settings: the build started early is the old one, and stopped.
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[package.metadata.scratchimg]\nprofile = \"dev\"\n"),
    )
    .unwrap();
    let (dev, stderr) = ok(dir.path());
    assert!(stderr.contains(STARTED), "{stderr}");
    assert!(!stderr.contains(WENT_ON), "the plan changed:\n{stderr}");
    let finished = cargo_finished(&stderr);
    assert_eq!(finished.len(), 1, "only the planned build shown:\n{stderr}");
    assert!(finished[0].contains("scratchimg-dev"), "{stderr}");
    assert_ne!(dev["digest"], second["digest"]);

    // A run that fails after starting the build early shows only its error.
    std::fs::write(
        &manifest,
        format!("{text}\n[package.metadata.scratchimg]\ntags = [\"UPPER:case\"]\n"),
    )
    .unwrap();
    let output = run(dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(STARTED), "{stderr}");
    assert!(stderr.contains("UPPER"), "{stderr}");
    assert!(
        cargo_finished(&stderr).is_empty(),
        "a stopped build showed:\n{stderr}"
    );
    assert!(!stderr.contains("Compiling"), "{stderr}");
}
