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

/// A server on 127.0.0.1 that answers each plain-HTTP request with the next of `answers`
/// (status, extra headers) and closes connections that do not speak HTTP (a TLS probe).
pub(super) fn answering(
    answers: Vec<(u16, &'static str)>,
) -> (String, std::thread::JoinHandle<usize>) {
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
