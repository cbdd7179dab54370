//! `/etc/ssl/certs/ca-certificates.crt`: Mozilla's root store, as webpki-root-certs embeds it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub const PATH: &str = "etc/ssl/certs/ca-certificates.crt";

/// The webpki-root-certs release the bundle comes from: the version of Mozilla's store we ship.
/// A test holds it to the one in Cargo.lock, since the crate does not export it.
pub const VERSION: &str = "1.0.11";

/// The number of certificates in the bundle.
pub fn count() -> usize {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
}

/// The bundle as PEM, one block per certificate in the crate's (stable) order.
pub fn bundle() -> Vec<u8> {
    let mut pem = String::with_capacity(count() * 2000);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = STANDARD.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_locked_one() {
        let lock = include_str!("../../../Cargo.lock");
        let locked = format!(
            "name = \"webpki-root-certs\"\nversion = \"{}\"\n",
            super::VERSION
        );
        assert!(
            lock.contains(&locked),
            "update certs::VERSION to the webpki-root-certs in Cargo.lock"
        );
    }

    #[test]
    fn bundle_holds_every_root_as_pem() {
        let pem = String::from_utf8(super::bundle()).unwrap();
        assert!(super::count() > 100);
        assert_eq!(
            pem.matches("-----BEGIN CERTIFICATE-----\n").count(),
            super::count()
        );
        assert_eq!(
            pem.matches("-----END CERTIFICATE-----\n").count(),
            super::count()
        );
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
    }
}
