//! A TCP proxy on loopback in front of a registry: it records the head (request line and
//! headers) of every HTTP request that passes, can add an `Authorization` of its own on the way
//! to the registry, can break connections or answers the way a failing network or registry
//! does, send blob reads to another host, or refuse tokens used too often. Also [`Silent`], a
//! server that takes connections and never answers.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: every byte is passed on.
    None,
    /// Drops the connection of the first blob upload (`PUT …/blobs/uploads/…`), once; later
    /// ones pass.
    DropOnce,
    /// Drops the first blob upload's connection and every one after it: the registry is down
    /// from then on.
    DownFromThen,
    /// Passes the first manifest `PUT` on, but its answer only up to the end of the headers,
    /// with a `Content-Length` 100 bytes larger, then nothing more: an answer that stops midway.
    StallOnce,
    /// Answers the first manifest `PUT` itself with this status and JSON body, instead of
    /// passing it on: the registry's error, as hostile as a test makes it.
    AnswerOnce(u16, &'static str),
    /// Answers every blob `GET` (`GET …/blobs/sha256:…`) itself with a `307` to the same path
    /// on `127.0.0.1:PORT`, instead of passing it on: a registry that serves blobs from another
    /// host (object storage, a CDN), as registries backed by S3 do.
    RedirectBlobGets(u16),
    /// Answers every blob `GET` itself with a `Content-Length` of 40 GB and zeros as fast as
    /// they go, until the client hangs up: a registry that floods.
    FloodBlobGets,
    /// The same, but one byte every 200 ms: a registry that trickles, never idle long enough
    /// to time out a read.
    TrickleBlobGets,
}

/// The head of one request that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `PUT /v2/hello/manifests/0.1.0 HTTP/1.1`.
    pub line: String,
    /// Each header as sent, name and value.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How a proxy is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub fault: Fault,
    /// The loopback port to listen on (one the test gave the registry beforehand), else any.
    pub port: Option<u16>,
    /// An `Authorization` value added to requests that come without one, on their way to the
    /// registry: a storage host that takes uploads on its own say, as object storage does.
    pub authorization: Option<String>,
    /// Bearer tokens that expire after some uses, as a token server may limit them.
    pub token_uses: Option<TokenUses>,
}

/// How often a Bearer token may be used: a request whose token was used `uses` times already
/// is answered `401` with a challenge naming `realm`, instead of passed on.
#[derive(Debug, Clone)]
pub struct TokenUses {
    pub uses: usize,
    pub realm: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            fault: Fault::None,
            port: None,
            authorization: None,
            token_uses: None,
        }
    }
}

pub struct Proxy {
    /// `127.0.0.1:PORT` of the proxy.
    pub host: String,
    requests: Arc<Mutex<Vec<Request>>>,
    /// How often each Bearer token was used, and how often it may be (see [`TokenUses`]).
    uses: Arc<Mutex<HashMap<String, usize>>>,
    allowed_uses: Option<usize>,
    stop: Arc<AtomicBool>,
}

/// Where a request head ends (just after its blank line), if it is all in `bytes`.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// A request head, and the length of the body after it.
fn parse_head(head: &[u8]) -> (Request, u64) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let request = Request { line, headers };
    assert!(
        request.header("transfer-encoding").is_none(),
        "the proxy reads Content-Length bodies only: {request:?}"
    );
    let length = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (request, length)
}

fn is_blob_put(line: &str) -> bool {
    line.starts_with("PUT ") && line.contains("/blobs/uploads/")
}

fn is_blob_get(line: &str) -> bool {
    line.starts_with("GET ") && line.contains("/blobs/sha256:")
}

fn is_manifest_put(line: &str) -> bool {
    line.starts_with("PUT ") && line.contains("/manifests/")
}

/// An answer with `status` (`401 Unauthorized`), `headers` (each ending in CRLF) and `body`.
fn answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `head` with `Authorization: value` added before its blank line.
fn with_authorization(head: &[u8], value: &str) -> Vec<u8> {
    let mut added = head[..head.len() - 2].to_vec();
    added.extend_from_slice(format!("Authorization: {value}\r\n\r\n").as_bytes());
    added
}

/// An answer head with its `Content-Length` 100 bytes larger than the body that follows.
fn inflated(chunk: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(chunk);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("the answer head is whole");
    let head: Vec<String> = head
        .split("\r\n")
        .map(|line| match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                let length: u64 = value.trim().parse().unwrap();
                format!("{name}: {}", length + 100)
            }
            _ => line.to_string(),
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

/// A `200` that promises 40 GB, then `chunk` zeros every `pause`, until the client hangs up
/// (or ten minutes pass).
fn endless(client: &mut TcpStream, chunk: usize, pause: std::time::Duration) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 40000000000\r\n\r\n";
    if client.write_all(head.as_bytes()).is_err() {
        return;
    }
    let zeros = vec![0; chunk];
    let until = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while std::time::Instant::now() < until && client.write_all(&zeros).is_ok() {
        std::thread::sleep(pause);
    }
}

/// What one connection shares between its two directions.
struct Connection {
    fault: Fault,
    tripped: Arc<AtomicBool>,
    /// The next answer from the registry is to stop midway.
    stall: Arc<AtomicBool>,
    authorization: Option<String>,
    token_uses: Option<TokenUses>,
    uses: Arc<Mutex<HashMap<String, usize>>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Connection {
    /// Whether the request's Bearer token is used up: counts this use.
    fn used_up(&self, request: &Request) -> Option<&TokenUses> {
        let limit = self.token_uses.as_ref()?;
        let token = request.header("authorization")?.strip_prefix("Bearer ")?;
        let mut uses = self.uses.lock().unwrap();
        let used = uses.entry(token.to_string()).or_insert(0);
        *used += 1;
        (*used > limit.uses).then_some(limit)
    }

    /// client → registry: request by request, recording each head and acting on the fault.
    fn requests(&self, mut client: TcpStream, mut server: TcpStream) {
        let mut pending: Vec<u8> = Vec::new();
        // Body bytes still to come, and whether they go on to the registry.
        let (mut body_left, mut passing) = (0u64, true);
        let mut buf = vec![0; 64 * 1024];
        let mut first = true;
        'connection: loop {
            let n = match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            // A TLS handshake (a client trying HTTPS first, as the tool does on loopback): the
            // registry behind, which speaks plain HTTP, would answer 400 and hang up at once.
            if std::mem::take(&mut first) && pending.first() == Some(&0x16) {
                let _ = client
                    .write_all(answer("400 Bad Request", "Connection: close\r\n", "").as_bytes());
                break;
            }
            loop {
                if body_left > 0 {
                    let k = pending.len().min(body_left as usize);
                    if k == 0 {
                        break;
                    }
                    if passing && server.write_all(&pending[..k]).is_err() {
                        break 'connection;
                    }
                    pending.drain(..k);
                    body_left -= k as u64;
                    continue;
                }
                let Some(end) = head_end(&pending) else {
                    break;
                };
                let head: Vec<u8> = pending.drain(..end).collect();
                let (request, length) = parse_head(&head);
                let line = request.line.clone();
                let has_authorization = request.header("authorization").is_some();
                let used_up = self.used_up(&request).map(|limit| limit.realm.clone());
                self.requests.lock().unwrap().push(request);
                (body_left, passing) = (length, true);
                // Once down, connections opened before stop passing requests too.
                let down = self.fault == Fault::DownFromThen && self.tripped.load(Ordering::SeqCst);
                let first = |matches: bool| matches && !self.tripped.swap(true, Ordering::SeqCst);
                // An answer of the proxy's own, instead of passing the request on.
                let forged = match (self.fault, used_up) {
                    (_, Some(realm)) => Some(answer(
                        "401 Unauthorized",
                        &format!(
                            "WWW-Authenticate: Bearer realm=\"{realm}\",error=\"invalid_token\"\r\nContent-Type: application/json\r\n"
                        ),
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"token used up"}]}"#,
                    )),
                    (Fault::DropOnce | Fault::DownFromThen, _)
                        if down || first(is_blob_put(&line)) =>
                    {
                        break 'connection;
                    }
                    (Fault::StallOnce, _) if first(is_manifest_put(&line)) => {
                        self.stall.store(true, Ordering::SeqCst);
                        None
                    }
                    (Fault::AnswerOnce(status, body), _) if first(is_manifest_put(&line)) => {
                        Some(answer(
                            &format!("{status} Forged"),
                            "Content-Type: application/json\r\n",
                            body,
                        ))
                    }
                    (Fault::RedirectBlobGets(port), _) if is_blob_get(&line) => {
                        let path = line.split(' ').nth(1).unwrap_or_default();
                        Some(answer(
                            "307 Temporary Redirect",
                            &format!("Location: http://127.0.0.1:{port}{path}\r\n"),
                            "",
                        ))
                    }
                    (Fault::FloodBlobGets | Fault::TrickleBlobGets, _) if is_blob_get(&line) => {
                        let pause = match self.fault {
                            Fault::TrickleBlobGets => (1, std::time::Duration::from_millis(200)),
                            _ => (64 * 1024, std::time::Duration::ZERO),
                        };
                        endless(&mut client, pause.0, pause.1);
                        break 'connection;
                    }
                    _ => None,
                };
                if let Some(forged) = forged {
                    passing = false;
                    if client.write_all(forged.as_bytes()).is_err() {
                        break 'connection;
                    }
                    continue;
                }
                let head = match &self.authorization {
                    Some(value) if !has_authorization => with_authorization(&head, value),
                    _ => head,
                };
                if server.write_all(&head).is_err() {
                    break 'connection;
                }
            }
        }
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }

    /// registry → client, as it comes, except an answer that is to stop midway.
    fn answers(&self, mut server: TcpStream, mut client: TcpStream) {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if self.stall.swap(false, Ordering::SeqCst) {
                // The head, promising more than will come; the connection stays open, silent,
                // until the client gives up on it.
                let _ = client.write_all(&inflated(&buf[..n]));
                return;
            }
            if client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client.shutdown(Shutdown::Both);
    }
}

impl Proxy {
    pub fn start(upstream: &str, fault: Fault) -> Proxy {
        Proxy::start_with(
            upstream,
            Options {
                fault,
                ..Options::default()
            },
        )
    }

    pub fn start_with(upstream: &str, options: Options) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0))).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let uses = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tripped = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_string();
        let allowed_uses = options.token_uses.as_ref().map(|t| t.uses);
        let (seen, counted, stopping) = (requests.clone(), uses.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if options.fault == Fault::DownFromThen && tripped.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let connection = Arc::new(Connection {
                    fault: options.fault,
                    tripped: tripped.clone(),
                    stall: Arc::new(AtomicBool::new(false)),
                    authorization: options.authorization.clone(),
                    token_uses: options.token_uses.clone(),
                    uses: counted.clone(),
                    requests: seen.clone(),
                });
                let (from_server, to_client) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                let answering = connection.clone();
                std::thread::spawn(move || answering.answers(from_server, to_client));
                std::thread::spawn(move || connection.requests(client, server));
            }
        });
        Proxy {
            host,
            requests,
            uses,
            allowed_uses,
            stop,
        }
    }

    /// Every request line seen so far, e.g. `PUT /v2/hello/manifests/0.1.0 HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        self.heads().into_iter().map(|r| r.line).collect()
    }

    /// Every request head seen so far.
    pub fn heads(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests refused because their Bearer token was used up (see [`TokenUses`]).
    pub fn refused_tokens(&self) -> usize {
        let allowed = self.allowed_uses.unwrap_or(usize::MAX);
        let uses = self.uses.lock().unwrap();
        uses.values().map(|used| used.saturating_sub(allowed)).sum()
    }

    /// Forgets the requests seen so far.
    pub fn reset(&self) {
        self.requests.lock().unwrap().clear();
    }

    /// Blob uploads seen: `PUT`s of upload sessions, one per blob sent.
    pub fn blob_uploads(&self) -> usize {
        self.requests().iter().filter(|l| is_blob_put(l)).count()
    }

    /// Requests whose line contains all of `parts`.
    pub fn count(&self, parts: &[&str]) -> usize {
        self.requests()
            .iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.host);
    }
}

/// A server on loopback that takes every connection and never answers, nor closes one, until
/// it is dropped: a registry that hangs.
pub struct Silent {
    /// `127.0.0.1:PORT`.
    pub host: String,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (stopping, holding) = (stop.clone(), held.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    holding.lock().unwrap().push(stream);
                }
            }
        });
        Silent { host, stop, held }
    }

    /// Connections taken so far.
    pub fn connections(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_with_their_body_length() {
        let head = b"PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1\r\nHost: h\r\nauthorization: Basic eA==\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(head_end(&[&head[..], b"body"].concat()), Some(head.len()));
        assert_eq!(head_end(&head[..head.len() - 1]), None);
        let (request, length) = parse_head(head);
        assert_eq!(
            request.line,
            "PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1"
        );
        assert_eq!(request.header("Authorization"), Some("Basic eA=="));
        assert_eq!(length, 12);
        assert!(is_blob_put(&request.line));
        assert!(!is_blob_put("PUT /v2/a/manifests/1 HTTP/1.1"));
        assert!(is_manifest_put("PUT /v2/a/manifests/1 HTTP/1.1"));
        assert!(is_blob_get("GET /v2/a/blobs/sha256:1 HTTP/1.1"));
        assert!(!is_blob_get("HEAD /v2/a/blobs/sha256:1 HTTP/1.1"));
        assert!(!is_blob_get("GET /v2/a/blobs/uploads/x HTTP/1.1"));
        let added = with_authorization(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "Basic eQ==");
        assert_eq!(
            added,
            b"GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic eQ==\r\n\r\n"
        );
        assert_eq!(
            inflated(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"),
            b"HTTP/1.1 201 Created\r\ncontent-length: 100\r\n\r\n"
        );
    }
}
