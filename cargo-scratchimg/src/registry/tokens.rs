//! The bearer tokens of one registry, as go-containerregistry's bearer transport keeps them: one
//! per set of scopes asked for, shared by every session and every parallel upload that needs
//! no more, and renewed once when the registry refuses it (it expired, or was used up). The
//! first is asked for before the build ([`Registry::authorize`]).

use std::sync::Mutex;

use anyhow::{Result, anyhow};
use ureq::http::Response;

use super::auth::{self, Challenge, TokenError, covers};
use super::client::{Auth, Registry, login_help};
use super::credentials::Secret;
use super::retry::RequestError;
use super::transport::named_insecure;
use crate::image::ImageRef;
use crate::report::Reporter;
use crate::text::one_line;

/// Where a registry's tokens come from, and the tokens it gave.
#[derive(Debug)]
pub(super) struct Tokens {
    /// The token endpoint the registry's challenge names.
    pub(super) realm: String,
    pub(super) service: Option<String>,
    /// Each token with the scopes it was asked for. A renewal replaces a token in place.
    kept: Mutex<Vec<(Vec<String>, Secret)>>,
}

impl Tokens {
    pub(super) fn new(realm: String, service: Option<String>) -> Tokens {
        Tokens {
            realm,
            service,
            kept: Mutex::new(Vec::new()),
        }
    }

    /// The scopes of a kept token that serves `wanted`, after `fetch` gets one for `wanted`
    /// when none does. The lock is held while it fetches, so sessions opened at once ask once.
    pub(super) fn scopes_for(
        &self,
        wanted: &[String],
        fetch: impl FnOnce(&[String]) -> Result<Secret>,
    ) -> Result<Vec<String>> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((scopes, _)) = kept.iter().find(|(scopes, _)| covers(scopes, wanted)) {
            return Ok(scopes.clone());
        }
        let token = fetch(wanted)?;
        kept.push((wanted.to_vec(), token));
        Ok(wanted.to_vec())
    }

    /// The token kept for exactly `scopes` (as [`Self::scopes_for`] gave them).
    pub(super) fn token(&self, scopes: &[String]) -> Option<Secret> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .find(|(kept, _)| kept == scopes)
            .map(|(_, token)| token.clone())
    }

    /// Replaces the token for `scopes`, which the registry `refused`, with one from `fetch`;
    /// when another request renewed it already, keeps that one. Whether `fetch` ran.
    pub(super) fn renew(
        &self,
        scopes: &[String],
        refused: &Secret,
        fetch: impl FnOnce(&[String]) -> Result<Secret>,
    ) -> Result<bool> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        match kept.iter_mut().find(|(kept, _)| kept == scopes) {
            Some((_, token)) if token != refused => Ok(false),
            Some((_, token)) => {
                *token = fetch(scopes)?;
                Ok(true)
            }
            None => {
                kept.push((scopes.to_vec(), fetch(scopes)?));
                Ok(true)
            }
        }
    }
}

impl Registry {
    /// Asks a registry that uses tokens for one with the scopes of pushing to the repositories
    /// of `refs` that are its own, so that refused credentials fail before anything is built,
    /// as Basic ones do when connecting. The sessions that push there use it.
    pub(crate) fn authorize<'r>(
        &self,
        refs: impl IntoIterator<Item = &'r ImageRef>,
        report: &dyn Reporter,
    ) -> Result<()> {
        let Auth::Bearer(tokens) = &self.auth else {
            return Ok(());
        };
        let mut repositories: Vec<&str> = refs
            .into_iter()
            .filter(|r| r.registry() == self.host)
            .map(ImageRef::repository)
            .collect();
        repositories.sort_unstable();
        repositories.dedup();
        if repositories.is_empty() {
            return Ok(());
        }
        let scopes: Vec<String> = repositories
            .iter()
            .flat_map(|repository| auth::push_scopes(repository, &[]))
            .collect();
        tokens.scopes_for(&scopes, |scopes| {
            self.fetch_token(tokens, scopes, None, report)
        })?;
        Ok(())
    }

    /// Whether `response` refuses a token: a 401 with a Bearer challenge, from a registry that
    /// uses tokens.
    pub(super) fn refused_token(&self, response: &Response<ureq::Body>) -> bool {
        matches!(self.auth, Auth::Bearer(_))
            && response.status().as_u16() == 401
            && response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(Challenge::parse)
                .is_some_and(|challenge| matches!(challenge, Challenge::Bearer { .. }))
    }

    /// Renews the token with `scopes` that the registry refused (`refused`, as the request
    /// sent it) at `what`, unless another request renewed it already.
    pub(super) fn renew(
        &self,
        scopes: &[String],
        refused: &str,
        what: &str,
        report: &dyn Reporter,
    ) -> Result<()> {
        let Auth::Bearer(tokens) = &self.auth else {
            return Ok(());
        };
        let refused = Secret::new(refused.trim_start_matches("Bearer ").to_string());
        let renewed = tokens.renew(scopes, &refused, |scopes| {
            self.fetch_token(tokens, scopes, Some(what), report)
        })?;
        if renewed {
            report.verbose("Renewed", &|| {
                format!("the token of {} after a 401 to {what}", self.host)
            });
        }
        Ok(())
    }

    /// A token for `scopes` from the endpoint of `tokens`, with the registry's retries;
    /// `renewing` is the step whose refusal of the last token asked for it. A realm that
    /// promised TLS and answers in plain HTTP is asked in plain HTTP where
    /// `--insecure-registry` names its host.
    pub(super) fn fetch_token(
        &self,
        tokens: &Tokens,
        scopes: &[String],
        renewing: Option<&str>,
        report: &dyn Reporter,
    ) -> Result<Secret> {
        let what = match renewing {
            Some(_) => "the token renewal",
            None => "the token request",
        };
        let fetch = |realm: &str| {
            auth::fetch_token(
                &self.agent,
                realm,
                tokens.service.as_deref(),
                scopes,
                self.credentials.found.as_ref(),
            )
        };
        self.with_retries(what, report, || {
            let answer = match fetch(&tokens.realm) {
                Err(TokenError::PlainHttp { realm }) => {
                    let rest = tokens
                        .realm
                        .split_once("://")
                        .map_or(tokens.realm.as_str(), |(_, rest)| rest);
                    let host = rest.split('/').next().unwrap_or(rest);
                    if !named_insecure(host, &self.insecure) {
                        return Err(anyhow!(
                            "the token endpoint {realm} of registry {} answered the TLS handshake in plain HTTP\nhelp: if it only speaks HTTP and you trust the network to it, pass --insecure-registry {}",
                            self.host,
                            one_line(host, 100)
                        )
                        .into());
                    }
                    fetch(&format!("http://{rest}"))
                }
                answer => answer,
            };
            match answer {
                Ok(token) => Ok(token),
                Err(TokenError::Refused { realm, status }) => Err(match renewing {
                    None => self.unauthorized(what),
                    Some(step) => self.renewal_refused(step, &realm, status),
                }
                .into()),
                Err(TokenError::Other(e)) => Err(RequestError::transient(format!("{e:#}"))),
                Err(plain @ TokenError::PlainHttp { .. }) => Err(anyhow!(plain).into()),
            }
        })
    }

    /// The error for a renewal the token endpoint `realm` refused with `status`, after the
    /// registry refused the last token at `step`.
    fn renewal_refused(&self, step: &str, realm: &str, status: u16) -> anyhow::Error {
        let host = &self.host;
        let whose = match &self.credentials.found {
            Some(found) => format!("the credentials from {}", found.source),
            None => "anonymous access".to_string(),
        };
        anyhow!(
            "registry {host} refused its token at {step}, and its token endpoint {realm} refused a new one ({status}) for {whose}\n{}",
            login_help(host)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::registry::test_servers::{
        BAD_REQUEST, Seen, answering, instant_retries, scripted, token_endpoint, warnings,
    };
    use crate::registry::transport::ClientOptions;
    use crate::report::Capture;

    /// A `WWW-Authenticate` header line asking for tokens from `realm`.
    fn bearer(realm: &str) -> &'static str {
        format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"test\"\r\n").leak()
    }

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_token_serves_every_session_it_covers() {
        let tokens = Tokens::new("https://auth.example/token".into(), None);
        let fetched = AtomicUsize::new(0);
        let fetch = |_: &[String]| {
            let n = fetched.fetch_add(1, Ordering::SeqCst);
            Ok(Secret::new(format!("token-{n}")))
        };
        // Asked for before the build, with the push scopes of two repositories.
        let both = scopes(&[
            "repository:acme/api:pull,push",
            "repository:acme/web:pull,push",
        ]);
        assert_eq!(tokens.scopes_for(&both, fetch).unwrap(), both);
        // A push to one of them, and a read of the other: the same token.
        let push = scopes(&["repository:acme/web:pull,push"]);
        assert_eq!(tokens.scopes_for(&push, fetch).unwrap(), both);
        let read = scopes(&["repository:acme/api:pull"]);
        assert_eq!(tokens.scopes_for(&read, fetch).unwrap(), both);
        assert_eq!(tokens.token(&both).unwrap().expose(), "token-0");
        // A push that mounts from a third repository needs a token of its own.
        let mounting = scopes(&["repository:acme/web:pull,push", "repository:acme/base:pull"]);
        assert_eq!(tokens.scopes_for(&mounting, fetch).unwrap(), mounting);
        assert_eq!(tokens.token(&mounting).unwrap().expose(), "token-1");
        assert_eq!(fetched.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn parallel_refusals_of_one_token_renew_it_once() {
        let tokens = Tokens::new("https://auth.example/token".into(), None);
        let push = scopes(&["repository:acme/web:pull,push"]);
        let fetched = AtomicUsize::new(0);
        let fetch = |_: &[String]| {
            let n = fetched.fetch_add(1, Ordering::SeqCst);
            Ok(Secret::new(format!("token-{n}")))
        };
        tokens.scopes_for(&push, fetch).unwrap();
        let refused = tokens.token(&push).unwrap();
        // Three uploads refused with the same token at once: one of them renews it.
        let renewed: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| tokens.renew(&push, &refused, fetch).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(renewed.iter().filter(|r| **r).count(), 1, "{renewed:?}");
        assert_eq!(fetched.load(Ordering::SeqCst), 2);
        assert_eq!(tokens.token(&push).unwrap().expose(), "token-1");
        // The new token refused in turn: renewed again.
        let refused = tokens.token(&push).unwrap();
        assert!(tokens.renew(&push, &refused, fetch).unwrap());
        assert_eq!(tokens.token(&push).unwrap().expose(), "token-2");
    }

    #[test]
    fn a_failed_renewal_keeps_the_refused_token() {
        let tokens = Tokens::new("https://auth.example/token".into(), None);
        let push = scopes(&["repository:acme/web:pull,push"]);
        tokens
            .scopes_for(&push, |_| Ok(Secret::new("first".into())))
            .unwrap();
        let refused = tokens.token(&push).unwrap();
        let error = tokens
            .renew(&push, &refused, |_| anyhow::bail!("refused"))
            .unwrap_err();
        assert_eq!(error.to_string(), "refused");
        assert_eq!(tokens.token(&push).unwrap().expose(), "first");
    }

    /// A registry on 127.0.0.1 whose token endpoint answers `tokens` (status, JSON body) in
    /// turn, and that answers its ping, then a read's `GET`s, with `statuses` (a 401 with a
    /// Bearer challenge): its host, its realm, and what each server got, once a read session
    /// got the manifest `v1`, or failed.
    fn read_through_tokens(
        tokens: Vec<(u16, &'static str)>,
        statuses: &[u16],
    ) -> (String, String, Result<()>, Seen, Seen) {
        let (realm, token_server) = token_endpoint(tokens);
        let challenge = bearer(&realm);
        let answers = std::iter::once(401)
            .chain(statuses.iter().copied())
            .map(|status| (status, if status == 401 { challenge } else { "" }, "{}"))
            .collect();
        let (host, registry) = answering(answers);
        let report = Capture::default();
        let connected = Registry::connect(&host, &instant_retries(), &report).unwrap();
        let read = connected
            .read_session("acme/hello", &report)
            .and_then(|session| session.get_manifest("v1"))
            .map(|manifest| assert!(manifest.is_none(), "404: no manifest"));
        let (registry_seen, token_seen) = (registry.join().unwrap(), token_server.join().unwrap());
        (host, realm, read, registry_seen, token_seen)
    }

    #[test]
    fn a_refused_token_is_renewed_once_and_the_request_sent_again() {
        let (_, _, read, seen, tokens) = read_through_tokens(
            vec![(200, r#"{"token":"tok-1"}"#), (200, r#"{"token":"tok-2"}"#)],
            // The first token, refused (it expired); the second, taken.
            &[401, 404],
        );
        read.unwrap();
        assert_eq!(seen[1].1.as_deref(), Some("Bearer tok-1"));
        assert_eq!(seen[2].1.as_deref(), Some("Bearer tok-2"));
        assert_eq!(tokens.len(), 2);
    }

    #[test]
    fn a_second_refusal_or_a_refused_renewal_is_an_error() {
        // Refused again with the new token.
        let (host, _, read, _, _) = read_through_tokens(
            vec![(200, r#"{"token":"tok-1"}"#), (200, r#"{"token":"tok-2"}"#)],
            &[401, 401],
        );
        let error = read.unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "registry {host} needs credentials (401 Unauthorized to GET of a manifest)"
            )),
            "{error}"
        );

        // The token endpoint refuses to renew it.
        let (host, realm, read, _, _) =
            read_through_tokens(vec![(200, r#"{"token":"tok-1"}"#), (401, "{}")], &[401]);
        assert_eq!(
            read.unwrap_err().to_string(),
            format!(
                "registry {host} refused its token at GET of a manifest, and its token endpoint {realm} refused a new one (401) for anonymous access\n{}",
                login_help(&host)
            )
        );
    }

    #[test]
    fn an_https_realm_answering_plain_http_is_named_to_be_spoken_to_so() {
        // Each TLS handshake answered in plain HTTP; then, in plain HTTP, a token.
        let token_host = scripted(vec![
            BAD_REQUEST,
            BAD_REQUEST,
            "HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"token\":\"tok\"}",
        ]);
        let realm = format!("https://{token_host}/token");
        let challenge = bearer(&realm);
        let (host, _registry) = answering(vec![(401, challenge, "{}"), (401, challenge, "{}")]);
        let refs: Vec<ImageRef> = vec![format!("{host}/acme/hello:v1").parse().unwrap()];
        let report = Capture::default();
        let connected = Registry::connect(&host, &instant_retries(), &report).unwrap();
        let error = connected.authorize(&refs, &report).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the token endpoint {realm} of registry {host} answered the TLS handshake in plain HTTP\nhelp: if it only speaks HTTP and you trust the network to it, pass --insecure-registry {token_host}"
            )
        );
        assert!(warnings(&report).is_empty(), "not retried");
        let options = ClientOptions {
            insecure: vec![token_host],
            ..instant_retries()
        };
        let connected = Registry::connect(&host, &options, &report).unwrap();
        connected.authorize(&refs, &report).unwrap();
        // The push's session takes that token: no other is asked for.
        connected.session("acme/hello", &[], &report).unwrap();
        assert_eq!(
            connected
                .authorization(&auth::push_scopes("acme/hello", &[]))
                .as_deref(),
            Some("Bearer tok")
        );
    }
}
