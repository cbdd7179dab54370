//! `cargo scratchimg resolve`: YAML in, the same YAML out with each `scratchimg://` reference
//! replaced by the digest of the image pushed for it to a real registry.

use std::path::Path;
use std::process::{Command, Stdio};

use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{
    fixture_copy, require_musl_target, require_tool, run_ok, shared_target_dir, tool,
};

const DEPLOYMENT: &str = r#"# The API, two replicas.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: api
          image: scratchimg://api   # built by cargo scratchimg
          ports: [{containerPort: 8080}]
        - name: migrate
          image: "scratchimg://worker"
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  ports:
    - port: 80
      targetPort: 8080
"#;

const COMPOSE: &str =
    "services:\n  api:\n    image: scratchimg://api\n    environment:\n      - MODE=compose\n";

/// `cargo scratchimg resolve -f FILE` in `dir`, building into `target_dir` and pushing to
/// `registry`'s `scratchimg-e2e/` repositories.
fn resolve(dir: &Path, registry: &Registry, file: &str, target_dir: &Path) -> Command {
    let mut command = tool(dir);
    command
        .args(["resolve", "-f", file, "--target-dir"])
        .arg(target_dir)
        .env(
            "SCRATCHIMG_REPO",
            format!("{}/scratchimg-e2e", registry.host),
        );
    command
}

#[test]
fn resolve_replaces_references_with_pushed_digests() {
    require_musl_target();
    require_tool("skopeo", &["--version"]);
    let registry = Registry::start(Settings::default());
    let dir = fixture_copy("workspace");
    let deploy = dir.path().join("deploy");
    std::fs::create_dir_all(deploy.join("k8s")).unwrap();
    std::fs::write(deploy.join("k8s/api.yaml"), DEPLOYMENT).unwrap();
    std::fs::write(deploy.join("compose.yml"), COMPOSE).unwrap();
    let output = resolve(
        dir.path(),
        &registry,
        "deploy",
        &shared_target_dir("workspace"),
    )
    .stdin(Stdio::null())
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let resolved = String::from_utf8(output.stdout).unwrap();
    // Directories are read sorted: compose.yml, then k8s/api.yaml.
    let expected_shape = format!("{COMPOSE}---\n{DEPLOYMENT}");
    let mut digests = Vec::new();
    let mut rest = resolved.as_str();
    let mut rebuilt = String::new();
    let prefix = format!("{}/scratchimg-e2e/", registry.host);
    while let Some(at) = rest.find(&prefix) {
        rebuilt.push_str(&rest[..at]);
        let reference: String = rest[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        let (name, digest) = reference.rsplit_once('@').unwrap();
        let package = name.rsplit('/').next().unwrap();
        rebuilt.push_str(&format!("scratchimg://{package}"));
        digests.push((package.to_string(), reference.clone(), digest.to_string()));
        rest = &rest[at + reference.len()..];
    }
    rebuilt.push_str(rest);
    assert_eq!(
        rebuilt, expected_shape,
        "only the references changed:\n{resolved}"
    );
    assert_eq!(digests.len(), 3, "{resolved}");
    // api, referenced twice, is one image.
    let api: Vec<_> = digests.iter().filter(|d| d.0 == "api").collect();
    assert_eq!(api[0].1, api[1].1);
    assert_eq!(
        stderr.matches("Pushed 1 tag in").count(),
        2,
        "one image each:\n{stderr}"
    );
    for (_, reference, digest) in &digests {
        let inspected: serde_json::Value =
            serde_json::from_str(&run_ok(Command::new("skopeo").args([
                "inspect",
                "--tls-verify=false",
                &format!("docker://{reference}"),
            ])))
            .unwrap();
        assert_eq!(
            inspected["Digest"].as_str(),
            Some(digest.as_str()),
            "{reference}"
        );
    }

    // A reference to a package the workspace does not have names those it has.
    let output = resolve(dir.path(), &registry, "-", &shared_target_dir("workspace"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"image: scratchimg://nope\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: package `nope` is not in this workspace\nhelp: workspace members: api, common, worker"),
        "{stderr}"
    );
    assert!(!stderr.contains("Compiling"), "{stderr}");
    assert!(output.stdout.is_empty());
}

/// `scratchimg://PACKAGE/BIN` is an image of that one binary: `worker`'s `bins` puts worker
/// and migrate in one image, and `scratchimg://worker/migrate` is migrate alone, pushed under
/// its binary's name with it as the entrypoint. Every image of one resolve, whichever form
/// names it, comes from one `cargo build`, and a reference given twice is one image.
#[test]
fn package_bin_reference_is_that_binary_from_the_one_build() {
    require_musl_target();
    require_tool("skopeo", &["--version"]);
    let registry = Registry::start(Settings::default());
    let dir = fixture_copy("workspace");
    let yaml = "jobs:\n  - name: migrate\n    image: scratchimg://worker/migrate   # before the rollout\n  - name: api\n    image: \"scratchimg://api\"\n  - name: check\n    image: scratchimg://worker/migrate\n";
    std::fs::write(dir.path().join("jobs.yaml"), yaml).unwrap();
    // A target directory of its own, so cargo compiles every package here and says so.
    let output = resolve(dir.path(), &registry, "jobs.yaml", Path::new("target"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let resolved = String::from_utf8(output.stdout).unwrap();

    // Each reference is `REGISTRY/REPO/<image name>@sha256:…`, the same for the same reference.
    let digest_of = |name: &str| {
        let prefix = format!("{}/scratchimg-e2e/{name}@", registry.host);
        let at = resolved
            .find(&prefix)
            .unwrap_or_else(|| panic!("no {prefix} in:\n{resolved}"));
        resolved[at + prefix.len()..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect::<String>()
    };
    let (migrate, api) = (digest_of("migrate"), digest_of("api"));
    let expected = yaml
        .replace(
            "scratchimg://worker/migrate",
            &format!("{}/scratchimg-e2e/migrate@{migrate}", registry.host),
        )
        .replace(
            "scratchimg://api",
            &format!("{}/scratchimg-e2e/api@{api}", registry.host),
        );
    assert_eq!(resolved, expected, "only the references changed");

    // One cargo build compiled every package once, and two images were pushed.
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l
                .trim_start()
                .starts_with("Finished `scratchimg-release` profile"))
            .count(),
        1,
        "one cargo build:\n{stderr}"
    );
    for package in ["common", "api", "worker"] {
        assert_eq!(
            stderr
                .lines()
                .filter(|l| l
                    .trim_start()
                    .starts_with(&format!("Compiling {package} v")))
                .count(),
            1,
            "{package} compiled once:\n{stderr}"
        );
    }
    assert_eq!(
        stderr.matches("Pushed 1 tag in").count(),
        2,
        "one image each:\n{stderr}"
    );

    // The registry has each image by that digest, starting its one binary.
    for (name, digest, entrypoint) in [
        ("migrate", &migrate, "/app/migrate"),
        ("api", &api, "/app/api"),
    ] {
        let reference = format!("docker://{}/scratchimg-e2e/{name}@{digest}", registry.host);
        let inspect = |config: bool| -> serde_json::Value {
            let mut skopeo = Command::new("skopeo");
            skopeo.args(["inspect", "--tls-verify=false"]);
            if config {
                skopeo.arg("--config");
            }
            serde_json::from_str(&run_ok(skopeo.arg(&reference))).unwrap()
        };
        assert_eq!(inspect(false)["Digest"].as_str(), Some(digest.as_str()));
        assert_eq!(
            inspect(true)["config"]["Entrypoint"],
            serde_json::json!([entrypoint]),
            "{reference}"
        );
    }
    assert!(
        stderr.contains("Packing /app/migrate (worker 0.1.0, "),
        "migrate alone:\n{stderr}"
    );
}

/// Two references that would be two images under one tag (the package's image of both its
/// binaries, and of one) are refused before anything is built, naming both; so is a reference
/// with a tag or a digest.
#[test]
fn references_that_would_share_a_tag_or_carry_one_are_refused_before_building() {
    let registry = Registry::start(Settings::default());
    let dir = fixture_copy("workspace");
    let target = dir.path().join("target");
    let cases = [
        (
            "both.yaml",
            "a: scratchimg://worker\nb: scratchimg://worker/worker\n",
            "error: two images would be",
            "the one of package worker with binaries worker, migrate and the one of package worker with binary worker",
        ),
        (
            "tagged.yaml",
            "image: scratchimg://api:v1\n",
            "error: `scratchimg://api:v1` names a tag or digest",
            "help: write `scratchimg://api`",
        ),
        (
            "digest.yaml",
            "image: \"scratchimg://worker/migrate@sha256:0123\"\n",
            "error: `scratchimg://worker/migrate@sha256:0123` names a tag or digest",
            "a scratchimg:// reference names a package and binary only",
        ),
    ];
    for (file, yaml, error, detail) in cases {
        std::fs::write(dir.path().join(file), yaml).unwrap();
        let output = resolve(dir.path(), &registry, file, &target)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.starts_with(error), "{file}: {stderr}");
        assert!(stderr.contains(detail), "{file}: {stderr}");
        assert!(output.stdout.is_empty(), "{file}: no YAML out");
        assert!(!stderr.contains("Compiling"), "{file}: {stderr}");
    }
    assert!(
        !target.join("debug").exists()
            && !target.join(scratchimg_tests::host_musl_target()).exists(),
        "nothing was built"
    );
}

/// `-f DIR` walks each folder once: links back up (two of them, a loop each way) and a link
/// to a file beside it give each file once, at once.
#[test]
fn directory_links_do_not_loop_or_repeat() {
    let registry = Registry::start(Settings::default());
    let dir = tempfile::tempdir().unwrap();
    let deploy = dir.path().join("deploy/apps");
    std::fs::create_dir_all(&deploy).unwrap();
    std::fs::write(deploy.join("a.yaml"), "a: 1\n").unwrap();
    std::fs::write(dir.path().join("deploy/b.yml"), "b: 2\n").unwrap();
    std::os::unix::fs::symlink("..", deploy.join("up")).unwrap();
    std::os::unix::fs::symlink("../..", deploy.join("top")).unwrap();
    std::os::unix::fs::symlink("a.yaml", deploy.join("same.yaml")).unwrap();
    let started = std::time::Instant::now();
    let output = resolve(dir.path(), &registry, "deploy", &dir.path().join("target"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Sorted by path: deploy/apps/a.yaml, then deploy/b.yml; no reference, nothing built.
    assert_eq!(String::from_utf8_lossy(&output.stdout), "a: 1\n---\nb: 2\n");
    assert!(stderr.contains("nothing to build"), "{stderr}");
}
