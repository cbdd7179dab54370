//! Targets that are not installed, or not supported.

use super::*;

#[test]
fn missing_target_without_rustup() {
    let toolchain = BareToolchain::new();
    let dir = fixture_copy("multi-bin");
    let path = format!("{}:/usr/bin:/bin", toolchain.bin().display());
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "out.tar"])
        .env("PATH", path)
        .env_remove("RUSTUP_TOOLCHAIN")
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: the standard library for `[TARGET]` is not installed (looked in [..]/lib/rustlib/[TARGET]/lib)
help: install it for your Rust toolchain; with rustup that is `rustup target add [TARGET]`

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn missing_target_offline() {
    let toolchain = BareToolchain::new();
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "out.tar", "--offline"])
        .env("RUSTUP_TOOLCHAIN", toolchain.path())
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: the standard library for `[TARGET]` is not installed (not installing it with --offline/--frozen)
help: run `rustup target add [TARGET]`

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn missing_target_that_rustup_cannot_install() {
    let toolchain = BareToolchain::new();
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "out.tar"])
        .env("RUSTUP_TOOLCHAIN", toolchain.path())
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
  Installing target [TARGET] (`rustup target add [TARGET]`)
error: could not install the standard library for `[TARGET]` with rustup ([..]); run `rustup target add [TARGET]` and try again

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn unsupported_platform_lists_the_supported_ones() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args([
            "--bin",
            "server",
            "-o",
            "out.tar",
            "--platform",
            "linux/amd64,linux/s390x",
        ])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: platform `linux/s390x` is not supported
help: use linux/amd64, linux/arm64, or all (both), separated by commas

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}
