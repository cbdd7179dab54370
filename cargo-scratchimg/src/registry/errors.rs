//! What a failed exchange with a registry means: transport failures and statuses sorted into
//! transient (worth a retry) and final, each naming the registry and the step; and the
//! registry's own words, quoted on one bounded line.

use std::time::Duration;

use anyhow::anyhow;
use ureq::http::Response;

use super::retry::RequestError;
use crate::text::one_line;

/// How much of a registry's own words an error shows.
pub(super) const WORDS_SHOWN: usize = 300;

/// Registry text quoted as the registry's: `"…"`, on one line, bounded.
pub(crate) fn quoted(text: &str) -> String {
    format!("\"{}\"", one_line(text, WORDS_SHOWN))
}

/// `, saying "…"` after a status, when the registry said anything.
pub(super) fn saying(text: &str) -> String {
    let words = one_line(text, WORDS_SHOWN);
    if words.is_empty() {
        String::new()
    } else {
        format!(", saying \"{words}\"")
    }
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
pub(super) fn untrusted_certificate(error: &ureq::Error) -> bool {
    matches!(
        rustls_error(error),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// Whether the TLS handshake was answered with something that is not TLS: a server speaking
/// plain HTTP answers the handshake with `HTTP/1.1 400 …`, which is no TLS record type.
pub(super) fn plain_http_answer(error: &ureq::Error) -> bool {
    matches!(
        rustls_error(error),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    )
}

pub(super) fn timed_out(error: &ureq::Error) -> bool {
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
pub(super) fn transport_error(
    host: &str,
    what: &str,
    limit: Duration,
    error: ureq::Error,
) -> RequestError {
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
pub(super) fn finish(
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
pub(super) fn error_text(response: &mut Response<ureq::Body>) -> String {
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

pub(super) fn status_line(response: &Response<ureq::Body>) -> String {
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
pub(super) fn transient_status(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::test_servers::{BAD_REQUEST, scripted};
    use crate::registry::transport::{DEFAULT_TIMEOUT, agent};

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
}
