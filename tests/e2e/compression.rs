//! Layer compression with the real tools: zstd images that podman loads and runs, skopeo copies
//! and the CNCF registry takes; `--load` without `-o`, which streams plain layers into docker and
//! podman and gives the image ID the compressed tar gives; Docker 20.10 with zstd; and a push
//! whose new layer goes up while it is compressed. The gzip images of every other e2e test are
//! the parallel compressor's too. Nothing is mocked and nothing skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{
    assert_hello_output, assert_success, example, fixture_copy, require_musl_target, require_tool,
    run_ok, shared_target_dir, tool,
};

/// `cargo scratchimg` on examples/hello with `args`, JSON on stdout: the result and stderr.
fn hello(args: &[&str], env: &[(&str, &str)]) -> (serde_json::Value, String) {
    require_musl_target();
    let mut command = tool(&example("hello"));
    command
        .arg("--target-dir")
        .arg(shared_target_dir("hello"))
        .args(["--message-format", "json"])
        .args(args)
        .env_remove("SCRATCHIMG_REPO");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    assert_success(&command, &output);
    let result = serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    (result, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// The media types of a manifest's layers, as skopeo reads them from `reference`.
fn layer_media_types(reference: &str) -> Vec<String> {
    let raw =
        run_ok(Command::new("skopeo").args(["inspect", "--tls-verify=false", "--raw", reference]));
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}

const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

#[test]
fn zstd_images_run_in_podman_copy_with_skopeo_and_push_to_the_registry() {
    require_tool("podman", &["--version"]);
    require_tool("skopeo", &["--version"]);
    let dir = tempfile::tempdir().unwrap();
    let archive = path(dir.path(), "hello-zstd.tar");
    let tag = "scratchimg-e2e/hello:zstd";
    let (result, _) = hello(&["-t", tag, "--compression", "zstd", "-o", &archive], &[]);
    assert_eq!(result["compression"], "zstd:3");
    let oci = format!("oci-archive:{archive}");
    assert_eq!(layer_media_types(&oci), [ZSTD, ZSTD]);

    let loaded = run_ok(Command::new("podman").args(["load", "-i", &archive]));
    assert!(loaded.contains(&format!("docker.io/{tag}")), "{loaded}");
    let image_id =
        run_ok(Command::new("podman").args(["image", "inspect", "--format", "{{.Id}}", tag]));
    assert_eq!(
        format!("sha256:{}", image_id.trim()),
        result["config_digest"]
    );
    assert_hello_output(&run_ok(Command::new("podman").args([
        "run",
        "--rm",
        "-e",
        "TZ=Asia/Tokyo",
        &format!("docker.io/{tag}"),
    ])));
    let _ = Command::new("podman").args(["rmi", "-f", tag]).output();

    // skopeo reads the zstd layers and checks each blob's digest on the way.
    let copied = path(dir.path(), "copied");
    run_ok(Command::new("skopeo").args(["copy", &oci, &format!("oci:{copied}:zstd")]));
    assert_eq!(
        layer_media_types(&format!("oci:{copied}:zstd")),
        [ZSTD, ZSTD]
    );

    // The registry takes them from us, and gives back what skopeo copies and checks.
    let registry = Registry::start(Settings::default());
    let reference = format!("{}/scratchimg-e2e/zstd:v1", registry.host);
    let (pushed, _) = hello(
        &["-t", tag, "--compression", "zstd", "--push", &reference],
        &[],
    );
    assert_eq!(
        pushed["digest"], result["digest"],
        "the same image as the tar's"
    );
    let remote = format!("docker://{reference}");
    assert_eq!(layer_media_types(&remote), [ZSTD, ZSTD]);
    let pulled = path(dir.path(), "pulled");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{pulled}:zstd"),
    ]));
}

/// `--load` alone writes nothing and compresses nothing: each engine gets the plain layers,
/// and names the image by the same config digest as the compressed tar loaded with `load -i`.
#[test]
fn a_load_without_output_gives_the_image_id_of_the_compressed_tar() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    require_tool("podman", &["--version"]);
    let dir = tempfile::tempdir().unwrap();
    for engine in ["docker", "podman"] {
        let tag = format!("scratchimg-e2e/hello:plain-{engine}");
        let qualified = format!("docker.io/{tag}");
        let id = || {
            let id = run_ok(
                Command::new(engine).args(["image", "inspect", "--format", "{{.Id}}", &qualified]),
            );
            let id = id.trim().to_string();
            if id.starts_with("sha256:") {
                id
            } else {
                format!("sha256:{id}")
            }
        };
        let remove = || {
            let _ = Command::new(engine)
                .args(["rmi", "-f", &qualified])
                .output();
        };
        remove();
        let (loaded, stderr) = hello(&["-t", &tag, &format!("--load={engine}"), "-v"], &[]);
        assert_eq!(
            loaded["path"],
            serde_json::Value::Null,
            "no file without -o"
        );
        assert_eq!(loaded["compression"], serde_json::Value::Null);
        assert!(stderr.contains("uncompressed (loaded only)"), "{stderr}");
        assert!(
            !stderr.contains("Cache made layer") && !stderr.contains("Cache reused layer"),
            "no layer was compressed: {stderr}"
        );
        assert_eq!(id(), loaded["config_digest"]);
        assert_hello_output(&run_ok(Command::new(engine).args([
            "run",
            "--rm",
            "-e",
            "TZ=Asia/Tokyo",
            &qualified,
        ])));
        remove();

        let archive = path(dir.path(), &format!("{engine}.tar"));
        let (written, _) = hello(&["-t", &tag, "-o", &archive], &[]);
        assert_eq!(written["config_digest"], loaded["config_digest"]);
        run_ok(Command::new(engine).args(["load", "-i", &archive]));
        assert_eq!(id(), loaded["config_digest"], "{engine}: the same image ID");
        remove();
    }
}

/// Docker 20.10 (the engine here) reads no zstd: the load warns and gives it plain layers.
#[test]
fn docker_before_23_gets_a_warning_and_plain_layers_for_zstd() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    let version =
        run_ok(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]));
    let major: u32 = version.trim().split('.').next().unwrap().parse().unwrap();
    assert!(
        major < 23,
        "this test needs a Docker engine older than 23, not {version}"
    );
    let dir = tempfile::tempdir().unwrap();
    let tag = "scratchimg-e2e/hello:zstd-docker";
    let archive = path(dir.path(), "zstd.tar");
    let (result, stderr) = hello(
        &[
            "-t",
            tag,
            "--compression",
            "zstd",
            "--load=docker",
            "-o",
            &archive,
        ],
        &[],
    );
    assert!(
        stderr.contains(&format!(
            "warning: docker {} reads no zstd layers",
            version.trim()
        )),
        "{stderr}"
    );
    assert_eq!(
        result["compression"], "zstd:3",
        "the tar keeps its zstd layers"
    );
    let id = run_ok(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", tag]));
    assert_eq!(id.trim(), result["config_digest"]);
    assert_hello_output(&run_ok(Command::new("docker").args([
        "run",
        "--rm",
        "-e",
        "TZ=Asia/Tokyo",
        tag,
    ])));
    let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
}

/// A workspace's images loaded into Docker 20.10 with zstd: one warning for the run, naming
/// them, not one per image.
#[test]
fn a_workspace_loaded_with_zstd_is_warned_about_once() {
    require_musl_target();
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    let ws = fixture_copy("workspace");
    let mut command = tool(ws.path());
    command
        .args(["--workspace", "--compression", "zstd", "--load=docker"])
        .arg("--target-dir")
        .arg(shared_target_dir("workspace"));
    let output = command.output().unwrap();
    let removed = Command::new("docker")
        .args(["rmi", "-f", "api:0.1.0", "worker:0.1.0"])
        .output();
    assert_success(&command, &output);
    removed.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("reads no zstd layers"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("the same images (api, worker)"),
        "{stderr}"
    );
}

/// A layer no run compressed before (a new timestamp makes one without rebuilding) goes up
/// while it is compressed; the registry has exactly the image the tar holds.
#[test]
fn a_new_layer_is_uploaded_while_it_is_compressed() {
    require_tool("skopeo", &["--version"]);
    let registry = Registry::start(Settings::default());
    let dir = tempfile::tempdir().unwrap();
    // Seconds no other run of this test used: the app layer's tar is new.
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    let epoch = epoch.to_string();
    let reference = format!("{}/scratchimg-e2e/early:v1", registry.host);
    let archive = path(dir.path(), "early.tar");
    let (result, stderr) = hello(
        &["--push", &reference, "-o", &archive, "-v"],
        &[("SOURCE_DATE_EPOCH", &epoch)],
    );
    let app = result["layers"][1]["digest"].as_str().unwrap();
    assert!(
        stderr.contains(&format!(
            "Uploaded {app} to {}/scratchimg-e2e/early while it was compressed",
            registry.host
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Cache made layer"), "{stderr}");
    let inspect: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])))
    .unwrap();
    assert_eq!(inspect["Digest"], result["digest"]);
    // skopeo checks every blob's digest as it copies them out.
    let pulled: PathBuf = dir.path().join("pulled");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:early", pulled.display()),
    ]));
    // The same again is a cache hit: nothing is compressed, and nothing goes up early.
    let (_, again) = hello(
        &["--push", &reference, "-v"],
        &[("SOURCE_DATE_EPOCH", &epoch)],
    );
    assert!(!again.contains("while it was compressed"), "{again}");
    assert!(again.contains("Cache reused layer"), "{again}");
}
