//! What a run keeps for the next is checked, not trusted: every kind of entry under
//! `<target>/scratchimg/cache/` (compressed layers, `rustc -vV`, crate graphs, kept builds),
//! truncated, emptied, with a byte flipped or replaced by garbage, is discarded with a `-v` note
//! and computed again, and the image is the same bytes as before. Where pushes saw the base
//! layer is kept for every project of the user: another project mounts it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use scratchimg_tests::proxy::{Fault, Proxy};
use scratchimg_tests::push::{Home, push_command, pushed};
use scratchimg_tests::registry::{Registry, Settings};
use scratchimg_tests::{
    assert_success, fixture_copy, require_musl_target, require_tool, run_ok, test_toolchain, tool,
};

/// The caches a run of the fixture fills, by their kind's name.
const KINDS: [&str; 4] = ["layers", "rustc", "graphs", "builds"];

type Damage = fn(Vec<u8>) -> Vec<u8>;

/// Ways an entry gets damaged: a crash mid-write, a full disk, a bad sector, another program.
const DAMAGES: [(&str, Damage); 4] = [
    ("truncated", |bytes| bytes[..bytes.len() / 2].to_vec()),
    ("emptied", |_| Vec::new()),
    ("a byte flipped", |mut bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        bytes
    }),
    ("garbage", |_| b"garbage\n{\"not\": \"an entry\"}".to_vec()),
];

/// The test toolchain's cargo, by its absolute path, as `cargo scratchimg` gets it in `CARGO`:
/// `rustc -vV` is kept only for a rustc known by its path (the one beside that cargo).
fn cargo() -> PathBuf {
    let mut rustup = Command::new("rustup");
    rustup.args(["which", "cargo"]);
    if let Some(toolchain) = test_toolchain() {
        rustup.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    PathBuf::from(run_ok(&mut rustup).trim())
}

fn run(dir: &Path) -> Output {
    tool(dir)
        .args(["-v", "--bin", "server", "--message-format", "json", "-o"])
        .arg(dir.join("server.tar"))
        .env("CARGO", cargo())
        .output()
        .unwrap()
}

/// The directory of one kind of cache (`<kind>-<tool version>`).
fn cache_dir(dir: &Path, kind: &str) -> PathBuf {
    let caches = dir.join("target/scratchimg/cache");
    std::fs::read_dir(&caches)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{kind}-"))
        })
        .unwrap_or_else(|| panic!("no {kind} cache in {}", caches.display()))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
}

#[test]
fn damaged_cache_entries_are_discarded_and_computed_again() {
    require_musl_target();
    let dir = fixture_copy("multi-bin");
    let output = run(dir.path());
    assert_success(&tool(dir.path()), &output);
    let first: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    // Every kind gets every damage, one round each.
    for round in 0..DAMAGES.len() {
        let mut damaged = Vec::new();
        for (i, kind) in KINDS.iter().enumerate() {
            let (how, damage) = DAMAGES[(i + round) % DAMAGES.len()];
            let cache = cache_dir(dir.path(), kind);
            let kept = entries(&cache);
            assert!(!kept.is_empty(), "round {round}: nothing kept in {kind}");
            for entry in kept {
                std::fs::write(&entry, damage(std::fs::read(&entry).unwrap())).unwrap();
            }
            damaged.push((kind, how, cache));
        }
        let output = run(dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_success(&tool(dir.path()), &output);
        let again: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(again["digest"], first["digest"], "round {round}: {stderr}");
        for (kind, how, cache) in &damaged {
            let note = format!("Cache discarded {}/", cache.display());
            assert!(
                stderr
                    .lines()
                    .any(|l| l.contains(&note) && l.ends_with("; computing it again")),
                "round {round}: no note for the {how} {kind} entry:\n{stderr}"
            );
            // Computed again and kept whole; nothing half-written stays.
            let kept = entries(cache);
            assert!(!kept.is_empty(), "round {round}: {kind} was not kept again");
            assert!(
                kept.iter().all(|p| !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".tmp-")),
                "round {round}: {kept:?}"
            );
        }
    }
}

/// The kept build names the programs the early build starts: this executable as rustc's
/// wrapper, and cargo-zigbuild with `--zig`.
type Tamper = fn(&mut serde_json::Value, &str);

const PROGRAMS: [(&str, Tamper); 2] = [
    ("rustc wrapper", |build, program| {
        build["wrapper"]["program"] = program.into()
    }),
    ("cargo-zigbuild", |build, program| {
        build["zigbuild"] = program.into()
    }),
];

/// The early build only ever starts the cargo program this run would use, with arguments the
/// tool itself can produce: a kept build rewritten to name a script as another program, whole
/// and with its digest made again as a stale or malicious entry could have it, is ignored with
/// a `-v` note. The script never runs, and the image is the same as before.
#[test]
fn a_kept_build_naming_another_program_is_not_started() {
    use std::os::unix::fs::PermissionsExt;
    require_musl_target();
    require_tool("sha256sum", &["--version"]);
    let dir = fixture_copy("multi-bin");
    let output = run(dir.path());
    assert_success(&tool(dir.path()), &output);
    let first: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    for (what, tamper) in PROGRAMS {
        let marker = dir.path().join(format!("started {what}"));
        let script = dir.path().join(format!("{what}.sh"));
        std::fs::write(
            &script,
            format!("#!/bin/sh\ntouch '{}'\nexec sleep 60\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The one build kept, rewritten: the digest of the payload, a newline, the payload.
        let kept = entries(&cache_dir(dir.path(), "builds"));
        let [entry] = kept.as_slice() else {
            panic!("{what}: not one kept build: {kept:?}")
        };
        let bytes = std::fs::read(entry).unwrap();
        let newline = bytes.iter().position(|b| *b == b'\n').unwrap();
        let mut build: serde_json::Value = serde_json::from_slice(&bytes[newline + 1..]).unwrap();
        tamper(&mut build, script.to_str().unwrap());
        let payload = serde_json::to_vec(&build).unwrap();
        let scratch = dir.path().join("payload.json");
        std::fs::write(&scratch, &payload).unwrap();
        let digest = run_ok(Command::new("sha256sum").arg(&scratch));
        let digest = digest.split_whitespace().next().unwrap();
        std::fs::remove_file(&scratch).unwrap();
        std::fs::write(entry, [format!("{digest}\n").as_bytes(), &payload].concat()).unwrap();

        let output = run(dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_success(&tool(dir.path()), &output);
        assert!(
            !marker.exists(),
            "{what}: the kept build started {}:\n{stderr}",
            script.display()
        );
        let again: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(again["digest"], first["digest"], "{what}: {stderr}");
        assert!(
            stderr.lines().any(|l| l.trim_start()
                == "Cache ignored the kept build: it is not one this run would make"),
            "{what}: no note:\n{stderr}"
        );
        assert!(
            !stderr.contains("Cache discarded"),
            "{what}: the entry passed its checks:\n{stderr}"
        );
    }
}

/// A run killed with SIGKILL while it compresses leaves its half-written entry, a `.tmp-` file
/// in the layer cache that no interrupt handler could remove; the next run removes it (nobody
/// holds it any more) and writes the image whole.
#[test]
fn a_run_killed_while_compressing_leaves_nothing_the_next_run_keeps() {
    require_musl_target();
    let dir = fixture_copy("exits");
    // A file of random bytes, which compress slowly: time to catch the run at it.
    run_ok(
        Command::new("sh")
            .args(["-c", "head -c 64000000 /dev/urandom > big.bin"])
            .current_dir(dir.path()),
    );
    let build = || {
        let mut command = tool(dir.path());
        command
            .args([
                "--compression",
                "gzip:9",
                "--file",
                "big.bin:/data/big.bin",
                "-o",
            ])
            .arg(dir.path().join("out.tar"));
        command
    };
    let mut child = build()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let caches = dir.path().join("target/scratchimg/cache");
    let temporary = |min: u64| -> Option<PathBuf> {
        let layers = std::fs::read_dir(&caches)
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("layers-"))?;
        std::fs::read_dir(layers.path())
            .ok()?
            .flatten()
            .find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let len = e.metadata().ok()?.len();
                (name.starts_with(".tmp-") && len >= min).then(|| e.path())
            })
    };
    let started = std::time::Instant::now();
    let left = loop {
        if let Some(path) = temporary(1 << 20) {
            break path;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was caught compressing"
        );
        assert!(started.elapsed().as_secs() < 600, "no compression seen");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(left.exists(), "SIGKILL leaves the half-written entry");
    assert!(!dir.path().join("out.tar").exists());

    let output = build().output().unwrap();
    assert_success(&build(), &output);
    assert!(!left.exists(), "the next run removed {}", left.display());
    assert_eq!(temporary(0), None, "no temporary file stays");
    assert!(dir.path().join("out.tar").is_file());
}

/// Where pushes saw the base layer is kept for the user, not for a target directory: another
/// project, in a target directory of its own, mounts the base layer an earlier push put in the
/// registry instead of uploading it. A damaged record is discarded with a `-v` note: the push
/// uploads, and the record is whole again.
#[test]
fn another_project_mounts_the_base_layer_an_earlier_push_put_there() {
    let registry = Registry::start(Settings::default());
    let proxy = Proxy::start(&registry.host, Fault::None);
    let home = Home::new();
    let (server, exits) = (fixture_copy("multi-bin"), fixture_copy("exits"));
    let push = |project: &Path, repository: &str, args: &[&str]| {
        proxy.reset();
        let repository = format!("{}/scratchimg-e2e/{repository}", proxy.host);
        let target_dir = project.join("target");
        let mut args = [&["-v", "--push", &repository, "--attach", "none"], args].concat();
        args.push("-o");
        let output = project.join("image.tar");
        args.push(output.to_str().unwrap());
        pushed(&mut push_command(&home, project, &target_dir, &args))
    };

    let (first, _) = push(server.path(), "server", &["--bin", "server"]);
    assert_eq!(proxy.blob_uploads(), 3, "{:#?}", proxy.requests());
    let base = first["layers"][0]["digest"].as_str().unwrap().to_string();

    let (second, stderr) = push(exits.path(), "exits", &[]);
    assert_eq!(
        second["layers"][0]["digest"],
        base.as_str(),
        "one base layer"
    );
    assert!(
        stderr.contains("Mounted sha256:") && stderr.contains(", 1 mounted, "),
        "{stderr}"
    );
    assert_eq!(
        proxy.count(&["POST ", "mount=", "from=scratchimg-e2e%2Fserver"]),
        1,
        "{:#?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count(&["PUT ", &format!("digest={base}")]),
        0,
        "the base layer is not uploaded: {:#?}",
        proxy.requests()
    );
    assert_eq!(proxy.blob_uploads(), 2, "config and app layer");

    // The record is under the user's cache directory, one entry; damaged, it is discarded.
    let records = std::fs::read_dir(home.path().join(".cache/cargo-scratchimg"))
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("registry-mounts-")
        })
        .expect("the record is in the user's cache directory")
        .path();
    let [entry] = entries(&records).try_into().unwrap();
    std::fs::write(&entry, b"garbage").unwrap();
    let (_, stderr) = push(exits.path(), "again", &[]);
    assert!(
        stderr.contains(&format!("Cache discarded {}", entry.display())),
        "{stderr}"
    );
    assert_eq!(proxy.blob_uploads(), 3, "{:#?}", proxy.requests());
    assert_eq!(entries(&records), [entry]);
    let (_, stderr) = push(server.path(), "more", &["--bin", "server"]);
    assert!(
        stderr.contains("from 127.0.0.1") && stderr.contains(", 1 mounted, "),
        "{stderr}"
    );
}
