//! A small client of the OCI distribution API: ping and authenticate, check blobs with HEAD,
//! mount or upload the missing ones, and put a manifest as the exact bytes given.
//!
//! Written on ureq rather than taken from oci-client: oci-client is async (tokio + reqwest, a
//! runtime and twice the compile time for a tool that pushes three blobs), runs its own
//! authentication with no way to say which credential source a 401 refused, and neither retries
//! nor reports upload progress. This client is synchronous, speaks rustls with the system's
//! roots, and does exactly the calls a push needs.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::image::Digest;
use ureq::Agent;
use ureq::http::Response;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use super::auth::{self, Challenge, TokenError};
use super::credentials::{CredentialSources, Lookup, Secret};
use super::retry::{RequestError, RetryPolicy};

/// How to reach registries: extra trust, plain-HTTP exceptions, retries, credentials.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// `--registry-ca`: PEM files of CAs trusted besides the system's roots.
    pub ca_files: Vec<PathBuf>,
    /// `--insecure-registry`: hosts (`host` or `host:port`) that may be spoken to over HTTP.
    pub insecure: Vec<String>,
    pub retry: RetryPolicy,
    pub credentials: CredentialSources,
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
pub struct Registry {
    /// The name in references, e.g. `ghcr.io` or `127.0.0.1:5000`.
    host: String,
    /// `https://host` or, for loopback and `--insecure-registry` hosts, maybe `http://host`.
    base: String,
    agent: Agent,
    auth: Auth,
    credentials: Lookup,
    retry: RetryPolicy,
    insecure: Vec<String>,
    /// Retries that happened, for the caller to report.
    retries: Arc<Mutex<Vec<String>>>,
}

/// Whether `host` (with or without a port) may be spoken to over plain HTTP.
pub fn http_allowed(host: &str, insecure: &[String]) -> bool {
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
/// which a proxy elsewhere could not reach.
fn agent(host: &str, ca_files: &[PathBuf]) -> Result<Agent> {
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
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .user_agent(concat!("cargo-scratchimg/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}

/// Whether a failure is the server's certificate not being trusted.
fn untrusted_certificate(error: &ureq::Error) -> bool {
    let rustls_error = match error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(e) => e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    matches!(
        rustls_error,
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// Sorts a transport failure into transient (worth a retry) or final, naming the registry.
fn transport_error(host: &str, error: ureq::Error) -> RequestError {
    use std::io::ErrorKind::*;
    if untrusted_certificate(&error) {
        return anyhow!(
            "the TLS certificate of registry {host} is not trusted: {error}\nhelp: if the registry uses a private CA, pass its certificate with --registry-ca FILE"
        )
        .into();
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
                    | TimedOut
                    | Interrupted
            ) =>
        {
            RequestError::transient(format!("could not reach registry {host}: {error}"))
        }
        ureq::Error::Timeout(_) | ureq::Error::Protocol(_) | ureq::Error::ConnectionFailed => {
            RequestError::transient(format!("could not reach registry {host}: {error}"))
        }
        ureq::Error::HostNotFound => anyhow!(
            "could not resolve registry {host}\nhelp: check the registry host in --push or SCRATCHIMG_REPO"
        )
        .into(),
        _ => anyhow!(
            "could not reach registry {host}: {error}\nhelp: check the registry host in --push or SCRATCHIMG_REPO, and that this machine can reach it"
        )
        .into(),
    }
}

/// The message of a registry's error body (`{"errors":[{"code":..,"message":..}]}`), if any.
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
    errors.unwrap_or_else(|| {
        String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(200)
            .collect()
    })
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
        message: format!("registry {host} answered {line} to {what}{}", suffix(&text)),
        retry_after,
    })
}

fn suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

impl Registry {
    /// Pings `GET /v2/` on `host` (a reference's registry, e.g. `ghcr.io`), choosing HTTPS, or
    /// plain HTTP where allowed and the registry does not speak TLS, and settles how to
    /// authenticate.
    pub fn connect(host: &str, options: &ClientOptions) -> Result<Registry> {
        let agent = agent(host, &options.ca_files)?;
        let api_host = if host == "docker.io" {
            DOCKER_HUB_API
        } else {
            host
        };
        let retries = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry {
            host: host.to_string(),
            base: format!("https://{api_host}"),
            agent,
            auth: Auth::Anonymous,
            credentials: Lookup::default(),
            retry: options.retry,
            insecure: options.insecure.clone(),
            retries,
        };
        let call =
            |registry: &Registry| registry.agent.get(format!("{}/v2/", registry.base)).call();
        // One try as it comes; 429 and 5xx, like connection failures, are worth more.
        let ping = |registry: &Registry| {
            let mut response = call(registry).map_err(|e| transport_error(host, e))?;
            match transient_status(host, "GET /v2/", &mut response) {
                Some(transient) => Err(transient),
                None => Ok(response),
            }
        };
        let mut response = match call(&registry) {
            // A loopback or --insecure-registry host that does not speak TLS: plain HTTP.
            Err(error)
                if http_allowed(host, &options.insecure) && !untrusted_certificate(&error) =>
            {
                registry.base = format!("http://{api_host}");
                registry.with_retries("GET /v2/", || ping(&registry))?
            }
            Err(error) => match transport_error(host, error) {
                RequestError::Final(e) => return Err(e),
                RequestError::Transient { .. } => {
                    registry.with_retries("GET /v2/", || ping(&registry))?
                }
            },
            Ok(mut response) => match transient_status(host, "GET /v2/", &mut response) {
                Some(_) => registry.with_retries("GET /v2/", || ping(&registry))?,
                None => response,
            },
        };
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
                registry.credentials = options.credentials.find(host)?;
                registry.auth = match Challenge::parse(&header) {
                    Some(Challenge::Basic { .. }) => {
                        let Some(found) = &registry.credentials.found else {
                            return Err(registry.unauthorized("GET /v2/"));
                        };
                        let basic = found.credentials.basic();
                        // Check the credentials now, before anything is built.
                        let mut check = registry.with_retries("GET /v2/", || {
                            registry
                                .agent
                                .get(format!("{}/v2/", registry.base))
                                .header("Authorization", &basic)
                                .call()
                                .map_err(|e| transport_error(host, e))
                        })?;
                        match check.status().as_u16() {
                            200 => Auth::Basic(Secret::new(basic)),
                            401 => return Err(registry.unauthorized("GET /v2/")),
                            _ => bail!(
                                "registry {host} answered {} to GET /v2/{}",
                                status_line(&check),
                                suffix(&error_text(&mut check))
                            ),
                        }
                    }
                    Some(Challenge::Bearer { realm, service, .. }) => {
                        auth::check_realm(&realm, |h| http_allowed(h, &options.insecure))?;
                        Auth::Bearer { realm, service }
                    }
                    None => bail!(
                        "registry {host} asks for an authentication scheme cargo-scratchimg does not speak: `{header}`"
                    ),
                };
            }
            _ => bail!(
                "registry {host} answered {} to GET /v2/: it does not look like an OCI registry{}\nhelp: check the registry host in --push or SCRATCHIMG_REPO",
                status_line(&response),
                suffix(&error_text(&mut response))
            ),
        }
        Ok(registry)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// How the registry is spoken to, for `-v`: `127.0.0.1:5000 over http, anonymous`.
    pub fn describe(&self) -> String {
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
    pub fn is_https(&self) -> bool {
        self.base.starts_with("https://")
    }

    /// The retries since the last call, for the caller to report.
    pub fn take_retries(&self) -> Vec<String> {
        std::mem::take(&mut self.retries.lock().expect("not poisoned"))
    }

    /// A session for pushing to `repository`, with a token for it (and for pulling from
    /// `mount_from`) when the registry uses bearer tokens.
    pub fn session(&self, repository: &str, mount_from: &[String]) -> Result<Session<'_>> {
        let authorization = match &self.auth {
            Auth::Anonymous => None,
            Auth::Basic(basic) => Some(basic.expose().to_string()),
            Auth::Bearer { realm, service } => {
                let scopes = auth::push_scopes(repository, mount_from);
                let token = self.with_retries("the token request", || {
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
            repository: repository.to_string(),
            authorization,
        })
    }

    fn with_retries<T>(
        &self,
        what: &str,
        request: impl FnMut() -> Result<T, RequestError>,
    ) -> Result<T> {
        self.retry.run(request, |attempt, message| {
            self.retries.lock().expect("not poisoned").push(format!(
                "{message}; retrying {what} (try {} of {})",
                attempt + 1,
                self.retry.attempts
            ));
        })
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
pub enum Mount {
    /// The registry linked the blob from the other repository: nothing uploaded.
    Mounted,
    /// It did not; an upload session was opened at this location instead.
    Upload(String),
}

/// Pushing to one repository of a registry.
pub struct Session<'r> {
    registry: &'r Registry,
    repository: String,
    authorization: Option<String>,
}

impl Session<'_> {
    pub fn repository(&self) -> &str {
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
                bail!(
                    "registry {} sent an upload location over plain HTTP ({host})\nhelp: allow it with --insecure-registry {host} if you trust the network",
                    self.registry.host
                );
            }
            return Ok(location.to_string());
        }
        Ok(format!("{}{location}", self.registry.base))
    }

    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.authorization {
            Some(value) => request.header("Authorization", value),
            None => request,
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
                    suffix(&text)
                )
            }
            _ => anyhow!(
                "registry {host} answered {line} to {what} in {repository}{}",
                suffix(&text)
            ),
        }
        .into())
    }

    fn send(
        &self,
        what: &str,
        expected: &[u16],
        request: impl Fn() -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let host = &self.registry.host;
        self.registry.with_retries(what, || {
            let response = request().map_err(|e| transport_error(host, e))?;
            self.check(what, expected, response)
        })
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: whether the repository has the blob.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("HEAD of a blob", &[200, 404], || {
            self.authorize(self.registry.agent.head(&url)).call()
        })?;
        Ok(response.status().as_u16() == 200)
    }

    /// `POST /v2/<name>/blobs/uploads/`, with `?mount=&from=` when a repository of this
    /// registry is known to hold the blob.
    pub fn start_upload(&self, digest: &Digest, from: Option<&str>) -> Result<Mount> {
        let url = self.url("blobs/uploads/");
        let response = self.send("POST of a blob upload", &[201, 202], || {
            let mut request = self.authorize(self.registry.agent.post(&url));
            if let Some(from) = from {
                request = request.query("mount", digest).query("from", from);
            }
            request.send_empty()
        })?;
        if response.status().as_u16() == 201 && from.is_some() {
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

    /// Uploads `data` whole (`PUT <location>?digest=`), starting a new upload session for
    /// each retry, since a broken one cannot be resumed reliably. `progress` hears the bytes
    /// sent so far.
    pub fn upload(
        &self,
        digest: &Digest,
        data: &[u8],
        first: Mount,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let host = &self.registry.host;
        let what = "PUT of a blob";
        let mut session = Some(first);
        self.registry.with_retries(what, || {
            let location = match session.take() {
                Some(Mount::Upload(location)) => location,
                _ => match self.start_upload(digest, None)? {
                    Mount::Upload(location) => location,
                    Mount::Mounted => unreachable!("no mount was asked for"),
                },
            };
            let separator = if location.contains('?') { '&' } else { '?' };
            let url = format!("{location}{separator}digest={digest}");
            progress(0);
            let mut body = Counted {
                data,
                sent: 0,
                progress,
            };
            let response = self
                .authorize(self.registry.agent.put(&url))
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", data.len().to_string())
                .send(ureq::SendBody::from_reader(&mut body))
                .map_err(|e| transport_error(host, e))?;
            self.check(what, &[201, 204], response).map(drop)
        })
    }

    /// `PUT /v2/<name>/manifests/<tag>` with `bytes` as they are, and checks that the registry
    /// computed the same digest.
    pub fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<()> {
        let url = self.url(&format!("manifests/{tag}"));
        let response = self.send("PUT of the manifest", &[201, 200], || {
            self.authorize(self.registry.agent.put(&url))
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
                "registry {} stored the manifest of {}:{tag} as {theirs}, not {digest}",
                self.registry.host,
                self.repository
            );
        }
        Ok(())
    }
}

/// A request body that reports how much of it was sent.
struct Counted<'a> {
    data: &'a [u8],
    sent: usize,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (&self.data[self.sent..]).read(buf)?;
        self.sent += n;
        (self.progress)(self.sent as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

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

    #[test]
    fn a_busy_registry_is_pinged_again() {
        let (host, server) = answering(vec![(503, ""), (429, "Retry-After: 0\r\n"), (200, "")]);
        let registry = Registry::connect(&host, &instant_retries()).unwrap();
        assert_eq!(server.join().unwrap(), 3);
        assert!(
            !registry.is_https(),
            "a loopback registry without TLS is spoken to in HTTP"
        );
        let retries = registry.take_retries();
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
        let error = Registry::connect(&host, &instant_retries()).err().unwrap();
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
