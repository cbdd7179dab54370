//! The tool as a user runs it once it is installed (from the `.crate`, or a release archive):
//! `cargo scratchimg`, cargo finding `cargo-scratchimg` in a bin directory on `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{
    clean_command, example, layer_paths, repo_root, require_musl_target, run_ok, test_toolchain,
};

/// The cargo-scratchimg package of this workspace, as `cargo metadata` describes it.
pub fn tool_package() -> serde_json::Value {
    let metadata = run_ok(
        clean_command("cargo")
            .args(["metadata", "--no-deps", "--format-version", "1", "--locked"])
            .current_dir(repo_root()),
    );
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cargo-scratchimg")
        .expect("the workspace has cargo-scratchimg")
        .clone()
}

/// The version of cargo-scratchimg in this workspace's manifest.
pub fn tool_version() -> String {
    tool_package()["version"].as_str().unwrap().to_string()
}

/// `cargo scratchimg` in `dir`, run by the real cargo with `bin` (which holds
/// `cargo-scratchimg`) first on `PATH`. Cargo looks in its own bin directory first unless `PATH`
/// names it, so `PATH` names it after `bin`: an earlier `cargo install` there cannot stand in.
/// The musl builds use the test toolchain.
pub fn cargo_scratchimg(bin: &Path, dir: &Path) -> Command {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        [bin.to_path_buf(), cargo_home.join("bin")]
            .into_iter()
            .chain(std::env::split_paths(&rest)),
    )
    .unwrap();
    let mut command = clean_command("cargo");
    command.arg("scratchimg").current_dir(dir).env("PATH", path);
    if let Some(toolchain) = test_toolchain() {
        command.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    command
}

/// The installed tool in `bin` says this workspace's version, and builds examples/hello into an
/// archive (in `work`) whose top layer holds the program, as `cargo scratchimg` from a user's
/// shell would.
pub fn assert_installed_tool_works(bin: &Path, work: &Path) {
    require_musl_target();
    let version = run_ok(cargo_scratchimg(bin, work).arg("--version"));
    assert_eq!(version, format!("cargo-scratchimg {}\n", tool_version()));
    let archive = work.join("hello.tar");
    let stdout = run_ok(
        cargo_scratchimg(bin, &example("hello"))
            .arg("-o")
            .arg(&archive)
            .arg("--target-dir")
            .arg(crate::shared_target_dir("hello")),
    );
    assert_eq!(stdout.trim(), archive.to_str().unwrap());
    let layers = layer_paths(&archive);
    assert!(
        layers
            .last()
            .is_some_and(|top| top.iter().any(|p| p == "app/hello")),
        "no app/hello in the top layer: {layers:?}"
    );
}
