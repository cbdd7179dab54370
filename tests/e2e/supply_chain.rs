//! examples/events (serde, serde_json, jiff) built by cargo-scratchimg and read by the real
//! tools: syft finds its crates in the binary, the SBOMs validate with the formats' own
//! validators and list exactly what cargo compiles, and the manifest says where it came from.
//! Nothing skips: a missing tool fails the test with what to install.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use scratchimg_tests::{
    dependency_list, example, fixture_copy, host_musl_target, layer_paths, python_tool, repo_root,
    require_musl_target, run_ok, shared_target_dir, syft_report, tar_member, test_toolchain, tool,
};

type Crates = BTreeSet<(String, String)>;

/// One image of examples/events, with what the tool printed about it.
struct Build {
    archive: PathBuf,
    result: serde_json::Value,
}

impl Build {
    /// Builds examples/events with `args` into `<dir>/<name>.tar`.
    fn new(dir: &Path, name: &str, args: &[&str]) -> Build {
        // Builds share a target directory: one at a time, or another variant could relink the
        // binary between cargo finishing and the tool reading it.
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        require_musl_target();
        let archive = dir.join(format!("{name}.tar"));
        let stdout = run_ok(
            tool(&example("events"))
                .args(["--message-format", "json", "-o"])
                .arg(&archive)
                .arg("--target-dir")
                .arg(shared_target_dir("events"))
                .args(args),
        );
        Build {
            archive,
            result: serde_json::from_str(&stdout).expect("one JSON object on stdout"),
        }
    }

    fn beside(&self, extension: &str) -> PathBuf {
        PathBuf::from(format!("{}.{extension}", self.archive.display()))
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        let digest = digest.trim_start_matches("sha256:");
        tar_member(&self.archive, &format!("blobs/sha256/{digest}"))
    }

    /// A file of the app layer (the image's top layer).
    fn app_file(&self, path: &str) -> Vec<u8> {
        let layer = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            layer.path(),
            self.blob(self.result["layers"][1]["digest"].as_str().unwrap()),
        )
        .unwrap();
        tar_member(layer.path(), path)
    }

    fn manifest(&self) -> serde_json::Value {
        serde_json::from_slice(&self.blob(self.result["digest"].as_str().unwrap())).unwrap()
    }
}

/// The default build (dependency list in, SPDX), shared by the tests of this file.
fn default_build() -> &'static Build {
    static BUILD: OnceLock<(tempfile::TempDir, Build)> = OnceLock::new();
    &BUILD
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let build = Build::new(dir.path(), "events", &[]);
            (dir, build)
        })
        .1
}

/// `(name, version)` of the crates `cargo tree` shows for examples/events on the musl target.
fn cargo_tree(edges: &str, args: &[&str]) -> Crates {
    cargo_tree_in(&example("events"), edges, args)
}

/// `(name, version)` of the crates `cargo tree` shows for the package in `dir` on the musl
/// target.
fn cargo_tree_in(dir: &Path, edges: &str, args: &[&str]) -> Crates {
    let mut command = Command::new("cargo");
    command
        .args([
            "tree", "--edges", edges, "--prefix", "none", "--format", "{p}",
        ])
        .args(["--target", &host_musl_target()])
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR");
    if let Some(toolchain) = test_toolchain() {
        command.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    run_ok(&mut command)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((
                words.next()?.to_string(),
                words.next()?.strip_prefix('v')?.to_string(),
            ))
        })
        .collect()
}

/// The crates syft finds in an image archive.
fn syft_crates(archive: &Path) -> Crates {
    syft_report(archive)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "rust-crate")
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The crates compiled into the binary among package URLs: `pkg:cargo/NAME@VERSION`, without
/// the crate the CA bundle comes from.
fn cargo_purls<'a>(purls: impl Iterator<Item = &'a serde_json::Value>) -> Crates {
    purls
        .filter_map(|purl| purl.as_str()?.strip_prefix("pkg:cargo/"))
        .filter(|purl| !purl.starts_with("webpki-root-certs@"))
        .map(|purl| {
            let (name, version) = purl.split_once('@').unwrap();
            (name.to_string(), version.to_string())
        })
        .collect()
}

/// The crates an SPDX document lists, by their package URLs.
fn spdx_crates(document: &serde_json::Value) -> Crates {
    cargo_purls(
        document["packages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["externalRefs"].as_array().unwrap())
            .map(|r| &r["referenceLocator"]),
    )
}

fn crate_version(crates: &Crates, name: &str) -> Option<String> {
    crates
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn syft_finds_the_crates_of_the_binary_with_their_versions() {
    let build = default_build();
    let found = syft_crates(&build.archive);
    // The versions Cargo.lock pins, not whatever is newest.
    let lock = std::fs::read_to_string(example("events").join("Cargo.lock")).unwrap();
    for name in ["serde", "serde_json", "jiff"] {
        let version = crate_version(&found, name)
            .unwrap_or_else(|| panic!("syft does not find {name}: {found:?}"));
        assert!(
            lock.contains(&format!("name = \"{name}\"\nversion = \"{version}\"\n")),
            "syft finds {name} {version}, which Cargo.lock does not pin"
        );
    }
    // Exactly what cargo compiles for the binary, build dependencies included, as
    // cargo-auditable records them; nothing the lockfile has only for other platforms.
    assert_eq!(found, cargo_tree("normal,build", &[]));
}

#[test]
fn without_the_dependency_list_syft_finds_no_crates() {
    let dir = tempfile::tempdir().unwrap();
    let build = Build::new(dir.path(), "plain", &["--no-auditable"]);
    assert_eq!(syft_crates(&build.archive), Crates::new());
    let binary = build.app_file("app/events");
    assert!(
        !binary.windows(7).any(|w| w == b".dep-v0"),
        "the binary still has a .dep-v0 section"
    );
    assert_eq!(
        build.manifest()["annotations"]["dev.cargo-scratchimg.auditable"],
        "false"
    );
}

#[test]
fn spdx_document_validates_and_lists_exactly_the_compiled_crates() {
    let pyspdxtools = python_tool("pyspdxtools", &["--help"]);
    let build = default_build();
    let beside = build.beside("spdx.json");
    // pyspdxtools parses the document and validates it against the SPDX 2.3 specification.
    run_ok(Command::new(&pyspdxtools).arg("-i").arg(&beside));

    let bytes = std::fs::read(&beside).unwrap();
    // Not in the image by default: Trivy would list each crate from it and from the binary.
    let app_layer = &layer_paths(&build.archive)[1];
    assert!(
        !app_layer.iter().any(|p| p.contains("sbom")),
        "{app_layer:?}"
    );
    let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(spdx_crates(&document), cargo_tree("normal", &[]));

    let packages = document["packages"].as_array().unwrap();
    let package = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no package {name}"))
    };
    let serde = package("serde");
    assert_eq!(serde["licenseDeclared"], "MIT OR Apache-2.0");
    let lock = std::fs::read_to_string(example("events").join("Cargo.lock")).unwrap();
    let checksum = serde["checksums"][0]["checksumValue"].as_str().unwrap();
    assert!(lock.contains(&format!("checksum = \"{checksum}\"")));
    let app = package("events");
    assert_eq!(app["packageFileName"], "/app/events");
    assert_eq!(
        app["checksums"][0]["checksumValue"].as_str().unwrap().len(),
        64
    );
    assert!(package("ca-certificates")["versionInfo"].is_string());
    assert!(
        package("tzdata")["versionInfo"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
    let text = String::from_utf8(bytes).unwrap();
    let root = repo_root();
    assert!(
        !text.contains(root.to_str().unwrap()),
        "the SBOM names a path of this machine"
    );

    // Other features, other crates: the document follows the binary's features.
    let dir = tempfile::tempdir().unwrap();
    let lean = Build::new(dir.path(), "lean", &["--no-default-features"]);
    let lean_document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lean.beside("spdx.json")).unwrap()).unwrap();
    let lean_crates = spdx_crates(&lean_document);
    assert_eq!(
        lean_crates,
        cargo_tree("normal", &["--no-default-features"])
    );
    assert_eq!(crate_version(&lean_crates, "serde_json"), None);
}

#[test]
fn cyclonedx_document_validates_and_lists_the_same_crates() {
    let python = python_tool("python", &["-c", "import cyclonedx.validation.json"]);
    let dir = tempfile::tempdir().unwrap();
    let build = Build::new(
        dir.path(),
        "cdx",
        &["--sbom", "cyclonedx", "--sbom-in-image"],
    );
    let beside = build.beside("cdx.json");
    assert!(!build.beside("spdx.json").exists());
    run_ok(
        Command::new(python)
            .arg("-c")
            .arg(
                "import sys\n\
                 from cyclonedx.schema import SchemaVersion\n\
                 from cyclonedx.validation.json import JsonStrictValidator\n\
                 error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
                 sys.exit(f'invalid CycloneDX 1.5: {getattr(error.data, \"message\", error)}' if error else 0)",
            )
            .arg(&beside),
    );
    let bytes = std::fs::read(&beside).unwrap();
    assert_eq!(
        build.app_file("usr/share/doc/sbom/events.cdx.json"),
        bytes,
        "--sbom-in-image puts the same document into the image"
    );
    let bom: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let crates = cargo_purls(
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["purl"]),
    );
    assert_eq!(crates, cargo_tree("normal", &[]));

    let none = Build::new(dir.path(), "none", &["--sbom", "none"]);
    assert!(!none.beside("spdx.json").exists() && !none.beside("cdx.json").exists());
}

#[test]
fn manifest_annotations_say_where_the_image_came_from() {
    let annotations = &default_build().manifest()["annotations"];
    let revision = run_ok(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(example("events")),
    );
    assert_eq!(
        annotations["org.opencontainers.image.revision"],
        revision.trim()
    );
    assert_eq!(annotations["org.opencontainers.image.version"], "0.1.0");
    let mut rustc = Command::new("rustc");
    rustc.arg("-vV").current_dir(example("events"));
    if let Some(toolchain) = test_toolchain() {
        rustc.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    assert_eq!(
        annotations["dev.cargo-scratchimg.rustc"],
        run_ok(&mut rustc).trim()
    );
    assert_eq!(
        annotations["dev.cargo-scratchimg.target"],
        host_musl_target()
    );
    assert_eq!(annotations["dev.cargo-scratchimg.profile"], "release");
    assert_eq!(annotations["dev.cargo-scratchimg.features"], "default,json");
    assert_eq!(annotations["dev.cargo-scratchimg.auditable"], "true");
    assert!(
        annotations["dev.cargo-scratchimg.tool"]
            .as_str()
            .unwrap()
            .starts_with("cargo-scratchimg ")
    );
}

/// The name of the root package of a dependency list, and the names of all its packages.
fn root_and_names(list: &serde_json::Value) -> (String, BTreeSet<String>) {
    let packages = list["packages"].as_array().unwrap();
    let root = packages
        .iter()
        .find(|p| p["root"] == true)
        .expect("a root package");
    (
        root["name"].as_str().unwrap().to_string(),
        packages
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect(),
    )
}

/// One `cargo build` of several packages and binaries: the rustc wrapper links each binary
/// its own package's dependency list, and each binary gets its own SBOM beside the output.
#[test]
fn workspace_binaries_each_carry_their_own_dependency_list() {
    require_musl_target();
    let ws = scratchimg_tests::fixture_copy("workspace");
    let out = ws.path().join("images");
    let target_dir = shared_target_dir("workspace");
    run_ok(
        tool(ws.path())
            .args(["--workspace", "-o"])
            .arg(&out)
            .arg("--target-dir")
            .arg(&target_dir),
    );
    let built = target_dir
        .join(host_musl_target())
        .join("scratchimg-release");
    for (bin, package) in [("api", "api"), ("worker", "worker"), ("migrate", "worker")] {
        let list = dependency_list(&built.join(bin))
            .unwrap_or_else(|| panic!("{bin} has no .dep-v0 section"));
        let (root, names) = root_and_names(&list);
        assert_eq!(root, package, "the root of {bin}'s list");
        assert!(names.contains("common"), "{bin}: {names:?}");
    }
    // One document per binary beside the output: worker's image holds two binaries.
    for file in [
        "api-0.1.0.tar.spdx.json",
        "worker-0.1.0.tar.worker.spdx.json",
        "worker-0.1.0.tar.migrate.spdx.json",
    ] {
        let document: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join(file)).unwrap()).unwrap();
        assert_eq!(document["spdxVersion"], "SPDX-2.3", "{file}");
    }
}

/// An index: every platform's binary carries its list, and every platform's image its SBOM,
/// each also beside the output under the platform's name.
#[test]
fn every_platform_of_an_index_has_its_list_and_sbom() {
    require_musl_target();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("events.tar");
    let target_dir = shared_target_dir("events-multi");
    run_ok(
        tool(&example("events"))
            .args(["--platform", "linux/amd64,linux/arm64", "-o"])
            .arg(&archive)
            .arg("--target-dir")
            .arg(&target_dir),
    );
    for (triple, platform) in [
        ("x86_64-unknown-linux-musl", "linux-amd64"),
        ("aarch64-unknown-linux-musl", "linux-arm64"),
    ] {
        let list = dependency_list(&target_dir.join(triple).join("scratchimg-release/events"))
            .unwrap_or_else(|| panic!("the {triple} binary has no .dep-v0 section"));
        let (root, names) = root_and_names(&list);
        assert_eq!(root, "events");
        assert!(names.contains("serde_json"), "{names:?}");
        let beside = dir.path().join(format!("events.tar.{platform}.spdx.json"));
        let document: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&beside).unwrap()).unwrap();
        assert_eq!(document["spdxVersion"], "SPDX-2.3");
    }
    assert!(!dir.path().join("events.tar.spdx.json").exists());
}

/// cargo cannot see the link arguments the rustc wrapper adds, so a binary linked without its
/// list would stay "fresh": the tool finds it by its section, cleans it, and links it again.
#[test]
fn a_binary_without_its_list_is_relinked() {
    require_musl_target();
    let dir = tempfile::tempdir().unwrap();
    let target_dir = dir.path().join("target");
    let build = || {
        let output = tool(&example("events"))
            .arg("-o")
            .arg(dir.path().join("events.tar"))
            .arg("--target-dir")
            .arg(&target_dir)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stderr).unwrap()
    };
    build();
    let built = target_dir
        .join(host_musl_target())
        .join("scratchimg-release");
    // What an older cargo-scratchimg left: the same fingerprint, no list. Files keep their
    // modification times, so cargo still takes them as up to date.
    let deps: Vec<PathBuf> = std::fs::read_dir(built.join("deps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("events-") && !name.contains('.')
        })
        .collect();
    for binary in deps.iter().chain([&built.join("events")]) {
        let modified = std::fs::metadata(binary).unwrap().modified().unwrap();
        run_ok(
            Command::new("objcopy")
                .args(["--remove-section", ".dep-v0"])
                .arg(binary),
        );
        std::fs::File::options()
            .write(true)
            .open(binary)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert!(dependency_list(binary).is_none());
    }
    let stderr = build();
    assert!(stderr.contains("Relinking"), "{stderr}");
    let list = dependency_list(&built.join("events")).expect("the list is back");
    assert_eq!(root_and_names(&list).0, "events");
}

/// A crate compiled both for the program and, with more features, for its build script (the
/// fixture's serde_json, as xh's syntect): what only the build script's features pull in
/// (indexmap and what it uses) is marked `kind: build` in the binary's list, as cargo-auditable
/// marks build dependencies, and left out of the SBOM; both list exactly what `cargo tree`
/// says the binary links.
#[test]
fn crates_only_build_scripts_use_are_not_runtime_dependencies() {
    require_musl_target();
    let dir = fixture_copy("build-only");
    let target_dir = shared_target_dir("build-only");
    let archive = dir.path().join("build-only.tar");
    run_ok(
        tool(dir.path())
            .arg("-o")
            .arg(&archive)
            .arg("--target-dir")
            .arg(&target_dir),
    );
    let binary = target_dir
        .join(host_musl_target())
        .join("scratchimg-release/build-only");
    let list = dependency_list(&binary).expect("a .dep-v0 section");
    let packages = list["packages"].as_array().unwrap();
    let kind = |name: &str| {
        let package = packages
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not in the list: {list}"));
        package["kind"].as_str().unwrap_or("runtime").to_string()
    };
    for name in ["indexmap", "hashbrown", "equivalent"] {
        assert_eq!(kind(name), "build", "{name}");
    }
    for name in ["build-only", "serde_json", "itoa", "memchr"] {
        assert_eq!(kind(name), "runtime", "{name}");
    }
    let runtime: Crates = packages
        .iter()
        .filter(|p| p["kind"].is_null())
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(runtime, cargo_tree_in(dir.path(), "normal", &[]));
    let document: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("build-only.tar.spdx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(spdx_crates(&document), runtime);
}
