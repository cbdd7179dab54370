//! Same source and toolchain, same bytes: across runs, and across clones at different paths.

use std::path::Path;
use std::process::Command;

use scratchimg_tests::{copy_tree, example, require_musl_target, run_ok, shared_target_dir, tool};

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

/// Builds the crate in `dir` with its own target directory; returns the JSON result.
fn build(dir: &Path, output: &Path, target_dir: &Path) -> serde_json::Value {
    let mut command = tool(dir);
    command
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["--message-format", "json", "-o"])
        .arg(output)
        .arg("--target-dir")
        .arg(target_dir);
    serde_json::from_str(&run_ok(&mut command)).unwrap()
}

#[test]
fn clones_at_different_paths_give_the_same_image() {
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    let origin = work.path().join("origin");
    copy_tree(&example("hello"), &origin);
    git(&origin, &["init", "-q"]);
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-q", "-m", "hello"]);
    let a = work.path().join("a");
    let b = work.path().join("somewhere/much/deeper/b");
    for clone in [&a, &b] {
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
    }
    let image_a = build(&a, &work.path().join("a.tar"), &a.join("target"));
    let image_b = build(&b, &work.path().join("b.tar"), &b.join("target"));
    assert_eq!(image_a["digest"], image_b["digest"]);
    let (tar_a, tar_b) = (
        std::fs::read(work.path().join("a.tar")).unwrap(),
        std::fs::read(work.path().join("b.tar")).unwrap(),
    );
    assert!(tar_a == tar_b, "the archives differ byte for byte");

    // The timestamp is the last commit's, not the wall clock's.
    let config = Command::new("tar")
        .arg("-xOf")
        .arg(work.path().join("a.tar"))
        .arg(format!(
            "blobs/sha256/{}",
            image_a["config_digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
        ))
        .output()
        .unwrap()
        .stdout;
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
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
