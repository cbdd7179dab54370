//! `cargo scratchimg index`: images built in separate runs (as on CI runners of each
//! architecture) merged into one index in a real registry.

use std::process::Command;

use scratchimg_tests::proxy::{Fault, Proxy};
use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{
    assert_amd64_then_arm64, example, hello_build, require_musl_target, require_tool, run_ok,
    shared_target_dir, tool,
};

fn index(host: &str, args: &[&str]) -> std::process::Output {
    index_to(&format!("{host}/scratchimg-e2e/hello:multi"), args)
}

/// `index --push reference` of `args`, its result in JSON.
fn index_to(reference: &str, args: &[&str]) -> std::process::Output {
    tool(&example("hello"))
        .args(["index", "--message-format", "json", "--push", reference])
        .args(args)
        .output()
        .unwrap()
}

/// [`index_to`] that succeeds: its JSON result, and what it said.
fn indexed(reference: &str, args: &[&str]) -> (serde_json::Value, String) {
    let output = index_to(reference, args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    (serde_json::from_slice(&output.stdout).unwrap(), stderr)
}

#[test]
fn an_amd64_push_and_an_arm64_tar_make_one_index() {
    require_musl_target();
    require_tool("skopeo", &["--version"]);
    let registry = Registry::start(Settings::default());
    let work = tempfile::tempdir().unwrap();
    let host = &registry.host;
    // Two runs, as two CI jobs: amd64 pushed, arm64 written to a tar.
    let amd64 = format!("{host}/scratchimg-e2e/hello:amd64");
    let pushed: serde_json::Value = serde_json::from_str(&run_ok(
        tool(&example("hello"))
            .args([
                "--platform",
                "linux/amd64",
                "--message-format",
                "json",
                "--push",
                &amd64,
                "--target-dir",
            ])
            .arg(shared_target_dir("hello")),
    ))
    .unwrap();
    let arm64_tar = work.path().join("hello-arm64.tar");
    let written: serde_json::Value = serde_json::from_str(&run_ok(
        tool(&example("hello"))
            .args([
                "--platform",
                "linux/arm64",
                "--message-format",
                "json",
                "-o",
            ])
            .arg(&arm64_tar)
            .arg("--target-dir")
            .arg(shared_target_dir("hello")),
    ))
    .unwrap();
    let tar = arm64_tar.display().to_string();
    let output = index(host, &[&amd64, &tar]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let reference = format!("{host}/scratchimg-e2e/hello:multi");
    assert_eq!(
        result["pushed"],
        serde_json::json!([format!(
            "{reference}@{}",
            result["digest"].as_str().unwrap()
        )])
    );

    let raw: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ])))
    .unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_amd64_then_arm64(&raw);
    assert_eq!(raw["manifests"][0]["digest"], pushed["digest"]);
    assert_eq!(raw["manifests"][1]["digest"], written["digest"]);
    let arm: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--override-arch",
        "arm64",
        &format!("docker://{reference}"),
    ])))
    .unwrap();
    assert_eq!(arm["Architecture"], "arm64");
    // The layers are the tar's arm64 image's: its app layer is not the amd64 one's.
    let layers = |result: &serde_json::Value| -> Vec<serde_json::Value> {
        result["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].clone())
            .collect()
    };
    assert_eq!(arm["Layers"].as_array().unwrap(), &layers(&written));
    assert_ne!(layers(&written), layers(&pushed));

    // The same sources again: the same index.
    let again = index(host, &[&tar, &amd64]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["digest"], result["digest"]);

    // Two images of one platform are refused, and nothing is tagged.
    let amd64_tar = work.path().join("hello-amd64.tar");
    run_ok(
        tool(&example("hello"))
            .args(["--platform", "linux/amd64", "-o"])
            .arg(&amd64_tar)
            .arg("--target-dir")
            .arg(shared_target_dir("hello")),
    );
    let duplicate = tool(&example("hello"))
        .args(["index", "--push"])
        .arg(format!("{host}/scratchimg-e2e/hello:dup"))
        .arg(&amd64)
        .arg(&amd64_tar)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&duplicate.stderr);
    assert_eq!(duplicate.status.code(), Some(1), "{stderr}");
    assert!(duplicate.stdout.is_empty());
    assert!(
        stderr.contains("error: two images are for linux/amd64: "),
        "{stderr}"
    );
    let tagged = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{host}/scratchimg-e2e/hello:dup"))
        .output()
        .unwrap();
    assert!(!tagged.status.success(), "no tag for a refused index");
}

/// An amd64 image pushed and named by digest (`REPO@sha256:…`) and an arm64 `--format oci-dir`
/// output make the index that the same images as a tag and a tar make, listing each platform
/// with its source's manifest; the same `index` again uploads no blob (counted by a proxy in
/// front of the registry) and pushes the same index.
#[test]
fn an_image_by_digest_and_an_oci_dir_make_the_index_a_tag_and_a_tar_make() {
    require_musl_target();
    require_tool("skopeo", &["--version"]);
    let registry = Registry::start(Settings::default());
    let proxy = Proxy::start(&registry.host, Fault::None);
    let work = tempfile::tempdir().unwrap();
    let host = &proxy.host;
    let amd64 = format!("{host}/scratchimg-e2e/bydigest:amd64");
    let pushed = hello_build("linux/amd64", &["--push", &amd64]);
    let arm64_dir = work.path().join("hello-arm64");
    let dir = arm64_dir.display().to_string();
    let written = hello_build("linux/arm64", &["--format", "oci-dir", "-o", &dir]);
    let arm64_tar = work.path().join("hello-arm64.tar");
    let tar = arm64_tar.display().to_string();
    let written_tar = hello_build("linux/arm64", &["-o", &tar]);
    assert_eq!(written["digest"], written_tar["digest"], "one arm64 image");

    let by_digest = format!(
        "{host}/scratchimg-e2e/bydigest@{}",
        pushed["digest"].as_str().unwrap()
    );
    let reference = format!("{host}/scratchimg-e2e/bydigest:multi");
    proxy.reset();
    let (result, _) = indexed(&reference, &[&by_digest, &dir]);
    let digest = result["digest"].as_str().unwrap();
    assert_eq!(
        result["pushed"],
        serde_json::json!([format!("{reference}@{digest}")])
    );
    assert_eq!(
        result["images"],
        serde_json::json!([
            {"platform": "linux/amd64", "digest": pushed["digest"], "source": by_digest},
            {"platform": "linux/arm64/v8", "digest": written["digest"], "source": dir},
        ])
    );
    assert!(
        proxy.blob_uploads() > 0,
        "the oci-dir's blobs were new: {:#?}",
        proxy.requests()
    );
    let raw: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{}/scratchimg-e2e/bydigest:multi", registry.host),
    ])))
    .unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_amd64_then_arm64(&raw);
    assert_eq!(raw["manifests"][0]["digest"], pushed["digest"]);
    assert_eq!(raw["manifests"][1]["digest"], written["digest"]);

    // The same command again: nothing uploaded, the same index.
    proxy.reset();
    let (again, stderr) = indexed(&reference, &[&by_digest, &dir]);
    assert_eq!(again["digest"], result["digest"]);
    assert_eq!(proxy.blob_uploads(), 0, "{:#?}", proxy.requests());
    assert_eq!(
        proxy.count(&["POST ", "/blobs/uploads/"]),
        0,
        "{:#?}",
        proxy.requests()
    );
    assert!(stderr.contains(": 0 blobs uploaded, "), "{stderr}");

    // The tag and the tar of the same images: the same index.
    let (from_tag, _) = indexed(
        &format!("{host}/scratchimg-e2e/bydigest:from-tag"),
        &[&amd64, &tar],
    );
    assert_eq!(from_tag["digest"], result["digest"]);
}
