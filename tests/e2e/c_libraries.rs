//! Crates that compile C code, built with no settings: git2 (its bundled libgit2 and libz-sys's
//! zlib), libz-sys, libsqlite3-sys with `bundled`, and a crate's own C file. Each image runs in
//! docker, its SBOM lists every C library linked with the version the running program reports,
//! and Trivy and syft, reading the image, count each package once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::{
    fixture_copy, python_tool, require_musl_target, require_tool, run_ok, shared_target_dir,
    syft_report, tool,
};

/// One fixture's image: its archive and SBOM beside it, and what it printed in docker.
struct Built {
    _dir: tempfile::TempDir,
    archive: PathBuf,
    spdx: serde_json::Value,
    ran: String,
}

/// Builds `fixture` with no settings, loads it into docker and runs it.
fn build(fixture: &str) -> Built {
    require_musl_target();
    require_tool("docker", &["version", "--format", "{{.Server.Version}}"]);
    let dir = fixture_copy(fixture);
    let archive = dir.path().join("image.tar");
    let tag = format!("scratchimg-e2e/c-{fixture}:test");
    let output = tool(dir.path())
        .args(["-t", &tag, "-o"])
        .arg(&archive)
        .arg("--target-dir")
        .arg(shared_target_dir(fixture))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("warning") && !stderr.contains("Note"),
        "no check has anything to say: {stderr}"
    );
    run_ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let ran = run_ok(Command::new("docker").args(["run", "--rm", &tag]));
    run_ok(Command::new("docker").args(["rmi", &tag]));
    let spdx =
        serde_json::from_slice(&std::fs::read(dir.path().join("image.tar.spdx.json")).unwrap())
            .unwrap();
    Built {
        _dir: dir,
        archive,
        spdx,
        ran,
    }
}

/// The C libraries of an SPDX document, by name: version, and the crate that links them.
fn c_libraries(spdx: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    let packages = spdx["packages"].as_array().unwrap();
    let id_of = |id: &str| {
        packages
            .iter()
            .find(|p| p["SPDXID"] == id)
            .map(|p| p["name"].as_str().unwrap().to_string())
            .unwrap()
    };
    packages
        .iter()
        .filter(|p| p["SPDXID"].as_str().unwrap().starts_with("SPDXRef-C-"))
        .map(|p| {
            let linker = spdx["relationships"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| {
                    r["relationshipType"] == "STATIC_LINK" && r["relatedSpdxElement"] == p["SPDXID"]
                })
                .map(|r| id_of(r["spdxElementId"].as_str().unwrap()))
                .expect("a STATIC_LINK from the crate that links it");
            (
                p["name"].as_str().unwrap().to_string(),
                (p["versionInfo"].as_str().unwrap().to_string(), linker),
            )
        })
        .collect()
}

/// How often Trivy (`trivy image --input`, CycloneDX: no vulnerability database) and syft list
/// each package of the image: package URL → (Trivy's count, syft's count).
fn scanner_counts(archive: &Path) -> BTreeMap<String, (usize, usize)> {
    let trivy = python_tool("trivy", &["--version"]);
    let cache = tempfile::tempdir().unwrap();
    let report = run_ok(
        Command::new(trivy)
            .args(["image", "--quiet", "--format", "cyclonedx", "--cache-dir"])
            .arg(cache.path())
            .arg("--input")
            .arg(archive),
    );
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for component in report["components"].as_array().unwrap() {
        if let Some(purl) = component["purl"].as_str() {
            counts.entry(purl.to_string()).or_default().0 += 1;
        }
    }
    for artifact in syft_report(archive)["artifacts"].as_array().unwrap() {
        counts
            .entry(artifact["purl"].as_str().unwrap().to_string())
            .or_default()
            .1 += 1;
    }
    counts
}

/// Every package the scanners find they find once, and both find the crates of the binary.
fn assert_counted_once(built: &Built) {
    let counts = scanner_counts(&built.archive);
    let twice: Vec<_> = counts
        .iter()
        .filter(|(_, (trivy, syft))| *trivy > 1 || *syft > 1)
        .collect();
    assert!(twice.is_empty(), "counted more than once: {twice:?}");
    let crates: Vec<&String> = counts
        .keys()
        .filter(|p| p.starts_with("pkg:cargo/"))
        .collect();
    assert!(!crates.is_empty(), "{counts:?}");
    for purl in crates {
        assert_eq!(counts[purl], (1, 1), "{purl}");
    }
}

#[test]
fn git2_builds_its_own_libgit2_and_zlib() {
    let built = build("git2");
    let version = built
        .ran
        .trim()
        .strip_prefix("libgit2 ")
        .unwrap()
        .to_string();
    let libraries = c_libraries(&built.spdx);
    assert_eq!(libraries["libgit2"], (version, "libgit2-sys".to_string()));
    assert_eq!(libraries["zlib"].1, "libz-sys");
    assert!(libraries["zlib"].0.starts_with("1."), "{libraries:?}");
    assert_counted_once(&built);
}

#[test]
fn libz_sys_builds_its_zlib() {
    let built = build("libz");
    let version = built.ran.trim().strip_prefix("zlib ").unwrap().to_string();
    assert_eq!(
        c_libraries(&built.spdx),
        BTreeMap::from([("zlib".to_string(), (version, "libz-sys".to_string()))])
    );
    assert_counted_once(&built);
}

#[test]
fn bundled_sqlite_is_listed_with_its_version() {
    let built = build("sqlite-bundled");
    let version = built
        .ran
        .trim()
        .strip_prefix("sqlite ")
        .unwrap()
        .to_string();
    assert_eq!(
        c_libraries(&built.spdx),
        BTreeMap::from([(
            "sqlite".to_string(),
            (version, "libsqlite3-sys".to_string())
        )])
    );
    let sqlite = built.spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sqlite")
        .unwrap();
    assert!(
        sqlite["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("cpe:2.3:a:sqlite:sqlite:3."),
        "{sqlite}"
    );
    assert_counted_once(&built);
}

#[test]
fn a_crates_own_c_code_is_listed_under_its_version() {
    let built = build("cc-own");
    assert_eq!(built.ran.trim(), "answer 42");
    assert_eq!(
        c_libraries(&built.spdx),
        BTreeMap::from([(
            "greet".to_string(),
            ("0.2.0".to_string(), "cc-own".to_string())
        )])
    );
    assert_counted_once(&built);
}
