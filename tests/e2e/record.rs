//! `--metadata-file`: the run's record, read back and checked against what the registry holds
//! (skopeo, and the registry's own manifests), for a multi-platform push with signing and for
//! a `--workspace` run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::attest::{get, get_json, keys, sha256_hex};
use scratchimg_tests::push::{Home, hello_push, push_command};
use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{assert_success, fixture, require_tool, run_ok, shared_target_dir};

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// What skopeo reads of `reference`: the raw manifest (an image's or an index's) and its
/// digest.
fn skopeo_raw(reference: &str) -> (serde_json::Value, String) {
    require_tool("skopeo", &["--version"]);
    let mut command = Command::new("skopeo");
    command
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"));
    let output = command.output().unwrap();
    assert_success(&command, &output);
    let digest = format!("sha256:{}", sha256_hex(&output.stdout));
    (serde_json::from_slice(&output.stdout).unwrap(), digest)
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap()
}

#[test]
fn a_signed_multi_platform_push_is_recorded_as_the_registry_holds_it() {
    let registry = Registry::start(Settings::default());
    let home = Home::new();
    let work = tempfile::tempdir().unwrap();
    let (key, _) = keys(work.path(), "ec-record");
    let repo = "scratchimg-e2e/record";
    let reference = format!("{}/{repo}:v1", registry.host);
    let archive = work.path().join("hello.tar");
    let record_file = work.path().join("build.json");
    let mut command = hello_push(&home, &["--platform", "linux/amd64,linux/arm64", "--push"]);
    command
        .arg(&reference)
        .arg("--sign-key")
        .arg(&key)
        .arg("-o")
        .arg(&archive)
        .arg("--metadata-file")
        .arg(&record_file);
    let output = command.output().unwrap();
    assert_success(&command, &output);
    let record = read_json(&record_file);
    let images = record["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{record:#}");
    let image = &images[0];

    // The index and each platform's manifest, as the registry holds them.
    let (index, digest) = skopeo_raw(&reference);
    assert_eq!(image["digest"], digest);
    assert_eq!(
        strings(&record["pushed"]),
        [format!("{reference}@{digest}")]
    );
    assert_eq!(record["pushed"], image["pushed"]);
    assert_eq!(image["tags"], serde_json::json!(["hello:0.1.0"]));
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let variant = p["variant"]
                .as_str()
                .map(|v| format!("/{v}"))
                .unwrap_or_default();
            let name = format!(
                "{}/{}{variant}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            (name, m["digest"].as_str().unwrap().to_string())
        })
        .collect();
    let recorded: Vec<(String, String)> = image["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["platform"].as_str().unwrap().to_string(),
                i["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(recorded, platforms);
    for platform in image["images"].as_array().unwrap() {
        let manifest = get_json(
            &registry.host,
            &format!("{repo}/manifests/{}", platform["digest"].as_str().unwrap()),
        );
        assert_eq!(manifest["config"]["digest"], platform["config_digest"]);
    }

    // Every referrer is in the registry, with the type recorded, about the index or one of its
    // images; the signatures, SBOMs and provenance of each are there.
    let subjects: BTreeSet<String> = std::iter::once(digest.clone())
        .chain(recorded.iter().map(|(_, d)| d.clone()))
        .collect();
    let referrers = image["referrers"].as_array().unwrap();
    let mut kinds = BTreeSet::new();
    for referrer in referrers {
        let at = referrer["digest"].as_str().unwrap();
        let bytes = get(&registry.host, &format!("{repo}/manifests/{at}"))
            .unwrap_or_else(|| panic!("the registry has no {at}"));
        assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), at);
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(manifest["artifactType"], referrer["artifact_type"]);
        assert_eq!(manifest["subject"]["digest"], referrer["subject"]);
        assert!(subjects.contains(referrer["subject"].as_str().unwrap()));
        kinds.insert((
            referrer["subject"].as_str().unwrap().to_string(),
            referrer["kind"].as_str().unwrap().to_string(),
        ));
    }
    for subject in &subjects {
        for kind in ["signature", "sbom", "provenance"] {
            assert!(
                kinds.contains(&(subject.clone(), kind.to_string())),
                "no {kind} of {subject}: {referrers:#?}"
            );
        }
    }

    // Every file written is listed, and is there.
    let files: Vec<PathBuf> = serde_json::from_value(record["files"].clone()).unwrap();
    assert_eq!(files[0], archive);
    assert_eq!(
        files.len(),
        4,
        "the tar, an SBOM per platform, the provenance: {files:?}"
    );
    assert!(files.iter().all(|f| f.is_file()), "{files:?}");
    assert_eq!(image["path"].as_str(), archive.to_str());
}

#[test]
fn a_workspace_run_records_every_image_as_pushed() {
    let registry = Registry::start(Settings::default());
    let home = Home::new();
    let work = tempfile::tempdir().unwrap();
    let record_file = work.path().join("build.json");
    let mut command = push_command(
        &home,
        &fixture("workspace"),
        &shared_target_dir("workspace"),
        &["--workspace", "--push", "--metadata-file"],
    );
    command.arg(&record_file).env(
        "SCRATCHIMG_REPO",
        format!("{}/scratchimg-e2e", registry.host),
    );
    let stdout = run_ok(&mut command);
    let record = read_json(&record_file);
    let images = record["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{record:#}");
    let mut pushed = Vec::new();
    for (image, name) in images.iter().zip(["api", "worker"]) {
        let reference = format!("{}/scratchimg-e2e/{name}:0.1.0", registry.host);
        let (_, digest) = skopeo_raw(&reference);
        assert_eq!(image["digest"], digest, "{name}");
        assert_eq!(strings(&image["pushed"]), [format!("{reference}@{digest}")]);
        assert!(image["path"].is_null() && image["files"] == serde_json::json!([]));
        pushed.extend(strings(&image["pushed"]));
    }
    assert_eq!(strings(&record["pushed"]), pushed);
    // The same references stdout gave, one per line.
    assert_eq!(stdout.lines().collect::<Vec<_>>(), pushed);
    assert_eq!(record["files"], serde_json::json!([]));
}
