//! What the program may do in its container, in docker and podman: file capabilities let the
//! non-root program bind a port below 1024 on the host's network, and a capability beyond the
//! engines' defaults fails it at exec unless the container is started with `--cap-add`, as
//! the warning says; `strip = "debuginfo"` makes a panic's backtrace name the functions.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use scratchimg_tests::{
    fixture, require_musl_target, require_tool, run_ok, shared_target_dir, tool,
};

const ENGINES: [&str; 2] = ["docker", "podman"];

/// The tests of this file one after another: podman 4.3 fails to list images while another
/// process removes one.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ENGINES: Mutex<()> = Mutex::new(());
    ENGINES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds `name` as `tag` into a tar in `dir`, loads it into both engines, and gives the
/// tool's stderr.
fn build_and_load(dir: &Path, name: &str, tag: &str, args: &[&str]) -> String {
    require_musl_target();
    let out: PathBuf = dir.join(format!("{}.tar", tag.replace([':', '/'], "-")));
    let mut command = tool(&fixture(name));
    command
        .args(["-t", tag, "-o"])
        .arg(&out)
        .arg("--target-dir")
        .arg(shared_target_dir(name))
        .args(args);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{command:?}:\n{stderr}");
    for engine in ENGINES {
        require_tool(engine, &["version"]);
        run_ok(Command::new(engine).arg("load").arg("-i").arg(&out));
    }
    stderr
}

/// `ENGINE run --rm --network host EXTRA IMAGE ARGS`.
fn run_in(engine: &str, extra: &[&str], image: &str, args: &[&str]) -> Output {
    Command::new(engine)
        .args(["run", "--rm", "--network", "host"])
        .args(extra)
        .arg(image)
        .args(args)
        .output()
        .unwrap()
}

fn said(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A port below 1024 that nothing on this machine listens on: 80 when it is free. The host's
/// network is the container's, where ports below 1024 need the capability
/// (`net.ipv4.ip_unprivileged_port_start` is 1024; Docker sets it to 0 only in the network
/// namespaces it makes).
fn privileged_port() -> u16 {
    (80..1024)
        .find(|port| std::net::TcpListener::bind(("0.0.0.0", *port)).is_ok())
        .expect("a free port below 1024")
}

#[test]
fn a_capability_lets_the_nonroot_program_bind_port_80_in_docker_and_podman() {
    let _engines = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let with = "scratchimg-e2e/low-port:cap";
    let without = "scratchimg-e2e/low-port:nocap";
    let stderr = build_and_load(
        dir.path(),
        "low-port",
        with,
        &["--cap", "CAP_NET_BIND_SERVICE"],
    );
    assert!(!stderr.contains("warning"), "within the defaults: {stderr}");
    build_and_load(dir.path(), "low-port", without, &[]);
    let port = privileged_port().to_string();
    for engine in ENGINES {
        let user = run_ok(Command::new(engine).args([
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}",
            with,
        ]));
        assert_eq!(user.trim(), "65532:65532", "{engine}: the non-root user");
        let bound = run_in(engine, &[], with, &[&port]);
        assert!(bound.status.success(), "{engine}: {}", said(&bound));
        assert_eq!(
            String::from_utf8_lossy(&bound.stdout),
            format!("bound 0.0.0.0:{port}\n"),
            "{engine}"
        );
        let refused = run_in(engine, &[], without, &[&port]);
        assert_eq!(
            refused.status.code(),
            Some(1),
            "{engine}: {}",
            said(&refused)
        );
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(&format!(
                "failed to bind to 0.0.0.0:{port}: Permission denied"
            )),
            "{engine}: {}",
            said(&refused)
        );
    }
}

#[test]
fn a_capability_beyond_the_defaults_warns_and_needs_cap_add() {
    let _engines = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let tag = "scratchimg-e2e/low-port:sys-admin";
    let stderr = build_and_load(
        dir.path(),
        "low-port",
        tag,
        &["--cap", "net_bind_service", "--cap", "sys_admin"],
    );
    assert!(
        stderr.contains(
            "warning: the image of `low-port` gives its program CAP_SYS_ADMIN, which docker and podman containers lack unless started with `--cap-add=SYS_ADMIN`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: start it with `--cap-add=SYS_ADMIN`"),
        "{stderr}"
    );
    let port = privileged_port().to_string();
    for engine in ENGINES {
        let refused = run_in(engine, &[], tag, &[&port]);
        assert!(!refused.status.success(), "{engine}: {}", said(&refused));
        assert!(
            String::from_utf8_lossy(&refused.stderr)
                .to_lowercase()
                .contains("operation not permitted"),
            "{engine}: {}",
            said(&refused)
        );
        let started = run_in(engine, &["--cap-add", "SYS_ADMIN"], tag, &[&port]);
        assert!(started.status.success(), "{engine}: {}", said(&started));
    }
}

#[test]
fn debuginfo_backtraces_name_the_functions_in_docker_and_podman() {
    let _engines = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let named = "scratchimg-e2e/panics:debuginfo";
    let stripped = "scratchimg-e2e/panics:symbols";
    build_and_load(dir.path(), "panics", named, &["--strip", "debuginfo"]);
    build_and_load(dir.path(), "panics", stripped, &[]);
    for engine in ENGINES {
        let panicked = run_in(engine, &["-e", "RUST_BACKTRACE=1"], named, &[]);
        let backtrace = String::from_utf8_lossy(&panicked.stderr);
        assert_eq!(
            panicked.status.code(),
            Some(101),
            "{engine}: {}",
            said(&panicked)
        );
        for function in [
            "panics::parse_the_port_number",
            "panics::load_the_configuration",
            "panics::main",
        ] {
            assert!(
                backtrace.contains(function),
                "{engine}: no {function} in\n{backtrace}"
            );
        }
        let unnamed = run_in(engine, &["-e", "RUST_BACKTRACE=1"], stripped, &[]);
        let backtrace = String::from_utf8_lossy(&unnamed.stderr);
        assert_eq!(
            unnamed.status.code(),
            Some(101),
            "{engine}: {}",
            said(&unnamed)
        );
        assert!(
            backtrace.contains("no port in the configuration")
                && !backtrace.contains("parse_the_port_number"),
            "{engine}: symbols stripped by default:\n{backtrace}"
        );
    }
}
