//! Settings and image flags: each mistake named by key, file and line, before cargo builds.

use super::*;

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
