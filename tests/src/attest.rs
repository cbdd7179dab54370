//! What the attestation tests read and write in a registry, and the verifiers nobody here wrote
//! that they check it with: openssl, securesystemslib and in-toto-attestation from PyPI,
//! sigstore-models (sigstore-python's bundle models), and the Sigstore JavaScript libraries
//! (`target/sigstore-verify`, installed by `scripts/test`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{example, python_tool, repo_root, require_musl_target, require_tool, run_ok};
use crate::{shared_target_dir, tool};

/// `cargo scratchimg` on examples/hello with `args`, no credentials of the machine's.
pub fn hello(home: &Path, args: &[&str]) -> Command {
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

/// Runs `command` with `--message-format json`; its one JSON object.
pub fn json_run(command: &mut Command) -> serde_json::Value {
    let output = command.args(["--message-format", "json"]).output().unwrap();
    crate::assert_success(command, &output);
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

/// A key pair made by openssl, `ec` (P-256) or Ed25519: (private, public).
pub fn keys(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    require_tool("openssl", &["version"]);
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let mut genpkey = Command::new("openssl");
    genpkey.arg("genpkey");
    match name.starts_with("ec") {
        true => genpkey.args(["-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        false => genpkey.args(["-algorithm", "ed25519"]),
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

/// `cargo scratchimg verify REF --key K…` with `extra` arguments.
pub fn verify(
    home: &Path,
    reference: &str,
    keys: &[&Path],
    extra: &[&str],
) -> std::process::Output {
    let mut command = tool(home);
    command.args(["verify", reference]);
    for key in keys {
        command.arg("--key").arg(key);
    }
    command
        .args(extra)
        .env("DOCKER_CONFIG", home.join("no-docker-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Plain HTTP GET of `/v2/<path>` on `host`, accepting an OCI index or manifest.
pub fn get(host: &str, path: &str) -> Option<Vec<u8>> {
    let output = Command::new("curl")
        .args(["-sf", "-H", "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"])
        .arg(format!("http://{host}/v2/{path}"))
        .output()
        .unwrap();
    output.status.success().then_some(output.stdout)
}

pub fn get_json(host: &str, path: &str) -> serde_json::Value {
    serde_json::from_slice(&get(host, path).unwrap_or_else(|| panic!("no {path}"))).unwrap()
}

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// PUT of `bytes` to `url` as `content_type`.
fn curl_put(url: &str, content_type: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, bytes).unwrap();
    run_ok(
        Command::new("curl")
            .args([
                "-sf",
                "-X",
                "PUT",
                "-H",
                &format!("Content-Type: {content_type}"),
            ])
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(url),
    );
}

/// PUT of a manifest's bytes under `reference`.
pub fn put_manifest(host: &str, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let url = format!("http://{host}/v2/{repo}/manifests/{reference}");
    curl_put(&url, media_type, bytes);
}

/// Uploads `bytes` as a blob (a POST, then one PUT); its digest.
pub fn put_blob(host: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = format!("sha256:{}", sha256_hex(bytes));
    let headers = run_ok(
        Command::new("curl")
            .args(["-sf", "-D", "-", "-o", "/dev/null", "-X", "POST"])
            .arg(format!("http://{host}/v2/{repo}/blobs/uploads/")),
    );
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .expect("an upload location")
        .trim()
        .to_string();
    let location = match location.starts_with("http") {
        true => location,
        false => format!("http://{host}{location}"),
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={digest}");
    curl_put(&url, "application/octet-stream", bytes);
    digest
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b");
    std::fs::write(&file, bytes).unwrap();
    let out = run_ok(Command::new("sha256sum").arg(&file));
    out.split_whitespace().next().unwrap().to_string()
}

/// The referrers the tag schema lists for `digest`.
pub fn referrers(host: &str, repo: &str, digest: &str) -> Vec<serde_json::Value> {
    let tag = digest.replace(':', "-");
    get_json(host, &format!("{repo}/manifests/{tag}"))["manifests"]
        .as_array()
        .unwrap()
        .clone()
}

/// Adds `entry` to the referrers tag schema's index of `digest`, as another tool would.
pub fn list_referrer(host: &str, repo: &str, digest: &str, entry: serde_json::Value) {
    let tag = digest.replace(':', "-");
    let mut listing = get_json(host, &format!("{repo}/manifests/{tag}"));
    listing["manifests"].as_array_mut().unwrap().push(entry);
    let bytes = serde_json::to_vec(&listing).unwrap();
    put_manifest(host, repo, &tag, INDEX, &bytes);
}

/// The manifest and first layer's bytes of each referrer of `digest` of `artifact_type`.
pub fn referrer_layers(
    host: &str,
    repo: &str,
    digest: &str,
    artifact_type: &str,
) -> Vec<(serde_json::Value, Vec<u8>)> {
    let listed = referrers(host, repo, digest);
    let ours = listed.iter().filter(|r| r["artifactType"] == artifact_type);
    ours.map(|entry| {
        let path = format!("{repo}/manifests/{}", entry["digest"].as_str().unwrap());
        let manifest = get_json(host, &path);
        let layer = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let bytes = get(host, &format!("{repo}/blobs/{layer}")).unwrap();
        (manifest, bytes)
    })
    .collect()
}

/// Checks a DSSE envelope with securesystemslib and the public key; `flip` changes one byte of
/// the payload first. Gives the payload.
pub fn securesystemslib_verifies(
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
pub fn in_toto_validates(statement: &[u8]) -> Vec<String> {
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

/// cosign's `.sig` signature of `subject` in `repo`, checked by openssl over its payload.
pub fn cosign_signature_verifies(host: &str, repo: &str, subject: &str, public: &Path) {
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
        subject
    );
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
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
    // ECDSA signs the payload's SHA-256; Ed25519 the payload itself.
    let ed25519 = std::fs::read_to_string(public)
        .unwrap()
        .contains("MCowBQYDK2Vw");
    let checked = match ed25519 {
        false => run_ok(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(public)
                .arg("-signature")
                .arg(dir.join("sig.der"))
                .arg(dir.join("payload")),
        ),
        true => run_ok(
            Command::new("openssl")
                .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
                .arg(public)
                .arg("-sigfile")
                .arg(dir.join("sig.der"))
                .arg("-in")
                .arg(dir.join("payload")),
        )
        .replace("Signature Verified Successfully", "Verified OK"),
    };
    assert_eq!(checked.trim(), "Verified OK");
}

/// Where `scripts/test` installs the Sigstore bundle verifier (`@sigstore/verify`).
fn sigstore_verifier() -> PathBuf {
    let dir = repo_root().join("target/sigstore-verify");
    assert!(
        dir.join("node_modules/@sigstore/verify").is_dir(),
        "this test needs the Sigstore bundle verifier in {}.\n\
         Install it with `scripts/test` (`scripts/test --check` lists what is missing)",
        dir.display()
    );
    require_tool("node", &["--version"]);
    dir.join("verify-bundle.mjs")
}

/// Verifies a Sigstore bundle with the Sigstore JavaScript libraries and `public`, requiring a
/// subject of `digest`: their output, or why not.
pub fn sigstore_js_verifies(bundle: &[u8], public: &Path, digest: &str) -> Result<String, String> {
    let script = sigstore_verifier();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle).unwrap();
    let output = Command::new("node")
        .arg(script)
        .arg("--bundle")
        .arg(&file)
        .arg("--key")
        .arg(public)
        .args(["--digest", digest])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    match output.status.success() && stdout.trim_end().ends_with("verified") {
        true => Ok(stdout),
        false => Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// Parses a Sigstore bundle with sigstore-models (sigstore-python's strict models, unknown
/// fields refused); gives its media type and predicate type.
pub fn sigstore_models_parse(bundle: &[u8]) -> String {
    let python = python_tool("python", &["-c", "import sigstore_models.bundle.v1"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle).unwrap();
    let script = r#"
import json, sys
from sigstore_models.bundle.v1 import Bundle
bundle = Bundle.from_json(open(sys.argv[1], "rb").read())
statement = json.loads(bundle.dsse_envelope.payload)
print(bundle.media_type, statement["predicateType"])
"#;
    run_ok(Command::new(python).arg("-c").arg(script).arg(&file))
        .trim()
        .to_string()
}

/// One byte of the bundle's signed payload changed: its signature no longer holds.
pub fn flip_payload(bundle: &[u8]) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(bundle).unwrap();
    let payload = json["dsseEnvelope"]["payload"].as_str().unwrap();
    let mut bytes = payload.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    json["dsseEnvelope"]["payload"] = String::from_utf8(bytes).unwrap().into();
    serde_json::to_vec(&json).unwrap()
}
