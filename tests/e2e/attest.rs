//! Attestations with the real CNCF registry on loopback and independent verifiers from PyPI:
//! the referrers tag schema as a registry client reads it, in-toto-attestation's bindings for
//! the provenance, securesystemslib for DSSE, openssl for cosign's signature, and our `verify`.
//! Nothing is mocked and nothing skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use scratchimg_tests::proxy::{Fault, Proxy};
use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{
    assert_success, example, python_tool, require_musl_target, require_tool, run_ok,
    shared_target_dir, tool,
};

/// `cargo scratchimg` on examples/hello with `args`, no credentials of the machine's.
fn hello(home: &Path, args: &[&str]) -> Command {
    require_musl_target();
    let mut command = tool(&example("hello"));
    command
        .arg("--target-dir")
        .arg(shared_target_dir("hello"))
        .args(args)
        .env("DOCKER_CONFIG", home.join("no-docker-config"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("SCRATCHIMG_REPO")
        .stdin(Stdio::null());
    command
}

fn json_run(command: &mut Command) -> serde_json::Value {
    let output = command.args(["--message-format", "json"]).output().unwrap();
    assert_success(command, &output);
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

/// A key pair made by openssl: (private, public).
fn keys(dir: &Path, kind: &str) -> (PathBuf, PathBuf) {
    require_tool("openssl", &["version"]);
    let private = dir.join(format!("{kind}.pem"));
    let public = dir.join(format!("{kind}.pub"));
    let mut genpkey = Command::new("openssl");
    genpkey.arg("genpkey");
    match kind {
        "ec" => genpkey.args(["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        _ => genpkey.args(["-algorithm", "ed25519"]),
    };
    run_ok(genpkey.arg("-out").arg(&private));
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public),
    );
    (private, public)
}

/// Plain HTTP GET of `/v2/<path>` on `host`, accepting an OCI index or manifest.
fn get(host: &str, path: &str) -> Option<Vec<u8>> {
    let output = Command::new("curl")
        .args(["-sf", "-H", "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"])
        .arg(format!("http://{host}/v2/{path}"))
        .output()
        .unwrap();
    output.status.success().then_some(output.stdout)
}

fn get_json(host: &str, path: &str) -> serde_json::Value {
    serde_json::from_slice(&get(host, path).unwrap_or_else(|| panic!("no {path}"))).unwrap()
}

/// PUT of a manifest's bytes under `reference`.
fn put_manifest(
    host: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
    dir: &Path,
) {
    let file = dir.join("put.json");
    std::fs::write(&file, bytes).unwrap();
    run_ok(
        Command::new("curl")
            .args([
                "-sf",
                "-X",
                "PUT",
                "-H",
                &format!("Content-Type: {media_type}"),
                "--data-binary",
            ])
            .arg(format!("@{}", file.display()))
            .arg(format!("http://{host}/v2/{repo}/manifests/{reference}")),
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b");
    std::fs::write(&file, bytes).unwrap();
    let out = run_ok(Command::new("sha256sum").arg(&file));
    out.split_whitespace().next().unwrap().to_string()
}

/// The referrers the tag schema lists for `digest`.
fn referrers(host: &str, repo: &str, digest: &str) -> Vec<serde_json::Value> {
    let tag = digest.replace(':', "-");
    get_json(host, &format!("{repo}/manifests/{tag}"))["manifests"]
        .as_array()
        .unwrap()
        .clone()
}

/// Checks a DSSE envelope with securesystemslib and the public key; `flip` changes one byte of
/// the payload first. Gives the payload.
fn securesystemslib_verifies(
    envelope: &[u8],
    public: &Path,
    flip: bool,
) -> Result<Vec<u8>, String> {
    let python = python_tool(
        "python",
        &["-c", "import securesystemslib.dsse, cryptography"],
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("envelope.json"), envelope).unwrap();
    let script = r#"
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
data = json.load(open(sys.argv[1]))
if sys.argv[3] == "flip":
    payload = bytearray(base64.b64decode(data["payload"]))
    payload[len(payload) // 2] ^= 1
    data["payload"] = base64.b64encode(bytes(payload)).decode()
keyid = data["signatures"][0]["keyid"]
envelope = Envelope.from_dict(data)
key = SSlibKey.from_crypto(load_pem_public_key(open(sys.argv[2], "rb").read()), keyid=keyid)
envelope.verify([key], 1)
sys.stdout.buffer.write(envelope.payload)
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("envelope.json"))
        .arg(public)
        .arg(if flip { "flip" } else { "keep" })
        .output()
        .unwrap();
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Validates an in-toto statement with SLSA provenance v1 with in-toto-attestation's bindings
/// (the statement's rules, and the predicate parsed strictly into the SLSA v1 protobuf);
/// gives the subjects' digests.
fn in_toto_validates(statement: &[u8]) -> Vec<String> {
    let python = python_tool("python", &["-c", "import in_toto_attestation"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("statement.json"), statement).unwrap();
    let script = r#"
import json, sys
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
data = json.load(open(sys.argv[1]))
pb = json_format.ParseDict(data, statement_pb2.Statement())
Statement.copy_from_pb(pb).validate()
assert data["predicateType"] == "https://slsa.dev/provenance/v1", data["predicateType"]
provenance = json_format.ParseDict(data["predicate"], provenance_pb2.Provenance())
assert provenance.build_definition.build_type.startswith("https://")
assert provenance.run_details.builder.id.startswith("https://")
assert len(provenance.build_definition.resolved_dependencies) >= 2
for subject in data["subject"]:
    print("sha256:" + subject["digest"]["sha256"])
"#;
    let out = run_ok(
        Command::new(python)
            .arg("-c")
            .arg(script)
            .arg(dir.path().join("statement.json")),
    );
    out.lines().map(str::to_string).collect()
}

fn verify(home: &Path, reference: &str, public: &Path) -> std::process::Output {
    tool(home)
        .args(["verify", reference, "--key"])
        .arg(public)
        .env("DOCKER_CONFIG", home.join("no-docker-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn multi_platform_push_attaches_signed_attestations_to_every_manifest() {
    require_tool("curl", &["--version"]);
    let registry = Registry::start(Settings::default());
    let proxy = Proxy::start(&registry.host, Fault::None);
    let home = tempfile::tempdir().unwrap();
    let (ec, ec_pub) = keys(home.path(), "ec");
    let repo = "scratchimg-e2e/attested";
    let reference = format!("{}/{repo}:v1", proxy.host);
    let push = || {
        proxy.reset();
        json_run(
            hello(
                home.path(),
                &[
                    "--platform",
                    "linux/amd64,linux/arm64",
                    "--push",
                    &reference,
                    "--sign-key",
                ],
            )
            .arg(&ec),
        )
    };
    let result = push();
    let index = result["digest"].as_str().unwrap().to_string();
    let platforms: Vec<String> = result["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(platforms.len(), 2);

    // No tag moved before the referrers were in place: every referrers index and signature
    // went up before the PUT of the tag.
    let heads = proxy.heads();
    let tag_put = heads
        .iter()
        .position(|r| r.line.starts_with("PUT ") && r.line.contains("/manifests/v1 "))
        .unwrap();
    let last_referrer = heads
        .iter()
        .rposition(|r| r.line.starts_with("PUT ") && r.line.contains("/manifests/sha256-"))
        .unwrap();
    assert!(last_referrer < tag_put, "{heads:#?}");

    // One SBOM and one provenance per platform image and for the index, about it.
    let host = &registry.host;
    for subject in std::iter::once(&index).chain(&platforms) {
        let listed = referrers(host, repo, subject);
        let mut types: Vec<&str> = listed
            .iter()
            .map(|r| r["artifactType"].as_str().unwrap())
            .collect();
        types.sort();
        assert_eq!(
            types,
            ["application/spdx+json", "application/vnd.in-toto+json"],
            "{subject}"
        );
        for entry in &listed {
            assert!(entry["annotations"]["org.opencontainers.image.created"].is_string());
            let manifest = get_json(
                host,
                &format!("{repo}/manifests/{}", entry["digest"].as_str().unwrap()),
            );
            assert_eq!(manifest["subject"]["digest"], subject.as_str());
            assert_eq!(manifest["artifactType"], entry["artifactType"]);
            assert_eq!(
                manifest["config"]["mediaType"],
                "application/vnd.oci.empty.v1+json"
            );
            for layer in manifest["layers"].as_array().unwrap() {
                assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
            }
        }
    }

    // A referrer another tool listed survives our next push, which adds no duplicates.
    let empty = sha256_hex(b"{}");
    let foreign = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.scan+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": format!("sha256:{empty}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": format!("sha256:{empty}"), "size": 2}],
        "subject": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index, "size": 1},
    });
    let foreign = serde_json::to_vec(&foreign).unwrap();
    let foreign_digest = format!("sha256:{}", sha256_hex(&foreign));
    put_manifest(
        host,
        repo,
        &foreign_digest,
        "application/vnd.oci.image.manifest.v1+json",
        &foreign,
        home.path(),
    );
    let tag = index.replace(':', "-");
    let mut listing = get_json(host, &format!("{repo}/manifests/{tag}"));
    listing["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": foreign_digest,
        "size": foreign.len(), "artifactType": "application/vnd.example.scan+json"}));
    put_manifest(
        host,
        repo,
        &tag,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&listing).unwrap(),
        home.path(),
    );
    let again = push();
    assert_eq!(again["digest"], index.as_str());
    assert_eq!(proxy.blob_uploads(), 0, "{:#?}", proxy.requests());
    let listed = referrers(host, repo, &index);
    assert_eq!(listed.len(), 3, "{listed:#?}");
    assert!(
        listed
            .iter()
            .any(|r| r["digest"] == foreign_digest.as_str())
    );
    for platform in &platforms {
        assert_eq!(referrers(host, repo, platform).len(), 2);
    }

    // The provenance: signed (securesystemslib), valid (in-toto-attestation), about the
    // index and both platform images.
    let provenance = listed
        .iter()
        .find(|r| r["artifactType"] == "application/vnd.in-toto+json")
        .unwrap();
    let manifest = get_json(
        host,
        &format!(
            "{repo}/manifests/{}",
            provenance["digest"].as_str().unwrap()
        ),
    );
    let envelope = get(
        host,
        &format!(
            "{repo}/blobs/{}",
            manifest["layers"][0]["digest"].as_str().unwrap()
        ),
    )
    .unwrap();
    let statement = securesystemslib_verifies(&envelope, &ec_pub, false).unwrap();
    let subjects = in_toto_validates(&statement);
    assert_eq!(
        subjects,
        [index.clone(), platforms[0].clone(), platforms[1].clone()]
    );
    let said = securesystemslib_verifies(&envelope, &ec_pub, true).unwrap_err();
    assert!(said.contains("VerificationError"), "{said}");

    // cosign's signature of each manifest, checked by openssl over its payload.
    for subject in std::iter::once(&index).chain(&platforms) {
        let sig = get_json(
            host,
            &format!("{repo}/manifests/{}.sig", subject.replace(':', "-")),
        );
        let layer = &sig["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        let payload = get(
            host,
            &format!("{repo}/blobs/{}", layer["digest"].as_str().unwrap()),
        )
        .unwrap();
        let payload_json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            payload_json["critical"]["image"]["docker-manifest-digest"],
            subject.as_str()
        );
        let dir = home.path();
        std::fs::write(dir.join("payload"), &payload).unwrap();
        let b64 = layer["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap();
        std::fs::write(dir.join("sig.b64"), b64).unwrap();
        run_ok(
            Command::new("openssl")
                .args(["base64", "-d", "-A", "-in"])
                .arg(dir.join("sig.b64"))
                .arg("-out")
                .arg(dir.join("sig.der")),
        );
        let checked = run_ok(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(&ec_pub)
                .arg("-signature")
                .arg(dir.join("sig.der"))
                .arg(dir.join("payload")),
        );
        assert_eq!(checked.trim(), "Verified OK");
    }

    // `verify` passes with the key, by tag and by digest; fails with another key.
    let direct = format!("{host}/{repo}");
    let output = verify(home.path(), &format!("{direct}:v1"), &ec_pub);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{direct}@{index}\n")
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("Verified").count(), 10, "{stderr}");
    assert!(
        verify(home.path(), &format!("{direct}@{index}"), &ec_pub)
            .status
            .success()
    );
    let (_, ed_pub) = keys(home.path(), "ed");
    let output = verify(home.path(), &format!("{direct}:v1"), &ed_pub);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("did not verify with the Ed25519 key")
            && stderr.contains("help: sign with `cargo scratchimg --push"),
        "{stderr}"
    );

    // A tampered signature: the .sig of the index with another signature in it.
    let sig_tag = format!("{}.sig", index.replace(':', "-"));
    let mut sig = get_json(host, &format!("{repo}/manifests/{sig_tag}"));
    let good = sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bad = good.into_bytes();
    bad[20] = if bad[20] == b'A' { b'B' } else { b'A' };
    sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] =
        String::from_utf8(bad).unwrap().into();
    put_manifest(
        host,
        repo,
        &sig_tag,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&sig).unwrap(),
        home.path(),
    );
    let output = verify(home.path(), &format!("{direct}:v1"), &ec_pub);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("did not verify with the ECDSA P-256 key"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{sig_tag} holds no signature by this key over this digest"
        )),
        "{stderr}"
    );
}

#[test]
fn unsigned_pushes_fail_verify_and_a_refusing_registry_gets_the_image_alone() {
    let registry = Registry::start(Settings::default());
    let home = tempfile::tempdir().unwrap();
    let (_, ec_pub) = keys(home.path(), "ec");
    let reference = format!("{}/scratchimg-e2e/unsigned:v1", registry.host);
    let result = json_run(&mut hello(home.path(), &["--push", &reference]));
    let digest = result["digest"].as_str().unwrap();
    // Unsigned attestations are there, listed, and unsigned: verify says so.
    let listed = referrers(&registry.host, "scratchimg-e2e/unsigned", digest);
    assert_eq!(listed.len(), 2);
    let output = verify(home.path(), &reference, &ec_pub);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no signature (no tag sha256-"), "{stderr}");
    assert!(
        stderr.contains("is not signed (a application/vnd.in-toto+json layer)"),
        "{stderr}"
    );

    // A registry that refuses the artifacts' manifests: the image alone, with a warning...
    const REFUSED: &str =
        r#"{"errors":[{"code":"MANIFEST_INVALID","message":"artifacts are not supported"}]}"#;
    let proxy = Proxy::start(&registry.host, Fault::AnswerOnce(400, REFUSED));
    let reference = format!("{}/scratchimg-e2e/refusing:v1", proxy.host);
    let output = hello(home.path(), &["--push", &reference])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("did not take the image's attestations, so the image goes up without them"),
        "{stderr}"
    );
    assert!(
        stderr.contains("MANIFEST_INVALID: artifacts are not supported"),
        "{stderr}"
    );
    require_tool("skopeo", &["--version"]);
    run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/scratchimg-e2e/refusing:v1", registry.host),
    ]));
    // ... and with --attach given, an error, and no tag.
    let proxy = Proxy::start(&registry.host, Fault::AnswerOnce(400, REFUSED));
    let reference = format!("{}/scratchimg-e2e/refused:v1", proxy.host);
    let output = hello(home.path(), &["--push", &reference, "--attach", "all"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains("could not attach the image's attestations"),
        "{stderr}"
    );
    assert!(stderr.contains("so no tag was pushed"), "{stderr}");
    assert_eq!(proxy.count(&["PUT ", "/manifests/v1"]), 0);
}

#[test]
fn two_builds_sign_the_same_bytes_and_layouts_hold_the_attestations() {
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    require_tool("podman", &["version"]);
    require_tool("skopeo", &["--version"]);
    let home = tempfile::tempdir().unwrap();
    for kind in ["ec", "ed"] {
        let (key, public) = keys(home.path(), kind);
        let files: Vec<Vec<u8>> = ["a", "b"]
            .iter()
            .map(|name| {
                let out = home.path().join(format!("{kind}-{name}.tar"));
                run_ok(hello(home.path(), &["-o", out.to_str().unwrap(), "--sign-key"]).arg(&key));
                std::fs::read(format!("{}.intoto.json", out.display())).unwrap()
            })
            .collect();
        assert_eq!(
            files[0], files[1],
            "{kind}: the same provenance and signature"
        );
        let statement = securesystemslib_verifies(&files[0], &public, false).unwrap();
        assert_eq!(in_toto_validates(&statement).len(), 1);
        assert!(
            securesystemslib_verifies(&files[0], &public, true).is_err(),
            "{kind}"
        );
    }

    // --attach given with -o: the layout lists the attestations next to the image, and docker,
    // podman and skopeo (naming the tag) still read it.
    let archive = home.path().join("attached.tar");
    let result = json_run(&mut hello(
        home.path(),
        &[
            "-t",
            "scratchimg-e2e/attached:v1",
            "-o",
            archive.to_str().unwrap(),
            "--attach",
            "all",
        ],
    ));
    let index: serde_json::Value =
        serde_json::from_slice(&scratchimg_tests::tar_member(&archive, "index.json")).unwrap();
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["artifactType"].as_str())
        .collect();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"]
    );
    let inspect = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}:v1", archive.display())),
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Digest"], result["digest"]);
    for engine in ["docker", "podman"] {
        let loaded = run_ok(Command::new(engine).arg("load").arg("-i").arg(&archive));
        assert!(
            loaded.contains("scratchimg-e2e/attached:v1"),
            "{engine}: {loaded}"
        );
        run_ok(Command::new(engine).args(["rmi", "-f", "scratchimg-e2e/attached:v1"]));
    }
}
