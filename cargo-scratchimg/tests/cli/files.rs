//! `files` and `ca-certs`: what they may put into the image.

use super::*;

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
