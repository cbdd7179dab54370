//! The GitHub Actions workflows kept in `.github/workflows/`, linted on every CI run: actionlint
//! (with shellcheck on each `run:` script) and zizmor (offline audits), each on every file; any
//! finding fails. A workflow with the faults they exist for shows that both still find them.

use std::path::PathBuf;
use std::process::{Command, Output};

use scratchimg_tests::{python_tool, repo_root};

/// Every workflow file, sorted.
fn workflows() -> Vec<PathBuf> {
    let dir = repo_root().join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

/// actionlint on `files`, with the venv's shellcheck and without pyflakes (no Python steps).
fn actionlint(files: &[PathBuf]) -> Output {
    let shellcheck = python_tool("shellcheck", &["--version"]);
    Command::new(python_tool("actionlint", &["--version"]))
        .arg("-shellcheck")
        .arg(shellcheck)
        .arg("-pyflakes=")
        .args(files)
        .current_dir(repo_root())
        .output()
        .expect("actionlint runs")
}

/// zizmor's offline audits on `files`, at its default persona.
fn zizmor(files: &[PathBuf]) -> Output {
    Command::new(python_tool("zizmor", &["--version"]))
        .args(["--offline", "--no-progress", "--color=never"])
        .args(files)
        .current_dir(repo_root())
        .output()
        .expect("zizmor runs")
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_workflow_passes_actionlint_and_zizmor() {
    let files = workflows();
    assert!(
        files.iter().any(|f| f.ends_with("release.yml")),
        "{files:?}"
    );
    let linted = actionlint(&files);
    assert!(linted.status.success(), "actionlint:\n{}", said(&linted));
    let audited = zizmor(&files);
    assert!(audited.status.success(), "zizmor:\n{}", said(&audited));
    assert!(
        String::from_utf8_lossy(&audited.stdout).contains("No findings"),
        "zizmor:\n{}",
        said(&audited)
    );
}

#[test]
fn a_workflow_with_an_injection_fails_both() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "name: bad\non: pull_request_target\njobs:\n  greet:\n    runs-on: ubuntu-24.04\n    \
         steps:\n      - uses: actions/checkout@v4\n      \
         - run: echo \"${{ github.event.pull_request.title }}\" $UNQUOTED\n",
    )
    .unwrap();
    let files = [bad];
    let linted = actionlint(&files);
    let text = said(&linted);
    assert!(!linted.status.success(), "{text}");
    for rule in ["[expression]", "[shellcheck]"] {
        assert!(text.contains(rule), "no {rule} in:\n{text}");
    }
    let audited = zizmor(&files);
    let text = said(&audited);
    assert!(!audited.status.success(), "{text}");
    for audit in ["template-injection", "unpinned-uses", "dangerous-triggers"] {
        assert!(text.contains(audit), "no {audit} in:\n{text}");
    }
}
