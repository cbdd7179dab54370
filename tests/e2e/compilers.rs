//! Past one machine's compiler: sccache under the tool's own rustc wrapper keeps crates
//! cacheable and the image the same; `--zig` cross-compiles C code (ring) for arm64 with zig
//! from PyPI, and the binary runs under qemu.

use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::{
    copy_tree, example, free_port, python_tool, require_musl_target, require_tool, run_ok,
    shared_target_dir, tool, tools_venv,
};

/// A sccache server on its own port and cache directory, stopped when the test ends.
struct Sccache {
    program: PathBuf,
    dir: PathBuf,
    port: String,
}

impl Sccache {
    fn start(dir: &Path) -> Sccache {
        let program = python_tool("sccache", &["--version"]);
        let sccache = Sccache {
            program,
            dir: dir.join("cache"),
            port: free_port().to_string(),
        };
        run_ok(sccache.command().arg("--start-server"));
        sccache
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .env("SCCACHE_DIR", &self.dir)
            .env("SCCACHE_SERVER_PORT", &self.port)
            .env("SCCACHE_IDLE_TIMEOUT", "0");
        command
    }

    /// `sccache --show-stats --stats-format json`.
    fn stats(&self) -> serde_json::Value {
        let json = run_ok(
            self.command()
                .args(["--show-stats", "--stats-format", "json"]),
        );
        serde_json::from_str(&json).unwrap()
    }
}

impl Drop for Sccache {
    fn drop(&mut self) {
        let _ = self.command().arg("--stop-server").output();
    }
}

/// Builds examples/events from a clean `target` in `dir`, through sccache when given; the
/// image digest.
fn events(dir: &Path, sccache: Option<&Sccache>) -> String {
    let target = dir.join("target");
    let _ = std::fs::remove_dir_all(&target);
    let mut command = tool(dir);
    command
        .args(["--message-format", "json", "-o"])
        .arg(dir.join("events.tar"))
        .arg("--target-dir")
        .arg(&target);
    if let Some(sccache) = sccache {
        command
            .env("RUSTC_WRAPPER", &sccache.program)
            .env("SCCACHE_DIR", &sccache.dir)
            .env("SCCACHE_SERVER_PORT", &sccache.port);
    }
    let result: serde_json::Value = serde_json::from_str(&run_ok(&mut command)).unwrap();
    result["digest"].as_str().unwrap().to_string()
}

/// The number in a stats field, whatever its nesting (`{"counts": {"Rust": 12}}` or a number).
fn count(stats: &serde_json::Value, field: &str) -> u64 {
    let value = &stats["stats"][field];
    value
        .as_u64()
        .or_else(|| {
            value["counts"]
                .as_object()
                .map(|c| c.values().filter_map(|v| v.as_u64()).sum())
        })
        .unwrap_or_else(|| panic!("no {field} in {stats}"))
}

#[test]
fn sccache_hits_from_a_clean_target_and_the_image_stays_the_same() {
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("events");
    copy_tree(&example("events"), &dir);
    let sccache = Sccache::start(work.path());
    let first = events(&dir, Some(&sccache));
    let hits = count(&sccache.stats(), "cache_hits");
    let second = events(&dir, Some(&sccache));
    let stats = sccache.stats();
    assert!(
        count(&stats, "cache_hits") >= hits + 10,
        "the second clean build hits the cache for the dependencies: {stats}"
    );
    let plain = events(&dir, None);
    assert_eq!(first, second);
    assert_eq!(first, plain, "the same image with and without sccache");
}

#[test]
fn zig_cross_compiles_ring_for_arm64() {
    require_musl_target();
    require_tool("qemu-aarch64-static", &["--version"]);
    python_tool("cargo-zigbuild", &["--version"]);
    let work = tempfile::tempdir().unwrap();
    let fetch = work.path().join("fetch");
    copy_tree(&example("fetch"), &fetch);
    // The venv's bin first: cargo-zigbuild, and the python that has ziglang.
    let path = std::env::join_paths(
        std::iter::once(tools_venv().join("bin"))
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let archive = work.path().join("fetch.tar");
    let output = tool(&fetch)
        .args(["--zig", "--platform", "linux/arm64", "-v", "-o"])
        .arg(&archive)
        .arg("--target-dir")
        .arg(shared_target_dir("fetch-zig"))
        .env("PATH", path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cargo-zigbuild") && stderr.contains("zigbuild"),
        "{stderr}"
    );
    // The binary, out of the app layer, under qemu: its usage line proves it runs.
    let layout = work.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&layout),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = manifest["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let image: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(digest)).unwrap())
            .unwrap();
    let app = image["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(layout.join("blobs/sha256").join(app))
            .arg("-C")
            .arg(&rootfs),
    );
    let ran = Command::new("qemu-aarch64-static")
        .arg(rootfs.join("app/fetch"))
        .output()
        .unwrap();
    assert_eq!(ran.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ran.stderr).starts_with("usage: fetch https://"));
    let file = run_ok(Command::new("file").arg(rootfs.join("app/fetch")));
    assert!(
        file.contains("ARM aarch64") && file.contains("statically linked"),
        "{file}"
    );
}
