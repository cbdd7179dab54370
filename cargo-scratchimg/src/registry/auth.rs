//! The `WWW-Authenticate` challenge of a registry, and the bearer-token exchange it may ask for
//! (the distribution project's token authentication, which GHCR, Docker Hub, Harbor and
//! Artifactory use; ECR and plain `docker-registry` with htpasswd use Basic).

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::credentials::{Found, Secret};
use super::errors::plain_http_answer;
use crate::text::one_line;

/// How a registry wants to be authenticated, from its `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        /// The token endpoint.
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// `KEY="VALUE"` or `KEY=token` pairs after the scheme; values may hold commas inside quotes.
fn parameters(s: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        pairs.push((key, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    pairs
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value; `None` for schemes we do not speak.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parameters(rest);
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic {
                realm: get("realm"),
            }),
            "bearer" => Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            }),
            _ => None,
        }
    }
}

/// The scope a push to `repository` needs, and the pull scope of each repository a blob may
/// be mounted from.
pub(crate) fn push_scopes(repository: &str, mount_from: &[String]) -> Vec<String> {
    std::iter::once(format!("repository:{repository}:pull,push"))
        .chain(
            mount_from
                .iter()
                .filter(|from| *from != repository)
                .map(|from| format!("repository:{from}:pull")),
        )
        .collect()
}

/// Whether a token asked for `granted` serves requests that need `wanted`: each wanted scope
/// was asked for, or one of the same resource with all its actions (`pull,push` serves `pull`).
pub(crate) fn covers(granted: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|wanted| {
        granted.iter().any(|granted| {
            granted == wanted
                || matches!(
                    (granted.rsplit_once(':'), wanted.rsplit_once(':')),
                    (Some((resource, actions)), Some((wanted_resource, wanted_actions)))
                        if resource == wanted_resource
                            && wanted_actions.split(',').all(|a| actions.split(',').any(|b| a == b))
                )
        })
    })
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

/// Why a token request failed, so the caller can name the credentials that were refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("the token endpoint {realm} refused the credentials ({status})")]
    Refused { realm: String, status: u16 },
    /// The realm is `https://`, and the endpoint answered the TLS handshake in plain HTTP.
    #[error("the token endpoint {realm} answered the TLS handshake in plain HTTP")]
    PlainHttp { realm: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Asks the token endpoint `realm` for a token with `scopes`, with the credentials as Basic
/// authentication when there are any, anonymously otherwise.
pub(crate) fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credentials: Option<&Found>,
) -> std::result::Result<Secret, TokenError> {
    let mut request = agent.get(realm);
    // The realm is the registry's text: shown on one line, bounded.
    let realm = &one_line(realm, 200);
    if let Some(service) = service {
        request = request.query("service", service);
    }
    for scope in scopes {
        request = request.query("scope", scope);
    }
    if let Some(found) = credentials {
        request = request.header("Authorization", found.credentials.basic());
    }
    let mut response = match request.call() {
        Ok(response) => response,
        Err(error) if plain_http_answer(&error) => {
            return Err(TokenError::PlainHttp {
                realm: realm.to_string(),
            });
        }
        Err(error) => {
            return Err(anyhow::Error::new(error)
                .context(format!("could not get a token from {realm}"))
                .into());
        }
    };
    let status = response.status().as_u16();
    if status == 401 || status == 403 {
        return Err(TokenError::Refused {
            realm: realm.to_string(),
            status,
        });
    }
    if status != 200 {
        return Err(anyhow::anyhow!("the token endpoint {realm} answered {status}").into());
    }
    let body = response
        .body_mut()
        .read_to_vec()
        .with_context(|| format!("could not read the token from {realm}"))?;
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .with_context(|| format!("the token endpoint {realm} did not answer with a token"))?;
    match answer.token.or(answer.access_token) {
        Some(token) if !token.is_empty() => Ok(Secret::new(token)),
        _ => Err(anyhow::anyhow!("the token endpoint {realm} answered without a token").into()),
    }
}

/// Checks that a token endpoint may be sent credentials: HTTPS, or plain HTTP where the
/// registry itself is allowed plain HTTP.
pub(crate) fn check_realm(realm: &str, http_allowed: impl Fn(&str) -> bool) -> Result<()> {
    if realm.starts_with("https://") {
        return Ok(());
    }
    let host = realm
        .strip_prefix("http://")
        .map(|rest| rest.split('/').next().unwrap_or(rest));
    match host {
        Some(host) if http_allowed(host) => Ok(()),
        _ => bail!(
            "the registry's token endpoint {} is not HTTPS\nhelp: allow plain HTTP to it with --insecure-registry HOST if you trust the network",
            one_line(realm, 200)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::credentials::Credentials;
    use crate::registry::test_servers::{BAD_REQUEST, scripted, token_endpoint};
    use crate::registry::transport::{DEFAULT_TIMEOUT, agent as registry_agent};

    #[test]
    fn challenges_parse_like_registries_send_them() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/hello:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: Some("repository:acme/hello:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(
                r#"bearer realm="https://auth.docker.io/token", service="registry.docker.io""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: None,
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic {
                realm: Some("basic-realm".into())
            })
        );
        assert_eq!(
            Challenge::parse("Basic"),
            Some(Challenge::Basic { realm: None })
        );
        assert_eq!(
            Challenge::parse(r#"Bearer realm=https://t.example/token,service=reg"#),
            Some(Challenge::Bearer {
                realm: "https://t.example/token".into(),
                service: Some("reg".into()),
                scope: None,
            })
        );
        assert_eq!(
            Challenge::parse(r#"Bearer realm="a\"b""#),
            Some(Challenge::Bearer {
                realm: "a\"b".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(Challenge::parse(r#"Bearer service="no-realm""#), None);
        assert_eq!(Challenge::parse(r#"Negotiate abc"#), None);
    }

    #[test]
    fn a_token_asked_for_more_serves_requests_that_need_less() {
        let granted = push_scopes("acme/b", &["acme/a".into()]);
        let wanted = |scopes: &[&str]| scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(covers(&granted, &wanted(&["repository:acme/b:pull,push"])));
        assert!(covers(&granted, &wanted(&["repository:acme/b:push"])));
        assert!(covers(
            &granted,
            &wanted(&["repository:acme/a:pull", "repository:acme/b:pull"])
        ));
        assert!(covers(&granted, &[]));
        assert!(!covers(&granted, &wanted(&["repository:acme/a:push"])));
        assert!(!covers(&granted, &wanted(&["repository:acme/c:pull"])));
        assert!(!covers(&granted, &wanted(&["repository:acme:pull"])));
    }

    #[test]
    fn push_scopes_ask_for_pull_on_mount_sources() {
        assert_eq!(
            push_scopes("acme/b", &["acme/a".into(), "acme/b".into()]),
            ["repository:acme/b:pull,push", "repository:acme/a:pull"]
        );
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into()
    }

    #[test]
    fn token_exchange_sends_scopes_and_credentials() {
        let (realm, server) = token_endpoint(vec![
            (200, r#"{"token":"tok-1","expires_in":300}"#),
            (200, r#"{"access_token":"tok-2"}"#),
        ]);
        let found = Found {
            credentials: Credentials {
                username: "alice".into(),
                password: Secret::new("pw".into()),
            },
            source: "test".into(),
        };
        let scopes = push_scopes("acme/hello", &["acme/base".into()]);
        let token = fetch_token(&agent(), &realm, Some("reg.test"), &scopes, Some(&found)).unwrap();
        assert_eq!(token.expose(), "tok-1");
        let anonymous = fetch_token(&agent(), &realm, None, &scopes[..1], None).unwrap();
        assert_eq!(anonymous.expose(), "tok-2");
        let seen = server.join().unwrap();
        assert_eq!(
            seen[0].0,
            "GET /token?service=reg.test&scope=repository%3Aacme%2Fhello%3Apull%2Cpush&scope=repository%3Aacme%2Fbase%3Apull HTTP/1.1"
        );
        assert_eq!(seen[0].1.as_deref(), Some("Basic YWxpY2U6cHc="));
        assert_eq!(seen[1].1, None, "no credentials, no Authorization header");
    }

    #[test]
    fn refused_and_empty_tokens_are_errors() {
        let (realm, server) =
            token_endpoint(vec![(401, r#"{"errors":[]}"#), (200, r#"{"token":""}"#)]);
        let refused = fetch_token(&agent(), &realm, None, &[], None).unwrap_err();
        assert!(
            matches!(refused, TokenError::Refused { status: 401, .. }),
            "{refused}"
        );
        let empty = fetch_token(&agent(), &realm, None, &[], None).unwrap_err();
        assert!(empty.to_string().contains("without a token"), "{empty}");
        server.join().unwrap();
    }

    #[test]
    fn an_https_realm_answering_in_plain_http_is_told_apart() {
        let host = scripted(vec![BAD_REQUEST]);
        let agent = registry_agent(&host, &[], DEFAULT_TIMEOUT).unwrap();
        let realm = format!("https://{host}/token");
        let error = fetch_token(&agent, &realm, None, &[], None).unwrap_err();
        assert!(
            matches!(&error, TokenError::PlainHttp { realm: r } if *r == realm),
            "{error}"
        );
    }

    #[test]
    fn credentials_go_to_https_token_endpoints_only() {
        let loopback = |host: &str| host.starts_with("127.0.0.1");
        assert!(check_realm("https://auth.docker.io/token", loopback).is_ok());
        assert!(check_realm("http://127.0.0.1:5000/token", loopback).is_ok());
        let error = check_realm("http://auth.example.com/token", loopback).unwrap_err();
        assert!(error.to_string().contains("--insecure-registry"), "{error}");
    }
}
