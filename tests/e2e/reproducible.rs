//! Same source and toolchain, same bytes: across runs, across clones and cargo homes at different
//! paths, and `--verify` checks it.

use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::{
    copy_tree, example, fixture, require_musl_target, run_ok, shared_target_dir, tar_member, tool,
};

const COMMIT_TIME: &str = "1700000000";

fn git(dir: &Path, args: &[&str]) -> String {
    run_ok(
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "e2e")
            .env("GIT_AUTHOR_EMAIL", "e2e@example.com")
            .env("GIT_COMMITTER_NAME", "e2e")
            .env("GIT_COMMITTER_EMAIL", "e2e@example.com")
            .env("GIT_AUTHOR_DATE", format!("{COMMIT_TIME} +0000"))
            .env("GIT_COMMITTER_DATE", format!("{COMMIT_TIME} +0000")),
    )
}

/// Builds the crate in `dir` with its own target directory and cargo home; returns the JSON
/// result.
fn build(dir: &Path, output: &Path, cargo_home: &Path) -> serde_json::Value {
    let mut command = tool(dir);
    command
        .env_remove("SOURCE_DATE_EPOCH")
        .env("CARGO_HOME", cargo_home)
        .args(["--message-format", "json", "--offline", "-o"])
        .arg(output);
    serde_json::from_str(&run_ok(&mut command)).unwrap()
}

/// A cargo home of its own at `home`, with the registry index and crates examples/events needs
/// (fetched into the usual cargo home first, so it works on a fresh machine too).
fn cargo_home(home: &Path) {
    let mut fetch = Command::new("cargo");
    fetch
        .args(["fetch", "--locked", "--manifest-path"])
        .arg(example("events").join("Cargo.toml"));
    run_ok(&mut fetch);
    let usual = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    for dir in ["registry/index", "registry/cache"] {
        let to = home.join(dir);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        // Hard links where the file system allows: the cache is tens of megabytes.
        let linked = Command::new("cp")
            .arg("-al")
            .arg(usual.join(dir))
            .arg(&to)
            .status()
            .is_ok_and(|s| s.success());
        if !linked {
            run_ok(Command::new("cp").arg("-a").arg(usual.join(dir)).arg(&to));
        }
    }
}

#[test]
fn checkouts_and_cargo_homes_at_different_paths_give_the_same_image() {
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    let origin = work.path().join("origin");
    copy_tree(&example("events"), &origin);
    git(&origin, &["init", "-q"]);
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-q", "-m", "events"]);
    let a = work.path().join("a");
    let b = work.path().join("somewhere/much/deeper/b");
    let (home_a, home_b) = (
        work.path().join("cargo-home-a"),
        work.path().join("other/cargo-home-b"),
    );
    for (clone, home) in [(&a, &home_a), (&b, &home_b)] {
        std::fs::create_dir_all(clone.parent().unwrap()).unwrap();
        git(
            work.path(),
            &[
                "clone",
                "-q",
                origin.to_str().unwrap(),
                clone.to_str().unwrap(),
            ],
        );
        cargo_home(home);
    }
    let image_a = build(&a, &work.path().join("a.tar"), &home_a);
    let image_b = build(&b, &work.path().join("b.tar"), &home_b);
    assert_eq!(image_a["digest"], image_b["digest"]);
    let (tar_a, tar_b) = (
        std::fs::read(work.path().join("a.tar")).unwrap(),
        std::fs::read(work.path().join("b.tar")).unwrap(),
    );
    assert!(tar_a == tar_b, "the archives differ byte for byte");

    // Neither checkout nor cargo home is in the binary: `strings` finds no path of either.
    let binary = a.join(format!(
        "target/{}/scratchimg-release/events",
        scratchimg_tests::host_musl_target()
    ));
    let strings = run_ok(Command::new("strings").arg(&binary));
    for path in [&a, &b, &home_a, &home_b] {
        assert!(
            !strings.contains(path.to_str().unwrap()),
            "the binary holds {}",
            path.display()
        );
    }
    // The registry sources are there, under the cargo home's stand-in.
    assert!(strings.contains("/cargo/registry/src/"));

    // The timestamp is the last commit's, not the wall clock's.
    let config = tar_member(
        &work.path().join("a.tar"),
        &format!(
            "blobs/sha256/{}",
            image_a["config_digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        ),
    );
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
}

/// `cargo scratchimg --verify ARGS -o <work>/image.tar` on a fixture: success and stderr.
fn verify(name: &str, args: &[&str], work: &Path) -> (bool, String) {
    require_musl_target();
    let output = tool(&fixture(name))
        .arg("--verify")
        .args(args)
        .arg("-o")
        .arg(work.join("image.tar"))
        .arg("--target-dir")
        .arg(shared_target_dir(name))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn verify_passes_when_two_builds_agree() {
    let work = tempfile::tempdir().unwrap();
    let (ok, stderr) = verify("multi-bin", &["--bin", "server"], work.path());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("Verified"), "{stderr}");
}

#[test]
fn verify_fails_when_a_build_stamps_the_time() {
    let work = tempfile::tempdir().unwrap();
    let (ok, stderr) = verify("unreproducible", &[], work.path());
    assert!(!ok, "--verify passed:\n{stderr}");
    assert!(
        stderr.contains("error: the image is not reproducible"),
        "{stderr}"
    );
    assert!(stderr.contains("/app/unreproducible"), "{stderr}");
    assert!(
        !work.path().join("image.tar").exists(),
        "an unverified image was written"
    );
}

#[test]
fn rebuilds_are_byte_identical_and_share_the_base_layer() {
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    let target_dir = shared_target_dir("hello");
    let run = |name: &str, epoch: &str| {
        let output = work.path().join(name);
        let mut command = tool(&example("hello"));
        command
            .env("SOURCE_DATE_EPOCH", epoch)
            .args(["--message-format", "json", "-o"])
            .arg(&output)
            .arg("--target-dir")
            .arg(&target_dir);
        let result: serde_json::Value = serde_json::from_str(&run_ok(&mut command)).unwrap();
        (result, std::fs::read(output).unwrap())
    };
    let (first, first_bytes) = run("first.tar", "1600000000");
    let (second, second_bytes) = run("second.tar", "1600000000");
    assert_eq!(first["digest"], second["digest"]);
    assert!(
        first_bytes == second_bytes,
        "two runs wrote different archives"
    );

    let (later, _) = run("later.tar", "1700000000");
    assert_ne!(
        later["digest"], first["digest"],
        "SOURCE_DATE_EPOCH is part of the image"
    );
    assert_eq!(
        later["layers"][0]["digest"], first["layers"][0]["digest"],
        "the base layer does not depend on the date"
    );
    assert_ne!(later["layers"][1]["digest"], first["layers"][1]["digest"]);
}

#[test]
fn remapping_keeps_the_users_rustflags_and_wrapper() {
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    // A wrapper of the user's own (as sccache would be) and a rustc of the user's own, each
    // logging the calls it runs; the wrapper logs the variable sccache would hash first.
    let logging = |name: &str, said: &str, runs: &str| {
        let log = work.path().join(format!("{name}.log"));
        let script = work.path().join(name);
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"{said}$*\" >> '{}'\nexec {runs} \"$@\"\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        (script, log)
    };
    let (wrapper, wrapper_log) = logging("log-wrapper", "[$CARGO_SCRATCHIMG_REMAP] ", "");
    let (rustc, rustc_log) = logging("log-rustc", "", "rustc");
    let mut command = tool(&fixture("multi-bin"));
    command
        .env("RUSTC_WRAPPER", &wrapper)
        .env("RUSTC", &rustc)
        .env("RUSTFLAGS", "--cfg user_flag")
        .args(["--bin", "server", "-o"])
        .arg(work.path().join("server.tar"))
        .arg("--target-dir")
        .arg(work.path().join("target"));
    run_ok(&mut command);
    let call = |log: &Path| {
        let calls = std::fs::read_to_string(log).expect("the user's program ran");
        calls
            .lines()
            .find(|l| l.contains("--crate-name server"))
            .unwrap_or_else(|| panic!("no rustc call for the binary:\n{calls}"))
            .to_string()
    };
    // The wrapper runs the tool as rustc: it sees cargo's arguments alone, and what the
    // remapping makes of paths, with no path of this machine.
    let wrapped = call(&wrapper_log);
    let link = work.path().join("target/scratchimg/rustc");
    assert!(
        wrapped.starts_with("[/cargo /rustc/sysroot /rustup /target /workspace] ")
            && wrapped.contains(&format!(" {}/", link.display()))
            && wrapped.contains("--cfg user_flag")
            && !wrapped.contains("--remap-path-prefix"),
        "{wrapped}"
    );
    // rustc itself gets the remapping after the user's flags.
    let compiled = call(&rustc_log);
    assert!(compiled.contains("--cfg user_flag"), "{compiled}");
    assert!(
        compiled.contains(&format!(
            "--remap-path-prefix={}=/target",
            work.path().join("target").display()
        )),
        "{compiled}"
    );
}

#[test]
fn a_plain_cargo_build_first_does_not_bring_paths_back() {
    require_musl_target();
    let target_dir = shared_target_dir("events");
    // The user's own build of the same crates, with the same strip setting, in the same target
    // directory: its crates were compiled without our path remapping.
    let mut plain = Command::new("cargo");
    plain
        .args(["build", "--quiet", "--release", "--target"])
        .arg(scratchimg_tests::host_musl_target())
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(example("events"));
    if let Some(toolchain) = scratchimg_tests::test_toolchain() {
        plain.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    run_ok(&mut plain);
    let work = tempfile::tempdir().unwrap();
    let result: serde_json::Value = serde_json::from_str(&run_ok(
        tool(&example("events"))
            .args(["--message-format", "json", "-o"])
            .arg(work.path().join("events.tar"))
            .arg("--target-dir")
            .arg(&target_dir),
    ))
    .unwrap();
    let layer = work.path().join("app.tar.gz");
    let digest = result["layers"][1]["digest"].as_str().unwrap();
    std::fs::write(
        &layer,
        tar_member(
            &work.path().join("events.tar"),
            &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
        ),
    )
    .unwrap();
    let binary = tar_member(&layer, "app/events");
    let text = String::from_utf8_lossy(&binary);
    let home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap()));
    // The crates of events, not those of the prebuilt standard library, which are the toolchain's.
    // Panic locations are packed without separators, so look at what precedes each one.
    let mut seen = 0;
    for (at, _) in text.match_indices("/registry/src/") {
        let rest = &text[at..];
        let crate_dir = rest.split('/').nth(4).unwrap_or("");
        if !(crate_dir.starts_with("jiff-1.") || crate_dir.starts_with("serde_json-1.")) {
            continue;
        }
        seen += 1;
        let before = &text[..at];
        assert!(
            before.ends_with("/cargo") && !before.ends_with(&home),
            "the binary names {}{}",
            &before[before.len().saturating_sub(40)..],
            &rest[..rest.len().min(80)]
        );
    }
    assert!(
        seen > 0,
        "no source paths of jiff or serde_json in the binary"
    );
}

/// The symbol table `--strip debuginfo` keeps, and the debug info `--strip none` keeps, name no
/// path of the building machine: two copies at different paths give the same image.
#[test]
fn symbols_and_debug_info_kept_are_the_same_from_any_path() {
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    for strip in ["debuginfo", "none"] {
        let digests: Vec<serde_json::Value> = ["a", "bb/deeper"]
            .iter()
            .map(|at| {
                let dir = work.path().join(strip).join(at).join("panics");
                copy_tree(&fixture("panics"), &dir);
                let mut command = tool(&dir);
                command
                    .env("SOURCE_DATE_EPOCH", COMMIT_TIME)
                    .args(["--strip", strip, "--message-format", "json", "-o"])
                    .arg(dir.join("panics.tar"));
                serde_json::from_str::<serde_json::Value>(&run_ok(&mut command)).unwrap()["digest"]
                    .clone()
            })
            .collect();
        assert_eq!(digests[0], digests[1], "--strip {strip}");
    }
}
