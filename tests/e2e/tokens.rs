//! Token authentication (what GHCR, Docker Hub and Harbor use) against the real CNCF
//! distribution registry and a token server: refused credentials fail before anything is
//! built, as Basic ones do; a token used up mid-push is renewed once and the push goes on, and
//! a token server that will not renew it is named; a realm that promised TLS and answers in
//! plain HTTP gets the hint the registry ping gives. Nothing is mocked and nothing skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use scratchimg_tests::proxy::{self, Proxy, TokenUses};
use scratchimg_tests::push::{Home, hello_push, push_command, pushed, refused, skopeo_digest};
use scratchimg_tests::registry::{PASSWORD, Registry, Settings, USER};
use scratchimg_tests::token::TokenServer;
use scratchimg_tests::{assert_stopped_before_building, copy_tree, example};

/// A push of a copy of the hello example in `home`, never built (a run that stops before the
/// build leaves its target directory without a build), to `reference`, also written to
/// `out.tar`, with the Docker config in `config`: the copy, and the command.
fn fresh_push(home: &Home, reference: &str, config: &Path) -> (PathBuf, Command) {
    let project = home.path().join("hello");
    copy_tree(&example("hello"), &project);
    let mut command = push_command(
        home,
        &project,
        &project.join("target"),
        &["--push", reference, "-o", "out.tar"],
    );
    command.env("DOCKER_CONFIG", config);
    (project, command)
}

/// A registry that takes the tokens of `tokens`.
fn token_registry(tokens: &TokenServer) -> Registry {
    Registry::start(Settings {
        token: Some(tokens),
        ..Settings::default()
    })
}

#[test]
fn a_wrong_password_for_a_token_registry_fails_before_anything_is_built() {
    let home = Home::new();
    let tokens = TokenServer::start(home.path());
    let registry = token_registry(&tokens);
    let host = &registry.host;
    let bad = home.docker_config("docker-bad", host, USER, "wrong-Secret-9");
    let reference = format!("{host}/scratchimg-e2e/token-refused:v1");
    let (project, mut command) = fresh_push(&home, &reference, &bad);
    let stderr = refused(&mut command);
    assert!(
        stderr.contains(&format!(
            "error: registry {host} refused the credentials from {} (auths) (401 Unauthorized to the token request)\nhelp: log in with `docker login {host}`",
            bad.join("config.json").display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-Secret-9") && !stderr.contains(PASSWORD),
        "{stderr}"
    );
    assert_stopped_before_building(&project, stderr.as_bytes());
    assert_eq!(tokens.issued(), 0);
}

/// A push of hello to `repository` through a proxy in front of a registry of `tokens`, where
/// each token serves `uses` requests.
fn push_with_used_up_tokens(
    home: &Home,
    tokens: &TokenServer,
    uses: usize,
    repository: &str,
) -> (Registry, Proxy, Command) {
    let registry = token_registry(tokens);
    let proxy = Proxy::start_with(
        &registry.host,
        proxy::Options {
            token_uses: Some(TokenUses {
                uses,
                realm: tokens.realm.clone(),
            }),
            ..proxy::Options::default()
        },
    );
    let config = home.docker_config(repository, &proxy.host, USER, PASSWORD);
    let reference = format!("{}/{repository}:v1", proxy.host);
    let mut command = hello_push(home, &["--push", &reference, "-v"]);
    command.env("DOCKER_CONFIG", config);
    (registry, proxy, command)
}

#[test]
fn a_used_up_token_is_renewed_and_a_refused_renewal_is_named() {
    let home = Home::new();
    // Each token serves ten requests: the push needs several.
    let tokens = TokenServer::start(home.path());
    let repository = "scratchimg-e2e/renewed";
    let (registry, proxy, mut command) = push_with_used_up_tokens(&home, &tokens, 10, repository);
    let (result, stderr) = pushed(&mut command);
    assert!(proxy.refused_tokens() > 0, "{:#?}", proxy.requests());
    assert!(tokens.issued() > 1, "renewed");
    assert!(
        stderr.contains(&format!(
            "Renewed the token of {} after a 401 to ",
            proxy.host
        )),
        "{stderr}"
    );
    let creds = format!("--creds={USER}:{PASSWORD}");
    assert_eq!(
        skopeo_digest(
            &format!("docker://{}/{repository}:v1", registry.host),
            &[&creds]
        ),
        result["digest"].as_str().unwrap()
    );

    // A token server that gives one token and will not renew it.
    let dir = home.path().join("stingy");
    std::fs::create_dir_all(&dir).unwrap();
    let stingy = TokenServer::start_with(&dir, Some(1));
    let repository = "scratchimg-e2e/unrenewed";
    let (_registry, proxy, mut command) = push_with_used_up_tokens(&home, &stingy, 2, repository);
    let stderr = refused(&mut command);
    assert!(
        stderr.contains(&format!("registry {} refused its token at ", proxy.host)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            ", and its token endpoint {} refused a new one (401) for the credentials from {} (auths)\nhelp: log in with `docker login {}`",
            stingy.realm,
            home.path().join(repository).join("config.json").display(),
            proxy.host
        )),
        "{stderr}"
    );
    assert_eq!(stingy.issued(), 1);
    assert_eq!(
        proxy.count(&["PUT ", "/manifests/"]),
        0,
        "no manifest was sent"
    );
}

#[test]
fn an_https_realm_answering_plain_http_gets_the_insecure_registry_hint() {
    let home = Home::new();
    let tokens = TokenServer::start(home.path());
    // The token server speaks plain HTTP; the registry says it speaks TLS.
    let token_host = tokens
        .realm
        .trim_start_matches("http://")
        .trim_end_matches("/token")
        .to_string();
    let realm = format!("https://{token_host}/token");
    let registry = Registry::start(Settings {
        token: Some(&tokens),
        token_realm: Some(realm.clone()),
        ..Settings::default()
    });
    let host = &registry.host;
    let config = home.docker_config("docker", host, USER, PASSWORD);
    let reference = format!("{host}/scratchimg-e2e/realm:v1");
    let (project, mut command) = fresh_push(&home, &reference, &config);
    let stderr = refused(&mut command);
    assert!(
        stderr.contains(&format!(
            "error: the token endpoint {realm} of registry {host} answered the TLS handshake in plain HTTP\nhelp: if it only speaks HTTP and you trust the network to it, pass --insecure-registry {token_host}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("retrying"), "not retried: {stderr}");
    assert_stopped_before_building(&project, stderr.as_bytes());

    // Named, it is spoken to in plain HTTP.
    let (result, _) = pushed(
        hello_push(
            &home,
            &["--push", &reference, "--insecure-registry", &token_host],
        )
        .env("DOCKER_CONFIG", &config),
    );
    let digest = result["digest"].as_str().unwrap();
    assert_eq!(result["pushed"][0], format!("{reference}@{digest}"));
    assert!(tokens.issued() > 0);
}
