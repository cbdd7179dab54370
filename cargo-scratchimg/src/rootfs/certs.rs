//! `/etc/ssl/certs/ca-certificates.crt`: Mozilla's root store, as webpki-root-certs embeds it.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub(super) const PATH: &str = "etc/ssl/certs/ca-certificates.crt";

/// The webpki-root-certs release the bundle comes from: the version of Mozilla's store we ship.
/// A test holds it to the one in Cargo.lock, since the crate does not export it.
pub(super) const VERSION: &str = "1.0.11";

/// The number of certificates in the bundle.
pub(super) fn count() -> usize {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
}

/// The bundle as PEM, one block per certificate in the crate's (stable) order.
pub(super) fn bundle() -> Vec<u8> {
    pem(webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| c.as_ref()))
}

/// Certificates as PEM the way every loader reads it: one block each, 64 columns, `\n`.
pub(super) fn pem<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut pem = String::new();
    for der in ders {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = STANDARD.encode(der);
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

/// One `-----BEGIN …-----` block of a PEM file.
struct Block {
    label: String,
    /// The line of its BEGIN, from 1.
    line: usize,
    body: String,
    ended: bool,
}

/// The certificates of a PEM file, as DER, each checked to parse as an X.509 certificate, so
/// the bundle never holds a block that makes an OpenSSL-style loader drop the whole file.
/// Text outside the blocks (comments, `openssl x509 -text` output) is allowed and left out of
/// the bundle; every block must be a certificate: a private key, a CRL, a broken boundary line
/// or a block that does not decode is an error naming the block.
/// Errors start with `file`.
pub(super) fn certificates(pem: &[u8], file: &Path) -> Result<Vec<Vec<u8>>, String> {
    let file = file.display();
    let text = String::from_utf8_lossy(pem);
    let mut blocks: Vec<Block> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (number, line) = (i + 1, line.trim_end());
        let open = blocks.last_mut().filter(|b| !b.ended);
        let boundary = |kind: &str| {
            line.strip_prefix(&format!("-----{kind} "))
                .and_then(|rest| rest.strip_suffix("-----"))
                .filter(|label| !label.is_empty() && !label.contains('-'))
        };
        // `----BEGIN CERTIFICATE-----` is a mangled boundary, never text to skip.
        let like_boundary =
            line.contains("----") && (line.contains("BEGIN") || line.contains("END"));
        match (open, boundary("BEGIN"), boundary("END")) {
            (None, Some(label), _) => blocks.push(Block {
                label: label.to_string(),
                line: number,
                body: String::new(),
                ended: false,
            }),
            (Some(block), _, Some(label)) if label == block.label => block.ended = true,
            (Some(block), None, None) if !like_boundary && !line.contains("-----") => {
                block.body.push_str(line.trim())
            }
            (None, None, None) if !like_boundary => {}
            (open, _, _) => {
                let inside = open.map_or(String::new(), |b| {
                    format!(" inside the `{}` block of line {}", b.label, b.line)
                });
                return Err(format!(
                    "{file}: line {number} `{line}`{inside} is not a PEM boundary this file can have\n\
                     help: each certificate is a `-----BEGIN CERTIFICATE-----` line, base64 lines and an `-----END CERTIFICATE-----` line; fix or remove this one"
                ));
            }
        }
    }
    let total = blocks.len();
    if total == 0 {
        let der = x509_parser::parse_x509_certificate(pem).is_ok();
        return Err(if der {
            format!(
                "{file} is a DER certificate, not PEM\n\
                 help: convert it: `openssl x509 -inform der -in {file} -out ca.pem`, and give ca.pem"
            )
        } else {
            format!(
                "{file} holds no certificate\n\
                 help: a PEM file has `-----BEGIN CERTIFICATE-----` blocks"
            )
        });
    }
    let mut ders = Vec::with_capacity(total);
    for (i, block) in blocks.iter().enumerate() {
        let which = format!("{file}: block {} of {total} (line {})", i + 1, block.line);
        let label = &block.label;
        if !block.ended {
            return Err(format!(
                "{which} has no `-----END {label}-----` line\nhelp: the file is cut short or a line is missing; copy the certificate again"
            ));
        }
        if label.contains("PRIVATE KEY") {
            return Err(format!(
                "{which} is a private key (`{label}`), which must never go into an image\n\
                 help: take the key out of this file and keep it where only its server reads it; a CA file holds only the CA's `CERTIFICATE` blocks"
            ));
        }
        if label == "TRUSTED CERTIFICATE" {
            return Err(format!(
                "{which} is OpenSSL's `TRUSTED CERTIFICATE`, which only OpenSSL reads\n\
                 help: convert it to a plain certificate: `openssl x509 -in {file} -out plain.pem`"
            ));
        }
        if label != "CERTIFICATE" {
            return Err(format!(
                "{which} is a `{label}`, not a certificate\n\
                 help: a CA file holds only `CERTIFICATE` blocks; remove the others"
            ));
        }
        let der = STANDARD.decode(&block.body).map_err(|e| {
            format!(
                "{which} is not base64 ({e})\nhelp: the file is damaged; copy the certificate again"
            )
        })?;
        let parsed = match x509_parser::parse_x509_certificate(&der) {
            Ok(([], _)) => Ok(()),
            Ok((rest, _)) => Err(format!("{} bytes follow the certificate", rest.len())),
            Err(x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e)) => {
                Err(e.to_string())
            }
            Err(x509_parser::nom::Err::Incomplete(_)) => Err("it is cut short".to_string()),
        };
        if let Err(why) = parsed {
            return Err(format!(
                "{which} is not an X.509 certificate: {why}\n\
                 help: a `CERTIFICATE` block holds a certificate's DER in base64; get the CA certificate again from where it comes from"
            ));
        }
        ders.push(der);
    }
    Ok(ders)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mozilla's `i`th root as a PEM block.
    fn root(i: usize) -> String {
        String::from_utf8(pem([webpki_root_certs::TLS_SERVER_ROOT_CERTS[i].as_ref()])).unwrap()
    }

    fn block(label: &str, der: &[u8]) -> String {
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            STANDARD.encode(der)
        )
    }

    #[test]
    fn text_around_the_blocks_is_left_out() {
        let file = format!(
            "# Acme's CA\nBag Attributes\n    friendlyName: acme\nsubject=CN = Acme\n{}\n\n-- and its successor --\n{}",
            root(0),
            root(1).replace('\n', "\r\n")
        );
        let ders = certificates(file.as_bytes(), Path::new("ca.pem")).unwrap();
        assert_eq!(ders.len(), 2);
        assert_eq!(
            ders[0],
            webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref()
        );
        assert_eq!(
            pem(ders.iter().map(Vec::as_slice)),
            format!("{}{}", root(0), root(1)).into_bytes()
        );
    }

    #[test]
    fn every_block_must_be_a_certificate() {
        let err = |file: String| certificates(file.as_bytes(), Path::new("ca.pem")).unwrap_err();
        let not_x509 = block("CERTIFICATE", &[0x30, 0x03, 0x02, 0x01, 0x05]);
        let e = err(format!("{}{not_x509}{}", root(0), root(1)));
        assert!(
            e.starts_with(&format!(
                "ca.pem: block 2 of 3 (line {}) is not an X.509 certificate: ",
                root(0).lines().count() + 1
            )),
            "{e}"
        );
        assert!(
            e.contains("\nhelp: a `CERTIFICATE` block holds a certificate's DER in base64"),
            "{e}"
        );
        let key = block("PRIVATE KEY", b"secret");
        let e = err(format!("{}{key}", root(0)));
        assert!(e.starts_with("ca.pem: block 2 of 2 (line "), "{e}");
        assert!(
            e.contains("is a private key (`PRIVATE KEY`), which must never go into an image"),
            "{e}"
        );
        assert!(
            !e.contains(&STANDARD.encode(b"secret")),
            "the key is not repeated: {e}"
        );
        assert!(
            err(block("RSA PRIVATE KEY", b"k")).contains("is a private key (`RSA PRIVATE KEY`)")
        );
        assert!(err(block("ENCRYPTED PRIVATE KEY", b"k")).contains("is a private key"));
        assert!(
            err(block("TRUSTED CERTIFICATE", b"k"))
                .contains("openssl x509 -in ca.pem -out plain.pem")
        );
        assert_eq!(
            err(block("X509 CRL", b"k")),
            "ca.pem: block 1 of 1 (line 1) is a `X509 CRL`, not a certificate\n\
             help: a CA file holds only `CERTIFICATE` blocks; remove the others"
        );
        let mut trailing = webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].to_vec();
        trailing.extend_from_slice(b"tail");
        assert!(err(block("CERTIFICATE", &trailing)).contains("4 bytes follow the certificate"));
        assert!(err(block("CERTIFICATE", b"")).contains("is not an X.509 certificate"));
        assert!(
            err("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".into())
                .starts_with("ca.pem: block 1 of 1 (line 1) is not base64")
        );
    }

    #[test]
    fn broken_boundaries_are_errors_not_text() {
        let err = |file: String| certificates(file.as_bytes(), Path::new("ca.pem")).unwrap_err();
        let lines = root(0).lines().count();
        // A block whose BEGIN lost a dash: its END is then alone.
        let e = err(format!(
            "{}{}",
            root(0),
            root(1).replacen("-----BEGIN", "----BEGIN", 1)
        ));
        assert!(
            e.starts_with(&format!(
                "ca.pem: line {} `----BEGIN CERTIFICATE-----` is not a PEM boundary",
                lines + 1
            )),
            "{e}"
        );
        let e = err(format!(
            "{}{}",
            root(0),
            root(1).replacen("-----BEGIN CERTIFICATE-----\n", "", 1)
        ));
        let end = lines + root(1).lines().count() - 1;
        assert!(
            e.starts_with(&format!(
                "ca.pem: line {end} `-----END CERTIFICATE-----` is not"
            )),
            "{e}"
        );
        let e = err(root(0).replace("-----END CERTIFICATE-----", "-----END CERTIFICAT-----"));
        assert!(
            e.contains("inside the `CERTIFICATE` block of line 1"),
            "{e}"
        );
        let e = err(format!(
            "{}{}",
            root(0),
            root(1).replace("-----END CERTIFICATE-----\n", "")
        ));
        assert!(e.starts_with("ca.pem: block 2 of 2 (line "), "{e}");
        assert!(e.contains("has no `-----END CERTIFICATE-----` line"), "{e}");
        assert!(err("no blocks here\n".into()).starts_with("ca.pem holds no certificate"));
        let der = webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref();
        assert!(
            certificates(der, Path::new("ca.der"))
                .unwrap_err()
                .starts_with("ca.der is a DER certificate, not PEM")
        );
    }

    /// OpenSSL reads a bundle file whole or not at all: one bad block and it trusts nothing. The
    /// bundle the base layer gets from a file with text between its blocks loads, every root.
    #[test]
    fn openssl_loads_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let extra = format!("# ours\n{}junk between\n{}trailing words", root(3), root(4));
        let base = crate::rootfs::BaseFiles {
            zones: crate::rootfs::Zones::None,
            ca: crate::rootfs::CaCerts {
                mozilla: true,
                extra: vec![
                    crate::rootfs::ExtraCa::parse(dir.path().join("x.pem"), extra.as_bytes())
                        .unwrap(),
                ],
            },
        };
        let layer = crate::rootfs::base_files(&base).unwrap();
        let Some((_, entry)) = layer.entries().find(|(p, _)| *p == PATH) else {
            panic!("no bundle")
        };
        let crate::image::EntryKind::File(bundle) = &entry.kind else {
            panic!("not a file")
        };
        std::fs::write(dir.path().join("bundle.pem"), bundle.bytes().unwrap()).unwrap();
        std::fs::write(dir.path().join("root.pem"), root(4)).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["storeutl", "-noout", "-certs", "bundle.pem"])
            .current_dir(dir.path())
            .output()
            .expect("openssl runs");
        let found = format!("Total found: {}", count() + 2);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&found),
            "{out:?}"
        );
        let out = std::process::Command::new("openssl")
            .args(["verify", "-CAfile", "bundle.pem", "root.pem"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "root.pem: OK\n",
            "{out:?}"
        );
    }

    #[test]
    fn version_is_the_locked_one() {
        let lock = include_str!("../../../Cargo.lock");
        let locked = format!("name = \"webpki-root-certs\"\nversion = \"{}\"\n", VERSION);
        assert!(
            lock.contains(&locked),
            "update certs::VERSION to the webpki-root-certs in Cargo.lock"
        );
    }

    #[test]
    fn bundle_holds_every_root_as_pem() {
        let pem = String::from_utf8(bundle()).unwrap();
        assert!(count() > 100);
        assert_eq!(
            pem.matches("-----BEGIN CERTIFICATE-----\n").count(),
            count()
        );
        assert_eq!(pem.matches("-----END CERTIFICATE-----\n").count(), count());
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
    }
}
