//! Sigstore bundles (the default `--sign-format bundle`, and `both`) with the real CNCF registry
//! on loopback, each pulled from it and checked by verifiers nobody here wrote: the Sigstore
//! JavaScript libraries (`@sigstore/bundle`, `@sigstore/verify`) and sigstore-python's models;
//! several signers one after the other and at the same time; forged referrers that `verify`
//! names and `--strict` refuses. Nothing is mocked and nothing skips.

use std::path::Path;
use std::process::Command;

use scratchimg_tests::attest::{
    MANIFEST, cosign_signature_verifies, flip_payload, get, get_json, hello, json_run, keys,
    list_referrer, put_blob, put_manifest, referrer_layers, referrers, sigstore_js_verifies,
    sigstore_models_parse, verify,
};
use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{repo_root, require_tool, run_ok};

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SPDX: &str = "application/spdx+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Pushes hello to `reference` signed with `key` and `args`; the result's digests: the image
/// (or index), then each platform image.
fn signed_push(home: &Path, reference: &str, key: &Path, args: &[&str]) -> Vec<String> {
    let mut command = hello(home, &[&["--push", reference][..], args].concat());
    let result = json_run(command.arg("--sign-key").arg(key));
    let mut digests = vec![result["digest"].as_str().unwrap().to_string()];
    if let Some(images) = result["images"].as_array().filter(|i| i.len() > 1) {
        digests.extend(
            images
                .iter()
                .map(|i| i["digest"].as_str().unwrap().to_string()),
        );
    }
    digests
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every referrer of `subject` is listed with the `artifactType` its manifest has, and each
/// bundle there verifies with `public` (and not with `other`, nor once altered); gives the
/// predicate types of the bundles.
fn bundles_verify(
    host: &str,
    repo: &str,
    subject: &str,
    public: &Path,
    other: &Path,
) -> Vec<String> {
    for entry in referrers(host, repo, subject) {
        let manifest = get_json(
            host,
            &format!("{repo}/manifests/{}", entry["digest"].as_str().unwrap()),
        );
        assert!(entry["artifactType"].is_string(), "{entry:#}");
        assert_eq!(manifest["artifactType"], entry["artifactType"]);
        assert_eq!(manifest["subject"]["digest"], subject);
        assert_eq!(manifest["config"]["mediaType"], EMPTY);
    }
    let mut predicate_types = Vec::new();
    for (manifest, bundle) in referrer_layers(host, repo, subject, BUNDLE) {
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], BUNDLE);
        let annotations = &manifest["annotations"];
        assert_eq!(annotations["dev.sigstore.bundle.content"], "dsse-envelope");
        let predicate_type = annotations["dev.sigstore.bundle.predicateType"]
            .as_str()
            .unwrap();
        assert_eq!(
            sigstore_models_parse(&bundle),
            format!("{BUNDLE} {predicate_type}")
        );
        let said = sigstore_js_verifies(&bundle, public, subject).unwrap();
        assert!(
            said.contains(&format!("predicateType: {predicate_type}")),
            "{said}"
        );
        let said = sigstore_js_verifies(&bundle, other, subject).unwrap_err();
        assert!(said.contains("PUBLIC_KEY_ERROR"), "{said}");
        let said = sigstore_js_verifies(&flip_payload(&bundle), public, subject).unwrap_err();
        assert!(said.contains("SIGNATURE_ERROR"), "{said}");
        predicate_types.push(predicate_type.to_string());
    }
    predicate_types.sort();
    predicate_types
}

#[test]
fn signed_pushes_carry_bundles_that_sigstore_verifies() {
    require_tool("curl", &["--version"]);
    let registry = Registry::start(Settings::default());
    let host = &registry.host;
    let home = tempfile::tempdir().unwrap();
    let (ec, ec_pub) = keys(home.path(), "ec");
    let (ed, ed_pub) = keys(home.path(), "ed");

    // A two-platform index signed with P-256: the index and each platform image have their
    // signature, SBOM attestations and provenance as bundles, and the plain SBOM.
    let repo = "scratchimg-e2e/bundled";
    let reference = format!("{host}/{repo}:v1");
    let digests = signed_push(
        home.path(),
        &reference,
        &ec,
        &["--platform", "linux/amd64,linux/arm64"],
    );
    assert_eq!(digests.len(), 3);
    for (i, subject) in digests.iter().enumerate() {
        let types = bundles_verify(host, repo, subject, &ec_pub, &ed_pub);
        let sboms = if i == 0 { 2 } else { 1 };
        let mut expected = vec![
            "https://slsa.dev/provenance/v1",
            "https://sigstore.dev/cosign/sign/v1",
        ];
        expected.extend(std::iter::repeat_n("https://spdx.dev/Document", sboms));
        expected.sort();
        assert_eq!(types, expected, "{subject}");
        let plain = referrer_layers(host, repo, subject, SPDX);
        assert_eq!(plain.len(), 1, "{subject}");
        assert_eq!(plain[0].0["layers"].as_array().unwrap().len(), sboms);
    }
    // No cosign .sig in the bundle format.
    assert!(
        get(
            host,
            &format!("{repo}/manifests/{}.sig", digests[0].replace(':', "-"))
        )
        .is_none()
    );
    // Our verify: everything verified, so --strict passes too; another key fails.
    let output = verify(home.path(), &reference, &[&ec_pub], &["--strict"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("Unverified"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        stderr(&output)
            .matches(": SBOM named by a signed SBOM attestation")
            .count(),
        3
    );
    let output = verify(home.path(), &reference, &[&ed_pub], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("signed by another key (key hint "),
        "{}",
        stderr(&output)
    );

    // A single image signed with Ed25519, in both formats: bundles, and cosign's .sig.
    let repo = "scratchimg-e2e/both";
    let reference = format!("{host}/{repo}:v1");
    let digests = signed_push(home.path(), &reference, &ed, &["--sign-format", "both"]);
    assert_eq!(digests.len(), 1);
    let types = bundles_verify(host, repo, &digests[0], &ed_pub, &ec_pub);
    assert_eq!(types.len(), 3);
    let listed: Vec<String> = referrers(host, repo, &digests[0])
        .iter()
        .map(|r| r["artifactType"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed.iter().filter(|t| *t == SPDX).count(),
        2,
        "{listed:?}"
    );
    assert!(listed.contains(&"application/vnd.in-toto+json".to_string()));
    cosign_signature_verifies(host, repo, &digests[0], &ed_pub);
    let output = verify(home.path(), &reference, &[&ed_pub], &["--strict"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains(".sig: signature signed by the Ed25519 key"),
        "{said}"
    );
    assert!(
        said.contains("signature signed by the Ed25519 key")
            && said.contains("(Sigstore bundle, referrers tag schema)"),
        "{said}"
    );
    assert!(
        said.contains("(DSSE envelope, referrers tag schema)"),
        "{said}"
    );
}

#[test]
fn several_signers_live_side_by_side() {
    let registry = Registry::start(Settings::default());
    let host = &registry.host;
    let home = tempfile::tempdir().unwrap();
    let (a, a_pub) = keys(home.path(), "ec-a");
    let (b, b_pub) = keys(home.path(), "ed-b");
    let check = |reference: &str, legacy: bool| {
        for (keys, other) in [
            (vec![&a_pub], Some(&b_pub)),
            (vec![&b_pub], Some(&a_pub)),
            (vec![&a_pub, &b_pub], None),
        ] {
            let keys: Vec<&Path> = keys.iter().map(|k| k.as_path()).collect();
            let output = verify(home.path(), reference, &keys, &[]);
            let said = stderr(&output);
            assert!(output.status.success(), "{said}");
            let strict = verify(home.path(), reference, &keys, &["--strict"]);
            match other {
                // The other signer's entries are named, not failures; --strict refuses them.
                Some(_) => {
                    assert!(said.contains("signed by another key"), "{said}");
                    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
                }
                None => assert!(strict.status.success(), "{}", stderr(&strict)),
            }
            if legacy {
                assert!(said.contains(".sig: signature signed by"), "{said}");
            }
        }
    };
    // One after the other.
    let reference = format!("{host}/scratchimg-e2e/cosigned:v1");
    signed_push(home.path(), &reference, &a, &[]);
    signed_push(home.path(), &reference, &b, &[]);
    check(&reference, false);
    // At the same time, several rounds, each in a new repository; in both formats, so that
    // the .sig tag is raced too.
    for round in 0..3 {
        let reference = format!("{host}/scratchimg-e2e/raced-{round}:v1");
        let spawn = |key: &Path| {
            let mut command = hello(
                home.path(),
                &["--push", &reference, "--sign-format", "both", "-q"],
            );
            command.arg("--sign-key").arg(key).spawn().unwrap()
        };
        let (first, second) = (spawn(&a), spawn(&b));
        for mut child in [first, second] {
            assert!(child.wait().unwrap().success(), "round {round}");
        }
        check(&reference, true);
    }
}

/// A manifest about `subject` of `artifact_type` with `layers`, put by digest; its listing entry.
fn forge(
    host: &str,
    repo: &str,
    subject: &str,
    artifact_type: &str,
    layers: serde_json::Value,
) -> (String, serde_json::Value) {
    let empty = put_blob(host, repo, b"{}");
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
        "layers": layers,
        "subject": {"mediaType": MANIFEST, "digest": subject, "size": 1},
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = format!("sha256:{}", scratchimg_tests::attest::sha256_hex(&bytes));
    put_manifest(host, repo, &digest, MANIFEST, &bytes);
    let entry = serde_json::json!({"mediaType": MANIFEST, "digest": digest, "size": bytes.len(), "artifactType": artifact_type});
    (digest, entry)
}

/// A bundle about the image `manifest` (its bytes) signed by `key`, made by the shared tools'
/// bundle builder; with `unsigned`, its signatures dropped.
fn foreign_bundle(dir: &Path, manifest: &[u8], key: &Path, unsigned: bool) -> Vec<u8> {
    let builder = repo_root().join("target/sigstore-verify/make_bundle.py");
    let python = scratchimg_tests::python_tool("python", &["-c", "import cryptography"]);
    std::fs::write(dir.join("image.json"), manifest).unwrap();
    let out = dir.join("bundle.json");
    run_ok(
        Command::new(&python)
            .arg(&builder)
            .args(["dsse", "--key"])
            .arg(key)
            .arg("--artifact")
            .arg(dir.join("image.json"))
            .arg("--out")
            .arg(&out),
    );
    if unsigned {
        run_ok(
            Command::new(&python)
                .arg(&builder)
                .arg("drop-sigs")
                .arg(&out)
                .arg(&out),
        );
    }
    std::fs::read(&out).unwrap()
}

#[test]
fn forged_referrers_are_named_and_refused_by_strict() {
    let registry = Registry::start(Settings::default());
    let host = &registry.host;
    let home = tempfile::tempdir().unwrap();
    let (ec, ec_pub) = keys(home.path(), "ec");
    let (other, _) = keys(home.path(), "ec-other");
    let repo = "scratchimg-e2e/forged";
    let reference = format!("{host}/{repo}:v1");
    let image = signed_push(home.path(), &reference, &ec, &[]).remove(0);
    let manifest = get(host, &format!("{repo}/manifests/{image}")).unwrap();

    let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"forged"}"#;
    let document = put_blob(host, repo, sbom);
    let empty = put_blob(host, repo, b"{}");
    let layer = |media_type: &str, digest: &str, size: usize| serde_json::json!([{"mediaType": media_type, "digest": digest, "size": size}]);
    let mut forged = Vec::new();
    // An SBOM whose only layer is typed as empty.
    let (digest, entry) = forge(host, repo, &image, SPDX, layer(EMPTY, &empty, 2));
    list_referrer(host, repo, &image, entry);
    forged.push((digest, "an empty layer"));
    // An in-toto attestation with no layers.
    let (digest, entry) = forge(
        host,
        repo,
        &image,
        "application/vnd.in-toto+json",
        serde_json::json!([]),
    );
    list_referrer(host, repo, &image, entry);
    forged.push((digest, "it has no layers"));
    // An unsigned SBOM, listed under another type.
    let (digest, mut entry) = forge(host, repo, &image, SPDX, layer(SPDX, &document, sbom.len()));
    entry["artifactType"] = "application/vnd.example.report+json".into();
    list_referrer(host, repo, &image, entry);
    forged.push((digest, "mislabelled: listed as"));
    // Bundles about the image: unsigned, and signed by another key.
    for (unsigned, why) in [
        (true, "unsigned (its Sigstore bundle has no signature)"),
        (false, "signed by another key (key hint "),
    ] {
        let bundle = foreign_bundle(home.path(), &manifest, &other, unsigned);
        let blob = put_blob(host, repo, &bundle);
        let (digest, entry) = forge(
            host,
            repo,
            &image,
            BUNDLE,
            layer(BUNDLE, &blob, bundle.len()),
        );
        list_referrer(host, repo, &image, entry);
        forged.push((digest, why));
    }

    let output = verify(home.path(), &reference, &[&ec_pub], &[]);
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    for (digest, why) in &forged {
        let line = said
            .lines()
            .find(|l| l.contains(digest.as_str()))
            .unwrap_or_else(|| panic!("{digest} not named: {said}"));
        assert!(line.contains("Unverified") && line.contains(why), "{line}");
    }
    let output = verify(home.path(), &reference, &[&ec_pub], &["--strict"]);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("5 referrers are not verified with the keys (--strict):"),
        "{said}"
    );
}
