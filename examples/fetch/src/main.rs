//! `fetch https://HOST[:PORT]/PATH`: one HTTPS GET, verified against the CA certificates the
//! system offers (`SSL_CERT_FILE`, which scratch images point at their bundle). Prints the
//! status line; exits 1 when the server cannot be reached or verified.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::ServerName;

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: fetch https://HOST[:PORT]/PATH");
        std::process::exit(2);
    };
    match fetch(&url) {
        Ok(status) => println!("{status}"),
        Err(e) => {
            eprintln!("fetch {url}: {e}");
            std::process::exit(1);
        }
    }
}

fn fetch(url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let rest = url.strip_prefix("https://").ok_or("only https:// URLs")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse()?),
        None => (authority, 443),
    };

    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if let Some(e) = native.errors.first() {
        return Err(format!("loading CA certificates: {e}").into());
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    eprintln!("trusting {added} CA certificates");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())?;
    let connection = rustls::ClientConnection::new(Arc::new(config), name)?;
    let mut tls = rustls::StreamOwned::new(connection, TcpStream::connect((host, port))?);
    write!(tls, "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    // Servers may close without close_notify after HTTP/1.0; what was read still counts.
    if let Err(e) = tls.read_to_end(&mut response)
        && response.is_empty()
    {
        return Err(e.into());
    }
    let text = String::from_utf8_lossy(&response);
    Ok(text.lines().next().unwrap_or("").to_string())
}
