//! A TCP proxy on loopback in front of a registry: it records the request line of every HTTP
//! request that passes, and can break connections the way a failing network or registry does.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the proxy does to the first blob upload (`PUT …/blobs/uploads/…`) it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: every byte is passed on.
    None,
    /// Drops that connection, once; later ones pass.
    DropOnce,
    /// Drops it and every connection after it: the registry is down from then on.
    DownFromThen,
}

pub struct Proxy {
    /// `127.0.0.1:PORT` of the proxy.
    pub host: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

const METHODS: [&[u8]; 5] = [
    b"GET /v2/",
    b"HEAD /v2/",
    b"POST /v2/",
    b"PUT /v2/",
    b"PATCH /v2/",
];

/// Request lines (`PUT /v2/…`) that start in `chunk`.
fn request_lines(chunk: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    for start in 0..chunk.len() {
        let at_line_start = start == 0 || chunk[start - 1] == b'\n';
        if at_line_start && METHODS.iter().any(|m| chunk[start..].starts_with(m)) {
            let end = chunk[start..]
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .map_or(chunk.len(), |n| start + n);
            lines.push(String::from_utf8_lossy(&chunk[start..end]).into_owned());
        }
    }
    lines
}

fn is_blob_put(line: &str) -> bool {
    line.starts_with("PUT ") && line.contains("/blobs/uploads/")
}

impl Proxy {
    pub fn start(upstream: &str, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tripped = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_string();
        let (seen, stopping) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if fault == Fault::DownFromThen && tripped.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (seen, tripped) = (seen.clone(), tripped.clone());
                let (client_read, server_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                // server → client, as it comes
                let (mut from_server, mut to_client) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(Shutdown::Both);
                });
                // client → server, watching request lines
                std::thread::spawn(move || {
                    let (mut from_client, mut to_server) = (client_read, server_write);
                    let mut buf = vec![0; 64 * 1024];
                    loop {
                        let n = match from_client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let lines = request_lines(&buf[..n]);
                        // Once down, connections opened before stop passing requests too.
                        let down = fault == Fault::DownFromThen && tripped.load(Ordering::SeqCst);
                        let breaks = down
                            || fault != Fault::None
                                && lines.iter().any(|l| is_blob_put(l))
                                && !tripped.swap(true, Ordering::SeqCst);
                        seen.lock().unwrap().extend(lines);
                        if breaks || to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = from_client.shutdown(Shutdown::Both);
                    let _ = to_server.shutdown(Shutdown::Both);
                });
            }
        });
        Proxy {
            host,
            requests,
            stop,
        }
    }

    /// Every request line seen so far, e.g. `PUT /v2/hello/manifests/0.1.0 HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_found_at_line_starts() {
        let chunk = b"PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1\r\nHost: h\r\n\r\nbodyPUT /v2/no\r\nHEAD /v2/a/blobs/sha256:2 HTTP/1.1\r\n";
        assert_eq!(
            request_lines(chunk),
            [
                "PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1",
                "HEAD /v2/a/blobs/sha256:2 HTTP/1.1"
            ]
        );
        assert!(is_blob_put(
            "PUT /v2/a/blobs/uploads/x?digest=sha256:1 HTTP/1.1"
        ));
        assert!(!is_blob_put("PUT /v2/a/manifests/1 HTTP/1.1"));
    }
}
