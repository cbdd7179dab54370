//! Prints what a program sees inside its container: the user it runs as, its working directory,
//! the local time in the zone `TZ` names, and the CA certificates it can trust.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

const DEFAULT_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn main() {
    // SAFETY: getuid and getgid cannot fail and touch no memory of ours.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let name = user_name(uid).unwrap_or_else(|| "(not in /etc/passwd)".into());
    println!("user: {name} (uid {uid}, gid {gid})");

    match std::env::current_dir() {
        Ok(dir) => println!("cwd: {}", dir.display()),
        Err(e) => println!("cwd: unknown ({e})"),
    }

    let now = jiff::ZonedDateTime::now();
    let zone = now.time_zone().iana_name().unwrap_or("unnamed");
    println!("time: {} ({zone})", now.strftime("%Y-%m-%dT%H:%M:%S%:z"));

    let bundle = std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| DEFAULT_BUNDLE.into());
    match count_certificates(Path::new(&bundle)) {
        Ok(n) => println!("certificates: {n} in {bundle}"),
        Err(e) => {
            println!("certificates: none ({bundle}: {e})");
            std::process::exit(1);
        }
    }
}

/// The name /etc/passwd gives `uid`: there is no libc NSS in a static binary to ask.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

fn count_certificates(path: &Path) -> Result<usize, rustls_pki_types::pem::Error> {
    CertificateDer::pem_file_iter(path)?.try_fold(0, |n, cert| cert.map(|_| n + 1))
}
