//! The whole pipeline in-process, on a workspace of two packages for two platforms, with a
//! fake compile step: prebuilt static binaries instead of cargo's, as cargo-dist's fake builds
//! do. Everything else is real: `cargo metadata` and `cargo tree` (with the toolchain that has
//! the musl targets), the settings, the claims, the layers, the files written and read back.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::cargo::BuiltBinary;
use crate::cargo::CargoOptions;
use crate::image::validate;
use crate::local_image::{read_archive, read_oci_dir};
use crate::report::{Capture, Event, Verbosity};
use crate::sbom::SbomFormat;
use crate::sink::Format;
use crate::target::{Arch, Target};

/// The cargo of the toolchain with both musl targets: `SCRATCHIMG_TEST_TOOLCHAIN` (CI sets
/// `musl-offline`), else the one running the tests.
fn musl_cargo() -> PathBuf {
    let mut rustup = Command::new("rustup");
    rustup.args(["which", "cargo"]);
    if let Some(toolchain) = std::env::var("SCRATCHIMG_TEST_TOOLCHAIN")
        .ok()
        .filter(|t| !t.is_empty())
    {
        rustup.args(["--toolchain", &toolchain]);
    }
    let output = rustup.output().expect("rustup runs");
    assert!(output.status.success(), "rustup which cargo failed");
    let cargo = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    let rustlib = cargo.parent().unwrap().join("../lib/rustlib");
    for arch in Arch::ALL {
        let lib = rustlib.join(Target::musl(arch).triple).join("lib");
        assert!(
            std::fs::read_dir(&lib).is_ok_and(|mut e| e.any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("libstd-"))),
            "the toolchain of {} lacks {lib:?}: install both musl targets \
             (`rustup target add`, or ../shared/env/install-musl-targets.sh and \
             SCRATCHIMG_TEST_TOOLCHAIN=musl-offline)",
            cargo.display()
        );
    }
    cargo
}

/// A static ELF executable for `arch` that the ELF check takes: one loadable segment, no
/// interpreter, no libraries. `marker` makes each binary's bytes its own.
fn static_elf(arch: Arch, marker: &str) -> Vec<u8> {
    let mut elf = Vec::new();
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&arch.elf_machine().to_le_bytes());
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&0x40_0078u64.to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    let size = (120 + marker.len()) as u64;
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for word in [0, 0x40_0000, 0x40_0000, size, size, 0x1000u64] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(marker.as_bytes());
    elf
}

/// The compile step with cargo left out: each binary the plan asks for, prebuilt.
fn fake_compile(
    plan: &Plan,
    _: &Env,
    target_dir: &Path,
    _: EarlyBuild,
    report: &dyn Reporter,
) -> Result<Vec<PlatformBuild>> {
    plan.platforms
        .iter()
        .map(|platform| {
            let target = platform.target().clone();
            report.status("Building", &format!("(fake) {}", target.triple));
            let binaries = plan
                .request
                .packages
                .iter()
                .flat_map(|package| package.bins.iter().map(move |bin| (package, bin)))
                .map(|(package, bin)| {
                    let bytes = static_elf(target.arch, &format!("{bin} {}", target.triple));
                    (package, bin, bytes)
                })
                .map(|(package, bin, bytes)| BuiltBinary {
                    path: target_dir.join(&target.triple).join(bin),
                    sha256: crate::image::sha256(&bytes),
                    bytes: bytes.into(),
                    read_ahead: false,
                    name: bin.clone(),
                    package: package.name.clone(),
                    version: package.version.clone(),
                    target: target.clone(),
                })
                .collect();
            Ok(PlatformBuild {
                target,
                binaries,
                c_libraries: Vec::new(),
            })
        })
        .collect()
}

/// Writes `text` to `path` in `dir`, making its folders.
fn write(dir: &tempfile::TempDir, path: &str, text: &str) {
    let path = dir.path().join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A workspace with binary packages `api` and `worker`, and settings of its own.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| write(&dir, path, text);
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"api\", \"worker\"]\nresolver = \"2\"\n\n\
         [workspace.metadata.scratchimg]\nenv = { RUST_LOG = \"info\" }\n",
    );
    for name in ["api", "worker"] {
        write(
            &format!("{name}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\nversion = \"0.2.0\"\nedition = \"2021\"\n\
                 license = \"MIT\"\n\n[package.metadata.scratchimg]\nports = [\"8080\"]\n"
            ),
        );
        write(&format!("{name}/src/main.rs"), "fn main() {}\n");
    }
    dir
}

fn env(root: &Path) -> Env {
    let mut env = Env::from_vars(root.to_path_buf(), std::env::vars_os());
    env.cargo = musl_cargo();
    env.rustc = None;
    env.rustc_wrapper = None;
    env.target_dir = None;
    env.source_date_epoch = Some("1700000000".into());
    env.default_repo = None;
    // A configured linker: the plan takes it as given, whatever this machine has.
    env.cargo_vars.insert(
        Target::musl(Arch::Arm64).cargo_env("LINKER"),
        "aarch64-linux-musl-gcc".into(),
    );
    env.cargo_vars.insert(
        Target::musl(Arch::Amd64).cargo_env("LINKER"),
        "x86_64-linux-musl-gcc".into(),
    );
    // The wrapper is named, so the binaries would carry their lists; cargo never runs it here.
    env.current_exe = Some("/nonexistent/cargo-scratchimg".into());
    env
}

fn options(out: &Path, format: Format) -> Options {
    Options {
        cargo: CargoOptions {
            workspace: true,
            // cargo would take CARGO_TARGET_DIR from the test's own environment.
            target_dir: Some(out.parent().unwrap().join("target")),
            ..CargoOptions::default()
        },
        platforms: Some("linux/amd64,linux/arm64".into()),
        output: Some(out.to_path_buf()),
        format,
        auditable: true,
        sbom: Some(SbomFormat::Spdx),
        verify: true,
        ..Options::default()
    }
}

#[test]
fn the_plan_of_a_workspace_holds_one_record_per_image_and_platform() {
    let ws = workspace();
    let out = ws.path().join("out");
    let env = env(ws.path());
    let report = Capture::new(Verbosity::Verbose);
    let Planned { plan, images, .. } =
        plan(&options(&out, Format::Archive), &env, &report).expect("the workspace plans");

    let triples: Vec<&str> = plan
        .platforms
        .iter()
        .map(|p| p.target().triple.as_str())
        .collect();
    assert_eq!(
        triples,
        ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"]
    );
    for platform in &plan.platforms {
        assert!(
            platform.toolchain.linker_env.is_empty(),
            "the configured linker wins"
        );
        let graphs: Vec<&str> = platform.graphs.keys().map(String::as_str).collect();
        assert_eq!(graphs, ["api", "worker"], "a crate graph per package");
        assert_eq!(platform.graphs["api"].root().name, "api");
    }
    let packages: Vec<(&str, &[String])> = plan
        .request
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.bins.as_slice()))
        .collect();
    assert_eq!(
        packages,
        [
            ("api", &["api".to_string()][..]),
            ("worker", &["worker".to_string()][..])
        ]
    );
    assert_eq!(plan.request.profile.name(), "scratchimg-release");
    let bases: Vec<_> = images.iter().map(|i| i.base.blob().digest()).collect();
    assert_eq!(
        crate::util::unique(bases).len(),
        1,
        "both images stand on the same base"
    );
    assert!(
        plan.rustc_version.starts_with("rustc "),
        "{}",
        plan.rustc_version
    );

    assert_eq!(images.len(), 2);
    for (image, name) in images.iter().zip(["api", "worker"]) {
        assert_eq!(image.package.name.as_str(), name);
        assert_eq!(image.bins, [name]);
        assert_eq!(image.tags[0].familiar(), format!("{name}:0.2.0"));
        assert_eq!(image.date.seconds, 1_700_000_000);
        assert_eq!(
            image.settings.env["RUST_LOG"], "info",
            "workspace settings apply"
        );
        assert!(image.settings.ports.contains("8080/tcp"));
        let destination = image.outputs.destination.as_ref().expect("an output");
        assert_eq!(destination.path(), out.join(format!("{name}-0.2.0.tar")));
        let sboms: Vec<String> = image
            .outputs
            .sboms
            .iter()
            .map(|c| {
                c.file
                    .path()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            sboms,
            [
                format!("{name}-0.2.0.tar.linux-amd64.spdx.json"),
                format!("{name}-0.2.0.tar.linux-arm64.spdx.json")
            ]
        );
    }
    assert!(
        report
            .events()
            .iter()
            .any(|e| matches!(e, Event::Verbose { verb, .. } if verb == "Timestamp")),
        "{:?}",
        report.events()
    );
    drop(images);
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "dropped claims leave nothing behind"
    );
}

#[test]
fn a_run_publishes_every_image_and_what_it_wrote_reads_back_valid() {
    for format in [Format::Archive, Format::OciDir] {
        let ws = workspace();
        let out = ws.path().join("out");
        let env = env(ws.path());
        let report = Capture::new(Verbosity::Normal);
        let outcomes = run_with(&options(&out, format), &env, &report, fake_compile)
            .expect("the run succeeds");

        assert_eq!(outcomes.len(), 2);
        for (outcome, name) in outcomes.iter().zip(["api", "worker"]) {
            let path = outcome.path.as_ref().expect("written");
            let artifact = match format {
                Format::Archive => read_archive(path),
                Format::OciDir => read_oci_dir(path),
            }
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert_eq!(artifact.digest().to_string(), outcome.digest);
            assert_eq!(artifact.images().len(), 2, "an index of both platforms");
            for image in artifact.images() {
                validate(image).unwrap_or_else(|e| panic!("{name}: {e:#}"));
                assert_eq!(image.layers().len(), 2, "base and app");
            }
            let platforms: Vec<&str> = outcome.images.iter().map(|i| i.platform.as_str()).collect();
            assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
            // The index is named as an image is, in both formats: containerd's importers name
            // and unpack it by these.
            let index: serde_json::Value =
                serde_json::from_slice(&layout_file(path, "index.json")).unwrap();
            assert_eq!(
                index["manifests"],
                serde_json::json!([{
                    "annotations": {
                        "io.containerd.image.name": format!("docker.io/library/{name}:0.2.0"),
                        "org.opencontainers.image.ref.name": "0.2.0",
                    },
                    "digest": outcome.digest,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "size": artifact.manifest().size(),
                }])
            );
            for platform in ["amd64", "arm64"] {
                let sbom = PathBuf::from(format!("{}.linux-{platform}.spdx.json", path.display()));
                let doc: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
                assert_eq!(doc["spdxVersion"], "SPDX-2.3");
            }
        }
        // What the reporter got: the steps in order, one result per image.
        let verbs: Vec<String> = report
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Status { verb, .. } => Some(verb),
                _ => None,
            })
            .collect();
        let first = |verb: &str| verbs.iter().position(|v| v == verb).unwrap();
        assert!(first("Building") < first("Packing"));
        assert!(first("Packing") < first("Verifying"));
        assert!(first("Verified") < first("Writing"));
        assert_eq!(verbs.last().map(String::as_str), Some("Finished"));
        assert_eq!(report.statuses("Verified").len(), 2);
        let results: Vec<Outcome> = report
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Result(outcome) => Some(*outcome),
                _ => None,
            })
            .collect();
        assert_eq!(results, outcomes, "each outcome reported as published");
        // --verify's directory is gone; nothing temporary is left beside the outputs.
        let scratch = ws.path().join("target/scratchimg");
        let leftovers: Vec<_> = std::fs::read_dir(&scratch)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(crate::tool_dir::ToolDir::VERIFY_PREFIX))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let hidden: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }
}

/// A file of an image's OCI layout: inside the archive, or in the directory.
fn layout_file(output: &Path, name: &str) -> Vec<u8> {
    if output.is_dir() {
        return std::fs::read(output.join(name)).unwrap();
    }
    let mut archive = tar::Archive::new(std::fs::File::open(output).unwrap());
    let mut entry = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().to_str() == Some(name))
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
    bytes
}

/// `--metadata-file`: every image as `--message-format json` gives it, and every file written,
/// in one document beside the outputs; a path another output has is refused before the build.
#[test]
fn the_run_record_lists_every_image_and_file() {
    let ws = workspace();
    let out = ws.path().join("out");
    let env = env(ws.path());
    let report = Capture::new(Verbosity::Normal);
    let mut options = options(&out, Format::Archive);
    options.verify = false;
    let record = ws.path().join("record.json");
    options.metadata_file = Some(record.clone());
    let outcomes = run_with(&options, &env, &report, fake_compile).expect("the run succeeds");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(written["images"], serde_json::to_value(&outcomes).unwrap());
    assert_eq!(written["pushed"], serde_json::json!([]));
    let files: Vec<PathBuf> = serde_json::from_value(written["files"].clone()).unwrap();
    let mut on_disk: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    on_disk.sort();
    let mut listed = files.clone();
    listed.sort();
    assert_eq!(listed, on_disk, "every file written, and only those");
    assert_eq!(files[0], out.join("api-0.2.0.tar"));
    assert_eq!(
        outcomes[0].files.len(),
        4,
        "the tar, two SBOMs, the provenance"
    );
    // Nothing next to the images went anywhere: no --attach, no push.
    assert!(outcomes.iter().all(|o| o.referrers.is_empty()));
    // With --attach, the output holds them, each marked as containerd marks a referrer.
    options.attach = Some(crate::attest::Attach::All);
    let outcomes = run_with(&options, &env, &report, fake_compile).expect("the run succeeds");
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(listed["images"], serde_json::to_value(&outcomes).unwrap());
    let index: serde_json::Value =
        serde_json::from_slice(&layout_file(&files[0], "index.json")).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1 + outcomes[0].referrers.len());
    let kinds: std::collections::BTreeSet<&str> =
        outcomes[0].referrers.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, ["provenance", "sbom"].into());
    for (entry, referrer) in entries[1..].iter().zip(&outcomes[0].referrers) {
        assert_eq!(entry["digest"], referrer.digest);
        assert_eq!(
            entry["annotations"]["io.containerd.manifest.subject"],
            referrer.subject
        );
    }

    options.metadata_file = Some(out.join("api-0.2.0.tar.intoto.json"));
    let error = run_with(&options, &env, &report, fake_compile)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("--metadata-file ") && error.contains("is also an output of the run"),
        "{error}"
    );
    // Nor inside an OCI directory the run writes: its layout is replaced whole.
    let layout = ws.path().join("layout");
    let mut options = self::options(&layout, Format::OciDir);
    options.metadata_file = Some(layout.join("api-0.2.0").join("record.json"));
    let error = run_with(&options, &env, &report, fake_compile)
        .unwrap_err()
        .to_string();
    assert!(error.contains("is inside the OCI directory"), "{error}");
}

/// Documents an earlier run left beside an output that this run does not write (one platform
/// then several, several then one, another format, none) go when the output is written: no
/// stale document describes it.
#[test]
fn documents_an_earlier_run_left_beside_the_output_go() {
    let ws = workspace();
    let out = ws.path().join("out");
    let env = env(ws.path());
    let report = Capture::new(Verbosity::Normal);
    let mut options = options(&out, Format::Archive);
    options.verify = false;
    options.cargo.workspace = false;
    options.cargo.package = Some("api".into());
    options.output = Some(out.join("api.tar"));
    let mut runs = vec![
        (
            "linux/amd64",
            Some(SbomFormat::Spdx),
            vec!["api.tar.spdx.json"],
        ),
        (
            "linux/amd64,linux/arm64",
            Some(SbomFormat::Spdx),
            vec![
                "api.tar.linux-amd64.spdx.json",
                "api.tar.linux-arm64.spdx.json",
            ],
        ),
        (
            "linux/arm64",
            Some(SbomFormat::CycloneDx),
            vec!["api.tar.cdx.json"],
        ),
        ("linux/amd64", None, vec![]),
    ];
    // And back again, from nothing to one.
    runs.push(runs[0].clone());
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("api.tar.notes.txt"), "mine").unwrap();
    for (platforms, sbom, documents) in runs {
        options.platforms = Some(platforms.into());
        options.sbom = sbom;
        run_with(&options, &env, &report, fake_compile).expect("the run succeeds");
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // The provenance beside the output is there every time.
        let mut want = vec!["api.tar", "api.tar.intoto.json", "api.tar.notes.txt"];
        want.extend(documents);
        want.sort();
        assert_eq!(names, want, "{platforms} {sbom:?}");
    }
}

/// The bytes of a fixed build, pinned: restructuring the code must not change them. The config
/// and every layer of both platforms (the manifests carry `rustc -vV`, which depends on the
/// toolchain that runs the tests; the configs and layers do not).
#[test]
fn a_fixed_build_gives_the_pinned_bytes() {
    let ws = workspace();
    let out = ws.path().join("out");
    let env = env(ws.path());
    let report = Capture::new(Verbosity::Normal);
    let mut options = options(&out, Format::Archive);
    options.verify = false;
    // As every image had its SBOM inside when the bytes were pinned.
    options.sbom_in_image = true;
    let outcomes = run_with(&options, &env, &report, fake_compile).expect("the run succeeds");
    let mut found = Vec::new();
    for outcome in &outcomes {
        let artifact = read_archive(outcome.path.as_ref().unwrap()).unwrap();
        for image in artifact.images() {
            found.push(format!(
                "{} {} config {}",
                outcome.tags[0],
                image.arch().platform(),
                image.config().digest()
            ));
            for layer in image.layers() {
                found.push(format!(
                    "{} {} layer {} {}",
                    outcome.tags[0],
                    image.arch().platform(),
                    layer.blob().digest(),
                    layer.diff_id()
                ));
            }
        }
    }
    let pinned: Vec<String> = PINNED.lines().map(str::to_string).collect();
    assert_eq!(found, pinned, "found:\n{}", found.join("\n"));
}

/// What the build above gave before the pipeline was restructured (issue 20).
const PINNED: &str = "\
api:0.2.0 linux/amd64 config sha256:be515b9bf5da32b21aa0498fd8733f5bf589a5253447bd5231c8194d744f6ed9\n\
api:0.2.0 linux/amd64 layer sha256:cc68450702dc520274eb77d3616b7fdc807cb04e857e3898ea87be1ffe1a375a sha256:8f81ffe0062d132d1a324bdbe313f82c6984cfd1a75752af3ac2596b96affbdb\n\
api:0.2.0 linux/amd64 layer sha256:0e94165f26cda5fbd7194ebc8aac0b99116f4e4b8442b79ad8f4335aed275cd5 sha256:600fcb2a71e7f3dba7293e322110939b600971146cb4011f10f55510b3ae37f3\n\
api:0.2.0 linux/arm64/v8 config sha256:a2c5618238a265a914e1bb5b35b9321c040795d5f9a838923bedb802f3b44678\n\
api:0.2.0 linux/arm64/v8 layer sha256:cc68450702dc520274eb77d3616b7fdc807cb04e857e3898ea87be1ffe1a375a sha256:8f81ffe0062d132d1a324bdbe313f82c6984cfd1a75752af3ac2596b96affbdb\n\
api:0.2.0 linux/arm64/v8 layer sha256:10a4324bf2d9934a5ebc20ef303311280241c0684de4d46e41d9313f00c71d45 sha256:17d5012a0a46f5a49042656ef816e6ba5a47859f3a041a995eb2d44def8226aa\n\
worker:0.2.0 linux/amd64 config sha256:a85c5efe30c3c72f05d0a69154092563e558f7cc2e36f4c06f0195a00d3de83f\n\
worker:0.2.0 linux/amd64 layer sha256:cc68450702dc520274eb77d3616b7fdc807cb04e857e3898ea87be1ffe1a375a sha256:8f81ffe0062d132d1a324bdbe313f82c6984cfd1a75752af3ac2596b96affbdb\n\
worker:0.2.0 linux/amd64 layer sha256:258dd9a8fe66789ca5edc8852b563387230619654751a1506cd4148657633b77 sha256:b0e319ae3dedd519d73fee4dd2483fd34abc248f3671dbbc696a579cb68edf80\n\
worker:0.2.0 linux/arm64/v8 config sha256:329f49b203ccfd153a48f8de85cbbdb44458f2b0c2472a47a60bc1267add1f31\n\
worker:0.2.0 linux/arm64/v8 layer sha256:cc68450702dc520274eb77d3616b7fdc807cb04e857e3898ea87be1ffe1a375a sha256:8f81ffe0062d132d1a324bdbe313f82c6984cfd1a75752af3ac2596b96affbdb\n\
worker:0.2.0 linux/arm64/v8 layer sha256:b7b49e8506f91d019649a20b75b20b3ab48eea9c041aadcaf947709ca3cdbd14 sha256:fde6020d9113e5a057238ae684542492c816737ab338af53ed9daa8efda9803b";

mod parallel;
mod rerun;

/// The provenance names the base layer the image holds: with zstd layers, the zstd blob, by its
/// digest and media type.
#[test]
fn the_provenance_names_the_base_layer_the_image_holds() {
    let ws = workspace();
    let out = ws.path().join("out");
    let env = env(ws.path());
    let mut options = options(&out, Format::Archive);
    options.platforms = Some("linux/amd64".into());
    options.image.compression = Some("zstd".into());
    options.verify = false;
    let report = Capture::new(Verbosity::Normal);
    run_with(&options, &env, &report, fake_compile).expect("the run succeeds");
    let artifact = read_archive(&out.join("api-0.2.0.tar")).unwrap();
    let base = artifact.images()[0].layers()[0].blob();
    assert_eq!(
        base.media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("api-0.2.0.tar.intoto.json")).unwrap())
            .unwrap();
    let named = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "base layer")
        .unwrap();
    assert_eq!(named["mediaType"], base.media_type().to_string());
    assert_eq!(named["digest"]["sha256"], base.digest().digest());
}
