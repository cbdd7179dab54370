//! Running pushes as a user would, with credentials only from a home the test makes, and
//! reading back what a registry holds: shared by the push tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::proxy::{Fault, Proxy};
use crate::registry::{Registry, Settings};
use crate::token::basic_credentials;
use crate::{example, require_musl_target, require_tool, run_ok, shared_target_dir, tool};

/// A home with no credentials in it, so the machine's own logins never leak into a test.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Default for Home {
    fn default() -> Home {
        Home::new()
    }
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::Builder::new()
                .prefix("scratchimg-push-home-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A Docker `config.json` with `auths` for `host`; returns its directory.
    pub fn docker_config(&self, name: &str, host: &str, user: &str, password: &str) -> PathBuf {
        let dir = self.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let auth = basic_credentials(user, password);
        std::fs::write(
            dir.join("config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        dir
    }
}

/// `$VAR`, else `$HOME/<default>`: where rustup or cargo lives, before HOME is replaced.
fn tool_home(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(default)
    })
}

/// `cargo scratchimg` on `project`, pushing with `args`, with credentials only from `home`.
pub fn push_command(home: &Home, project: &Path, target_dir: &Path, args: &[&str]) -> Command {
    require_musl_target();
    let mut command = home_command(home, project);
    command.arg("--target-dir").arg(target_dir).args(args);
    command
}

/// `cargo scratchimg` on `project` with credentials only from `home`, no arguments yet.
pub fn home_command(home: &Home, project: &Path) -> Command {
    let mut command = tool(project);
    command
        .env("HOME", home.path())
        // rustup and cargo keep finding their own homes.
        .env("RUSTUP_HOME", tool_home("RUSTUP_HOME", ".rustup"))
        .env("CARGO_HOME", tool_home("CARGO_HOME", ".cargo"))
        .env("DOCKER_CONFIG", home.path().join("no-docker-config"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        // The home's own cache directory: what one user's runs share.
        .env_remove("XDG_CACHE_HOME")
        .env_remove("SCRATCHIMG_REPO")
        .stdin(Stdio::null());
    command
}

pub fn hello_push(home: &Home, args: &[&str]) -> Command {
    push_command(home, &example("hello"), &shared_target_dir("hello"), args)
}

/// Runs a push that must succeed; returns its JSON result and stderr.
pub fn pushed(command: &mut Command) -> (serde_json::Value, String) {
    let output = command.args(["--message-format", "json"]).output().unwrap();
    crate::assert_success(command, &output);
    let json = serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    (json, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Runs a push that must fail; returns stderr.
pub fn refused(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {output:?}");
    stderr
}

pub fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    require_tool("skopeo", &["--version"]);
    let inspect = run_ok(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .args(extra)
            .arg(reference),
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    inspect["Digest"].as_str().unwrap().to_string()
}

/// The tag is not in the registry (asked straight, not through a proxy).
pub fn assert_no_tag(reference: &str) {
    let inspect = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "{reference} was pushed");
    let said = String::from_utf8_lossy(&inspect.stderr);
    assert!(said.contains("manifest unknown"), "{said}");
}

/// A registry, a proxy in front of it that breaks connections as `fault` says, and a home.
pub fn behind_proxy(fault: Fault) -> (Registry, Proxy, Home) {
    let registry = Registry::start(Settings::default());
    let proxy = Proxy::start(&registry.host, fault);
    (registry, proxy, Home::new())
}
