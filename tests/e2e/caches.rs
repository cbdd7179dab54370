//! What a run keeps for the next is checked, not trusted: every kind of entry under
//! `<target>/scratchimg/cache/` (compressed layers, `rustc -vV`, crate graphs, kept builds),
//! truncated, emptied, with a byte flipped or replaced by garbage, is discarded with a `-v` note
//! and computed again, and the image is the same bytes as before.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use scratchimg_tests::{
    assert_success, fixture_copy, require_musl_target, run_ok, test_toolchain, tool,
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
