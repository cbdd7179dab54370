//! examples/hello built by cargo-scratchimg, then loaded and run by the real Docker engine and
//! podman, and read by skopeo and umoci. Nothing here is mocked, and nothing skips: a missing
//! engine fails the test with what to install.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use scratchimg_tests::{
    assert_hello_output, example, require_musl_target, require_tool, run_ok, shared_target_dir,
    tool,
};

/// One build of examples/hello, shared by the tests of this file.
struct Hello {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    layout: PathBuf,
    result: serde_json::Value,
}

const TAG: &str = "scratchimg-e2e/hello:engines";

fn hello() -> &'static Hello {
    static HELLO: OnceLock<Hello> = OnceLock::new();
    HELLO.get_or_init(|| {
        require_musl_target();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("hello.tar");
        let layout = dir.path().join("hello-oci");
        let build = |output: &Path, format: &str| {
            let stdout = run_ok(
                tool(&example("hello"))
                    .args([
                        "-t",
                        TAG,
                        "--message-format",
                        "json",
                        "--format",
                        format,
                        "-o",
                    ])
                    .arg(output)
                    .arg("--target-dir")
                    .arg(shared_target_dir("hello")),
            );
            serde_json::from_str::<serde_json::Value>(&stdout).expect("one JSON object on stdout")
        };
        let result = build(&archive, "archive");
        let dir_result = build(&layout, "oci-dir");
        assert_eq!(
            result["digest"], dir_result["digest"],
            "both formats hold the same image"
        );
        Hello {
            _dir: dir,
            archive,
            layout,
            result,
        }
    })
}

fn engine_run(engine: &str, image: &str) -> String {
    run_ok(Command::new(engine).args(["run", "--rm", "-e", "TZ=Asia/Tokyo", image]))
}

#[test]
fn docker_loads_and_runs_it() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    let hello = hello();
    let loaded = run_ok(
        Command::new("docker")
            .arg("load")
            .arg("-i")
            .arg(&hello.archive),
    );
    assert!(loaded.contains(&format!("Loaded image: {TAG}")), "{loaded}");
    assert_hello_output(&engine_run("docker", TAG));
    // Docker's image ID is the config digest.
    let id = run_ok(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", TAG]));
    assert_eq!(id.trim(), hello.result["config_digest"]);
    let config = run_ok(Command::new("docker").args([
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        TAG,
    ]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/app/hello"]));
    assert_eq!(config["WorkingDir"], "/home/nonroot");
}

#[test]
fn podman_loads_and_runs_it() {
    require_tool("podman", &["--version"]);
    let hello = hello();
    let loaded = run_ok(
        Command::new("podman")
            .arg("load")
            .arg("-i")
            .arg(&hello.archive),
    );
    assert!(
        loaded.contains(&format!("Loaded image: docker.io/{TAG}")),
        "{loaded}"
    );
    assert_hello_output(&engine_run("podman", &format!("docker.io/{TAG}")));
}

#[test]
fn load_flag_loads_into_each_engine() {
    require_musl_target();
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    require_tool("podman", &["--version"]);
    let dir = tempfile::tempdir().unwrap();
    for engine in ["docker", "podman"] {
        let tag = format!("scratchimg-e2e/hello:load-{engine}");
        let output = tool(&example("hello"))
            .args(["-t", &tag, &format!("--load={engine}"), "-o"])
            .arg(dir.path().join(format!("{engine}.tar")))
            .arg("--target-dir")
            .arg(shared_target_dir("hello"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("Loaded {tag} ({engine})"))
                || stderr.contains(&format!("docker.io/{tag} ({engine})")),
            "{stderr}"
        );
        assert_hello_output(&engine_run(engine, &format!("docker.io/{tag}")));
    }
}

#[test]
fn skopeo_reads_both_archive_formats() {
    require_tool("skopeo", &["--version"]);
    let hello = hello();
    for transport in ["oci-archive", "docker-archive"] {
        let reference = format!("{transport}:{}", hello.archive.display());
        let inspect: serde_json::Value = serde_json::from_str(&run_ok(
            Command::new("skopeo").args(["inspect", &reference]),
        ))
        .unwrap();
        assert_eq!(
            inspect["Architecture"],
            std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64")
        );
        assert_eq!(inspect["Os"], "linux");
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
        let config: serde_json::Value = serde_json::from_str(&run_ok(
            Command::new("skopeo").args(["inspect", "--config", &reference]),
        ))
        .unwrap();
        assert_eq!(
            config["config"]["Entrypoint"],
            serde_json::json!(["/app/hello"]),
            "{transport}"
        );
        assert_eq!(config["config"]["User"], "65532:65532", "{transport}");
        assert_eq!(
            config["config"]["Env"],
            serde_json::json!([
                "PATH=/app",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
            ])
        );
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
        if transport == "oci-archive" {
            assert_eq!(
                inspect["Digest"], hello.result["digest"],
                "the OCI index names our manifest"
            );
        }
    }
    let layout = format!("oci:{}", hello.layout.display());
    let inspect: serde_json::Value =
        serde_json::from_str(&run_ok(Command::new("skopeo").args(["inspect", &layout]))).unwrap();
    assert_eq!(inspect["Digest"], hello.result["digest"]);
}

#[test]
fn umoci_unpacks_the_files_with_their_modes_and_owners() {
    require_tool("umoci", &["--version"]);
    let hello = hello();
    let work = tempfile::tempdir().unwrap();
    // The archive's OCI layout, extracted, and the oci-dir output: the same files.
    let extracted = work.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&hello.archive)
            .arg("-C")
            .arg(&extracted),
    );
    for layout in [&extracted, &hello.layout] {
        let bundle = work.path().join(format!(
            "bundle-{}",
            layout.file_name().unwrap().to_string_lossy()
        ));
        run_ok(
            Command::new("umoci")
                .arg("unpack")
                .arg("--image")
                .arg(format!("{}:engines", layout.display()))
                .arg(&bundle),
        );
        let rootfs = bundle.join("rootfs");
        let stat = |path: &str| {
            let meta = std::fs::symlink_metadata(rootfs.join(path))
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            (meta.mode() & 0o7777, meta.uid(), meta.gid())
        };
        assert_eq!(stat("app/hello"), (0o755, 0, 0));
        assert_eq!(stat("home/nonroot"), (0o700, 65532, 65532));
        assert_eq!(stat("tmp"), (0o1777, 0, 0));
        assert_eq!(stat("root"), (0o700, 0, 0));
        assert_eq!(stat("etc/passwd"), (0o644, 0, 0));
        assert_eq!(stat("etc/group"), (0o644, 0, 0));
        assert_eq!(stat("etc/nsswitch.conf"), (0o644, 0, 0));
        assert_eq!(stat("etc/ssl/certs/ca-certificates.crt"), (0o644, 0, 0));
        assert_eq!(stat("usr/share/zoneinfo/Asia/Tokyo"), (0o644, 0, 0));
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
        assert!(passwd.contains("nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"));
        // zone aliases are hard links to one file
        let utc = std::fs::metadata(rootfs.join("usr/share/zoneinfo/UTC")).unwrap();
        assert!(utc.nlink() > 1, "UTC is a hard link");
        let top: Vec<String> = std::fs::read_dir(&rootfs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut top = top;
        top.sort();
        assert_eq!(
            top,
            ["app", "etc", "home", "root", "tmp", "usr"],
            "nothing else in the image"
        );
        let binary = std::fs::read(rootfs.join("app/hello")).unwrap();
        assert_eq!(&binary[..4], b"\x7fELF");
    }
}
