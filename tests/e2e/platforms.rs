//! Multi-platform images: one command builds linux/amd64 and linux/arm64 into an OCI index.
//! The arm64 binary is taken out of its layer and run under qemu (binfmt_misc is not
//! available here, so engines cannot run arm64 containers); the amd64 image runs in docker and
//! podman.

use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::{
    assert_amd64_then_arm64, bin_without_musl_cross_compilers, copy_tree, dependency_list, example,
    require_musl_target, require_tool, run_ok, rust_lld, shared_target_dir, tool,
};

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Builds `example` for both platforms into an archive; returns the JSON result.
fn build_both(dir: &Path, name: &str, archive: &Path) -> serde_json::Value {
    require_musl_target();
    let stdout = run_ok(
        tool(dir)
            .args([
                "--platform",
                "linux/amd64,linux/arm64",
                "--message-format",
                "json",
                "-t",
            ])
            .arg(format!("scratchimg-e2e/{name}:multi"))
            .arg("-o")
            .arg(archive)
            .arg("--target-dir")
            .arg(shared_target_dir(name)),
    );
    serde_json::from_str(&stdout).unwrap()
}

/// The path of `bin` taken out of the arm64 image's last layer, in an archive of an index (of
/// amd64 then arm64) or of the arm64 image alone.
fn arm64_binary(archive: &Path, bin: &str, work: &Path) -> PathBuf {
    let layout = work.join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(&layout),
    );
    let top = read_json(&layout.join("index.json"));
    let first = read_json(&blob(
        &layout,
        top["manifests"][0]["digest"].as_str().unwrap(),
    ));
    // An index of both platforms, or the arm64 image alone.
    let arm = match first["mediaType"].as_str() {
        Some("application/vnd.oci.image.index.v1+json") => {
            assert_amd64_then_arm64(&first);
            read_json(&blob(
                &layout,
                first["manifests"][1]["digest"].as_str().unwrap(),
            ))
        }
        _ => first,
    };
    let config = read_json(&blob(&layout, arm["config"]["digest"].as_str().unwrap()));
    assert_eq!(
        (config["architecture"].as_str(), config["variant"].as_str()),
        (Some("arm64"), Some("v8"))
    );
    let app = arm["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = work.join("arm64-rootfs");
    std::fs::create_dir_all(&out).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(blob(&layout, &app))
            .arg("-C")
            .arg(&out),
    );
    let binary = out.join("app").join(bin);
    let file = run_ok(Command::new("file").arg(&binary));
    assert!(
        file.contains("ARM aarch64") && file.contains("statically linked"),
        "{file}"
    );
    binary
}

#[test]
fn hello_for_both_platforms_without_c_code() {
    require_tool("qemu-aarch64-static", &["--version"]);
    require_tool("skopeo", &["--version"]);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("hello.tar");
    let result = build_both(&example("hello"), "hello", &archive);
    assert_eq!(result["images"].as_array().unwrap().len(), 2);

    // skopeo resolves the index to each platform's manifest.
    let raw: serde_json::Value = serde_json::from_str(&run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci-archive:{}", archive.display())),
    ))
    .unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    for arch in ["amd64", "arm64"] {
        let inspect: serde_json::Value = serde_json::from_str(&run_ok(
            Command::new("skopeo")
                .args(["inspect", "--override-arch", arch])
                .arg(format!("oci-archive:{}", archive.display())),
        ))
        .unwrap();
        assert_eq!(inspect["Architecture"], arch);
        assert_eq!(
            inspect["Layers"][0], result["layers"][0]["digest"],
            "one base layer blob for both platforms"
        );
    }

    let binary = arm64_binary(&archive, "hello", work.path());
    let out = run_ok(
        Command::new("qemu-aarch64-static")
            .arg(&binary)
            .env("TZ", "Asia/Tokyo")
            .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
    );
    assert!(
        out.contains("+09:00 (Asia/Tokyo)") && out.contains("certificates: "),
        "{out}"
    );

    // The same command again gives the same index.
    let again = build_both(&example("hello"), "hello", &work.path().join("again.tar"));
    assert_eq!(again["digest"], result["digest"]);
}

#[test]
fn amd64_part_of_the_index_runs_in_docker_and_podman() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    require_tool("podman", &["--version"]);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("hello.tar");
    build_both(&example("hello"), "hello", &archive);
    for (engine, name) in [
        ("docker", "scratchimg-e2e/hello:multi"),
        ("podman", "docker.io/scratchimg-e2e/hello:multi"),
    ] {
        run_ok(Command::new(engine).arg("load").arg("-i").arg(&archive));
        let arch = run_ok(Command::new(engine).args([
            "image",
            "inspect",
            "--format",
            "{{.Architecture}}",
            name,
        ]));
        assert_eq!(arch.trim(), "amd64", "{engine}");
        let out = run_ok(Command::new(engine).args(["run", "--rm", name]));
        assert!(
            out.contains("user: nonroot (uid 65532, gid 65532)"),
            "{engine}: {out}"
        );
    }
}

#[test]
fn fetch_with_c_code_for_both_platforms() {
    require_tool("qemu-aarch64-static", &["--version"]);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("fetch.tar");
    build_both(&example("fetch"), "fetch", &archive);
    let binary = arm64_binary(&archive, "fetch", work.path());
    // ring's C and assembly were cross-compiled: the TLS stack starts and loads its roots.
    let output = Command::new("qemu-aarch64-static")
        .arg(&binary)
        .arg("https://127.0.0.1:9/")
        .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("trusting ") && stderr.contains("CA certificates"),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

#[test]
fn c_code_without_a_cross_compiler_fails_before_building() {
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    let fetch = work.path().join("fetch");
    copy_tree(&example("fetch"), &fetch);
    // A PATH with cargo and the system but no musl cross compiler.
    let bin = work.path().join("bin");
    bin_without_musl_cross_compilers(&bin);
    let path = bin.display().to_string();
    let output = tool(&fetch)
        .args(["--platform", "linux/arm64", "-o"])
        .arg(work.path().join("out.tar"))
        .arg("--target-dir")
        .arg(work.path().join("target"))
        .env("PATH", path)
        .env_remove("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: cannot link for aarch64-unknown-linux-musl: no `aarch64-linux-musl-gcc` on PATH, and ring builds C code"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: or build with cargo-zigbuild"),
        "{stderr}"
    );
    assert!(!stderr.contains("Compiling"), "nothing was built: {stderr}");
    assert!(!work.path().join("out.tar").exists());
}

#[test]
fn the_index_pushes_and_resolves_per_platform() {
    use scratchimg_tests::registry::{Registry, Settings};
    require_musl_target();
    require_tool("skopeo", &["--version"]);
    let registry = Registry::start(Settings::default());
    let reference = format!("{}/scratchimg-e2e/hello:multi", registry.host);
    let push = || -> serde_json::Value {
        let stdout = run_ok(
            tool(&example("hello"))
                .args([
                    "--platform",
                    "all",
                    "--message-format",
                    "json",
                    "--push",
                    &reference,
                    "--target-dir",
                ])
                .arg(shared_target_dir("hello")),
        );
        serde_json::from_str(&stdout).unwrap()
    };
    let result = push();
    assert_eq!(
        result["pushed"],
        serde_json::json!([format!(
            "{reference}@{}",
            result["digest"].as_str().unwrap()
        )])
    );
    let docker_ref = format!("docker://{reference}");
    let raw: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &docker_ref,
    ])))
    .unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    for (arch, i) in [("amd64", 0), ("arm64", 1)] {
        let inspect: serde_json::Value =
            serde_json::from_str(&run_ok(Command::new("skopeo").args([
                "inspect",
                "--tls-verify=false",
                "--override-arch",
                arch,
                &docker_ref,
            ])))
            .unwrap();
        assert_eq!(inspect["Architecture"], arch);
        assert_eq!(
            raw["manifests"][i]["digest"], result["images"][i]["digest"],
            "{arch} resolves to its own manifest"
        );
        assert_eq!(raw["manifests"][i]["platform"]["architecture"], arch);
    }
    // The same command again: the same digests, nothing to upload.
    let again = push();
    assert_eq!(again["digest"], result["digest"]);
    assert_eq!(again["images"], result["images"]);
}

/// A cross build with no musl cross compiler falls back to rust-lld, and the binary still gets
/// its dependency list: rust-lld is a bare linker, so the list's flags go to it as `-u SYMBOL`
/// (`-Wl,--undefined=…` made it fail unless --no-auditable).
#[test]
fn a_cross_build_with_rust_lld_links_its_dependency_list() {
    require_musl_target();
    require_tool("qemu-aarch64-static", &["--version"]);
    let work = tempfile::tempdir().unwrap();
    let hello = work.path().join("hello");
    copy_tree(&example("hello"), &hello);
    let bin = work.path().join("bin");
    bin_without_musl_cross_compilers(&bin);
    std::os::unix::fs::symlink(rust_lld(), bin.join("rust-lld")).unwrap();
    let target_dir = shared_target_dir("hello-rust-lld");
    let output = tool(&hello)
        .args(["--platform", "linux/arm64", "-v", "-o"])
        .arg(work.path().join("hello.tar"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("PATH", &bin)
        .env_remove("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER")
        // The offline toolchain's libunwind names libdl and libpthread as dependent libraries,
        // which musl's libc.a holds: gcc ignores such names, lld looks for them.
        .env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
            "-Clink-arg=--no-dependent-libraries",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "Linking aarch64-unknown-linux-musl with CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld"
        ),
        "{stderr}"
    );
    let binary = target_dir.join("aarch64-unknown-linux-musl/scratchimg-release/hello");
    let list = dependency_list(&binary).expect("the rust-lld binary has its .dep-v0 section");
    let names: Vec<&str> = list["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"hello") && names.contains(&"jiff"),
        "{names:?}"
    );
    let out = run_ok(Command::new("qemu-aarch64-static").arg(&binary));
    assert!(out.contains("user: "), "{out}");
}

/// jemalloc learns the page size when it is configured: an arm64 build of a crate that links
/// tikv-jemalloc-sys gets `JEMALLOC_SYS_WITH_LG_PAGE=16`, so it runs on hosts with 4, 16 and
/// 64 KiB pages. jemalloc's own statistics, printed at exit under qemu, say which it chose; the
/// provenance records it, and `-v` says so.
#[test]
fn jemalloc_for_arm64_is_configured_for_64_kib_pages() {
    require_tool("qemu-aarch64-static", &["--version"]);
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("jemalloc.tar");
    let mut command = tool(&scratchimg_tests::fixture("jemalloc"));
    command
        .args([
            "--platform",
            "linux/arm64",
            "-v",
            "-t",
            "scratchimg-e2e/jemalloc:arm64",
            "-o",
        ])
        .arg(&archive)
        .arg("--target-dir")
        .arg(shared_target_dir("jemalloc"))
        .env_remove("JEMALLOC_SYS_WITH_LG_PAGE");
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Configuring aarch64-unknown-linux-musl with JEMALLOC_SYS_WITH_LG_PAGE=16"),
        "{stderr}"
    );
    let binary = arm64_binary(&archive, "jemalloc-app", work.path());
    // The crate is built with jemalloc's symbols prefixed, and so its variable.
    let run = Command::new("qemu-aarch64-static")
        .arg(&binary)
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    let stats = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && said == "jemalloc\n",
        "{said}{stats}"
    );
    assert!(stats.contains("\nPage size: 65536\n"), "{stats}");
    let provenance = read_json(&PathBuf::from(format!("{}.intoto.json", archive.display())));
    assert_eq!(
        provenance["predicate"]["buildDefinition"]["externalParameters"]["buildEnvironment"],
        serde_json::json!({ "aarch64-unknown-linux-musl": { "JEMALLOC_SYS_WITH_LG_PAGE": "16" } })
    );
}
