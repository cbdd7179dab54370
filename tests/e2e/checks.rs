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

/// The help names the package's own feature that pulls native-tls in first, with the flags that
/// build without it, then native-tls's own way out.
#[test]
fn openssl_without_vendored_fails_before_compiling() {
    require_musl_target();
    let dir = fixture_copy("native-tls");
    let (code, stderr) = scratchimg(dir.path(), &[], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: `native-tls-app` links the system library of openssl-sys, which a static musl binary cannot use: native-tls-app → native-tls → openssl-sys\n\
                         help: `native-tls-app`'s feature `tls` pulls in native-tls, and the default features turn it on: build without it, `--no-default-features --features cli`\n\
                         help: or turn on native-tls's `vendored` feature"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: or, if that is intended, add allow = [\"system-library\"]"),
        "{stderr}"
    );
    assert_stopped_before_building(dir.path(), stderr.as_bytes());
}

/// git2 without OpenSSL builds its own libgit2 and zlib (tests/e2e/c_libraries.rs builds it);
/// with the fixture's `https` feature, openssl-sys alone is refused: libgit2-sys and
/// libssh2-sys fall back to their bundled copies.
#[test]
fn only_what_cannot_build_for_musl_is_refused() {
    require_musl_target();
    let dir = fixture_copy("git2");
    let (code, stderr) = scratchimg(dir.path(), &["--features", "https"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(
        errors,
        [
            "error: `git2-app` links the system library of openssl-sys, which a static musl binary cannot use: git2-app → git2 → openssl-sys"
        ],
        "{stderr}"
    );
    assert!(
        stderr.contains("help: turn on git2's `vendored-openssl` feature"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("libgit2-sys") && !stderr.contains("warning"),
        "{stderr}"
    );
    assert_stopped_before_building(dir.path(), stderr.as_bytes());
    // Where pkg-config may answer for the target, the bundled ones are only warned about.
    let (code, stderr) = scratchimg(
        dir.path(),
        &["--target", "x86_64-unknown-linux-gnu"],
        &[("PKG_CONFIG_ALLOW_CROSS", "1")],
    );
    assert_eq!(code, Some(1), "stopped by the gnu target: {stderr}");
    assert!(
        stderr.contains("warning: `git2-app` may link the system library of libgit2-sys (pkg-config may find a system copy for this target): git2-app → git2 → libgit2-sys"),
        "{stderr}"
    );
    assert!(!stderr.contains("error: `git2-app` links"), "{stderr}");
}

/// A one-shot program on tokio's multi-threaded runtime: the allocator warning, and no SIGTERM
/// note, which is for services.
#[test]
fn threads_on_musl_malloc_warn_and_a_one_shot_program_gets_no_sigterm_note() {
    require_musl_target();
    let dir = fixture_copy("threads");
    // A gnu target stops the run after the checks: the warnings show, nothing compiles.
    let (code, stderr) = scratchimg(dir.path(), &["--target", "x86_64-unknown-linux-gnu"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("warning: `threads` runs threads (tokio's `rt-multi-thread`) on musl's malloc, which is much slower than glibc's when threads allocate at once\nhelp: use another allocator: add mimalloc"),
        "{stderr}"
    );
    assert!(!stderr.contains("SIGTERM"), "{stderr}");
    assert!(
        stderr.contains("error: target `x86_64-unknown-linux-gnu` is not a musl target"),
        "{stderr}"
    );
    assert_stopped_before_building(dir.path(), stderr.as_bytes());
    // `allow` turns the warning off.
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[package.metadata.scratchimg]\nallow = [\"musl-malloc\"]\n"),
    )
    .unwrap();
    let (code, stderr) = scratchimg(dir.path(), &["--target", "x86_64-unknown-linux-gnu"], &[]);
    // The checks ran: the one not allowed still stops the run.
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is not a musl target"), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// A server that only waits for Ctrl-C, though tokio's `signal` feature is on: the note says
/// what to check, and how to confirm it.
#[test]
fn a_server_gets_the_sigterm_note() {
    require_musl_target();
    let dir = fixture_copy("server");
    let (code, stderr) = scratchimg(dir.path(), &["--target", "x86_64-unknown-linux-gnu"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("Note `server` looks like a service (tokio's `net` and `rt-multi-thread`): as PID 1 in a container it gets `docker stop`'s SIGTERM, which does nothing unless the program handles it; check that it handles SIGTERM, not only Ctrl-C (SIGINT)"),
        "{stderr}"
    );
    assert!(stderr.contains("`time docker stop NAME`"), "{stderr}");
    assert!(!stderr.contains("warning"), "it has mimalloc: {stderr}");
    assert_stopped_before_building(dir.path(), stderr.as_bytes());
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
