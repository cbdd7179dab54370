//! `scripts/release`, what the release workflow runs: the archives of both binaries and
//! SHA256SUMS, laid out where the crate's `[package.metadata.binstall]` sends `cargo binstall`;
//! each binary static, stripped and of its machine; the x86_64 one run as `cargo scratchimg` to
//! build examples/hello, the aarch64 one under qemu; a second run gives the same bytes.
//!
//! The two release builds go to the repository's target directory, kept between runs.

use std::path::Path;
use std::process::Command;

use scratchimg_tests::installed::{assert_installed_tool_works, tool_package, tool_version};
use scratchimg_tests::{
    clean_command, repo_root, require_musl_target, require_tool, run_ok, untar,
};

const TARGETS: [(&str, &str); 2] = [
    ("x86_64-unknown-linux-musl", "x86-64"),
    ("aarch64-unknown-linux-musl", "ARM aarch64"),
];

fn release(out: &Path) -> Command {
    let mut command = clean_command(repo_root().join("scripts/release"));
    command.arg(out);
    command
}

/// A `cargo binstall` template filled in as it fills it for `target` on Linux.
fn expand(template: &serde_json::Value, repo: &str, target: &str) -> String {
    template
        .as_str()
        .expect("a template string")
        .replace("{ repo }", repo)
        .replace("{ name }", "cargo-scratchimg")
        .replace("{ bin }", "cargo-scratchimg")
        .replace("{ version }", &tool_version())
        .replace("{ target }", target)
        .replace("{ binary-ext }", "")
}

#[test]
fn release_builds_both_binaries_where_binstall_looks() {
    require_musl_target();
    require_tool("qemu-aarch64-static", &["--version"]);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("dist");
    let stdout = run_ok(&mut release(&out));
    let version = tool_version();
    let names: Vec<String> = TARGETS
        .iter()
        .map(|(target, _)| format!("cargo-scratchimg-{version}-{target}.tar.gz"))
        .collect();
    let mut printed: Vec<String> = names
        .iter()
        .map(|n| out.join(n))
        .chain([out.join("SHA256SUMS")])
        .map(|p| p.display().to_string())
        .collect();
    printed.push(String::new());
    assert_eq!(stdout, printed.join("\n"));
    run_ok(
        Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(&out),
    );

    let package = tool_package();
    let (binstall, repo) = (
        &package["metadata"]["binstall"],
        package["repository"].as_str().unwrap(),
    );
    assert_eq!(binstall["pkg-fmt"], "tgz");
    let mut binaries = Vec::new();
    for ((target, machine), name) in TARGETS.iter().zip(&names) {
        assert_eq!(
            expand(&binstall["pkg-url"], repo, target),
            format!("{repo}/releases/download/v{version}/{name}")
        );
        let listing = run_ok(
            Command::new("tar")
                .args(["--numeric-owner", "-tvzf"])
                .arg(out.join(name)),
        );
        // One folder, as binstall's bin-dir says: the program and what it is shipped with,
        // owned by root.
        let folder = format!("cargo-scratchimg-{version}-{target}");
        let entries: Vec<String> = listing
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                format!("{} {} {}", fields[0], fields[1], fields[fields.len() - 1])
            })
            .collect();
        let expected: Vec<String> = [
            ("drwxr-xr-x", "/"),
            ("-rw-r--r--", "/LICENSE-APACHE"),
            ("-rw-r--r--", "/LICENSE-MIT"),
            ("-rw-r--r--", "/README.md"),
            ("-rwxr-xr-x", "/cargo-scratchimg"),
        ]
        .map(|(mode, file)| format!("{mode} 0/0 {folder}{file}"))
        .to_vec();
        assert_eq!(entries, expected);
        let unpacked = work.path().join(target);
        untar(&out.join(name), &unpacked);
        let binary = unpacked.join(expand(&binstall["bin-dir"], repo, target));
        let kind = run_ok(Command::new("file").arg("-b").arg(&binary));
        assert!(
            kind.contains(machine)
                && (kind.contains("statically linked") || kind.contains("static-pie linked"))
                && kind.contains(", stripped"),
            "{}: {kind}",
            binary.display()
        );
        binaries.push(binary);
    }

    let [x86_64, aarch64] = &binaries[..] else {
        unreachable!("two targets")
    };
    assert_installed_tool_works(x86_64.parent().unwrap(), work.path());
    assert_eq!(
        run_ok(
            Command::new("qemu-aarch64-static")
                .arg(aarch64)
                .args(["scratchimg", "--version"])
        ),
        format!("cargo-scratchimg {version}\n")
    );

    // The same commit gives the same archives.
    let again = work.path().join("again");
    run_ok(&mut release(&again));
    assert_eq!(
        std::fs::read(again.join("SHA256SUMS")).unwrap(),
        std::fs::read(out.join("SHA256SUMS")).unwrap()
    );
}

/// A tag that is not v<version> stops the release before anything is built.
#[test]
fn a_tag_that_is_not_the_version_stops_before_building() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("dist");
    let output = release(&out)
        .args(["--tag", "v0.0.0-not-this"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("Building"), "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "error: tag v0.0.0-not-this does not match the crate's version {}\n\
             help: tag the commit v{0}, or bump the version in cargo-scratchimg/Cargo.toml\n",
            tool_version()
        )),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    assert!(!out.exists());
}
