//! Image settings from Cargo.toml and flags, seen by the real engines: examples/web's config as
//! `docker inspect` and `podman inspect` report it, its files inside the running container, a
//! private CA that lets examples/fetch verify a TLS server, a trimmed tz database, files seeded
//! into /tmp and the home folder that leave both writable, and the images of a workspace.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use scratchimg_tests::{
    Background, copy_tree, example, fixture_copy, free_port, layer_entries, layer_paths,
    require_musl_target, require_tool, run_ok, shared_target_dir, tool, wait_for_port,
};

/// Builds the crate in `dir` into `output`, with the shared target directory of `name`.
fn build(dir: &Path, name: &str, output: &Path, args: &[&str]) -> serde_json::Value {
    require_musl_target();
    let stdout = run_ok(
        tool(dir)
            .args(args)
            .args(["--message-format", "json", "-o"])
            .arg(output)
            .arg("--target-dir")
            .arg(shared_target_dir(name)),
    );
    serde_json::from_str(stdout.lines().next().expect("one line per image")).unwrap()
}

struct Web {
    _dir: tempfile::TempDir,
    archive: std::path::PathBuf,
}

fn web() -> &'static Web {
    static WEB: OnceLock<Web> = OnceLock::new();
    WEB.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("web.tar");
        build(
            &example("web"),
            "web",
            &archive,
            &["-t", "scratchimg-e2e/web:settings"],
        );
        Web { _dir: dir, archive }
    })
}

fn inspect_config(engine: &str, image: &str) -> serde_json::Value {
    let json = run_ok(Command::new(engine).args(["image", "inspect", image]));
    let inspect: serde_json::Value = serde_json::from_str(&json).unwrap();
    inspect[0]["Config"].clone()
}

fn curl(port: u16, path: &str) -> String {
    run_ok(
        Command::new("curl")
            .args([
                "-fsS",
                "--retry",
                "20",
                "--retry-connrefused",
                "--retry-delay",
                "0",
            ])
            .arg(format!("http://127.0.0.1:{port}{path}")),
    )
}

/// Loads examples/web into `engine`, checks its config, runs it on a free port, and asks it.
fn web_in(engine: &str, image: &str) {
    require_tool("curl", &["--version"]);
    run_ok(
        Command::new(engine)
            .arg("load")
            .arg("-i")
            .arg(&web().archive),
    );
    let config = inspect_config(engine, image);
    assert_eq!(
        config["Env"],
        serde_json::json!([
            "PATH=/app",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            "GREETING=hello from a scratch image",
            "PORT=8080",
            "STATIC_DIR=/app/static"
        ]),
        "{engine}"
    );
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}}),
        "{engine}"
    );
    assert_eq!(config["WorkingDir"], "/app", "{engine}");
    assert_eq!(config["User"], "65532:65532", "{engine}");
    assert_eq!(config["StopSignal"], "SIGINT", "{engine}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/app/web"]),
        "{engine}"
    );
    let labels = &config["Labels"];
    assert_eq!(labels["org.example.team"], "web", "{engine}");
    assert_eq!(labels["org.opencontainers.image.title"], "web", "{engine}");
    assert_eq!(
        labels["org.opencontainers.image.version"], "0.1.0",
        "{engine}"
    );
    assert_eq!(
        labels["org.opencontainers.image.licenses"], "MIT OR Apache-2.0",
        "{engine}"
    );

    // The engines here have no bridge network: the server shares the host's, on a free port.
    let port = free_port();
    let name = format!("scratchimg-e2e-web-{engine}-{port}");
    run_ok(Command::new(engine).args([
        "run",
        "-d",
        "--rm",
        "--network",
        "host",
        "--name",
        &name,
        "-e",
        &format!("PORT={port}"),
        image,
    ]));
    let _stop = StopContainer(engine.to_string(), name);
    assert_eq!(curl(port, "/"), "hello from a scratch image\n");
    assert!(curl(port, "/static/index.html").contains("Served from a FROM scratch image"));
    assert_eq!(
        curl(port, "/files"),
        "444 0 0 /etc/web/web.toml\n644 0 0 /app/static/css/site.css\n644 0 0 /app/static/index.html\n\
         755 0 0 /app/static\n755 0 0 /app/static/css\n755 0 0 /etc/web\n",
        "files, their modes and owners, as the program inside the container sees them"
    );
}

struct StopContainer(String, String);

impl Drop for StopContainer {
    fn drop(&mut self) {
        let _ = Command::new(&self.0).args(["rm", "-f", &self.1]).output();
    }
}

#[test]
fn web_settings_in_docker() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    web_in("docker", "scratchimg-e2e/web:settings");
}

#[test]
fn web_settings_in_podman() {
    require_tool("podman", &["--version"]);
    web_in("podman", "docker.io/scratchimg-e2e/web:settings");
}

#[test]
fn private_ca_lets_the_program_verify_a_tls_server() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    scratchimg_tests::registry::TestCa::new(&certs);
    let port = free_port();
    let _server = Background(
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                "server.pem",
                "-key",
                "server.key",
                "-www",
                "-quiet",
            ])
            .current_dir(&certs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);

    // The CA goes in through the setting, as a company's would.
    let fetch = work.path().join("fetch");
    copy_tree(&example("fetch"), &fetch);
    std::fs::copy(certs.join("ca.pem"), fetch.join("private-ca.pem")).unwrap();
    let mut manifest = std::fs::read_to_string(fetch.join("Cargo.toml")).unwrap();
    manifest.push_str("\n[package.metadata.scratchimg]\nca-certs = [\"private-ca.pem\"]\n");
    std::fs::write(fetch.join("Cargo.toml"), manifest).unwrap();
    let with_ca = build(
        &fetch,
        "fetch",
        &work.path().join("with-ca.tar"),
        &["-t", "scratchimg-e2e/fetch:private-ca"],
    );
    assert!(
        with_ca["layers"][0]["comment"]
            .as_str()
            .unwrap()
            .contains("1 from private-ca.pem")
    );
    let without = build(
        &example("fetch"),
        "fetch",
        &work.path().join("without.tar"),
        &["-t", "scratchimg-e2e/fetch:mozilla"],
    );
    assert_ne!(
        with_ca["layers"][0]["digest"],
        without["layers"][0]["digest"]
    );

    let url = format!("https://127.0.0.1:{port}/");
    for archive in ["with-ca.tar", "without.tar"] {
        run_ok(
            Command::new("docker")
                .arg("load")
                .arg("-i")
                .arg(work.path().join(archive)),
        );
    }
    let ok = run_ok(Command::new("docker").args([
        "run",
        "--rm",
        "--network",
        "host",
        "scratchimg-e2e/fetch:private-ca",
        &url,
    ]));
    assert_eq!(ok.trim(), "HTTP/1.0 200 ok");
    // Without the CA the same program refuses the server: the test can fail.
    let refused = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "host",
            "scratchimg-e2e/fetch:mozilla",
            &url,
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("UnknownIssuer"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn tz_setting_keeps_only_that_zone() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    let work = tempfile::tempdir().unwrap();
    let hello = work.path().join("hello");
    copy_tree(&example("hello"), &hello);
    let mut manifest = std::fs::read_to_string(hello.join("Cargo.toml")).unwrap();
    manifest.push_str("\n[package.metadata.scratchimg]\ntz = [\"Europe/Berlin\"]\n");
    std::fs::write(hello.join("Cargo.toml"), manifest).unwrap();
    let archive = work.path().join("hello.tar");
    build(
        &hello,
        "hello",
        &archive,
        &["-t", "scratchimg-e2e/hello:berlin"],
    );
    let zones: Vec<String> = layer_paths(&archive)[0]
        .iter()
        .filter(|p| p.starts_with("usr/share/zoneinfo/") && !p.ends_with('/'))
        .cloned()
        .collect();
    assert_eq!(
        zones,
        ["usr/share/zoneinfo/Europe/Berlin", "usr/share/zoneinfo/UTC"]
    );

    run_ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = run_ok(Command::new("docker").args([
        "run",
        "--rm",
        "-e",
        "TZ=Europe/Berlin",
        "scratchimg-e2e/hello:berlin",
    ]));
    assert!(
        out.contains("(Europe/Berlin)") && (out.contains("+01:00") || out.contains("+02:00")),
        "{out}"
    );
}

#[test]
fn workspace_gives_an_image_per_binary_package() {
    require_musl_target();
    let ws = fixture_copy("workspace");
    let out = ws.path().join("images");
    let stdout = run_ok(
        tool(ws.path())
            .args(["--workspace", "-o"])
            .arg(&out)
            .arg("--target-dir")
            .arg(shared_target_dir("workspace")),
    );
    let paths: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        paths,
        [
            out.join("api-0.1.0.tar").to_str().unwrap(),
            out.join("worker-0.1.0.tar").to_str().unwrap()
        ]
    );

    let api = layer_paths(&out.join("api-0.1.0.tar"));
    assert!(api[1].contains(&"app/api".to_string()), "{api:?}");
    assert!(
        !api[0].iter().any(|p| p.starts_with("usr/share/zoneinfo")),
        "tz = \"none\" from the workspace"
    );
    // `bins` puts both of worker's binaries into its one image.
    let worker = layer_paths(&out.join("worker-0.1.0.tar"));
    assert!(
        worker[1].contains(&"app/worker".to_string())
            && worker[1].contains(&"app/migrate".to_string()),
        "{worker:?}"
    );
    let config = |archive: &Path| -> serde_json::Value {
        serde_json::from_str(&run_ok(
            Command::new("skopeo")
                .arg("inspect")
                .arg("--config")
                .arg(format!("docker-archive:{}", archive.display())),
        ))
        .unwrap()
    };
    require_tool("skopeo", &["--version"]);
    let worker_config = config(&out.join("worker-0.1.0.tar"));
    assert_eq!(
        worker_config["config"]["Entrypoint"],
        serde_json::json!(["/app/worker"])
    );
    assert_eq!(
        worker_config["config"]["Labels"]["org.example.suite"], "worker",
        "the package wins over the workspace"
    );
    let api_config = config(&out.join("api-0.1.0.tar"));
    assert_eq!(
        api_config["config"]["Labels"]["org.example.suite"],
        "fixture"
    );
    assert_eq!(
        api_config["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );

    // -p picks one.
    let one = run_ok(
        tool(ws.path())
            .args(["-p", "api", "-o"])
            .arg(ws.path().join("api.tar"))
            .arg("--target-dir")
            .arg(shared_target_dir("workspace")),
    );
    assert_eq!(one.lines().count(), 1);
    assert!(ws.path().join("api.tar").is_file());
}

/// `files` into /tmp and the home folder leave both as the base has them: the default user
/// still writes to /tmp and $HOME, and so does `--user 65532`, whose home is nonroot's.
#[test]
fn files_in_tmp_and_home_leave_them_writable() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    let work = tempfile::tempdir().unwrap();
    let writer = fixture_copy("writer");
    std::fs::write(writer.path().join("seed.txt"), "seeded\n").unwrap();
    std::fs::write(writer.path().join("app.toml"), "level = 3\n").unwrap();
    let manifest = writer.path().join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(
        "\n[package.metadata.scratchimg]\nfiles = [\n    { src = \"seed.txt\", dst = \"/tmp/seed.txt\" },\n    { src = \"app.toml\", dst = \"/home/nonroot/.config/app.toml\" },\n]\n",
    );
    std::fs::write(&manifest, text).unwrap();

    let archive = work.path().join("writer.tar");
    let image = "scratchimg-e2e/writer:files";
    build(writer.path(), "writer", &archive, &["-t", image]);
    // Layers: base, files, program. The files layer carries /tmp and the home folder as the
    // base has them, since a layer's entry replaces the owner and mode of the one below.
    let files = &layer_entries(&archive)[1];
    let entry = |path: &str| -> Vec<String> {
        let line = files
            .iter()
            .find(|l| l.ends_with(&format!(" {path}")))
            .unwrap_or_else(|| panic!("no {path} in {files:?}"));
        line.split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(entry("tmp/"), ["drwxrwxrwt", "0/0"]);
    assert_eq!(entry("home/nonroot/"), ["drwx------", "65532/65532"]);
    assert_eq!(entry("tmp/seed.txt"), ["-rw-r--r--", "0/0"]);

    run_ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let out = run_ok(Command::new("docker").args(["run", "--rm", image]));
    assert_eq!(
        out,
        "home: /home/nonroot\n\
         cwd: /home/nonroot\n\
         /tmp: 1777 0:0\n\
         /home/nonroot: 700 65532:65532\n\
         read /tmp/seed.txt: seeded\n\
         read /home/nonroot/.config/app.toml: level = 3\n\
         wrote /tmp/written.txt as uid 65532\n\
         wrote /home/nonroot/written.txt as uid 65532\n"
    );

    // 65532 is nonroot, however it is written: its home is the working directory.
    let by_uid = work.path().join("writer-uid.tar");
    let image = "scratchimg-e2e/writer:uid";
    build(
        writer.path(),
        "writer",
        &by_uid,
        &["-t", image, "--user", "65532"],
    );
    run_ok(Command::new("docker").arg("load").arg("-i").arg(&by_uid));
    let out = run_ok(Command::new("docker").args(["run", "--rm", image]));
    assert!(out.contains("cwd: /home/nonroot\n"), "{out}");
    assert!(
        out.contains("wrote /home/nonroot/written.txt as uid 65532\n"),
        "{out}"
    );
}
