//! How registries are reached: the options (`--registry-ca`, `--insecure-registry`,
//! `--registry-timeout`, retries, credentials), the deadlines a request and an upload get, the
//! TLS roots, which hosts may be spoken to in plain HTTP, and the agent that speaks to one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ureq::Agent;
use ureq::config::RedirectAuthHeaders;
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::credentials::CredentialSources;
use super::retry::RetryPolicy;

/// The default of `--registry-timeout`: with five tries and their backoff, a registry that
/// accepts connections and never answers fails a push in under a minute.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The slowest link a blob upload is given time for beyond the timeout: 1 Mbit/s.
const SLOWEST_UPLOAD: u64 = 128 * 1024;

/// How to reach registries: extra trust, plain-HTTP exceptions, deadlines, retries, credentials.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `--registry-ca`: PEM files of CAs trusted besides the system's roots.
    pub ca_files: Vec<PathBuf>,
    /// `--insecure-registry`: hosts (`host` or `host:port`) that may be spoken to over HTTP.
    pub insecure: Vec<String>,
    /// `--registry-timeout`: how long one request may take, from connecting to the last byte of
    /// the answer. A blob upload gets more for its size ([`upload_deadline`]); a credential
    /// helper, three times this ([`helper_limit`]).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub credentials: CredentialSources,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            ca_files: Vec::new(),
            insecure: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            credentials: CredentialSources::default(),
        }
    }
}

/// How long the upload of a blob of `size` bytes may take: the timeout, plus its size at the
/// slowest link we allow for. Stalls fail sooner: a write that moves nothing for `timeout` does.
pub(super) fn upload_deadline(timeout: Duration, size: u64) -> Duration {
    timeout.saturating_add(Duration::from_millis(
        size.saturating_mul(1000) / SLOWEST_UPLOAD,
    ))
}

/// How long a `docker-credential-*` helper may run: three request timeouts (30 s by default),
/// since a helper may itself ask a cloud API for a token.
pub(super) fn helper_limit(timeout: Duration) -> Duration {
    timeout.saturating_mul(3)
}

/// `host` without its port or IPv6 brackets.
fn host_name(host: &str) -> &str {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    name.trim_start_matches('[').trim_end_matches(']')
}

/// Whether `host` (with or without a port) may be spoken to over plain HTTP: loopback, or
/// named by `--insecure-registry`.
pub(super) fn http_allowed(host: &str, insecure: &[String]) -> bool {
    let name = host_name(host);
    let loopback = name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback || named_insecure(host, insecure)
}

/// Whether `--insecure-registry` names `host` (with or without its port).
pub(super) fn named_insecure(host: &str, insecure: &[String]) -> bool {
    let name = host_name(host);
    insecure.iter().any(|i| i == host || i == name)
}

/// Scheme, host and port of a URL, the default port filled in: what decides whether a URL is
/// the registry's own.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some((scheme, uri.host()?.to_ascii_lowercase(), port))
}

/// Whether `url` is on the same scheme, host and port as `base`: only those get credentials.
pub(super) fn same_origin(url: &str, base: &str) -> bool {
    matches!((origin(url), origin(base)), (Some(a), Some(b)) if a == b)
}

fn root_certs(ca_files: &[PathBuf]) -> Result<RootCerts> {
    let native = rustls_native_certs::load_native_certs();
    let mut certs: Vec<Certificate<'static>> = native
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if certs.is_empty() {
        // No system store (a scratch container, say): Mozilla's roots, as in our images.
        certs.extend(
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|der| Certificate::from_der(der.as_ref()).to_owned()),
        );
    }
    for file in ca_files {
        let pem = crate::input_file::read(file, crate::input_file::CERTIFICATES_LIMIT)
            .with_context(|| {
                format!(
                    "could not read --registry-ca {}\nhelp: give a PEM file of the registry's CA certificates",
                    file.display()
                )
            })?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let PemItem::Certificate(cert) =
                item.with_context(|| format!("--registry-ca {} is not valid PEM", file.display()))?
            {
                certs.push(cert);
            }
        }
        if certs.len() == before {
            bail!(
                "--registry-ca {} holds no certificate\nhelp: give a PEM file with `-----BEGIN CERTIFICATE-----` blocks",
                file.display()
            );
        }
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

/// An agent for one registry. `HTTPS_PROXY` and friends apply, except to loopback registries,
/// which a proxy elsewhere could not reach. Each exchange, from the name lookup to the last
/// byte of the answer's body, must end within `timeout` (longer ones set their own deadline,
/// and no read of theirs may wait longer than `timeout`); redirects never carry credentials.
pub(super) fn agent(host: &str, ca_files: &[PathBuf], timeout: Duration) -> Result<Agent> {
    let loopback = http_allowed(host, &[]);
    let tls = TlsConfig::builder()
        .root_certs(root_certs(ca_files)?)
        .build();
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .proxy(if loopback {
            None
        } else {
            ureq::Proxy::try_from_env()
        })
        .timeout_per_call(Some(timeout))
        // However long the answer may take, it stalls for no more than this.
        .timeout_per_read(Some(timeout))
        .redirect_auth_headers(RedirectAuthHeaders::Never)
        .user_agent(concat!("cargo-scratchimg/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_fail_an_unanswering_registry_well_under_two_minutes() {
        // Every try of a step (the ping, a HEAD, an upload's POST and PUT) ends at the request
        // deadline; five of them and the backoff between them bound the step.
        let defaults = ClientOptions::default();
        let bound = defaults.retry.bound(defaults.timeout);
        assert_eq!(
            bound,
            Duration::from_millis(5 * 10_000 + 250 + 500 + 1000 + 2000)
        );
        assert!(bound <= Duration::from_secs(60), "{bound:?}");
        // The credential helper, looked up once per registry before the first step.
        assert_eq!(helper_limit(defaults.timeout), Duration::from_secs(30));
        // Blob uploads: the timeout, plus the blob's size at 1 Mbit/s.
        assert_eq!(
            upload_deadline(defaults.timeout, 0),
            Duration::from_secs(10)
        );
        assert_eq!(
            upload_deadline(defaults.timeout, 20 * 1024 * 1024),
            Duration::from_secs(10 + 160)
        );
    }

    #[test]
    fn credentials_go_to_the_registry_origin_only() {
        let base = "https://registry.example";
        assert!(same_origin(
            "https://registry.example/v2/a/blobs/uploads/1",
            base
        ));
        assert!(same_origin("https://REGISTRY.example:443/v2/", base));
        assert!(!same_origin("https://registry.example:8443/v2/", base));
        assert!(!same_origin("http://registry.example/v2/", base));
        assert!(!same_origin("https://bucket.s3.example/upload?sig=1", base));
        assert!(!same_origin("https://registry.example.evil/v2/", base));
        assert!(!same_origin("not a url", base));
        let base = "http://127.0.0.1:5000";
        assert!(same_origin("http://127.0.0.1:5000/v2/x", base));
        assert!(!same_origin("http://127.0.0.1:5001/v2/x", base));
        assert!(!same_origin("http://localhost:5000/v2/x", base));
    }

    #[test]
    fn plain_http_only_for_loopback_and_named_hosts() {
        let insecure = vec!["registry.lan:5000".to_string(), "build-cache".to_string()];
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.0.0.9",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(http_allowed(host, &[]), "{host}");
        }
        assert!(http_allowed("registry.lan:5000", &insecure));
        assert!(!http_allowed("registry.lan:5001", &insecure));
        assert!(http_allowed("build-cache:8080", &insecure));
        assert!(!http_allowed("ghcr.io", &insecure));
        assert!(!http_allowed("10.0.0.1:5000", &insecure));
        // Only what the flag names: a token endpoint that promised TLS keeps it on loopback.
        assert!(named_insecure("registry.lan:5000", &insecure));
        assert!(named_insecure("build-cache:8080", &insecure));
        assert!(!named_insecure("127.0.0.1:5000", &insecure));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let error = root_certs(&[file]).unwrap_err();
        assert!(
            format!("{error:#}").contains("holds no certificate"),
            "{error:#}"
        );
        let missing = root_certs(&[dir.path().join("missing.pem")]).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("could not read --registry-ca"),
            "{missing}"
        );
    }
}
