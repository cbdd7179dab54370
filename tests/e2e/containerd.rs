//! Multi-platform images in containerd's store, as k3s, kind, nerdctl and Docker 29's
//! containerd store keep them: `ctr images import` of the tar names the index as the tag says
//! and unpacks this machine's platform (all of them with `--all-platforms`), `ctr run` runs it;
//! the OCI directory names the index the same way; `--load=containerd` imports the index
//! itself, with the digest a push gives; attestations in the layout make no images.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use scratchimg_tests::containerd::{DOCKERS_CONTAINERD, Namespace, ctr};
use scratchimg_tests::{
    assert_hello_output, example, require_musl_target, require_tool, run_ok, shared_target_dir,
    tool,
};

const TAG: &str = "scratchimg-e2e/hello:ctr";
const NAME: &str = "docker.io/scratchimg-e2e/hello:ctr";

/// examples/hello for both platforms, as a tar and as an OCI directory, with its attestations
/// in both: shared by the tests of this file.
struct Built {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    layout: PathBuf,
    /// The index's digest, and each platform's manifest digest, amd64 first.
    digest: String,
    platforms: Vec<String>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        require_musl_target();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("hello.tar");
        let layout = dir.path().join("hello-oci");
        let build = |output: &Path, format: &str| -> serde_json::Value {
            let stdout = run_ok(
                tool(&example("hello"))
                    .args(["--platform", "linux/amd64,linux/arm64", "-t", TAG])
                    .args([
                        "--attach",
                        "all",
                        "--message-format",
                        "json",
                        "--format",
                        format,
                    ])
                    .arg("-o")
                    .arg(output)
                    .arg("--target-dir")
                    .arg(shared_target_dir("hello")),
            );
            serde_json::from_str(&stdout).unwrap()
        };
        let result = build(&archive, "archive");
        assert_eq!(build(&layout, "oci-dir")["digest"], result["digest"]);
        let platforms = result["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["digest"].as_str().unwrap().to_string())
            .collect();
        Built {
            _dir: dir,
            archive,
            layout,
            digest: result["digest"].as_str().unwrap().to_string(),
            platforms,
        }
    })
}

fn namespace(test: &str) -> Namespace {
    require_tool("ctr", &["--address", DOCKERS_CONTAINERD, "version"]);
    Namespace(format!("scratchimg-e2e-{test}-{}", std::process::id()))
}

/// `ctr images ls`: each image's name, digest and platforms.
fn images(namespace: &Namespace) -> Vec<(String, String, String)> {
    run_ok(ctr(&namespace.0).args(["images", "ls"]))
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // REF TYPE DIGEST SIZE UNIT PLATFORMS LABELS
            (fields[0].into(), fields[2].into(), fields[5].into())
        })
        .collect()
}

/// The digests of the blobs containerd holds in the namespace for its images. An import writes
/// every blob of the tar, and containerd's garbage collection removes those no image needs
/// later, when it gets to it (seconds, or less, by the machine's load): a throwaway name
/// removed with `--sync` has it run first, and waits for it.
fn content(namespace: &Namespace) -> String {
    const THROWAWAY: &str = "scratchimg-e2e/collect:now";
    run_ok(ctr(&namespace.0).args(["images", "tag", "--force", NAME, THROWAWAY]));
    run_ok(ctr(&namespace.0).args(["images", "rm", "--sync", THROWAWAY]));
    run_ok(ctr(&namespace.0).args(["content", "ls", "--quiet"]))
}

fn import(namespace: &Namespace, archive: &Path, all_platforms: bool) -> String {
    let mut command = ctr(&namespace.0);
    command.args(["images", "import"]);
    if all_platforms {
        command.arg("--all-platforms");
    }
    run_ok(command.arg(archive))
}

#[test]
fn ctr_imports_the_index_by_name_and_runs_this_machines_platform() {
    let built = built();
    let namespace = namespace("import");
    let said = import(&namespace, &built.archive, false);
    assert!(
        said.contains(&format!("unpacking {NAME} ({})...done", built.digest)),
        "{said}"
    );
    assert_eq!(
        images(&namespace),
        [(
            NAME.to_string(),
            built.digest.clone(),
            "linux/amd64,linux/arm64/v8".to_string()
        )],
        "the index, named as the tag says; its referrers make no image"
    );
    // This machine's platform is there, the other is not: as a pull without --all-platforms.
    let held = content(&namespace);
    let (amd64, arm64) = (&built.platforms[0], &built.platforms[1]);
    assert!(
        held.contains(amd64.as_str()) && !held.contains(arm64.as_str()),
        "{held}"
    );
    let id = format!("scratchimg-e2e-ctr-{}", std::process::id());
    let ran = run_ok(ctr(&namespace.0).args(["run", "--rm", "--env", "TZ=Asia/Tokyo", NAME, &id]));
    assert_hello_output(&ran);

    // With --all-platforms, every platform's manifest and layers.
    run_ok(ctr(&namespace.0).args(["images", "rm", "--sync", NAME]));
    import(&namespace, &built.archive, true);
    let held = content(&namespace);
    assert!(
        held.contains(amd64.as_str()) && held.contains(arm64.as_str()),
        "{held}"
    );
    let check = run_ok(ctr(&namespace.0).args(["images", "check"]));
    assert!(check.contains("complete"), "{check}");
}

/// The directory's `index.json` is the tar's: one name for the index, and the attestations
/// marked as containerd marks referrers. A tar of the directory imports the same.
#[test]
fn the_oci_directory_names_the_index_as_the_tar_does() {
    let built = built();
    let from_tar = run_ok(
        Command::new("tar")
            .arg("-xOf")
            .arg(&built.archive)
            .arg("index.json"),
    );
    let in_dir = std::fs::read_to_string(built.layout.join("index.json")).unwrap();
    assert_eq!(from_tar, in_dir);
    let index: serde_json::Value = serde_json::from_str(&in_dir).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries[0]["annotations"]["io.containerd.image.name"], NAME);
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "ctr"
    );
    assert!(entries.len() > 1, "the attestations are listed too");
    for referrer in &entries[1..] {
        let subject = referrer["annotations"]["io.containerd.manifest.subject"]
            .as_str()
            .unwrap();
        assert!(
            subject == built.digest || built.platforms.iter().any(|p| p == subject),
            "{referrer}"
        );
    }
    let namespace = namespace("oci-dir");
    let tarred = built.layout.with_extension("tar");
    run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&tarred)
            .arg("-C")
            .arg(&built.layout)
            .arg("."),
    );
    import(&namespace, &tarred, false);
    let listed: Vec<String> = images(&namespace)
        .into_iter()
        .map(|(name, ..)| name)
        .collect();
    assert_eq!(listed, [NAME]);
}

/// `--load=containerd` of an index imports the index itself: the image has the digest a push
/// of the same build gives, and runs this machine's platform.
#[test]
fn load_into_containerd_keeps_the_index() {
    let built = built();
    let namespace = namespace("load");
    let output = tool(&example("hello"))
        .args([
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            TAG,
            "--load=containerd",
        ])
        .args([
            "--containerd-namespace",
            &namespace.0,
            "--message-format",
            "json",
        ])
        .arg("--target-dir")
        .arg(shared_target_dir("hello"))
        .env("CONTAINERD_ADDRESS", DOCKERS_CONTAINERD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        result["digest"], built.digest,
        "compressed as for a file or a push"
    );
    assert_eq!(
        images(&namespace),
        [(
            NAME.to_string(),
            built.digest.clone(),
            "linux/amd64,linux/arm64/v8".to_string()
        )]
    );
    let id = format!("scratchimg-e2e-load-{}", std::process::id());
    let ran = run_ok(ctr(&namespace.0).args(["run", "--rm", "--env", "TZ=Asia/Tokyo", NAME, &id]));
    assert_hello_output(&ran);
}
