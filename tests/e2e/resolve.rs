//! `cargo scratchimg resolve`: YAML in, the same YAML out with each `scratchimg://` reference
//! replaced by the digest of the image pushed for it to a real registry.

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
    let output = tool(dir.path())
        .args(["resolve", "-f", "deploy", "--target-dir"])
        .arg(shared_target_dir("workspace"))
        .env(
            "SCRATCHIMG_REPO",
            format!("{}/scratchimg-e2e", registry.host),
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
    let output = tool(dir.path())
        .args(["resolve", "-f", "-", "--target-dir"])
        .arg(shared_target_dir("workspace"))
        .env(
            "SCRATCHIMG_REPO",
            format!("{}/scratchimg-e2e", registry.host),
        )
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
