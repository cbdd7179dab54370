//! Registries and engines that cannot be reached or used, found before cargo builds.

use super::*;

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
