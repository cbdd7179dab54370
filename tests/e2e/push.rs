//! `--push` against the real CNCF distribution registry (`docker-registry`) on loopback: what
//! it pushes, skopeo and docker pull back; TLS with a test CA and htpasswd basic auth with
//! credentials from a Docker config; which blobs a repeat push uploads, counted by a proxy; and
//! several registries, one refusing. Registries that misbehave are in `registry_faults.rs`.
//! Nothing is mocked and nothing skips.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use scratchimg_tests::proxy::{Fault, Proxy};
use scratchimg_tests::push::{
    Home, assert_no_tag, behind_proxy, hello_push, push_command, pushed, refused, skopeo_digest,
};
use scratchimg_tests::registry::{PASSWORD, Registry, Settings, TestCa, USER};
use scratchimg_tests::{
    assert_hello_output, copy_tree, example, require_tool, run_ok, shared_target_dir,
};

#[test]
fn anonymous_push_is_what_skopeo_and_docker_pull_back() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    let registry = Registry::start(Settings::default());
    let home = Home::new();
    let repository = format!("{}/scratchimg-e2e/hello", registry.host);
    let (result, stderr) = pushed(&mut hello_push(
        &home,
        &[
            "-t",
            "scratchimg-e2e/hello:anonymous",
            "--push",
            &repository,
        ],
    ));
    let digest = result["digest"].as_str().unwrap();
    let reference = format!("{repository}:anonymous");
    assert_eq!(
        result["pushed"],
        serde_json::json!([format!("{reference}@{digest}")])
    );
    assert_eq!(
        result["path"],
        serde_json::Value::Null,
        "--push alone writes no file"
    );
    assert!(
        stderr.contains(&format!("Pushed {reference}@{digest}")),
        "{stderr}"
    );

    // The registry holds our exact manifest, and skopeo copies it back unchanged.
    assert_eq!(skopeo_digest(&format!("docker://{reference}"), &[]), digest);
    let copy = tempfile::tempdir().unwrap();
    let archive = copy.path().join("copy.tar");
    run_ok(
        Command::new("skopeo")
            .args([
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{reference}"),
            ])
            .arg(format!("oci-archive:{}", archive.display())),
    );
    assert_eq!(
        skopeo_digest(&format!("oci-archive:{}", archive.display()), &[]),
        digest
    );

    // Docker pulls it from the loopback registry (insecure by default there) and runs it.
    run_ok(Command::new("docker").args(["pull", "-q", &reference]));
    let id = run_ok(
        Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &reference]),
    );
    assert_eq!(id.trim(), result["config_digest"]);
    let stdout =
        run_ok(Command::new("docker").args(["run", "--rm", "-e", "TZ=Asia/Tokyo", &reference]));
    assert_hello_output(&stdout);
    run_ok(Command::new("docker").args(["rmi", "-f", &reference]));

    // Human output: the path only when -o is given, then one `REF@digest` line per tag.
    let out = copy.path().join("also.tar");
    let mut command = hello_push(
        &home,
        &[
            "-t",
            "scratchimg-e2e/hello:anonymous",
            "--push",
            &format!("{reference}-2"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let stdout = run_ok(&mut command);
    assert_eq!(
        stdout,
        format!("{}\n{reference}-2@{digest}\n", out.display())
    );
    assert!(out.exists());
}

#[test]
fn tls_and_basic_auth_with_credentials_from_docker_config() {
    let home = Home::new();
    let ca = TestCa::new(home.path());
    let registry = Registry::start(Settings {
        tls: Some(&ca),
        htpasswd: true,
        ..Settings::default()
    });
    let host = &registry.host;
    let reference = format!("{host}/scratchimg-e2e/private:tls");
    let ca_file = ca.ca.to_str().unwrap();
    let push = |env: &[(&str, &Path)], extra: &[&str]| {
        let mut command = hello_push(&home, &[&["--push", &reference][..], extra].concat());
        for (name, value) in env {
            command.env(name, value);
        }
        command
    };

    // Without credentials: a clear 401 naming every place looked, before anything is built.
    let stderr = refused(&mut push(&[], &["--registry-ca", ca_file]));
    assert!(
        stderr.contains(&format!(
            "error: registry {host} needs credentials (401 Unauthorized to GET /v2/) and none were found for it"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("looked in: --registry-user (not given); $REGISTRY_AUTH_FILE (not set); "),
        "{stderr}"
    );
    assert!(
        stderr.contains("no-docker-config/config.json (no such file)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "help: log in with `docker login {host}` or `podman login {host}`"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("Compiling") && !stderr.contains("Finished"),
        "{stderr}"
    );

    // Credentials from the Docker config, and the test CA: pushed.
    let good = home.docker_config("docker-good", host, USER, PASSWORD);
    let (result, _) = pushed(&mut push(
        &[("DOCKER_CONFIG", &good)],
        &["--registry-ca", ca_file],
    ));
    let digest = result["digest"].as_str().unwrap();
    assert_eq!(result["pushed"][0], format!("{reference}@{digest}"));
    let creds = format!("--creds={USER}:{PASSWORD}");
    assert_eq!(
        skopeo_digest(&format!("docker://{reference}"), &[&creds]),
        digest
    );

    // A wrong password: the source is named, the secret is not printed.
    let bad = home.docker_config("docker-bad", host, USER, "wrong-Secret-9");
    let stderr = refused(&mut push(
        &[("DOCKER_CONFIG", &bad)],
        &["--registry-ca", ca_file],
    ));
    assert!(
        stderr.contains(&format!(
            "registry {host} refused the credentials from {} (auths)",
            bad.join("config.json").display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-Secret-9") && !stderr.contains(PASSWORD),
        "{stderr}"
    );

    // The test CA not given: the certificate is not trusted, and --registry-ca is suggested.
    let stderr = refused(&mut push(&[("DOCKER_CONFIG", &good)], &[]));
    assert!(
        stderr.contains(&format!(
            "error: the TLS certificate of registry {host} is not trusted"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--registry-ca FILE"), "{stderr}");

    // podman's REGISTRY_AUTH_FILE, same format.
    let podman = home
        .docker_config("podman", host, USER, PASSWORD)
        .join("config.json");
    let (result, _) = pushed(&mut push(
        &[("REGISTRY_AUTH_FILE", &podman)],
        &["--registry-ca", ca_file],
    ));
    assert_eq!(result["digest"], digest);

    // CI style: --registry-user and the password on stdin.
    let mut command = push(
        &[],
        &[
            "--registry-ca",
            ca_file,
            "--registry-user",
            USER,
            "--registry-password-stdin",
        ],
    );
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let output = child.wait_with_output().unwrap();
    scratchimg_tests::assert_success(&command, &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

/// Lines of `main.rs` replaced to change the code and nothing else.
fn edit_code(project: &Path) {
    let main = project.join("src/main.rs");
    let code = std::fs::read_to_string(&main).unwrap();
    let edited = code.replace("println!(\"cwd: {}\"", "println!(\"cwd (edited): {}\"");
    assert_ne!(code, edited, "the edit applies");
    std::fs::write(&main, edited).unwrap();
}

#[test]
fn repeat_pushes_upload_only_what_changed() {
    let registry = Registry::start(Settings::default());
    let proxy = Proxy::start(&registry.host, Fault::None);
    let home = Home::new();
    let project = tempfile::Builder::new()
        .prefix("scratchimg-edit-")
        .tempdir()
        .unwrap();
    copy_tree(&example("hello"), project.path());
    let target_dir = shared_target_dir("hello-edit");
    let repository = format!("{}/scratchimg-e2e/edit", proxy.host);
    let push = |repository: &str| {
        proxy.reset();
        pushed(&mut push_command(
            &home,
            project.path(),
            &target_dir,
            // The image alone: attestations are counted in attest.rs.
            &["-t", "edit:v1", "--push", repository, "--attach", "none"],
        ))
    };

    let (first, _) = push(&repository);
    assert_eq!(
        proxy.blob_uploads(),
        3,
        "config and both layers: {:#?}",
        proxy.requests()
    );

    let (again, _) = push(&repository);
    assert_eq!(again["digest"], first["digest"]);
    assert_eq!(
        proxy.blob_uploads(),
        0,
        "nothing uploaded again: {:#?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count(&["PUT ", "/manifests/v1"]),
        1,
        "the tag is put again"
    );

    edit_code(project.path());
    let (edited, _) = push(&repository);
    assert_ne!(edited["digest"], first["digest"]);
    assert_eq!(
        edited["layers"][0]["digest"], first["layers"][0]["digest"],
        "same base layer"
    );
    assert_ne!(edited["layers"][1]["digest"], first["layers"][1]["digest"]);
    assert_eq!(
        proxy.blob_uploads(),
        2,
        "binary layer and config only: {:#?}",
        proxy.requests()
    );
    for blob in [&edited["config_digest"], &edited["layers"][1]["digest"]] {
        let blob = blob.as_str().unwrap();
        assert_eq!(
            proxy.count(&["PUT ", &format!("digest={blob}")]),
            1,
            "{blob}"
        );
    }
    assert_eq!(proxy.count(&["PUT ", "/manifests/v1"]), 1);

    // Another repository of the same registry mounts the base layer instead of uploading it.
    let other = format!("{}/scratchimg-e2e/other", proxy.host);
    let (_, stderr) = push(&other);
    assert!(stderr.contains("Mounted sha256:"), "{stderr}");
    assert_eq!(
        proxy.count(&["POST ", "mount=", "from=scratchimg-e2e%2Fedit"]),
        1,
        "{:#?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.blob_uploads(),
        2,
        "config and binary layer: {:#?}",
        proxy.requests()
    );
    assert_eq!(
        skopeo_digest(
            &format!("docker://{}/scratchimg-e2e/other:v1", registry.host),
            &[]
        ),
        edited["digest"].as_str().unwrap()
    );
}

/// Two registries, one of which refuses the manifest: the push fails, and stdout still lists
/// the reference that was pushed, so a script knows what is in the registry; the refusing one
/// got no tag.
#[test]
fn when_one_of_several_registries_fails_stdout_lists_what_was_pushed() {
    const DENIED: &str = r#"{"errors":[{"code":"DENIED","message":"tag limit reached"}]}"#;
    let good = Registry::start(Settings::default());
    let (refusing, proxy, home) = behind_proxy(Fault::AnswerOnce(400, DENIED));
    let pushed_ref = format!("{}/scratchimg-e2e/partial:v1", good.host);
    let refused_ref = format!("{}/scratchimg-e2e/partial:v1", proxy.host);
    // The image alone: the refused PUT is the tag's, not an attestation's.
    let output = hello_push(
        &home,
        &[
            "--attach",
            "none",
            "--push",
            &pushed_ref,
            "--push",
            &refused_ref,
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let digest = lines[0]
        .strip_prefix(&format!("{pushed_ref}@"))
        .unwrap_or_else(|| panic!("stdout names {pushed_ref}: {stdout}"));
    assert!(digest.starts_with("sha256:"), "{stdout}");
    assert!(
        stderr.contains(&format!("Pushed {pushed_ref}@{digest}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "error: could not push the manifest of {refused_ref}\n\nCaused by:\n  registry {} answered 400 Bad Request to PUT of the manifest in scratchimg-e2e/partial, saying \"DENIED: tag limit reached\"",
            proxy.host
        )),
        "{stderr}"
    );
    assert_eq!(
        skopeo_digest(&format!("docker://{pushed_ref}"), &[]),
        digest
    );
    assert_no_tag(&format!("{}/scratchimg-e2e/partial:v1", refusing.host));
}
