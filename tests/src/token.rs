//! A token server for `docker-registry`'s token authentication (what GHCR, Docker Hub and
//! Harbor use): it checks Basic credentials ([`USER`], [`PASSWORD`]) and answers with a JWT
//! (RS256, signed by the openssl CLI with a key and self-signed certificate made for the test)
//! granting every scope asked for, or, once it gave as many as it may, none. The registry
//! trusts the certificate as its root bundle. A request that is not HTTP (a TLS handshake) gets
//! the `400` a plain-HTTP server answers.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::registry::{PASSWORD, USER};
use crate::{require_tool, run_ok};

/// The `service` and issuer the registry is configured with.
pub const SERVICE: &str = "scratchimg-test";
pub const ISSUER: &str = "scratchimg-test-issuer";

/// What a plain-HTTP server answers a request it cannot read.
const BAD_REQUEST: &str =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`.
    pub realm: String,
    /// The certificate whose key signs the tokens: the registry's `rootcertbundle`.
    pub cert: PathBuf,
    signer: Arc<Signer>,
    host: String,
    stop: Arc<AtomicBool>,
}

struct Signer {
    key: PathBuf,
    /// The certificate, base64 DER, for the tokens' `x5c` header.
    x5c: String,
    issued: AtomicU64,
    /// How many tokens it gives before it refuses the credentials; all, without.
    grants: Option<u64>,
}

/// Base64: url-safe without padding as JWTs are written (`url`), else standard and padded.
fn base64(bytes: &[u8], url: bool) -> String {
    const STANDARD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            let c = STANDARD[(n >> (18 - 6 * i) & 63) as usize] as char;
            out.push(match (url, c) {
                (true, '+') => '-',
                (true, '/') => '_',
                _ => c,
            });
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// `user:password` in standard base64, as `Basic` authorization and Docker's `auth` write it.
pub fn basic_credentials(user: &str, password: &str) -> String {
    base64(format!("{user}:{password}").as_bytes(), false)
}

fn base64url(bytes: &[u8]) -> String {
    base64(bytes, true)
}

/// `%3A` and friends decoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

impl Signer {
    /// A token granting `scopes` (`repository:NAME:pull,push`).
    fn mint(&self, scopes: &[String]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|scope| {
                let (kind, rest) = scope.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({
                    "type": kind,
                    "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": USER,
            "aud": SERVICE,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now - 60,
            "jti": format!("token-{}", self.issued.fetch_add(1, Ordering::SeqCst)),
            "access": access,
        });
        let signed = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut openssl = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        openssl
            .stdin
            .take()
            .unwrap()
            .write_all(signed.as_bytes())
            .unwrap();
        let output = openssl.wait_with_output().unwrap();
        assert!(output.status.success(), "openssl dgst -sign failed");
        format!("{signed}.{}", base64url(&output.stdout))
    }

    /// Answers one token request: a token for its scopes with the right credentials, else 401.
    fn answer(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut first = Vec::new();
        if reader.read_until(b'\n', &mut first).is_err() {
            return;
        }
        let Some(line) = String::from_utf8(first)
            .ok()
            .filter(|l| l.starts_with("GET "))
        else {
            // Not HTTP (a TLS handshake, say): answered as plain-HTTP servers do, then read to
            // its end, so that closing sends no reset before the answer is read.
            let mut stream = stream;
            let _ = stream.write_all(BAD_REQUEST.as_bytes());
            let _ = stream.shutdown(Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            return;
        };
        let mut authorization = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("authorization")
            {
                authorization = Some(value.trim().to_string());
            }
        }
        let target = line.split_whitespace().nth(1).unwrap_or_default();
        let query = target.split_once('?').map_or("", |(_, q)| q);
        let scopes: Vec<String> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(key, _)| *key == "scope")
            .map(|(_, value)| percent_decoded(value))
            .collect();
        let basic = format!(
            "Basic {}",
            base64(format!("{USER}:{PASSWORD}").as_bytes(), false)
        );
        let granted = self
            .grants
            .is_none_or(|grants| self.issued.load(Ordering::SeqCst) < grants);
        let (status, body) = if granted && authorization.as_deref() == Some(basic.as_str()) {
            let token = self.mint(&scopes);
            ("200 OK", serde_json::json!({"token": token}).to_string())
        } else {
            ("401 Unauthorized", "{}".to_string())
        };
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

impl TokenServer {
    /// A key and certificate in `dir`, and the server on a free loopback port.
    pub fn start(dir: &Path) -> TokenServer {
        TokenServer::start_with(dir, None)
    }

    /// [`TokenServer::start`], refusing the credentials once it gave `grants` tokens, when
    /// given: a token server that will not renew a token.
    pub fn start_with(dir: &Path, grants: Option<u64>) -> TokenServer {
        require_tool("openssl", &["version"]);
        let key = dir.join("token.key");
        let cert = dir.join("token.pem");
        run_ok(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .args(["-days", "2", "-subj", "/CN=scratchimg test token issuer"]),
        );
        let pem = std::fs::read_to_string(&cert).unwrap();
        let x5c: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let signer = Arc::new(Signer {
            key,
            x5c,
            issued: AtomicU64::new(0),
            grants,
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let (answering, stopping) = (signer.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let signer = answering.clone();
                    std::thread::spawn(move || signer.answer(stream));
                }
            }
        });
        TokenServer {
            realm: format!("http://{host}/token"),
            cert,
            signer,
            host,
            stop,
        }
    }

    /// How many tokens it gave (to the tool, and through [`TokenServer::mint`]).
    pub fn issued(&self) -> u64 {
        self.signer.issued.load(Ordering::SeqCst)
    }

    /// A token granting `scopes`, for a test's own requests to the registry.
    pub fn mint(&self, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.signer.mint(&scopes)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_and_percent_decoding() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64(&[0xfb, 0xff], false), "+/8=");
        assert_eq!(base64(b"ab", false), "YWI=");
        assert_eq!(
            percent_decoded("repository%3Aacme%2Fhello%3Apull%2Cpush"),
            "repository:acme/hello:pull,push"
        );
    }
}
