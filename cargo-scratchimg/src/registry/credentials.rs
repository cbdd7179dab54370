//! Registry credentials, found where Docker and podman keep them.
//!
//! Written here rather than taken from the `docker_credential` crate: that crate reads only
//! Docker's file and cannot say where it looked, and a 401 must name every source it tried.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::env::Env;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// A password or token: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    /// The value of a `Basic` `Authorization` header.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password.expose());
        format!("Basic {}", STANDARD.encode(pair))
    }
}

/// Credentials and where they came from, e.g. `/root/.docker/config.json (auths)`.
#[derive(Debug, Clone)]
pub struct Found {
    pub credentials: Credentials,
    pub source: String,
}

/// The outcome of a lookup: what was found, and every place looked, for error messages.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub found: Option<Found>,
    pub tried: Vec<String>,
}

/// Where to look, in order: the command line, podman's auth files, Docker's config.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// `--registry-user` with `--registry-password-stdin`.
    pub explicit: Option<Credentials>,
    /// `$REGISTRY_AUTH_FILE`.
    pub registry_auth_file: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR/containers/auth.json` and `~/.config/containers/auth.json`.
    pub podman_auth_files: Vec<PathBuf>,
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
}

/// The parts of Docker's `config.json` (and podman's `auth.json`, the same format) we read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// Docker Hub's registry goes by several names in config files.
const DOCKER_HUB_KEYS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// `https://index.docker.io/v1/` and `ghcr.io` both name a host: compare those.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    host == registry || (DOCKER_HUB_KEYS.contains(&host) && DOCKER_HUB_KEYS.contains(&registry))
}

/// The server URL credential helpers know a registry by.
fn helper_server_url(registry: &str) -> String {
    if DOCKER_HUB_KEYS.contains(&registry) {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

impl CredentialSources {
    /// The sources of this environment: `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR`, `$HOME`,
    /// `$DOCKER_CONFIG`.
    pub fn from_env(env: &Env, explicit: Option<Credentials>) -> CredentialSources {
        let mut podman_auth_files = Vec::new();
        if let Some(runtime) = &env.xdg_runtime_dir {
            podman_auth_files.push(runtime.join("containers/auth.json"));
        }
        if let Some(home) = &env.home {
            podman_auth_files.push(home.join(".config/containers/auth.json"));
        }
        let docker_config = env
            .docker_config
            .clone()
            .or_else(|| env.home.as_ref().map(|h| h.join(".docker")))
            .map(|dir| dir.join("config.json"));
        CredentialSources {
            explicit,
            registry_auth_file: env.registry_auth_file.clone(),
            podman_auth_files,
            docker_config,
        }
    }

    /// The first credentials for `registry` (a host, as in `ghcr.io` or `127.0.0.1:5000`); a
    /// credential helper may run for `helper_limit`.
    pub fn find(&self, registry: &str, helper_limit: Duration) -> Result<Lookup> {
        let mut lookup = Lookup::default();
        if let Some(credentials) = &self.explicit {
            lookup.found = Some(Found {
                credentials: credentials.clone(),
                source: "--registry-user".to_string(),
            });
            return Ok(lookup);
        }
        lookup.tried.push("--registry-user (not given)".to_string());
        let files = self
            .registry_auth_file
            .iter()
            .chain(&self.podman_auth_files)
            .chain(&self.docker_config);
        for path in files {
            match read_config(path)? {
                None => lookup
                    .tried
                    .push(format!("{} (no such file)", path.display())),
                Some(config) => match from_config(&config, path, registry, helper_limit)? {
                    Ok(found) => {
                        lookup.found = Some(found);
                        return Ok(lookup);
                    }
                    Err(why) => lookup.tried.push(format!("{} ({why})", path.display())),
                },
            }
        }
        if self.registry_auth_file.is_none() {
            lookup
                .tried
                .insert(1, "$REGISTRY_AUTH_FILE (not set)".to_string());
        }
        Ok(lookup)
    }
}

fn read_config(path: &Path) -> Result<Option<ConfigFile>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    };
    let config = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a valid credentials file\nhelp: fix or remove it, or log in again with `docker login`",
            path.display()
        )
    })?;
    Ok(Some(config))
}

/// Credentials for `registry` from one file: `credHelpers`, then `auths`, then `credsStore`, or
/// why there are none.
fn from_config(
    config: &ConfigFile,
    path: &Path,
    registry: &str,
    helper_limit: Duration,
) -> Result<std::result::Result<Found, String>> {
    let source = |how: &str| format!("{} ({how})", path.display());
    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(key, _)| same_registry(key, registry))
    {
        return Ok(run_helper(helper, registry, helper_limit)?
            .map(|credentials| Found {
                credentials,
                source: source(&format!("credHelpers: docker-credential-{helper}")),
            })
            .ok_or(format!("docker-credential-{helper} has none")));
    }
    if let Some((key, entry)) = config
        .auths
        .iter()
        .find(|(key, _)| same_registry(key, registry))
        && let Some(credentials) = entry_credentials(entry).with_context(|| {
            format!(
                "the `auths` entry `{key}` in {} is invalid\nhelp: log in again with `docker login {registry}`",
                path.display()
            )
        })?
    {
        return Ok(Ok(Found {
            credentials,
            source: source("auths"),
        }));
    }
    if let Some(store) = &config.creds_store {
        return Ok(run_helper(store, registry, helper_limit)?
            .map(|credentials| Found {
                credentials,
                source: source(&format!("credsStore: docker-credential-{store}")),
            })
            .ok_or(format!("docker-credential-{store} has none")));
    }
    Ok(Err(format!("no entry for {registry}")))
}

fn entry_credentials(entry: &AuthEntry) -> Result<Option<Credentials>> {
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        // The error names neither the value nor its decoding: both hold the password.
        let decoded = STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .context("`auth` is not base64 of USER:PASSWORD")?;
        let Some((username, password)) = decoded.split_once(':') else {
            bail!("`auth` is not base64 of USER:PASSWORD");
        };
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: Secret::new(password.to_string()),
        }));
    }
    Ok(match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Some(Credentials {
            username: username.clone(),
            password: Secret::new(password.clone()),
        }),
        _ => None,
    })
}

/// Asks `docker-credential-<helper>` for the registry's credentials; `None` when it has none.
fn run_helper(helper: &str, registry: &str, limit: Duration) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    ask_helper(&program, Command::new(&program), registry, limit)
}

/// Runs `command` (the helper `program`) with `get`, the server URL on stdin, and reads its
/// answer, all within `limit`: past it, the helper and whatever it started are killed.
fn ask_helper(
    program: &str,
    mut command: Command,
    registry: &str,
    limit: Duration,
) -> Result<Option<Credentials>> {
    let deadline = Instant::now() + limit;
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, so that a timeout (or an interrupt) also ends what it started
        // (gpg, a browser login, a cloud CLI) and nothing is left holding its stdout.
        .process_group(0);
    let (mut child, _registered) = crate::interrupt::spawn_group(&mut command)
        .with_context(|| {
            format!("could not run the credential helper `{program}`\nhelp: install it, or remove it from your Docker config")
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(helper_server_url(registry).as_bytes());
    drop(stdin);
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (sender, answer) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        let read = stdout.read_to_end(&mut said).map(|_| said);
        let _ = sender.send(read);
    });
    let stop = |child: &mut std::process::Child| {
        crate::interrupt::kill_group(child.id());
        let _ = child.kill();
        let _ = child.wait();
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => break None,
        }
    };
    let said = status.and_then(|_| {
        answer
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    });
    let (Some(status), Some(said)) = (status, said) else {
        stop(&mut child);
        bail!(
            "the credential helper `{program}` gave no answer for {registry} within {:.0?}, so it was stopped\nhelp: check that `{program} get` answers when given `{}` on stdin (it may be waiting for a login or a passphrase); it gets three times --registry-timeout",
            limit,
            helper_server_url(registry)
        );
    };
    let said = said.with_context(|| format!("could not read the answer of `{program}`"))?;
    if !status.success() {
        // Helpers say "credentials not found" on stdout when they have none for the server.
        let said = String::from_utf8_lossy(&said);
        if said.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        bail!(
            "the credential helper `{program}` failed for {registry} ({status})\nhelp: run `docker login {registry}` again"
        );
    }
    written.with_context(|| format!("could not talk to the credential helper `{program}`"))?;
    let answer: HelperAnswer = serde_json::from_slice(&said).with_context(|| {
        format!("the credential helper `{program}` gave an answer we cannot read")
    })?;
    if answer.username == "<token>" {
        bail!(
            "the credential helper `{program}` gave an identity token for {registry}, which cargo-scratchimg does not use yet\nhelp: pass --registry-user and --registry-password-stdin"
        );
    }
    Ok(Some(Credentials {
        username: answer.username,
        password: Secret::new(answer.secret),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    fn write(dir: &Path, name: &str, json: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, json).unwrap();
        path
    }

    /// Sources with only a Docker config holding `json`.
    fn docker_config(dir: &Path, json: &str) -> CredentialSources {
        CredentialSources {
            docker_config: Some(write(dir, "config.json", json)),
            ..CredentialSources::default()
        }
    }

    #[test]
    fn auths_entries_match_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let auth = STANDARD.encode("alice:s3cret:with:colons");
        let config = write(
            dir.path(),
            "config.json",
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"username":"bob","password":"pw"}}}}}}"#
            ),
        );
        let sources = CredentialSources {
            docker_config: Some(config.clone()),
            ..CredentialSources::default()
        };
        let hub = sources.find("docker.io", LIMIT).unwrap().found.unwrap();
        assert_eq!(hub.credentials.username, "alice");
        assert_eq!(hub.credentials.password.expose(), "s3cret:with:colons");
        assert_eq!(hub.source, format!("{} (auths)", config.display()));
        let ghcr = sources.find("ghcr.io", LIMIT).unwrap().found.unwrap();
        assert_eq!(ghcr.credentials.username, "bob");
        let none = sources.find("quay.io", LIMIT).unwrap();
        assert!(none.found.is_none());
        assert_eq!(
            none.tried,
            [
                "--registry-user (not given)".to_string(),
                "$REGISTRY_AUTH_FILE (not set)".to_string(),
                format!("{} (no entry for quay.io)", config.display()),
            ]
        );
    }

    #[test]
    fn podman_files_come_before_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let podman = write(
            dir.path(),
            "auth.json",
            r#"{"auths":{"localhost:5000":{"auth":"cG9kOm1hbg=="}}}"#,
        );
        let docker = write(
            dir.path(),
            "config.json",
            r#"{"auths":{"localhost:5000":{"auth":"ZG9jOmtlcg=="}}}"#,
        );
        let sources = CredentialSources {
            registry_auth_file: Some(dir.path().join("missing.json")),
            podman_auth_files: vec![podman],
            docker_config: Some(docker),
            ..CredentialSources::default()
        };
        let lookup = sources.find("localhost:5000", LIMIT).unwrap();
        assert_eq!(lookup.found.unwrap().credentials.username, "pod");
        assert!(lookup.tried[1].ends_with("missing.json (no such file)"));
    }

    #[test]
    fn explicit_credentials_win_and_secrets_stay_hidden() {
        let credentials = Credentials {
            username: "ci".into(),
            password: Secret::new("hunter2".into()),
        };
        let sources = CredentialSources {
            explicit: Some(credentials.clone()),
            docker_config: Some(PathBuf::from("/nonexistent/config.json")),
            ..CredentialSources::default()
        };
        let found = sources.find("ghcr.io", LIMIT).unwrap().found.unwrap();
        assert_eq!(found.source, "--registry-user");
        assert!(!format!("{sources:?} {found:?}").contains("hunter2"));
        assert_eq!(credentials.basic(), "Basic Y2k6aHVudGVyMg==");
    }

    #[test]
    fn a_missing_helper_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let sources = docker_config(
            dir.path(),
            r#"{"credHelpers":{"ghcr.io":"scratchimg-test-absent"}}"#,
        );
        let error = format!("{:#}", sources.find("ghcr.io", LIMIT).unwrap_err());
        assert!(
            error.contains(
                "could not run the credential helper `docker-credential-scratchimg-test-absent`"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_broken_auth_entry_does_not_leak_it() {
        let dir = tempfile::tempdir().unwrap();
        let sources = docker_config(
            dir.path(),
            r#"{"auths":{"ghcr.io":{"auth":"bm9jb2xvbnNlY3JldA=="}}}"#,
        );
        let error = format!("{:#}", sources.find("ghcr.io", LIMIT).unwrap_err());
        assert!(error.contains("not base64 of USER:PASSWORD"), "{error}");
        assert!(
            !error.contains("nocolonsecret") && !error.contains("bm9j"),
            "{error}"
        );
    }

    /// Whether process `pid` is gone (or a zombie waiting for init to reap it).
    fn gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn a_helper_that_never_answers_is_stopped_with_what_it_started() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-hang");
        let pids = dir.path().join("pids");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nsleep 600 &\necho $$ $! > {}\nwait\n",
                pids.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = ask_helper(
            "docker-credential-hang",
            Command::new(&helper),
            "registry.example",
            Duration::from_millis(500),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the credential helper `docker-credential-hang` gave no answer for registry.example within 500ms, so it was stopped\nhelp: check that `docker-credential-hang get` answers when given `registry.example` on stdin (it may be waiting for a login or a passphrase); it gets three times --registry-timeout"
        );
        let pids = std::fs::read_to_string(&pids).unwrap();
        let pids: Vec<&str> = pids.split_whitespace().collect();
        assert_eq!(pids.len(), 2, "the helper and its sleep: {pids:?}");
        // A killed process goes away once the kernel has delivered the signal: allow it that.
        for pid in pids {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !gone(pid) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(gone(pid), "process {pid} of the helper is still running");
        }
    }

    #[test]
    fn a_helper_answers_within_its_limit() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-quick");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = ghcr.io ] || exit 3\necho '{\"ServerURL\":\"ghcr.io\",\"Username\":\"bob\",\"Secret\":\"pw\"}'\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = ask_helper(
            "docker-credential-quick",
            Command::new(&helper),
            "ghcr.io",
            LIMIT,
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.username, "bob");
        assert_eq!(found.password.expose(), "pw");
    }
}
