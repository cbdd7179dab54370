//! Past one machine's compiler: sccache under the tool's own rustc wrapper shares crates
//! through a Redis server between clones at other paths, as CI runners do, at least as well as
//! plain cargo does, and the image stays the same; `--zig` cross-compiles C code (ring) for
//! arm64 with zig from PyPI, and the binary runs under qemu.

use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::{
    copy_tree, example, free_port, host_musl_target, python_tool, redis_socket,
    require_musl_target, require_tool, run_ok, shared_target_dir, test_toolchain, tool, tools_venv,
};

/// A namespace of its own in the Redis server `scripts/test` started, emptied when the test
/// ends: runs side by side never see each other's entries.
struct RedisCache {
    socket: PathBuf,
    prefix: String,
}

impl RedisCache {
    fn new(name: &str) -> RedisCache {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        RedisCache {
            socket: redis_socket(),
            prefix: format!("scratchimg-tests/{name}-{}-{nanos}/", std::process::id()),
        }
    }

    /// sccache's settings for it.
    fn settings(&self) -> [(&'static str, String); 2] {
        [
            (
                "SCCACHE_REDIS_ENDPOINT",
                // sccache 0.16 (opendal) takes a unix socket only with a host: `unix:///…` is refused.
                format!("unix://localhost{}", self.socket.display()),
            ),
            ("SCCACHE_REDIS_KEY_PREFIX", self.prefix.clone()),
        ]
    }

    fn redis_cli(&self) -> Command {
        let mut command = Command::new("redis-cli");
        command.arg("-s").arg(&self.socket);
        command
    }
}

impl Drop for RedisCache {
    fn drop(&mut self) {
        let Ok(keys) = self
            .redis_cli()
            .args(["--scan", "--pattern"])
            .arg(format!("{}*", self.prefix))
            .output()
        else {
            return;
        };
        let keys = String::from_utf8_lossy(&keys.stdout).into_owned();
        let keys: Vec<&str> = keys.lines().collect();
        for chunk in keys.chunks(100) {
            let _ = self.redis_cli().arg("UNLINK").args(chunk).output();
        }
    }
}

/// A sccache server of its own, as one runner has, on `cache`; stopped when dropped.
struct Sccache {
    program: PathBuf,
    port: String,
    settings: [(&'static str, String); 2],
}

impl Sccache {
    fn start(cache: &RedisCache) -> Sccache {
        let sccache = Sccache {
            program: python_tool("sccache", &["--version"]),
            port: free_port().to_string(),
            settings: cache.settings(),
        };
        run_ok(sccache.command().arg("--start-server"));
        sccache
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        self.configure(&mut command);
        command
    }

    /// `command` (cargo, or the tool) compiling through this server.
    fn configure(&self, command: &mut Command) {
        command
            .env("RUSTC_WRAPPER", &self.program)
            .env("SCCACHE_SERVER_PORT", &self.port)
            .env("SCCACHE_IDLE_TIMEOUT", "0")
            .envs(self.settings.iter().map(|(k, v)| (k, v)));
    }

    /// Compilations taken from the cache, and those compiled and stored, from
    /// `sccache --show-stats --stats-format=json`.
    fn counts(&self) -> Counts {
        let json = run_ok(self.command().args(["--show-stats", "--stats-format=json"]));
        let stats: serde_json::Value = serde_json::from_str(&json).unwrap();
        Counts {
            hits: count(&stats, "cache_hits"),
            misses: count(&stats, "cache_misses"),
        }
    }
}

impl Drop for Sccache {
    fn drop(&mut self) {
        let _ = self.command().arg("--stop-server").output();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    hits: u64,
    misses: u64,
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

/// One runner: a fresh clone of examples/events at `dir`, with a target directory of its own,
/// built by `build` through a new sccache server on `cache`; what `build` gave, and the
/// server's counts.
fn runner<T>(
    dir: &Path,
    cache: &RedisCache,
    build: impl FnOnce(&Path, Option<&Sccache>) -> T,
) -> (T, Counts) {
    clone_events(dir);
    let sccache = Sccache::start(cache);
    let built = build(dir, Some(&sccache));
    (built, sccache.counts())
}

/// A fresh clone of examples/events at `dir`.
fn clone_events(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    copy_tree(&example("events"), dir);
}

/// `cargo build --release` for the host's musl target, as a project builds without the tool.
fn cargo_build(dir: &Path, sccache: Option<&Sccache>) {
    let mut command = Command::new("cargo");
    command
        .args(["build", "--quiet", "--release", "--target"])
        .arg(host_musl_target())
        .current_dir(dir);
    for var in ["CARGO", "RUSTC", "CARGO_TARGET_DIR", "LD_LIBRARY_PATH"] {
        command.env_remove(var);
    }
    if let Some(toolchain) = test_toolchain() {
        command.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    if let Some(sccache) = sccache {
        sccache.configure(&mut command);
    }
    run_ok(&mut command);
}

/// The image of the project in `dir`, built by the tool into `dir/target`: its digest.
fn image(dir: &Path, sccache: Option<&Sccache>) -> String {
    let mut command = tool(dir);
    command
        .args(["--message-format", "json", "-o"])
        .arg(dir.join("events.tar"))
        .arg("--target-dir")
        .arg(dir.join("target"));
    if let Some(sccache) = sccache {
        sccache.configure(&mut command);
    }
    let result: serde_json::Value = serde_json::from_str(&run_ok(&mut command)).unwrap();
    result["digest"].as_str().unwrap().to_string()
}

/// Two runners with clones at different paths share what plain cargo shares and more (the
/// remapped crates are the same bytes, so the crates that use them are too); at the same path
/// they share every crate; and the images are the same, with the cache or without it.
#[test]
fn a_redis_cache_serves_clones_at_other_paths_as_well_as_plain_cargo() {
    require_musl_target();
    let work = tempfile::tempdir().unwrap();
    let at = |name: &str| work.path().join(name).join("events");

    let plain = RedisCache::new("plain");
    runner(&at("plain-1"), &plain, cargo_build);
    let (_, plain) = runner(&at("plain-2"), &plain, cargo_build);

    let cache = RedisCache::new("tool");
    let (first, filled) = runner(&at("one"), &cache, image);
    let (second, elsewhere) = runner(&at("two"), &cache, image);
    let (third, same_path) = runner(&at("one"), &cache, image);
    eprintln!("plain cargo: {plain:?}; the tool: {filled:?}, {elsewhere:?}, {same_path:?}");
    assert!(
        filled.misses > 0 && plain.hits > 0,
        "{filled:?} then {plain:?}"
    );
    assert!(
        elsewhere.hits >= plain.hits,
        "a clone at another path takes fewer crates from the cache through the tool ({elsewhere:?}) than with plain cargo ({plain:?})"
    );
    assert_eq!(
        same_path,
        Counts {
            hits: filled.hits + filled.misses,
            misses: 0
        },
        "a clone at the same path takes every crate from the cache"
    );
    assert_eq!(
        first, second,
        "clones at different paths give the same image"
    );
    assert_eq!(first, third);
    clone_events(&at("uncached"));
    let uncached = image(&at("uncached"), None);
    assert_eq!(first, uncached, "the same image with and without sccache");
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
