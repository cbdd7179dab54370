//! For the client's unit tests: servers on 127.0.0.1 that answer as a test scripts them, options
//! that retry at once, and the warnings a retry leaves.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use super::retry::RetryPolicy;
use super::transport::ClientOptions;
use crate::report::{Capture, Event};

/// The warnings `report` was given: the retries, as they happened.
pub(super) fn warnings(report: &Capture) -> Vec<String> {
    report
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Warning(w) => Some(w),
            _ => None,
        })
        .collect()
}

/// The request line and `Authorization` header of each request a test server answered.
pub(super) type Seen = Vec<(String, Option<String>)>;

/// A server on 127.0.0.1 that answers each plain-HTTP `GET` with the next of `answers`
/// (status, extra headers, body) and closes connections that send none (a TLS probe); gives
/// what it answered.
pub(super) fn answering(
    answers: Vec<(u16, &'static str, &'static str)>,
) -> (String, std::thread::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while seen.len() < answers.len() {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() || !request_line.starts_with("GET ") {
                continue;
            }
            let mut authorization = None;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(value.trim().to_string());
                }
                line.clear();
            }
            let (status, headers, body) = answers[seen.len()];
            seen.push((request_line.trim().to_string(), authorization));
            write!(
                stream,
                "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
        seen
    });
    (host, server)
}

/// A token endpoint on 127.0.0.1 (its realm, `http://…/token`) that answers `answers`
/// (status, JSON body) in turn.
pub(super) fn token_endpoint(
    answers: Vec<(u16, &'static str)>,
) -> (String, std::thread::JoinHandle<Seen>) {
    let json = "Content-Type: application/json\r\n";
    let (host, server) = answering(answers.into_iter().map(|(s, b)| (s, json, b)).collect());
    (format!("http://{host}/token"), server)
}

/// Options whose three tries follow each other at once.
pub(super) fn instant_retries() -> ClientOptions {
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
pub(super) fn scripted(answers: Vec<&'static str>) -> String {
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

pub(super) const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
/// What nginx and most plain-HTTP servers answer a TLS ClientHello with.
pub(super) const BAD_REQUEST: &str =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// [`instant_retries`] with a request timeout of `timeout_ms`.
pub(super) fn quick(timeout_ms: u64) -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(timeout_ms),
        ..instant_retries()
    }
}
