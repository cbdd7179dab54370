//! The checks before the build, one fixture each: the message, and for errors, that nothing
//! was compiled.

use std::path::Path;

use scratchimg_tests::{
    assert_stopped_before_building, fixture_copy, require_musl_target, require_tool,
};

/// Runs the tool in `dir`; its exit code and stderr.
fn scratchimg(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = scratchimg_tests::tool(dir);
    command
        .args(["-o", "out.tar"])
        .args(args)
        .envs(env.iter().copied());
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn openssl_without_vendored_fails_before_compiling() {
    require_musl_target();
    let dir = fixture_copy("native-tls");
    let (code, stderr) = scratchimg(dir.path(), &[], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: `native-tls-app` links the system library of openssl-sys, which a static musl binary cannot use: native-tls-app → native-tls → openssl-sys\nhelp: use rustls instead of OpenSSL"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: or, if that is intended, add allow = [\"system-library\"]"),
        "{stderr}"
    );
    assert_stopped_before_building(dir.path(), stderr.as_bytes());
}

#[test]
fn threads_on_musl_malloc_warn_and_no_sigterm_handler_is_a_note() {
    require_musl_target();
    let dir = fixture_copy("threads");
    // A gnu target stops the run after the checks: the warnings show, nothing compiles.
    let (code, stderr) = scratchimg(dir.path(), &["--target", "x86_64-unknown-linux-gnu"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("warning: `threads` runs threads (tokio's `rt-multi-thread`) on musl's malloc, which is much slower than glibc's when threads allocate at once\nhelp: use another allocator: add mimalloc"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Note `threads` does not handle SIGTERM: as PID 1 in a container it ignores `docker stop`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: target `x86_64-unknown-linux-gnu` is not a musl target"),
        "{stderr}"
    );
    assert_stopped_before_building(dir.path(), stderr.as_bytes());
    // `allow` turns both off.
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[package.metadata.scratchimg]\nallow = [\"musl-malloc\", \"sigterm\"]\n"),
    )
    .unwrap();
    let (code, stderr) = scratchimg(dir.path(), &["--target", "x86_64-unknown-linux-gnu"], &[]);
    // The checks ran: the one not allowed still stops the run.
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is not a musl target"), "{stderr}");
    assert!(
        !stderr.contains("warning") && !stderr.contains("SIGTERM"),
        "{stderr}"
    );
}

#[test]
fn a_cross_compiler_that_cannot_link_fails_before_jemalloc_configures() {
    require_musl_target();
    require_tool("aarch64-linux-gnu-gcc", &["--version"]);
    let dir = fixture_copy("jemalloc");
    // A compiler that compiles, but finds no C library to link against.
    let broken = "aarch64-linux-gnu-gcc --sysroot=/nonexistent";
    let (code, stderr) = scratchimg(
        dir.path(),
        &["--platform", "linux/arm64"],
        &[("CC_aarch64_unknown_linux_musl", broken)],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the C compiler for aarch64-unknown-linux-musl (from CC_aarch64_unknown_linux_musl) cannot link a program, and tikv-jemalloc-sys links C test programs while building: `aarch64-linux-gnu-gcc --sysroot=/nonexistent -o probe probe.c` failed"),
        "{stderr}"
    );
    assert!(stderr.contains("help: or pass --zig"), "{stderr}");
    assert_stopped_before_building(dir.path(), stderr.as_bytes());
}
