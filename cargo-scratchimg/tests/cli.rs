//! The command line on bad input: one clear error, a non-zero exit, and no output file.
//! Each case runs the real binary on a fixture crate (tests/fixtures at the repo root).

use std::path::Path;

use scratchimg_tests::{
    BareToolchain, assert_no_output, assert_nothing_built, assert_stopped_before_building,
    fixture_copy, host_musl_target, path_with_failing, require_musl_target, shared_target_dir,
    tool,
};
use snapbox::cmd::Command;
use snapbox::{Assert, Redactions, file, str};

/// The tool in `dir`, with its output compared after `dir` is replaced by `[ROOT]`.
fn scratchimg(dir: &Path) -> Command {
    let mut redactions = Redactions::new();
    redactions.insert("[ROOT]", dir.to_path_buf()).unwrap();
    redactions.insert("[TARGET]", host_musl_target()).unwrap();
    let assert = Assert::new()
        .action_env(snapbox::assert::DEFAULT_ACTION_ENV)
        .redact_with(redactions);
    Command::from_std(tool(dir)).with_assert(assert)
}

#[test]
fn help_documents_every_option() {
    let dir = tempfile::tempdir().unwrap();
    scratchimg(dir.path())
        .arg("--help")
        .assert()
        .success()
        .stdout_eq(file!["snapshots/help.txt"]);
}

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
fn output_inside_a_file_fails_before_building() {
    let dir = fixture_copy("multi-bin");
    std::fs::write(dir.path().join("file"), "").unwrap();
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "file/out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: could not create the output directory file

Caused by:
  File exists (os error 17)
help: choose another path with -o

"#]]);
    assert_nothing_built(dir.path());
}

/// `-o` never replaces a file that is not an image archive: the manifest stays as it was.
#[test]
fn output_that_is_not_an_image_is_not_replaced() {
    let dir = fixture_copy("multi-bin");
    let manifest = std::fs::read(dir.path().join("Cargo.toml")).unwrap();
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "Cargo.toml"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: output path Cargo.toml exists and is not an image archive; not replacing it
help: choose another path with -o, or remove the file if it is yours to lose

"#]]);
    assert_eq!(
        std::fs::read(dir.path().join("Cargo.toml")).unwrap(),
        manifest
    );
    assert_nothing_built(dir.path());
    assert_no_output(dir.path(), &dir.path().join("Cargo.toml.spdx.json"));
}

#[test]
fn output_on_a_read_only_filesystem_fails_before_building() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "/proc/out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: could not write to /proc

Caused by:
  [..] at path "/proc/.out.tar.[..].tmp"
help: choose another path with -o

"#]]);
    assert_nothing_built(dir.path());
}

#[test]
fn invalid_tags_are_refused_before_building() {
    let dir = fixture_copy("multi-bin");
    let run = |tag: &str| {
        scratchimg(dir.path())
            .args(["--bin", "server", "-o", "out.tar", "-t", tag])
            .assert()
            .code(1)
    };
    run("UPPER:case").stderr_eq(str![[r#"
error: `UPPER:case`: repository name `UPPER` must be lowercase
help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`

"#]]);
    run("a:b:c").stderr_eq(str![[r#"
error: `a:b:c` has more than one `:TAG`
help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`

"#]]);
    run("").stderr_eq(str![[r#"
error: image reference is empty
help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}

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

/// A copy of the multi-bin fixture with `table` as its [package.metadata.scratchimg].
fn with_settings(table: &str) -> tempfile::TempDir {
    let dir = fixture_copy("multi-bin");
    let manifest = dir.path().join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("\n[package.metadata.scratchimg]\n");
    text.push_str(table);
    std::fs::write(manifest, text).unwrap();
    dir
}

#[test]
fn settings_typo_names_the_key_the_line_and_the_choices() {
    let dir = with_settings("bin = \"server\"\nentrypiont = [\"/app/server\"]\n");
    scratchimg(dir.path()).args(["-o", "out.tar"]).assert().code(1).stderr_eq(str![[r#"
error: invalid [package.metadata.scratchimg] in [ROOT]/Cargo.toml
TOML parse error at line 11, column 1
   |
11 | entrypiont = ["/app/server"]
   | ^^^^^^^^^^
unknown field `entrypiont`, expected one of `name`, `tags`, `entrypoint`, `cmd`, `env`, `workdir`, `user`, `ports`, `volumes`, `labels`, `annotations`, `stop-signal`, `files`, `tz`, `ca-certs`, `bin`, `bins`, `features`, `profile`, `platforms`, `allow`, `cross`, `compression`, `sign-format`, `capabilities`, `strip`

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}

#[test]
fn bad_setting_values_fail_before_building() {
    let dir = with_settings("bin = \"server\"\nports = [\"8080\", \"80/sctp\"]\n");
    scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:18: `ports`: `80/sctp` is not a port
help: write N, N/tcp or N/udp with N from 1 to 65535, e.g. "8080/tcp"

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
    let dir = with_settings(
        "bin = \"server\"\nfiles = [{ src = \"../outside\", dst = \"/app/x\" }, { src = \"src\", dst = \"app\" }]\n",
    );
    scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:18: `files`: `../outside` does not exist (looked for [ROOT]/../outside)
help: `src` is relative to the directory of the Cargo.toml that names it

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
    let dir = with_settings("bin = \"server\"\ntz = [\"Europe/Berln\"]\n");
    scratchimg(dir.path()).args(["-o", "out.tar"]).assert().code(1).stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:7: `tz`: `Europe/Berln` is not a zone of the tz database (tzdata [..])
help: zone names look like "Europe/Berlin" or "America/New_York"; `ls /usr/share/zoneinfo` on a Linux host lists them

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}

#[test]
fn bad_setting_flags_name_the_flag() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args([
            "--bin", "server", "-o", "out.tar", "--env", "A=1", "--env", "NOVALUE",
        ])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --env `NOVALUE`: expected KEY=VALUE
help: e.g. --env RUST_LOG=info

"#]]);
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "out.tar", "--ca-cert", "ca.pem"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --ca-cert: [ROOT]/ca.pem holds no certificate
help: a PEM file has `-----BEGIN CERTIFICATE-----` blocks

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

#[test]
fn unreachable_registry_fails_before_building() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["--bin", "server", "--push", "127.0.0.1:1/server"])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
warning: could not reach registry 127.0.0.1:1 for GET /v2/: io: Connection refused (os error 111); retrying GET /v2/ (try 2 of 5)
warning: could not reach registry 127.0.0.1:1 for GET /v2/: io: Connection refused (os error 111); retrying GET /v2/ (try 3 of 5)
warning: could not reach registry 127.0.0.1:1 for GET /v2/: io: Connection refused (os error 111); retrying GET /v2/ (try 4 of 5)
warning: could not reach registry 127.0.0.1:1 for GET /v2/: io: Connection refused (os error 111); retrying GET /v2/ (try 5 of 5)
error: could not reach registry 127.0.0.1:1 for GET /v2/: io: Connection refused (os error 111) (gave up after 5 tries)
help: check that the registry is up and reachable, then run the same command again: blobs already pushed are not sent again

"#]]);
    assert_nothing_built(dir.path());
}

#[test]
fn a_compression_that_does_not_exist_fails_before_building() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args([
            "--bin",
            "server",
            "--compression",
            "gzip:10",
            "-o",
            "out.tar",
        ])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: --compression: `gzip:10`: gzip has levels 1 to 9
help: write e.g. "gzip:9", or "gzip" for level 3

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
    let dir = with_settings("bin = \"server\"\ncompression = \"xz\"\n");
    scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:15: `compression`: `xz` is not a compression
help: write gzip or zstd, with a level after a colon if you want one, e.g. "zstd" or "gzip:9"

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}

#[test]
fn invalid_push_references_are_refused_before_building() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["--bin", "server", "--push", "localhost:5000/Server:v1"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: invalid --push `localhost:5000/Server:v1`

Caused by:
  `localhost:5000/Server:v1`: repository name `Server` must be lowercase
help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`

"#]]);
    scratchimg(dir.path())
        .args(["--bin", "server", "--push"])
        .env_remove("SCRATCHIMG_REPO")
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --push without a reference needs SCRATCHIMG_REPO
help: set SCRATCHIMG_REPO to a registry and namespace, e.g. `ghcr.io/acme`, or give --push REGISTRY/REPO[:TAG]

"#]]);
    scratchimg(dir.path())
        .args(["--bin", "server", "--push"])
        .env("SCRATCHIMG_REPO", "ghcr.io/Acme")
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: invalid SCRATCHIMG_REPO `ghcr.io/Acme`

Caused by:
  `ghcr.io/Acme/server`: repository name `Acme/server` must be lowercase
help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`

"#]]);
    assert_nothing_built(dir.path());
}

#[test]
fn registry_password_stdin_needs_a_password() {
    let dir = fixture_copy("multi-bin");
    scratchimg(dir.path())
        .args(["--bin", "server", "--push", "127.0.0.1:1/server"])
        .args(["--registry-user", "ci", "--registry-password-stdin"])
        .stdin("\n")
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --registry-password-stdin read an empty password
help: pipe it in, e.g. `echo "$TOKEN" | cargo scratchimg --registry-user USER --registry-password-stdin ...`

"#]]);
    assert_nothing_built(dir.path());
}

/// A `podman` first on PATH that fails the way a broken installation does, and a `DOCKER_HOST`
/// where no daemon listens: no engine answers.
fn without_engines(dir: &Path) -> Command {
    let path = path_with_failing(
        &dir.join("fake-bin"),
        "podman",
        "Error: podman is broken here",
    );
    scratchimg(dir)
        .env("PATH", path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
}

#[test]
fn load_without_an_engine_fails_before_building() {
    let dir = fixture_copy("multi-bin");
    without_engines(dir.path())
        .args(["--bin", "server", "--load", "-o", "out.tar"])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: --load found no container engine that answers
  docker: `docker version` failed (exit status: 1): [..]
  podman: `podman version` failed (exit status: 125): Error: podman is broken here
help: start the docker daemon (or point DOCKER_HOST at one) or install podman, or drop --load and run `docker load -i FILE` yourself

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}

#[test]
fn load_into_a_named_engine_that_does_not_answer_fails_before_building() {
    let dir = fixture_copy("multi-bin");
    without_engines(dir.path())
        .args(["--bin", "server", "--load=podman", "-o", "out.tar"])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: --load=podman: `podman version` failed (exit status: 125): Error: podman is broken here
help: start podman, or use --load to take whichever engine answers

"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}

#[test]
fn files_never_replace_what_the_image_has() {
    let dir = with_settings("bin = \"server\"\nfiles = [{ src = \"seed\", dst = \"/tmp\" }]\n");
    std::fs::create_dir(dir.path().join("seed")).unwrap();
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:32: `files`: `dst` `/tmp` would replace /tmp, the base's folder
help: `files` adds to the image's folders and never replaces one; name a path inside it, e.g. /tmp/seed

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);

    let dir = with_settings("bin = \"server\"\n");
    std::fs::write(dir.path().join("passwd"), "root::0:0::/:/bin/sh\n").unwrap();
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar", "--file", "passwd:/etc/passwd"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --file: `dst` `/etc/passwd` would replace /etc/passwd, the base's file
help: they hold the image's accounts, root, nonroot and nobody; choose who runs with `user` (--user)

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar", "--file", "passwd:/app/server"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --file: `dst` `/app/server` would replace /app/server, the programs' file
help: the program is the one cargo built; put other files beside it, e.g. /app/static

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
}

#[test]
fn a_fifo_in_files_is_refused_at_once() {
    let dir =
        with_settings("bin = \"server\"\nfiles = [{ src = \"static\", dst = \"/app/static\" }]\n");
    std::fs::create_dir(dir.path().join("static")).unwrap();
    std::fs::write(dir.path().join("static/index.html"), "hi").unwrap();
    let fifo = dir.path().join("static/events");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:18: `files`: [ROOT]/static/events is a FIFO (named pipe), not a file or a folder
help: `files` copies regular files and folders; remove the entry, or leave the file out of the folder

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
}

#[test]
fn setuid_in_files_needs_the_entry_to_say_so() {
    let dir = with_settings(
        "bin = \"server\"\nfiles = [{ src = \"tool\", dst = \"/app/tool\", mode = \"4755\" }]\n",
    );
    std::fs::write(dir.path().join("tool"), "#!").unwrap();
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:52: `files`: mode 4755 sets the setuid or setgid bit, so the program would run with its owner's rights
help: a scratch image rarely needs that: drop the bit (e.g. mode = "0755"), or add allow-setuid = true to this entry

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
}

#[test]
fn root_and_unreadable_files_entries_name_the_entry() {
    let dir = with_settings("bin = \"server\"\nfiles = [{ src = \"static\", dst = \"/\" }]\n");
    std::fs::create_dir(dir.path().join("static")).unwrap();
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:34: `files`: `dst` `/` is the image's root, which `files` cannot replace
help: name the path the copy gets, e.g. dst = "/app/static"

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);

    // Root reads any file whatever its mode: what cannot be read here is a link to nothing.
    let dir =
        with_settings("bin = \"server\"\nfiles = [{ src = \"static\", dst = \"/app/static\" }]\n");
    std::fs::create_dir(dir.path().join("static")).unwrap();
    std::os::unix::fs::symlink("../build/site.css", dir.path().join("static/site.css")).unwrap();
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:18: `files`: [ROOT]/static/site.css is a symlink to ../build/site.css, which cannot be read (No such file or directory (os error 2))
help: remove the broken link or the entry

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
}

#[test]
fn ca_files_must_hold_only_certificates() {
    let dir = fixture_copy("multi-bin");
    let ca = scratchimg_tests::registry::TestCa::new(dir.path());
    // A CA file with its key after the certificate, as `cat ca.pem ca.key` makes it.
    let mut with_key = std::fs::read_to_string(&ca.ca).unwrap();
    with_key.push_str(&std::fs::read_to_string(dir.path().join("ca.key")).unwrap());
    std::fs::write(dir.path().join("with-key.pem"), with_key).unwrap();
    let out = scratchimg(dir.path())
        .args(["--bin", "server", "-o", "out.tar", "--ca-cert", "with-key.pem"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --ca-cert: [ROOT]/with-key.pem: block 2 of 2 (line [..]) is a private key (`PRIVATE KEY`), which must never go into an image
help: take the key out of this file and keep it where only its server reads it; a CA file holds only the CA's `CERTIFICATE` blocks

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);

    // A CERTIFICATE block whose base64 is some other DER: OpenSSL would refuse the whole bundle.
    let mut bad = std::fs::read_to_string(&ca.ca).unwrap();
    bad.push_str("-----BEGIN CERTIFICATE-----\nMAMCAQU=\n-----END CERTIFICATE-----\n");
    bad.push_str(&std::fs::read_to_string(&ca.cert).unwrap());
    std::fs::write(dir.path().join("bad.pem"), bad).unwrap();
    let out = scratchimg(dir.path())
        .args(["--bin", "server", "-o", "out.tar", "--ca-cert", "bad.pem"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --ca-cert: [ROOT]/bad.pem: block 2 of 3 (line [..]) is not an X.509 certificate: [..]
help: a `CERTIFICATE` block holds a certificate's DER in base64; get the CA certificate again from where it comes from

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
}

#[test]
fn empty_or_relative_entrypoints_are_refused() {
    let dir = with_settings("bin = \"server\"\nentrypoint = []\n");
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: [ROOT]/Cargo.toml:11:14: `entrypoint`: `entrypoint` is empty and there is no `cmd`, so the image has no program to run
help: leave `entrypoint` out to run /app/<bin>, or name the program, e.g. entrypoint = ["/app/web"]

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
    let out = scratchimg(dir.path())
        .args(["-o", "out.tar", "--entrypoint", "server"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --entrypoint: the program `server` is not an absolute path
help: write where it is in the image, e.g. entrypoint = ["/app/server"]; a relative path depends on the working directory

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
}

/// `-t UPPER` fails after the settings are read and before cargo: the warnings show alone.
fn warnings_before(dir: &Path, args: &[&str]) -> snapbox::cmd::OutputAssert {
    scratchimg(dir)
        .args(["-o", "out.tar", "-t", "UPPER"])
        .args(args)
        .assert()
        .code(1)
}

#[test]
fn root_however_spelled_warns() {
    let dir = with_settings("bin = \"server\"\n");
    for root in ["root", "0", "00", "0:0", "000:0"] {
        let out = warnings_before(dir.path(), &["--user", root]).stderr_eq(str![[r#"
warning: the image of `multi-bin` runs as root; a scratch image rarely needs to
error: `UPPER`: repository name `UPPER` must be lowercase
help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`

"#]]);
        assert_stopped_before_building(dir.path(), &out.get_output().stderr);
    }
    let out = warnings_before(dir.path(), &["--user", "65532:0"]).stderr_eq(str![[r#"
error: `UPPER`: repository name `UPPER` must be lowercase
help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
    scratchimg(dir.path())
        .args(["-o", "out.tar", "--user", "0:4294967296"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --user: `0:4294967296`: `4294967296` is beyond the largest uid or gid, 4294967294
help: uids and gids are 32-bit numbers below 4294967295 (which is -1); use "nonroot" (65532) unless you need another

"#]]);
    assert_nothing_built(dir.path());
}

#[test]
fn a_mistyped_table_is_a_warning() {
    let dir = fixture_copy("multi-bin");
    let manifest = dir.path().join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("\n[package.metadata.scratchimage]\nbin = \"server\"\n");
    text.push_str("\n[workspace.metadata.scratch_img]\nuser = \"root\"\n");
    std::fs::write(&manifest, text).unwrap();
    let out = warnings_before(dir.path(), &["--bin", "server"]).stderr_eq(str![[r#"
warning: [ROOT]/Cargo.toml:12:21: `[workspace.metadata.scratch_img]` is not read by cargo-scratchimg; did you mean `scratchimg`?
help: rename it to [workspace.metadata.scratchimg]
warning: [ROOT]/Cargo.toml:9:19: `[package.metadata.scratchimage]` is not read by cargo-scratchimg; did you mean `scratchimg`?
help: rename it to [package.metadata.scratchimg]
error: `UPPER`: repository name `UPPER` must be lowercase
help: use NAME[:TAG] with a lowercase name, e.g. `hello:0.1.0` or `ghcr.io/acme/hello:v1`

"#]]);
    assert_stopped_before_building(dir.path(), &out.get_output().stderr);
}

/// A signing key that cannot sign fails before anything is built: each a clear error naming
/// the key, never its contents.
#[test]
fn sign_keys_that_cannot_sign() {
    let dir = fixture_copy("multi-bin");
    let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA6sODX3FLj7fqCt6B0Rny2ZVGbQaNmJi2fQ2RCEswu4Q=\n-----END PUBLIC KEY-----\n";
    std::fs::write(dir.path().join("public.pem"), public).unwrap();
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhsecretsecretAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQ\n-----END ENCRYPTED PRIVATE KEY-----\n";
    std::fs::write(dir.path().join("encrypted.pem"), encrypted).unwrap();
    let rsa = "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAqfKO2A2lVmVyjxRJ\nyvlpciGq6DP8l0BUcZp2AdopT3Nk2rFxTVTKJYVyo4zCLkH9/5ueDCKMSIkibiqu\nZfYjnQIDAQABAkAjrTXriUHSV02rV7j+EUnfmc3FHVTDc8/GYYSwctoFQX6KsD3C\nwIsLDv3rQJADKaGWmUkUX4LjxCwrepg2qi0BAiEA3TBIlHm5wn/bYE6OjmCIyN8s\nD/Vz92LM46Lgu7CpZaECIQDEscN42XFQ5KGIABjmJEEaB7V8ykTn00HPYTZ0CwkE\nfQIgV/dr5iDDD+dph9O2PkmGHN0k2PP1Ot3APof4eKy5sgECIQCr7MVzKH0HvBAF\nFDCvWRkea4aTISnBiMKJReuW2t5y8QIge24jA2RT4/CIqc5MQvUIHwsrq7kX5wVQ\nlA6GTjFHYMY=\n-----END PRIVATE KEY-----\n";
    std::fs::write(dir.path().join("rsa.pem"), rsa).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a key\n").unwrap();
    let run = |args: &[&str]| {
        scratchimg(dir.path())
            .args(["--bin", "server", "-o", "out.tar"])
            .args(args)
            .assert()
            .code(1)
            .stdout_eq(str![])
    };
    run(&["--sign-key", "public.pem"]).stderr_eq(str![[r#"
error: --sign-key public.pem is a public key; signing needs the private key
help: give an ECDSA P-256 or Ed25519 key in PKCS#8 PEM, e.g. from `openssl genpkey -algorithm ed25519 -out key.pem` or `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out key.pem`; the public key is for `cargo scratchimg verify --key`

"#]]);
    run(&["--sign-key", "encrypted.pem"]).stderr_eq(str![[r#"
error: --sign-key encrypted.pem is an encrypted private key (ENCRYPTED PRIVATE KEY), which cannot be read without its password
help: decrypt it into the pipe, never onto disk: `openssl pkey -in KEY | cargo scratchimg --sign-key-stdin ...`

"#]]);
    run(&["--sign-key", "rsa.pem"]).stderr_eq(str![[r#"
error: --sign-key rsa.pem is an RSA key, which cargo-scratchimg does not sign with
help: give an ECDSA P-256 or Ed25519 key in PKCS#8 PEM, e.g. from `openssl genpkey -algorithm ed25519 -out key.pem` or `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out key.pem`

"#]]);
    run(&["--sign-key", "notes.txt"]).stderr_eq(str![[r#"
error: --sign-key notes.txt holds no PEM private key
help: give an ECDSA P-256 or Ed25519 key in PKCS#8 PEM, e.g. from `openssl genpkey -algorithm ed25519 -out key.pem` or `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out key.pem`

"#]]);
    run(&["--sign-key", "missing.pem"]).stderr_eq(str![[r#"
error: could not read --sign-key missing.pem

Caused by:
  No such file or directory (os error 2)
help: give the path of a PEM private key

"#]]);
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "out.tar", "--sign-key-stdin"])
        .stdin("\n")
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --sign-key-stdin read nothing
help: pipe the PEM key in, e.g. `cargo scratchimg --sign-key-stdin ... < key.pem`

"#]]);
    scratchimg(dir.path())
        .args([
            "--bin",
            "server",
            "--sign-key-stdin",
            "--sign-key",
            "rsa.pem",
        ])
        .assert()
        .code(2)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: the argument '--sign-key-stdin' cannot be used with '--sign-key <FILE>'
...
"#]]);
    assert_nothing_built(dir.path());
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn verify_needs_a_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n-----END PRIVATE KEY-----\n";
    std::fs::write(dir.path().join("key.pem"), private).unwrap();
    scratchimg(dir.path())
        .args(["verify", "127.0.0.1:1/a/b:v1", "--key", "key.pem"])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: --key [ROOT]/key.pem is a private key; give the public key, which is safe to share
help: give the PEM public key of an ECDSA P-256 or Ed25519 signing key, e.g. from `openssl pkey -in key.pem -pubout -out key.pub`

"#]]);
    scratchimg(dir.path())
        .args([
            "verify",
            "127.0.0.1:1/a/b@sha256:nothex",
            "--key",
            "key.pem",
        ])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: `sha256:nothex` is not a digest
help: name the image as REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:<hex>

"#]]);
}

#[test]
fn subcommand_help_documents_every_option() {
    let dir = tempfile::tempdir().unwrap();
    for (command, snapshot) in [
        ("run", file!["snapshots/help-run.txt"]),
        ("resolve", file!["snapshots/help-resolve.txt"]),
        ("index", file!["snapshots/help-index.txt"]),
        ("verify", file!["snapshots/help-verify.txt"]),
    ] {
        scratchimg(dir.path())
            .args([command, "--help"])
            .assert()
            .success()
            .stdout_eq(snapshot);
    }
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

#[test]
fn allow_takes_the_keys_of_the_checks() {
    let dir = with_settings("bin = \"server\"\nallow = [\"sigterm\", \"musl-maloc\"]\n");
    scratchimg(dir.path())
        .args(["-o", "out.tar"])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
...
unknown variant `musl-maloc`, expected one of `system-library`, `musl-malloc`, `non-musl-target`, `cross-c-compiler`, `sigterm`
...
"#]]);
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
    assert_nothing_built(dir.path());
}
