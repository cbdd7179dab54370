//! What cargo is asked to build: not a project, no such package or binary, a build that fails, a binary that is not static.

use super::*;

#[test]
fn not_a_cargo_project() {
    let dir = tempfile::tempdir().unwrap();
    scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: could not find `Cargo.toml` in `[ROOT]` or any parent directory
help: run `cargo scratchimg` inside a cargo project, or pass --manifest-path PATH/Cargo.toml

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn missing_manifest_path() {
    let dir = tempfile::tempdir().unwrap();
    scratchimg(dir.path())
        .args(["--manifest-path", "nope/Cargo.toml"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: manifest path `nope/Cargo.toml` does not exist
help: pass the path of a Cargo.toml to --manifest-path

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}

#[test]
fn unknown_bin_lists_the_binaries() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["--bin", "nope", "-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: package `multi-bin` has no binary named `nope`
help: its binaries are: migrate, server

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

/// A binary whose required feature turns on only a Windows dependency is not a candidate.
#[test]
fn binaries_that_cannot_build_for_linux_are_not_candidates() {
    let dir = fixture_copy("windows-bin");
    scratchimg(dir.path())
        .args(["--bin", "nope", "-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: package `windows-bin` has no binary named `nope`
help: its binaries are: app

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    // Without --bin, the one candidate is the image's: the run goes on to the checks.
    scratchimg(dir.path())
        .args(["--target", "x86_64-unknown-linux-gnu", "-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: target `x86_64-unknown-linux-gnu` is not a musl target[..]
...
"#]]);
    assert_nothing_built(dir.path());
}

#[test]
fn several_binaries_need_a_choice() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: package `multi-bin` has several binaries: migrate, server
help: pick one with --bin, e.g. `cargo scratchimg --bin migrate`

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn library_only_package() {
    let dir = fixture_copy("lib-only");
    scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: package `lib-only` has no binary to put in an image (it is a library)
help: add src/main.rs or a [[bin]] target, or pick a binary package with -p

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn unknown_package() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["-p", "other", "-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: package `other` is not in this workspace
help: workspace members: multi-bin

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}

#[test]
fn failing_build_shows_cargo_errors_then_one_line() {
    require_musl_target();
    let dir = fixture_copy("broken");
    let target_dir = shared_target_dir("broken");
    scratchimg(dir.path())
        .args(["-o", "out.tar", "--target-dir"])
        .arg(&target_dir)
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
...
error[E0308]: mismatched types
...
error: `cargo build` failed for package `broken` (exit status: 101)

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

/// A rustc that dies without a diagnostic (a crash) makes cargo print its whole command line,
/// kilobytes of flags on one line: it is cut to its start, and `-v` shows all of it.
#[test]
fn a_crashed_compilers_command_line_is_cut_unless_verbose() {
    use std::os::unix::fs::PermissionsExt;
    require_musl_target();
    let dir = fixture_copy("broken");
    let crash = dir.path().join("crash.sh");
    std::fs::write(
        &crash,
        "#!/bin/sh\ncase \"$*\" in *'--crate-name broken'*) exit 1;; esac\nexec \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&crash, std::fs::Permissions::from_mode(0o755)).unwrap();
    let flags: Vec<String> = (0..200).map(|i| format!("--cfg=flag{i}")).collect();
    let run = |verbose: bool| {
        let mut command = tool(dir.path());
        command
            .args(["-o", "out.tar", "--target-dir"])
            .arg(dir.path().join("target"))
            .env("RUSTC_WRAPPER", &crash)
            .env("RUSTFLAGS", flags.join(" "));
        if verbose {
            command.arg("-v");
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8(output.stderr).unwrap()
    };
    let stderr = run(false);
    let line = stderr
        .lines()
        .find(|l| l.contains("process didn't exit successfully"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.len() < 700 && line.ends_with("more bytes; -v shows the whole line)"),
        "{line}"
    );
    assert!(
        stderr.ends_with("error: `cargo build` failed for package `broken` (exit status: 101)\n"),
        "{stderr}"
    );
    let stderr = run(true);
    let line = stderr
        .lines()
        .find(|l| l.contains("process didn't exit successfully"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("--cfg=flag199"), "{line}");
}

#[test]
fn dynamically_linked_binary_is_refused() {
    require_musl_target();
    let dir = fixture_copy("dynamic");
    let target_dir = shared_target_dir("dynamic");
    scratchimg(dir.path())
        .args(["-o", "out.tar", "--target-dir"])
        .arg(&target_dir)
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
...
error: [..]/[TARGET]/scratchimg-release/dynamic is dynamically linked; it needs [..]libc.so[..], which a scratch image does not have
help: the musl target links statically unless `-C target-feature=-crt-static` is set; remove it from RUSTFLAGS and .cargo/config.toml

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn virtual_workspace_lists_its_binary_packages() {
    let dir = fixture_copy("workspace");
    scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: the workspace at [ROOT] has several binary packages: api, worker
help: pick one with -p, e.g. `cargo scratchimg -p api`, or make an image of each with --workspace

"#]]);
    scratchimg(dir.path())
        .args(["--workspace", "-t", "x:1"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: -t cannot name the images of --workspace
help: set `name` and `tags` in each package's [package.metadata.scratchimg]

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn a_gnu_target_is_refused_before_building() {
    let dir = with_settings("bin = \"server\"\n");
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar", "--target", "x86_64-unknown-linux-gnu"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
...
error: target `x86_64-unknown-linux-gnu` is not a musl target: its binaries need the C library at run time, which a scratch image does not have
help: build for [TARGET] (drop --target, or pass --platform linux/amd64)
help: or, if that is intended, add allow = ["non-musl-target"] to [package.metadata.scratchimg]

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
}
