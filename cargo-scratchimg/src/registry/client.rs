//! A small client of the OCI distribution API: [`Registry::connect`] pings a registry and
//! settles how to authenticate to it; its sessions ([`Session`]) push to and read from one
//! repository.
//!
//! Written on ureq rather than taken from oci-client: oci-client is async (tokio + reqwest, a
//! runtime and twice the compile time for a tool that pushes three blobs), runs its own
//! authentication with no way to say which credential source a 401 refused, and neither retries
//! nor reports upload progress. This client is synchronous, speaks rustls with the system's
//! roots, and does exactly the calls a push needs.

use std::cell::Cell;

use anyhow::{Result, anyhow, bail};
use ureq::Agent;

use super::auth::{self, Challenge};
use super::credentials::{Lookup, Secret};
use super::errors::{
    error_text, finish, quoted, saying, status_line, timed_out, transient_status, transport_error,
    untrusted_certificate,
};
use super::retry::{RequestError, RetryPolicy};
use super::session::Session;
use super::tokens::Tokens;
use super::transport::{ClientOptions, agent, helper_limit, http_allowed};
use crate::report::Reporter;

/// What Docker calls the registry of `docker.io/...` references.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The `Authorization` a registry wants, from its answer to `GET /v2/`.
#[derive(Debug)]
pub(super) enum Auth {
    Anonymous,
    /// The header value, which holds the password.
    Basic(Secret),
    Bearer(Tokens),
}

/// One registry, pinged and with its authentication settled.
pub(crate) struct Registry {
    /// The name in references, e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub(super) host: String,
    /// `https://host` or, for loopback and `--insecure-registry` hosts, maybe `http://host`.
    pub(super) base: String,
    pub(super) agent: Agent,
    pub(super) auth: Auth,
    pub(super) credentials: Lookup,
    retry: RetryPolicy,
    pub(super) timeout: std::time::Duration,
    pub(super) insecure: Vec<String>,
}

/// The step that pings a registry.
const PING: &str = "GET /v2/";

/// What `GET /v2/` answered, before any credentials were sent: where the registry is and how it
/// wants to be authenticated (go-containerregistry's `ping`).
struct Ping {
    /// `https://host`, or `http://host` where the ping settled on plain HTTP.
    base: String,
    /// 200 (nothing to authenticate) or 401 (`challenge` says how).
    status: u16,
    /// The `WWW-Authenticate` header of a 401, as the registry sent it.
    challenge: String,
}

/// Pings `GET /v2/` on `api_host` (the API host of `host`), choosing HTTPS, or plain HTTP
/// where allowed and the registry does not speak TLS. An answer other than 200 or 401 is not a
/// registry's. Each retry is a warning to `report` as it happens.
fn ping(
    agent: &Agent,
    host: &str,
    api_host: &str,
    options: &ClientOptions,
    report: &dyn Reporter,
) -> Result<Ping> {
    let timeout = options.timeout;
    // A loopback or --insecure-registry host that fails HTTPS other than on its certificate
    // is spoken to in plain HTTP from then on: at once when it answered the handshake, at the
    // next try when it did not answer at all (that try counts, so the retries stay bounded).
    let may_fall_back = http_allowed(host, &options.insecure);
    let scheme = Cell::new("https");
    let mut response = options.retry.run_reported(PING, report, || {
        let ping = |scheme: &str| agent.get(format!("{scheme}://{api_host}/v2/")).call();
        let answer = match ping(scheme.get()) {
            Err(error)
                if scheme.get() == "https" && may_fall_back && !untrusted_certificate(&error) =>
            {
                scheme.set("http");
                if timed_out(&error) {
                    return Err(transport_error(host, PING, timeout, error));
                }
                ping("http")
            }
            answer => answer,
        };
        let mut response = answer.map_err(|e| transport_error(host, PING, timeout, e))?;
        if let Some(transient) = transient_status(host, PING, &mut response) {
            return Err(transient);
        }
        if response.status().as_u16() == 200 {
            finish(host, PING, timeout, &mut response)?;
        }
        Ok(response)
    })?;
    let status = response.status().as_u16();
    if status != 200 && status != 401 {
        bail!(
            "registry {host} answered {} to {PING}: it does not look like an OCI registry{}\nhelp: check the registry host in --push or SCRATCHIMG_REPO",
            status_line(&response),
            saying(&error_text(&mut response))
        );
    }
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok(Ping {
        base: format!("{}://{api_host}", scheme.get()),
        status,
        challenge,
    })
}

/// How to authenticate to `host`, which answered `ping`: Basic with the credentials found,
/// checked now, before anything is built; or Bearer tokens from the realm its challenge names.
fn authentication(
    ping: &Ping,
    agent: &Agent,
    host: &str,
    credentials: &Lookup,
    options: &ClientOptions,
    report: &dyn Reporter,
) -> Result<Auth> {
    if ping.status == 200 {
        return Ok(Auth::Anonymous);
    }
    Ok(match Challenge::parse(&ping.challenge) {
        Some(Challenge::Basic { .. }) => {
            let Some(found) = &credentials.found else {
                return Err(unauthorized(host, credentials, PING));
            };
            let basic = found.credentials.basic();
            let mut check = options.retry.run_reported(PING, report, || {
                let mut response = agent
                    .get(format!("{}/v2/", ping.base))
                    .header("Authorization", &basic)
                    .call()
                    .map_err(|e| transport_error(host, PING, options.timeout, e))?;
                if response.status().as_u16() == 200 {
                    finish(host, PING, options.timeout, &mut response)?;
                }
                Ok(response)
            })?;
            match check.status().as_u16() {
                200 => Auth::Basic(Secret::new(basic)),
                401 => return Err(unauthorized(host, credentials, PING)),
                _ => bail!(
                    "registry {host} answered {} to {PING}{}",
                    status_line(&check),
                    saying(&error_text(&mut check))
                ),
            }
        }
        Some(Challenge::Bearer { realm, service, .. }) => {
            auth::check_realm(&realm, |h| http_allowed(h, &options.insecure))?;
            Auth::Bearer(Tokens::new(realm, service))
        }
        None => bail!(
            "registry {host} asks for an authentication scheme cargo-scratchimg does not speak: {}",
            quoted(&ping.challenge)
        ),
    })
}

/// The error for a 401 from `host` to `what`: which credentials were refused, or where none
/// were found.
fn unauthorized(host: &str, credentials: &Lookup, what: &str) -> anyhow::Error {
    let login = login_help(host);
    match &credentials.found {
        Some(found) => anyhow!(
            "registry {host} refused the credentials from {} (401 Unauthorized to {what})\n{login}",
            found.source
        ),
        None => anyhow!(
            "registry {host} needs credentials (401 Unauthorized to {what}) and none were found for it\nlooked in: {}\n{login}",
            if credentials.tried.is_empty() {
                "nothing".to_string()
            } else {
                credentials.tried.join("; ")
            }
        ),
    }
}

/// How to give credentials for `host`.
pub(super) fn login_help(host: &str) -> String {
    format!(
        "help: log in with `docker login {host}` or `podman login {host}`, or pass --registry-user USER and --registry-password-stdin"
    )
}

impl Registry {
    /// Pings `host` (a reference's registry, e.g. `ghcr.io`), then settles how to authenticate
    /// to it and checks Basic credentials. Each retry is a warning to `report` as it happens.
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
        let ping = ping(&agent, host, api_host, options, report)?;
        let credentials = match ping.status {
            401 => options
                .credentials
                .find(host, helper_limit(options.timeout))?,
            _ => Lookup::default(),
        };
        let auth = authentication(&ping, &agent, host, &credentials, options, report)?;
        Ok(Registry {
            host: host.to_string(),
            base: ping.base,
            agent,
            auth,
            credentials,
            retry: options.retry,
            timeout: options.timeout,
            insecure: options.insecure.clone(),
        })
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
            Auth::Bearer(_) => "bearer token",
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
        let scopes = match &self.auth {
            Auth::Bearer(tokens) => tokens.scopes_for(&scopes, |scopes| {
                self.fetch_token(tokens, scopes, None, report)
            })?,
            Auth::Anonymous | Auth::Basic(_) => Vec::new(),
        };
        Ok(Session::new(self, report, repository, scopes))
    }

    /// The `Authorization` of a session whose token has `scopes`, where the registry uses
    /// tokens.
    pub(super) fn authorization(&self, scopes: &[String]) -> Option<String> {
        match &self.auth {
            Auth::Anonymous => None,
            Auth::Basic(basic) => Some(basic.expose().to_string()),
            Auth::Bearer(tokens) => tokens
                .token(scopes)
                .map(|token| format!("Bearer {}", token.expose())),
        }
    }

    /// `request` with the registry's retries, each said to `report` as a warning.
    pub(super) fn with_retries<T>(
        &self,
        what: &str,
        report: &dyn Reporter,
        request: impl FnMut() -> Result<T, RequestError>,
    ) -> Result<T> {
        self.retry.run_reported(what, report, request)
    }

    /// The error for a 401 to `what`: which credentials were refused, or where none were found.
    pub(super) fn unauthorized(&self, what: &str) -> anyhow::Error {
        unauthorized(&self.host, &self.credentials, what)
    }

    /// Whether `host` may be spoken to in plain HTTP (token endpoints, upload locations).
    pub(super) fn http_allowed(&self, host: &str) -> bool {
        http_allowed(host, &self.insecure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::test_servers::{
        BAD_REQUEST, OK, answering, instant_retries, quick, scripted, warnings,
    };
    use crate::report::Capture;

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
    fn a_loopback_registry_answering_tls_in_plain_http_is_spoken_to_in_http() {
        // At once, without a retry.
        let host = scripted(vec![BAD_REQUEST, OK]);
        let report = Capture::default();
        let registry = Registry::connect(&host, &quick(5000), &report).unwrap();
        assert!(!registry.is_https());
        assert!(warnings(&report).is_empty());
    }

    #[test]
    fn a_busy_registry_is_pinged_again() {
        let (host, server) = answering(vec![
            (503, "", "{}"),
            (429, "Retry-After: 0\r\n", "{}"),
            (200, "", "{}"),
        ]);
        let report = Capture::default();
        let registry = Registry::connect(&host, &instant_retries(), &report).unwrap();
        assert_eq!(server.join().unwrap().len(), 3);
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
        let (host, server) =
            answering(vec![(401, "WWW-Authenticate: Basic realm=\"r\"\r\n", "{}")]);
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
}
