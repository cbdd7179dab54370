//! A small client of the OCI distribution API: ping and authenticate, check blobs with HEAD,
//! mount or upload the missing ones, and put a manifest as the exact bytes given.
//!
//! Written on ureq rather than taken from oci-client: oci-client is async (tokio + reqwest, a
//! runtime and twice the compile time for a tool that pushes three blobs), runs its own
//! authentication with no way to say which credential source a 401 refused, and neither retries
//! nor reports upload progress. This client is synchronous, speaks rustls with the system's
//! roots, and does exactly the calls a push needs.

use std::cell::Cell;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::image::Digest;
use ureq::Agent;
use ureq::config::RedirectAuthHeaders;
use ureq::http::{Response, Uri};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::auth::{self, Challenge, TokenError};
use super::credentials::{CredentialSources, Lookup, Secret};
use super::retry::{RequestError, RetryPolicy};
use crate::report::{Reporter, one_line};

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

/// What Docker calls the registry of `docker.io/...` references.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The `Authorization` a registry wants, from its answer to `GET /v2/`.
#[derive(Debug, Clone)]
enum Auth {
    Anonymous,
    /// The header value, which holds the password.
    Basic(Secret),
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// One registry, pinged and with its authentication settled.
pub(crate) struct Registry {
    /// The name in references, e.g. `ghcr.io` or `127.0.0.1:5000`.
    host: String,
    /// `https://host` or, for loopback and `--insecure-registry` hosts, maybe `http://host`.
    base: String,
    agent: Agent,
    auth: Auth,
    credentials: Lookup,
    retry: RetryPolicy,
    timeout: Duration,
    insecure: Vec<String>,
}

/// Whether `host` (with or without a port) may be spoken to over plain HTTP.
pub(super) fn http_allowed(host: &str, insecure: &[String]) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let loopback = name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback || insecure.iter().any(|i| i == host || i == name)
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
fn same_origin(url: &str, base: &str) -> bool {
    matches!((origin(url), origin(base)), (Some(a), Some(b)) if a == b)
}

/// How much of a registry's own words an error shows.
const WORDS_SHOWN: usize = 300;

/// Registry text quoted as the registry's: `"…"`, on one line, bounded.
pub(crate) fn quoted(text: &str) -> String {
    format!("\"{}\"", one_line(text, WORDS_SHOWN))
}

/// `, saying "…"` after a status, when the registry said anything.
fn saying(text: &str) -> String {
    let words = one_line(text, WORDS_SHOWN);
    if words.is_empty() {
        String::new()
    } else {
        format!(", saying \"{words}\"")
    }
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
        let pem = std::fs::read(file)
            .with_context(|| format!("could not read --registry-ca {}", file.display()))?;
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
/// byte of the answer's body, must end within `timeout`; redirects never carry credentials.
fn agent(host: &str, ca_files: &[PathBuf], timeout: Duration) -> Result<Agent> {
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
        .redirect_auth_headers(RedirectAuthHeaders::Never)
        .user_agent(concat!("cargo-scratchimg/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}

/// The rustls error inside a transport failure, if any.
fn rustls_error(error: &ureq::Error) -> Option<&rustls::Error> {
    match error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(e) => e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// Whether a failure is the server's certificate not being trusted.
fn untrusted_certificate(error: &ureq::Error) -> bool {
    matches!(
        rustls_error(error),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// Whether the TLS handshake was answered with something that is not TLS: a server speaking
/// plain HTTP answers the handshake with `HTTP/1.1 400 …`, which is no TLS record type.
fn plain_http_answer(error: &ureq::Error) -> bool {
    matches!(
        rustls_error(error),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

fn timed_out(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(e) => e.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    }
}

/// `10s`, `1.5s`: a limit as `--registry-timeout` takes it.
fn seconds(limit: Duration) -> String {
    if limit.subsec_millis() == 0 {
        format!("{}s", limit.as_secs())
    } else {
        format!("{:.1}s", limit.as_secs_f64())
    }
}

/// Sorts a transport failure of `what` (a step: `GET /v2/`, `PUT of the manifest`) into
/// transient (worth a retry) or final, naming the registry and the step. `limit` is the
/// deadline the request had.
fn transport_error(host: &str, what: &str, limit: Duration, error: ureq::Error) -> RequestError {
    use std::io::ErrorKind::*;
    // ureq's words may quote a header of the registry's.
    let said = one_line(&error.to_string(), WORDS_SHOWN);
    if untrusted_certificate(&error) {
        return anyhow!(
            "the TLS certificate of registry {host} is not trusted: {said}\nhelp: if the registry uses a private CA, pass its certificate with --registry-ca FILE"
        )
        .into();
    }
    if plain_http_answer(&error) {
        return anyhow!(
            "registry {host} answered the TLS handshake of {what} in plain HTTP\nhelp: if it only speaks HTTP and you trust the network to it, pass --insecure-registry {host}"
        )
        .into();
    }
    if let ureq::Error::Timeout(ureq::Timeout::PerWrite) = &error {
        return RequestError::transient(format!(
            "registry {host} stopped taking {what} (see --registry-timeout)"
        ));
    }
    if timed_out(&error) {
        return RequestError::transient(format!(
            "registry {host} did not answer {what} within {} (see --registry-timeout)",
            seconds(limit)
        ));
    }
    match &error {
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                ConnectionReset
                    | ConnectionAborted
                    | ConnectionRefused
                    | BrokenPipe
                    | UnexpectedEof
                    | Interrupted
            ) =>
        {
            RequestError::transient(format!("could not reach registry {host} for {what}: {said}"))
        }
        ureq::Error::Protocol(_) | ureq::Error::ConnectionFailed => {
            RequestError::transient(format!("could not reach registry {host} for {what}: {said}"))
        }
        ureq::Error::HostNotFound => anyhow!(
            "could not resolve registry {host}\nhelp: check the registry host in --push or SCRATCHIMG_REPO"
        )
        .into(),
        _ => anyhow!(
            "could not reach registry {host} for {what}: {said}\nhelp: check the registry host in --push or SCRATCHIMG_REPO, and that this machine can reach it"
        )
        .into(),
    }
}

/// Reads the rest of an answer, so that one that stops midway fails like a dropped connection
/// (and is retried) instead of passing for a whole one.
fn finish(
    host: &str,
    what: &str,
    limit: Duration,
    response: &mut Response<ureq::Body>,
) -> Result<(), RequestError> {
    let read = response
        .body_mut()
        .with_config()
        .limit(1024 * 1024)
        .read_to_vec();
    match read {
        Ok(_) => Ok(()),
        Err(error) if timed_out(&error) => Err(RequestError::transient(format!(
            "registry {host} did not finish its answer to {what} within {} (see --registry-timeout)",
            seconds(limit)
        ))),
        Err(error) => Err(RequestError::transient(format!(
            "registry {host} broke off its answer to {what}: {}",
            one_line(&error.to_string(), WORDS_SHOWN)
        ))),
    }
}

/// The message of a registry's error body (`{"errors":[{"code":..,"message":..}]}`), if any, as
/// the registry wrote it: [`saying`] quotes and cleans it.
fn error_text(response: &mut Response<ureq::Body>) -> String {
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let errors = parsed
        .as_ref()
        .and_then(|v| v["errors"].as_array())
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["code"].as_str().unwrap_or("ERROR"),
                        e["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
    errors.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned())
}

fn status_line(response: &Response<ureq::Body>) -> String {
    let status = response.status();
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim()
    .to_string()
}

/// 429 and 5xx are worth another try.
fn transient_status(
    host: &str,
    what: &str,
    response: &mut Response<ureq::Body>,
) -> Option<RequestError> {
    let status = response.status().as_u16();
    if status != 429 && !(500..600).contains(&status) {
        return None;
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let line = status_line(response);
    let text = error_text(response);
    Some(RequestError::Transient {
        message: format!("registry {host} answered {line} to {what}{}", saying(&text)),
        retry_after,
    })
}

impl Registry {
    /// Pings `GET /v2/` on `host` (a reference's registry, e.g. `ghcr.io`), choosing HTTPS, or
    /// plain HTTP where allowed and the registry does not speak TLS, and settles how to
    /// authenticate.
    /// Each retry is a warning to `report` as it happens.
    pub(crate) fn connect(
        host: &str,
        options: &ClientOptions,
        report: &dyn Reporter,
    ) -> Result<Registry> {
        let agent = agent(host, &options.ca_files, options.timeout)?;
        let api_host = if host == "docker.io" {
            DOCKER_HUB_API
        } else {
            host
        };
        let mut registry = Registry {
            host: host.to_string(),
            base: format!("https://{api_host}"),
            agent,
            auth: Auth::Anonymous,
            credentials: Lookup::default(),
            retry: options.retry,
            timeout: options.timeout,
            insecure: options.insecure.clone(),
        };
        let what = "GET /v2/";
        // A loopback or --insecure-registry host that fails HTTPS other than on its certificate
        // is spoken to in plain HTTP from then on: at once when it answered the handshake, at the
        // next try when it did not answer at all (that try counts, so the retries stay bounded).
        let may_fall_back = http_allowed(host, &options.insecure);
        let scheme = Cell::new("https");
        let mut response = registry.with_retries(what, report, || {
            let ping = |scheme: &str| {
                registry
                    .agent
                    .get(format!("{scheme}://{api_host}/v2/"))
                    .call()
            };
            let answer = match ping(scheme.get()) {
                Err(error)
                    if scheme.get() == "https"
                        && may_fall_back
                        && !untrusted_certificate(&error) =>
                {
                    scheme.set("http");
                    if timed_out(&error) {
                        return Err(registry.transport_error(what, error));
                    }
                    ping("http")
                }
                answer => answer,
            };
            let mut response = answer.map_err(|e| registry.transport_error(what, e))?;
            if let Some(transient) = transient_status(host, what, &mut response) {
                return Err(transient);
            }
            if response.status().as_u16() == 200 {
                finish(host, what, registry.timeout, &mut response)?;
            }
            Ok(response)
        })?;
        registry.base = format!("{}://{api_host}", scheme.get());
        let status = response.status().as_u16();
        match status {
            200 => {}
            401 => {
                let header = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                registry.credentials = options
                    .credentials
                    .find(host, helper_limit(options.timeout))?;
                registry.auth = match Challenge::parse(&header) {
                    Some(Challenge::Basic { .. }) => {
                        let Some(found) = &registry.credentials.found else {
                            return Err(registry.unauthorized(what));
                        };
                        let basic = found.credentials.basic();
                        // Check the credentials now, before anything is built.
                        let mut check = registry.with_retries(what, report, || {
                            let mut response = registry
                                .agent
                                .get(format!("{}/v2/", registry.base))
                                .header("Authorization", &basic)
                                .call()
                                .map_err(|e| registry.transport_error(what, e))?;
                            if response.status().as_u16() == 200 {
                                finish(host, what, registry.timeout, &mut response)?;
                            }
                            Ok(response)
                        })?;
                        match check.status().as_u16() {
                            200 => Auth::Basic(Secret::new(basic)),
                            401 => return Err(registry.unauthorized(what)),
                            _ => bail!(
                                "registry {host} answered {} to {what}{}",
                                status_line(&check),
                                saying(&error_text(&mut check))
                            ),
                        }
                    }
                    Some(Challenge::Bearer { realm, service, .. }) => {
                        auth::check_realm(&realm, |h| http_allowed(h, &options.insecure))?;
                        Auth::Bearer { realm, service }
                    }
                    None => bail!(
                        "registry {host} asks for an authentication scheme cargo-scratchimg does not speak: {}",
                        quoted(&header)
                    ),
                };
            }
            _ => bail!(
                "registry {host} answered {} to {what}: it does not look like an OCI registry{}\nhelp: check the registry host in --push or SCRATCHIMG_REPO",
                status_line(&response),
                saying(&error_text(&mut response))
            ),
        }
        Ok(registry)
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// How the registry is spoken to, for `-v`: `127.0.0.1:5000 over http, anonymous`.
    pub(crate) fn describe(&self) -> String {
        let scheme = if self.is_https() { "https" } else { "http" };
        let auth = match &self.auth {
            Auth::Anonymous => "anonymous",
            Auth::Basic(_) => "basic auth",
            Auth::Bearer { .. } => "bearer token",
        };
        match &self.credentials.found {
            Some(found) => format!(
                "{} over {scheme}, {auth} with credentials from {}",
                self.host, found.source
            ),
            None => format!("{} over {scheme}, {auth}", self.host),
        }
    }

    /// Whether the registry is spoken to over TLS.
    pub(crate) fn is_https(&self) -> bool {
        self.base.starts_with("https://")
    }

    /// A session for pushing to `repository`, with a token for it (and for pulling from
    /// `mount_from`) when the registry uses bearer tokens. Its retries are warnings to `report`.
    pub(crate) fn session<'a>(
        &'a self,
        repository: &str,
        mount_from: &[String],
        report: &'a dyn Reporter,
    ) -> Result<Session<'a>> {
        self.session_with(
            repository,
            auth::push_scopes(repository, mount_from),
            report,
        )
    }

    /// A session that only reads `repository` (a token with `pull` alone, where tokens are used).
    pub(crate) fn read_session<'a>(
        &'a self,
        repository: &str,
        report: &'a dyn Reporter,
    ) -> Result<Session<'a>> {
        self.session_with(
            repository,
            vec![format!("repository:{repository}:pull")],
            report,
        )
    }

    fn session_with<'a>(
        &'a self,
        repository: &str,
        scopes: Vec<String>,
        report: &'a dyn Reporter,
    ) -> Result<Session<'a>> {
        let authorization = match &self.auth {
            Auth::Anonymous => None,
            Auth::Basic(basic) => Some(basic.expose().to_string()),
            Auth::Bearer { realm, service } => {
                let token = self.with_retries("the token request", report, || {
                    match auth::fetch_token(
                        &self.agent,
                        realm,
                        service.as_deref(),
                        &scopes,
                        self.credentials.found.as_ref(),
                    ) {
                        Ok(token) => Ok(token),
                        Err(TokenError::Refused { .. }) => {
                            Err(self.unauthorized("the token request").into())
                        }
                        Err(TokenError::Other(e)) => Err(RequestError::transient(format!("{e:#}"))),
                    }
                })?;
                Some(format!("Bearer {}", token.expose()))
            }
        };
        Ok(Session {
            registry: self,
            report,
            repository: repository.to_string(),
            authorization,
        })
    }

    /// `request` with the registry's retries, each said to `report` as a warning.
    fn with_retries<T>(
        &self,
        what: &str,
        report: &dyn Reporter,
        request: impl FnMut() -> Result<T, RequestError>,
    ) -> Result<T> {
        self.retry.run(request, |attempt, message| {
            report.warn(&format!(
                "{message}; retrying {what} (try {} of {})",
                attempt + 1,
                self.retry.attempts
            ));
        })
    }

    /// A transport failure of `what`, within the registry's timeout.
    fn transport_error(&self, what: &str, error: ureq::Error) -> RequestError {
        transport_error(&self.host, what, self.timeout, error)
    }

    /// The error for a 401: which credentials were refused, or where none were found.
    fn unauthorized(&self, what: &str) -> anyhow::Error {
        let host = &self.host;
        let login = format!(
            "help: log in with `docker login {host}` or `podman login {host}`, or pass --registry-user USER and --registry-password-stdin"
        );
        match &self.credentials.found {
            Some(found) => anyhow!(
                "registry {host} refused the credentials from {} (401 Unauthorized to {what})\n{login}",
                found.source
            ),
            None => anyhow!(
                "registry {host} needs credentials (401 Unauthorized to {what}) and none were found for it\nlooked in: {}\n{login}",
                if self.credentials.tried.is_empty() {
                    "nothing".to_string()
                } else {
                    self.credentials.tried.join("; ")
                }
            ),
        }
    }

    /// Whether `host` may be spoken to in plain HTTP (token endpoints, upload locations).
    fn http_allowed(&self, host: &str) -> bool {
        http_allowed(host, &self.insecure)
    }
}

/// What a blob upload ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mount {
    /// The registry linked the blob from the other repository: nothing uploaded.
    Mounted,
    /// It did not; an upload session was opened at this location instead.
    Upload(String),
}

/// Pushing to one repository of a registry.
pub(crate) struct Session<'r> {
    registry: &'r Registry,
    report: &'r dyn Reporter,
    repository: String,
    authorization: Option<String>,
}

const START_UPLOAD: &str = "POST of a blob upload";

impl Session<'_> {
    pub(crate) fn repository(&self) -> &str {
        &self.repository
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.registry.base, self.repository)
    }

    /// A location from a `Location` header: absolute, or relative to the registry.
    fn absolute(&self, location: &str) -> Result<String> {
        if let Some(rest) = location
            .strip_prefix("https://")
            .or_else(|| location.strip_prefix("http://"))
        {
            let host = rest.split('/').next().unwrap_or(rest);
            if location.starts_with("http://") && !self.registry.http_allowed(host) {
                let host = one_line(host, 100);
                bail!(
                    "registry {} sent an upload location over plain HTTP ({host})\nhelp: allow it with --insecure-registry {host} if you trust the network",
                    self.registry.host
                );
            }
            return Ok(location.to_string());
        }
        Ok(format!("{}{location}", self.registry.base))
    }

    /// The request with the session's credentials, when `url` is the registry's own: an upload
    /// location on another host or port (object storage, say) gets none.
    fn authorize<B>(&self, url: &str, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(value) if same_origin(url, &self.registry.base) => {
                request.header("Authorization", value)
            }
            _ => request,
        }
    }

    /// Turns a response other than `expected` into an error: transient for 429 and 5xx, the
    /// credentials' fault for 401 and 403, else the registry's own message.
    fn check(
        &self,
        what: &str,
        expected: &[u16],
        mut response: Response<ureq::Body>,
    ) -> Result<Response<ureq::Body>, RequestError> {
        let host = &self.registry.host;
        let status = response.status().as_u16();
        if expected.contains(&status) {
            return Ok(response);
        }
        if let Some(transient) = transient_status(host, what, &mut response) {
            return Err(transient);
        }
        let line = status_line(&response);
        let text = error_text(&mut response);
        let repository = &self.repository;
        Err(match status {
            401 => self.registry.unauthorized(what),
            403 => {
                let whose = match &self.registry.credentials.found {
                    Some(found) => format!("the credentials from {}", found.source),
                    None => "anonymous pushes".to_string(),
                };
                anyhow!(
                    "registry {host} denied pushing to {repository} ({line} to {what}){}\nhelp: check that {whose} may push to {host}/{repository}, or that the repository exists",
                    saying(&text)
                )
            }
            _ => anyhow!(
                "registry {host} answered {line} to {what} in {repository}{}",
                saying(&text)
            ),
        }
        .into())
    }

    /// One try of a request: sent within `limit`, its status checked, its answer read whole.
    fn exchange(
        &self,
        what: &str,
        expected: &[u16],
        limit: Duration,
        request: impl FnOnce() -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, RequestError> {
        let host = &self.registry.host;
        let response = request().map_err(|e| transport_error(host, what, limit, e))?;
        let mut response = self.check(what, expected, response)?;
        finish(host, what, limit, &mut response)?;
        Ok(response)
    }

    /// [`Self::exchange`] with retries, within the registry's timeout.
    fn send(
        &self,
        what: &str,
        expected: &[u16],
        request: impl Fn() -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        self.registry.with_retries(what, self.report, || {
            self.exchange(what, expected, self.registry.timeout, &request)
        })
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: whether the repository has the blob.
    pub(crate) fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("HEAD of a blob", &[200, 404], || {
            self.authorize(&url, self.registry.agent.head(&url)).call()
        })?;
        Ok(response.status().as_u16() == 200)
    }

    /// `POST /v2/<name>/blobs/uploads/`, with `?mount=&from=` when a repository of this
    /// registry is known to hold the blob.
    pub(crate) fn start_upload(&self, digest: &Digest, from: Option<&str>) -> Result<Mount> {
        self.registry.with_retries(START_UPLOAD, self.report, || {
            self.try_start_upload(from.map(|from| (digest, from)))
        })
    }

    /// One try of [`Self::start_upload`]; `mount` is the digest and the repository to mount
    /// it from.
    fn try_start_upload(&self, mount: Option<(&Digest, &str)>) -> Result<Mount, RequestError> {
        let url = self.url("blobs/uploads/");
        let response = self.exchange(START_UPLOAD, &[201, 202], self.registry.timeout, || {
            let mut request = self.authorize(&url, self.registry.agent.post(&url));
            if let Some((digest, from)) = mount {
                request = request.query("mount", digest).query("from", from);
            }
            request.send_empty()
        })?;
        if response.status().as_u16() == 201 && mount.is_some() {
            return Ok(Mount::Mounted);
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .with_context(|| {
                format!(
                    "registry {} opened an upload without a Location",
                    self.registry.host
                )
            })?;
        Ok(Mount::Upload(self.absolute(location)?))
    }

    /// Uploads a blob of `size` bytes whole (`PUT <location>?digest=`), read from the start by
    /// `body` for each try, starting a new upload session for each retry, since a broken one
    /// cannot be resumed reliably; a try is at most that `POST` and the `PUT`, so a registry that
    /// stops answering fails within the retry policy's bound. `progress` hears the bytes sent so
    /// far.
    pub(crate) fn upload<'b>(
        &self,
        digest: &Digest,
        size: u64,
        body: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send + 'b>> + Sync),
        first: Mount,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let what = "PUT of a blob";
        let timeout = self.registry.timeout;
        let deadline = upload_deadline(timeout, size);
        let mut session = Some(first);
        self.registry.with_retries(what, self.report, || {
            let location = match session.take() {
                Some(Mount::Upload(location)) => location,
                _ => self.open_upload()?,
            };
            let url = with_digest(&location, digest);
            progress(0);
            let reader = body().map_err(|e| {
                RequestError::from(anyhow!("could not read blob {digest} to upload it: {e}"))
            })?;
            let mut body = Counted {
                reader,
                sent: 0,
                progress,
            };
            self.exchange(what, &[201, 204], deadline, || {
                self.authorize(&url, self.registry.agent.put(&url))
                    .config()
                    .timeout_per_call(Some(deadline))
                    .timeout_per_write(Some(timeout))
                    .build()
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", size.to_string())
                    .send(ureq::SendBody::from_reader(&mut body))
            })
            .map(drop)
        })
    }

    /// Opens an upload (no mount): where its bytes go.
    fn open_upload(&self) -> Result<String, RequestError> {
        match self.try_start_upload(None)? {
            Mount::Upload(location) => Ok(location),
            Mount::Mounted => unreachable!("no mount was asked for"),
        }
    }

    /// Opens an upload and sends a blob as its bytes come, in one `PATCH` whose body has no
    /// length (chunked, as `docker push` sends layers): for a blob still being compressed,
    /// whose digest is known only at its end. A body read as it is made cannot be sent again,
    /// so there are no retries; when this fails, the caller uploads the blob whole. `size` is
    /// at most the blob's size, for the time limit. Gives where to finish the upload.
    pub(crate) fn stream_upload(&self, body: &mut (dyn Read + Send), size: u64) -> Result<String> {
        let location = self
            .registry
            .with_retries(START_UPLOAD, self.report, || self.open_upload())?;
        let what = "PATCH of a blob";
        let timeout = self.registry.timeout;
        let deadline = upload_deadline(timeout, size);
        let response = self
            .exchange(what, &[202], deadline, || {
                self.authorize(&location, self.registry.agent.patch(&location))
                    .config()
                    .timeout_per_call(Some(deadline))
                    .timeout_per_write(Some(timeout))
                    .build()
                    .header("Content-Type", "application/octet-stream")
                    .send(ureq::SendBody::from_reader(body))
            })
            .map_err(|e| anyhow!("{e}"))?;
        let next = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .with_context(|| {
                format!(
                    "registry {} took a blob's bytes without saying where the upload goes on",
                    self.registry.host
                )
            })?;
        self.absolute(next)
    }

    /// Ends an upload [`Self::stream_upload`] sent: `PUT <location>?digest=` with no body; the
    /// registry checks the digest.
    pub(crate) fn finish_upload(&self, location: &str, digest: &Digest) -> Result<()> {
        let url = with_digest(location, digest);
        self.send("PUT of a blob", &[201, 204], || {
            self.authorize(&url, self.registry.agent.put(&url))
                .header("Content-Type", "application/octet-stream")
                .send_empty()
        })
        .map(drop)
    }

    /// [`Session::put_manifest`] of a manifest blob, under `tag` (or its digest).
    pub(crate) fn put(&self, tag: &str, manifest: &crate::image::Blob) -> Result<Option<String>> {
        let media_type = manifest.descriptor().media_type().to_string();
        self.put_manifest(tag, &media_type, manifest.data(), manifest.digest())
    }

    /// `PUT /v2/<name>/manifests/<tag>` with `bytes` as they are, and checks that the registry
    /// computed the same digest. Gives the `OCI-Subject` header, which a registry with the
    /// referrers API sets for a manifest with a `subject`.
    pub(crate) fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<Option<String>> {
        let url = self.url(&format!("manifests/{tag}"));
        let response = self.send("PUT of the manifest", &[201, 200], || {
            self.authorize(&url, self.registry.agent.put(&url))
                .header("Content-Type", media_type)
                .send(bytes)
        })?;
        if let Some(theirs) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && theirs != digest.to_string()
        {
            bail!(
                "registry {} stored the manifest of {}:{tag} as {}, not {digest}",
                self.registry.host,
                self.repository,
                quoted(theirs)
            );
        }
        let subject = response
            .headers()
            .get("oci-subject")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(subject)
    }

    /// `GET /v2/<name>/<path>` accepting `accept`: the status (one of `expected`), the
    /// `Content-Type`, and the body, at most `limit` bytes, with the registry's retries.
    ///
    /// The call has the registry's timeout, plus, for a large answer, the time `limit` bytes
    /// take at the slowest link we allow for, as uploads do.
    pub(super) fn fetch(
        &self,
        what: &str,
        path: &str,
        accept: &str,
        expected: &[u16],
        limit: u64,
    ) -> Result<(u16, Option<String>, Vec<u8>)> {
        let url = self.url(path);
        let host = &self.registry.host;
        let deadline = upload_deadline(self.registry.timeout, limit);
        self.registry.with_retries(what, self.report, || {
            let response = self
                .authorize(&url, self.registry.agent.get(&url))
                .config()
                .timeout_per_call(Some(deadline))
                .build()
                .header("Accept", accept)
                .call()
                .map_err(|e| transport_error(host, what, deadline, e))?;
            let mut response = self.check(what, expected, response)?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response
                .body_mut()
                .with_config()
                .limit(limit)
                .read_to_vec()
                .map_err(|error| {
                    RequestError::transient(format!(
                        "registry {host} broke off its answer to {what}: {}",
                        one_line(&error.to_string(), WORDS_SHOWN)
                    ))
                })?;
            Ok((status, content_type, body))
        })
    }
}

/// A request body that reports how much of it was sent.
struct Counted<'a, 'b> {
    reader: Box<dyn Read + Send + 'b>,
    sent: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Read for Counted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.sent += n as u64;
        (self.progress)(self.sent);
        Ok(n)
    }
}

/// An upload's `location` with the `digest=` that ends it.
fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use crate::report::{Capture, Event};

    /// The warnings `report` was given: the retries, as they happened.
    fn warnings(report: &Capture) -> Vec<String> {
        report
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Warning(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    use super::*;

    /// A server on 127.0.0.1 that answers each plain-HTTP request with the next of `answers`
    /// (status, extra headers) and closes connections that do not speak HTTP (a TLS probe).
    fn answering(answers: Vec<(u16, &'static str)>) -> (String, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let mut answered = 0;
            while answered < answers.len() {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || !line.starts_with("GET ") {
                    continue;
                }
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {}
                let (status, headers) = answers[answered];
                answered += 1;
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\n{headers}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                )
                .unwrap();
            }
            answered
        });
        (host, server)
    }

    fn instant_retries() -> ClientOptions {
        ClientOptions {
            retry: RetryPolicy {
                attempts: 3,
                base_delay: Duration::ZERO,
                max_delay: Duration::ZERO,
            },
            ..ClientOptions::default()
        }
    }

    /// A server on 127.0.0.1 that answers each connection with the next of `answers`, raw
    /// bytes written after the first read (a request head, or a TLS ClientHello), then holds
    /// the connection open until the test ends: a stalled or silent registry.
    fn scripted(answers: Vec<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for answer in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut request = [0; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(answer.as_bytes());
                held.push(stream);
            }
            // Later connections are taken and never answered.
            for stream in listener.incoming() {
                held.push(stream.unwrap());
            }
        });
        host
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    /// What nginx and most plain-HTTP servers answer a TLS ClientHello with.
    const BAD_REQUEST: &str =
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    fn quick(timeout_ms: u64) -> ClientOptions {
        ClientOptions {
            timeout: Duration::from_millis(timeout_ms),
            ..instant_retries()
        }
    }

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
    fn a_registry_that_never_answers_fails_naming_it_and_the_step() {
        let host = scripted(vec![]);
        let error = Registry::connect(&host, &quick(200), &Capture::default())
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "registry {host} did not answer GET /v2/ within 0.2s (see --registry-timeout) (gave up after 3 tries)\nhelp: check that the registry is up and reachable, then run the same command again: blobs already pushed are not sent again"
            )
        );
    }

    #[test]
    fn an_answer_that_stops_midway_is_retried() {
        // The TLS probe answered in plain HTTP; the ping's body cut short; then a whole one.
        let host = scripted(vec![
            BAD_REQUEST,
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial",
            OK,
        ]);
        let report = Capture::default();
        let registry = Registry::connect(&host, &quick(300), &report).unwrap();
        assert!(!registry.is_https());
        assert_eq!(
            warnings(&report),
            [format!(
                "registry {host} did not finish its answer to GET /v2/ within 0.3s (see --registry-timeout); retrying GET /v2/ (try 2 of 3)"
            )]
        );
    }

    #[test]
    fn a_plain_http_answer_to_tls_names_insecure_registry() {
        let host = scripted(vec![BAD_REQUEST]);
        let error = agent(&host, &[], Duration::from_secs(5))
            .unwrap()
            .get(format!("https://{host}/v2/"))
            .call()
            .unwrap_err();
        assert!(plain_http_answer(&error), "{error:?}");
        // The same answer from a host that is not loopback: it must be named to be spoken to in
        // plain HTTP.
        let RequestError::Final(error) =
            transport_error("registry.example:5000", "GET /v2/", DEFAULT_TIMEOUT, error)
        else {
            panic!("a plain HTTP answer is final");
        };
        assert_eq!(
            error.to_string(),
            "registry registry.example:5000 answered the TLS handshake of GET /v2/ in plain HTTP\nhelp: if it only speaks HTTP and you trust the network to it, pass --insecure-registry registry.example:5000"
        );
        // A loopback registry answering so is spoken to in plain HTTP, without a retry.
        let host = scripted(vec![BAD_REQUEST, OK]);
        let report = Capture::default();
        let registry = Registry::connect(&host, &quick(5000), &report).unwrap();
        assert!(!registry.is_https());
        assert!(warnings(&report).is_empty());
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
    fn registry_words_are_one_bounded_line() {
        assert_eq!(
            one_line(
                "bad\x1b[31m red\x1b[0m\r\nhelp: run this\x07\u{202e}txt",
                100
            ),
            "bad red help: run thistxt"
        );
        assert_eq!(one_line("\x1b]0;title\x07 x \t\n y ", 100), "x y");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(quoted("a\nb"), "\"a b\"");
        assert_eq!(saying(" \n "), "");
        assert_eq!(
            saying("MANIFEST_INVALID: x"),
            ", saying \"MANIFEST_INVALID: x\""
        );
    }

    #[test]
    fn a_busy_registry_is_pinged_again() {
        let (host, server) = answering(vec![(503, ""), (429, "Retry-After: 0\r\n"), (200, "")]);
        let report = Capture::default();
        let registry = Registry::connect(&host, &instant_retries(), &report).unwrap();
        assert_eq!(server.join().unwrap(), 3);
        assert!(
            !registry.is_https(),
            "a loopback registry without TLS is spoken to in HTTP"
        );
        let retries = warnings(&report);
        assert_eq!(retries.len(), 2, "{retries:?}");
        assert!(
            retries[0].contains("answered 503 Service Unavailable to GET /v2/"),
            "{retries:?}"
        );
        assert!(
            retries[1].contains("answered 429 Too Many Requests"),
            "{retries:?}"
        );
    }

    #[test]
    fn basic_auth_without_credentials_fails_at_the_ping() {
        let (host, server) = answering(vec![(401, "WWW-Authenticate: Basic realm=\"r\"\r\n")]);
        let error = Registry::connect(&host, &instant_retries(), &Capture::default())
            .err()
            .unwrap();
        server.join().unwrap();
        let error = error.to_string();
        assert!(
            error.starts_with(&format!(
                "registry {host} needs credentials (401 Unauthorized to GET /v2/) and none were found for it\nlooked in: --registry-user (not given); $REGISTRY_AUTH_FILE (not set)"
            )),
            "{error}"
        );
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
