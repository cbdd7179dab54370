//! The crate as crates.io would get it: `cargo publish --dry-run` passes in a clean clone of
//! HEAD (uncommitted changes are not in it), the `.crate` holds the README, the licences and the
//! sources and no tests, and the tool installed from the unpacked `.crate` with
//! `cargo install --path` runs as `cargo scratchimg` and builds examples/hello.
//!
//! Dependencies compile once into a target directory kept between runs
//! (`target/scratchimg-tests/package`); the install is a debug build so that it reuses what the
//! dry run's verification compiled, leaving only the crate itself to build again.

use std::path::Path;
use std::process::Command;

use scratchimg_tests::installed::{assert_installed_tool_works, tool_version};
use scratchimg_tests::{clean_command, repo_root, run_ok, shared_target_dir, untar};

/// A clone of the repository at HEAD in `dest`.
fn clone_head(dest: &Path) {
    let head = run_ok(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(repo_root()),
    );
    run_ok(
        Command::new("git")
            .args(["clone", "--quiet"])
            .arg(repo_root())
            .arg(dest),
    );
    run_ok(
        Command::new("git")
            .args(["checkout", "--quiet", "--detach", head.trim()])
            .current_dir(dest),
    );
}

/// Every path in the `.crate`, without the `NAME-VERSION/` folder they all sit in.
fn crate_listing(crate_file: &Path, folder: &str) -> Vec<String> {
    run_ok(Command::new("tar").arg("-tzf").arg(crate_file))
        .lines()
        .map(|path| {
            path.strip_prefix(folder)
                .unwrap_or_else(|| panic!("{path} is outside {folder}"))
                .to_string()
        })
        .collect()
}

#[test]
fn a_clean_clone_publishes_and_installs_from_its_crate() {
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("clone");
    clone_head(&clone);
    let target_dir = shared_target_dir("package");
    let cargo = |args: &[&str]| {
        run_ok(
            clean_command("cargo")
                .args(args)
                .arg("--target-dir")
                .arg(&target_dir)
                .current_dir(&clone),
        )
    };
    cargo(&["publish", "--dry-run", "-p", "cargo-scratchimg", "--locked"]);
    // The dry run keeps no `.crate`; packaging again makes the same one, without building.
    cargo(&[
        "package",
        "--no-verify",
        "-p",
        "cargo-scratchimg",
        "--locked",
    ]);

    let name = format!("cargo-scratchimg-{}", tool_version());
    let crate_file = target_dir.join("package").join(format!("{name}.crate"));
    let listing = crate_listing(&crate_file, &format!("{name}/"));
    // At the top, what cargo adds and the files the manifest names; then the sources and the
    // benchmarks' example. No tests, no fixtures.
    let top = [
        ".cargo_vcs_info.json",
        "Cargo.toml",
        "Cargo.toml.orig",
        "Cargo.lock",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
    ];
    for path in top
        .iter()
        .chain(&["src/main.rs", "src/lib.rs", "examples/compress.rs"])
    {
        assert!(listing.iter().any(|p| p == path), "no {path}: {listing:?}");
    }
    let strays: Vec<&String> = listing
        .iter()
        .filter(|p| !top.contains(&p.as_str()) && p.as_str() != "examples/compress.rs")
        .filter(|p| !(p.starts_with("src/") && p.ends_with(".rs")))
        .collect();
    assert!(strays.is_empty(), "the .crate holds more: {strays:?}");
    let size = std::fs::metadata(&crate_file).unwrap().len();
    assert!(size < 1 << 20, "the .crate is {size} bytes");

    // The unpacked `.crate`: its licences and README are the repository's, not links.
    let unpacked = work.path().join("unpacked");
    untar(&crate_file, &unpacked);
    let sources = unpacked.join(&name);
    for file in ["README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        let packed = sources.join(file);
        assert!(packed.symlink_metadata().unwrap().is_file(), "{file}");
        assert_eq!(
            std::fs::read(&packed).unwrap(),
            std::fs::read(repo_root().join(file)).unwrap(),
            "{file}"
        );
    }

    let root = work.path().join("root");
    run_ok(
        clean_command("cargo")
            .args(["install", "--locked", "--debug", "--path"])
            .arg(&sources)
            .arg("--root")
            .arg(&root)
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(work.path()),
    );
    assert_installed_tool_works(&root.join("bin"), work.path());
}
