//! A real CNCF distribution registry (`docker-registry`) on a free loopback port, for the
//! push tests, killed on drop; optionally with TLS and htpasswd basic auth.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::token::{ISSUER, SERVICE, TokenServer};
use crate::{require_tool, run_ok};

pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
}

/// A user and password that the htpasswd registry accepts.
pub const USER: &str = "scratchimg";
pub const PASSWORD: &str = "s3cret-Pa55word";

/// A test CA and a certificate it signed for 127.0.0.1, made with the openssl CLI.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        require_tool("openssl", &["version"]);
        let ca = dir.join("ca.pem");
        let ca_key = dir.join("ca.key");
        let cert = dir.join("server.pem");
        let key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let openssl = |args: &[&str]| run_ok(Command::new("openssl").args(args).current_dir(dir));
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=scratchimg test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        assert!(ca_key.exists() && csr.exists());
        TestCa { ca, cert, key }
    }
}

/// What the registry requires.
#[derive(Default)]
pub struct Settings<'a> {
    pub tls: Option<&'a TestCa>,
    /// htpasswd basic auth with [`USER`] and [`PASSWORD`].
    pub htpasswd: bool,
    /// Token authentication with this server's tokens (instead of htpasswd).
    pub token: Option<&'a TokenServer>,
    /// The realm the registry's challenge names instead of the token server's own, to name it
    /// wrongly.
    pub token_realm: Option<String>,
    /// The URL the registry gives out in `Location` headers (its `http.host`), e.g. that of a
    /// proxy on another port that stands for object storage.
    pub external_url: Option<String>,
}

impl Registry {
    pub fn start(settings: Settings<'_>) -> Registry {
        require_tool("docker-registry", &["--version"]);
        let dir = tempfile::Builder::new()
            .prefix("scratchimg-registry-")
            .tempdir()
            .unwrap();
        let port = crate::free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\n",
            dir.path().join("data").display()
        );
        let external = settings
            .external_url
            .as_ref()
            .map(|url| format!(", host: \"{url}\""))
            .unwrap_or_default();
        match settings.tls {
            Some(ca) => config.push_str(&format!(
                "http: {{addr: \"{host}\"{external}, tls: {{certificate: {}, key: {}}}}}\n",
                ca.cert.display(),
                ca.key.display()
            )),
            None => config.push_str(&format!("http: {{addr: \"{host}\"{external}}}\n")),
        }
        if settings.htpasswd {
            require_tool("htpasswd", &["-nbB", "probe", "probe"]);
            let file = dir.path().join("htpasswd");
            let entry = run_ok(Command::new("htpasswd").args(["-nbB", USER, PASSWORD]));
            std::fs::write(&file, entry.trim()).unwrap();
            config.push_str(&format!(
                "auth: {{htpasswd: {{realm: scratchimg-test, path: {}}}}}\n",
                file.display()
            ));
        }
        if let Some(token) = settings.token {
            config.push_str(&format!(
                "auth: {{token: {{realm: \"{}\", service: {SERVICE}, issuer: {ISSUER}, rootcertbundle: {}}}}}\n",
                settings.token_realm.as_deref().unwrap_or(&token.realm),
                token.cert.display()
            ));
        }
        let config_file = dir.path().join("config.yml");
        std::fs::write(&config_file, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry { child, dir, host };
        registry.wait_until_listening();
        registry
    }

    /// Waits for the port to accept connections; panics with the log if the registry exits.
    fn wait_until_listening(&self) {
        let started = Instant::now();
        while TcpStream::connect(&self.host).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "docker-registry did not listen on {}:\n{}",
                self.host,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
