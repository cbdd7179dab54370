//! Outputs that cannot be written, or must not be replaced; tags that cannot name an image.

use super::*;

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
