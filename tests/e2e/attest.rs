//! Attestations in the legacy signing format (`--sign-format legacy`: cosign's `.sig` tag and
//! DSSE referrers), unsigned ones, and reproducible ones, with the real CNCF registry on
//! loopback and independent verifiers from PyPI: the referrers tag schema as a registry client
//! reads it, in-toto-attestation's bindings for the provenance, securesystemslib for DSSE,
//! openssl for cosign's signature, the Sigstore JavaScript libraries for bundles, and our
//! `verify`. Nothing is mocked and nothing skips.

use std::process::Command;

use scratchimg_tests::attest::{
    INDEX, MANIFEST, cosign_signature_verifies, get, get_json, hello, in_toto_validates, json_run,
    keys, put_manifest, referrers, securesystemslib_verifies, sha256_hex, sigstore_js_verifies,
    verify,
};
use scratchimg_tests::proxy::{Fault, Proxy};
use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{require_tool, run_ok};

#[test]
fn legacy_signing_attaches_dsse_envelopes_and_cosign_signatures_to_every_manifest() {
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
                    "--sign-format",
                    "legacy",
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
    put_manifest(host, repo, &foreign_digest, MANIFEST, &foreign);
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
        INDEX,
        &serde_json::to_vec(&listing).unwrap(),
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
        cosign_signature_verifies(host, repo, subject, &ec_pub);
    }

    // `verify` passes with the key, by tag and by digest; fails with another key.
    let direct = format!("{host}/{repo}");
    let output = verify(
        home.path(),
        &format!("{direct}:v1"),
        &[&ec_pub],
        &["--strict"],
    );
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
    // The referrer another tool listed is named, not judged.
    assert!(
        stderr.contains(&format!(
            "application/vnd.example.scan+json referrer {foreign_digest}: not an SBOM, attestation or signature"
        )),
        "{stderr}"
    );
    assert!(
        verify(home.path(), &format!("{direct}@{index}"), &[&ec_pub], &[])
            .status
            .success()
    );
    let (_, ed_pub) = keys(home.path(), "ed");
    let output = verify(home.path(), &format!("{direct}:v1"), &[&ed_pub], &[]);
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
        MANIFEST,
        &serde_json::to_vec(&sig).unwrap(),
    );
    let output = verify(home.path(), &format!("{direct}:v1"), &[&ec_pub], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("did not verify with the ECDSA P-256 key")
            && stderr.contains(&format!(
                "index {}: no signature by the ECDSA P-256 key",
                &index[..19]
            )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(" in {sig_tag}: signed by another key")),
        "{stderr}"
    );
}

#[test]
fn unsigned_then_signed_pushes_verify_but_not_strictly_and_a_refusing_registry_gets_the_image_alone()
 {
    let registry = Registry::start(Settings::default());
    let home = tempfile::tempdir().unwrap();
    let (ec, ec_pub) = keys(home.path(), "ec");
    let reference = format!("{}/scratchimg-e2e/unsigned:v1", registry.host);
    let result = json_run(&mut hello(home.path(), &["--push", &reference]));
    let digest = result["digest"].as_str().unwrap();
    // Unsigned attestations are there, listed, and unsigned: verify says so.
    let repo = "scratchimg-e2e/unsigned";
    let listed = referrers(&registry.host, repo, digest);
    assert_eq!(listed.len(), 2);
    let output = verify(home.path(), &reference, &[&ec_pub], &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(": no signature by the ECDSA P-256 key"),
        "{stderr}"
    );
    assert!(
        stderr.contains("referrer sha256:")
            && stderr.contains(": unsigned (a application/vnd.in-toto+json layer)"),
        "{stderr}"
    );

    // Signed afterwards: it verifies, naming the unsigned provenance left from the first push
    // (the plain SBOM is the same one, now vouched for); --strict refuses that one.
    json_run(hello(home.path(), &["--push", &reference, "--sign-key"]).arg(&ec));
    assert_eq!(referrers(&registry.host, repo, digest).len(), 5);
    let output = verify(home.path(), &reference, &[&ec_pub], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let unverified: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("Unverified"))
        .collect();
    assert_eq!(unverified.len(), 1, "{stderr}");
    assert!(
        unverified[0].ends_with(": unsigned (a application/vnd.in-toto+json layer)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("application/spdx+json referrer sha256:")
            && stderr.contains(": SBOM named by a signed SBOM attestation"),
        "{stderr}"
    );
    let output = verify(home.path(), &reference, &[&ec_pub], &["--strict"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1 referrer is not verified with the keys (--strict):"),
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
        // With --attach, the layout holds the bundles: two builds, the same bytes throughout.
        let outputs: Vec<_> = ["a", "b"]
            .iter()
            .map(|name| {
                let out = home.path().join(format!("{kind}-{name}.tar"));
                let out_arg = out.to_str().unwrap();
                run_ok(
                    hello(
                        home.path(),
                        &["-o", out_arg, "--attach", "all", "--sign-key"],
                    )
                    .arg(&key),
                );
                out
            })
            .collect();
        let bytes = |path: &std::path::Path| std::fs::read(path).unwrap();
        assert!(
            bytes(&outputs[0]) == bytes(&outputs[1]),
            "{kind}: the same archive"
        );
        let provenance = |out: &std::path::Path| bytes(&out.with_extension("tar.intoto.json"));
        assert_eq!(
            provenance(&outputs[0]),
            provenance(&outputs[1]),
            "{kind}: the same provenance"
        );
        let statement =
            securesystemslib_verifies(&provenance(&outputs[0]), &public, false).unwrap();
        assert_eq!(in_toto_validates(&statement).len(), 1);
        assert!(
            securesystemslib_verifies(&provenance(&outputs[0]), &public, true).is_err(),
            "{kind}"
        );
        // Each bundle in the layout verifies with the Sigstore JavaScript libraries.
        let index: serde_json::Value =
            serde_json::from_slice(&scratchimg_tests::tar_member(&outputs[0], "index.json"))
                .unwrap();
        let image = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let bundles: Vec<&serde_json::Value> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json")
            .collect();
        assert_eq!(bundles.len(), 3, "{index:#}");
        for entry in bundles {
            let blob = |digest: &str| {
                let path = format!("blobs/sha256/{}", &digest[7..]);
                scratchimg_tests::tar_member(&outputs[0], &path)
            };
            let manifest: serde_json::Value =
                serde_json::from_slice(&blob(entry["digest"].as_str().unwrap())).unwrap();
            let bundle = blob(manifest["layers"][0]["digest"].as_str().unwrap());
            let said = sigstore_js_verifies(&bundle, &public, &image).unwrap();
            assert!(
                said.contains(&format!(
                    "key: {}",
                    if kind == "ec" {
                        "ec prime256v1"
                    } else {
                        "ed25519"
                    }
                )),
                "{said}"
            );
        }
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
