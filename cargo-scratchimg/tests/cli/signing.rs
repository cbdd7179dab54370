//! Keys that cannot sign or verify.

use super::*;

/// A signing key that cannot sign fails before anything is built: each a clear error naming
/// the key, never its contents.
#[test]
fn sign_keys_that_cannot_sign() {
    let dir = fixture_copy("multi-bin");
    let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA6sODX3FLj7fqCt6B0Rny2ZVGbQaNmJi2fQ2RCEswu4Q=\n-----END PUBLIC KEY-----\n";
    std::fs::write(dir.path().join("public.pem"), public).unwrap();
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhsecretsecretAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQ\n-----END ENCRYPTED PRIVATE KEY-----\n";
    std::fs::write(dir.path().join("encrypted.pem"), encrypted).unwrap();
    let rsa = "-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAqfKO2A2lVmVyjxRJ\nyvlpciGq6DP8l0BUcZp2AdopT3Nk2rFxTVTKJYVyo4zCLkH9/5ueDCKMSIkibiqu\nZfYjnQIDAQABAkAjrTXriUHSV02rV7j+EUnfmc3FHVTDc8/GYYSwctoFQX6KsD3C\nwIsLDv3rQJADKaGWmUkUX4LjxCwrepg2qi0BAiEA3TBIlHm5wn/bYE6OjmCIyN8s\nD/Vz92LM46Lgu7CpZaECIQDEscN42XFQ5KGIABjmJEEaB7V8ykTn00HPYTZ0CwkE\nfQIgV/dr5iDDD+dph9O2PkmGHN0k2PP1Ot3APof4eKy5sgECIQCr7MVzKH0HvBAF\nFDCvWRkea4aTISnBiMKJReuW2t5y8QIge24jA2RT4/CIqc5MQvUIHwsrq7kX5wVQ\nlA6GTjFHYMY=\n-----END PRIVATE KEY-----\n";
    std::fs::write(dir.path().join("rsa.pem"), rsa).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a key\n").unwrap();
    let run = |args: &[&str]| {
        scratchimg(dir.path())
            .args(["--bin", "server", "-o", "out.tar"])
            .args(args)
            .assert()
            .code(1)
            .stdout_eq(str![])
    };
    run(&["--sign-key", "public.pem"]).stderr_eq(str![[r#"
error: --sign-key public.pem is a public key; signing needs the private key
help: give an ECDSA P-256 or Ed25519 key in PKCS#8 PEM, e.g. from `openssl genpkey -algorithm ed25519 -out key.pem` or `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out key.pem`; the public key is for `cargo scratchimg verify --key`

"#]]);
    run(&["--sign-key", "encrypted.pem"]).stderr_eq(str![[r#"
error: --sign-key encrypted.pem is an encrypted private key (ENCRYPTED PRIVATE KEY), which cannot be read without its password
help: decrypt it into the pipe, never onto disk: `openssl pkey -in KEY | cargo scratchimg --sign-key-stdin ...`

"#]]);
    run(&["--sign-key", "rsa.pem"]).stderr_eq(str![[r#"
error: --sign-key rsa.pem is an RSA key, which cargo-scratchimg does not sign with
help: give an ECDSA P-256 or Ed25519 key in PKCS#8 PEM, e.g. from `openssl genpkey -algorithm ed25519 -out key.pem` or `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out key.pem`

"#]]);
    run(&["--sign-key", "notes.txt"]).stderr_eq(str![[r#"
error: --sign-key notes.txt holds no PEM private key
help: give an ECDSA P-256 or Ed25519 key in PKCS#8 PEM, e.g. from `openssl genpkey -algorithm ed25519 -out key.pem` or `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out key.pem`

"#]]);
    run(&["--sign-key", "missing.pem"]).stderr_eq(str![[r#"
error: could not read --sign-key missing.pem

Caused by:
  No such file or directory (os error 2)
help: give the path of a PEM private key

"#]]);
    scratchimg(dir.path())
        .args(["--bin", "server", "-o", "out.tar", "--sign-key-stdin"])
        .stdin("\n")
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: --sign-key-stdin read nothing
help: pipe the PEM key in, e.g. `cargo scratchimg --sign-key-stdin ... < key.pem`

"#]]);
    scratchimg(dir.path())
        .args([
            "--bin",
            "server",
            "--sign-key-stdin",
            "--sign-key",
            "rsa.pem",
        ])
        .assert()
        .code(2)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: the argument '--sign-key-stdin' cannot be used with '--sign-key <FILE>'
...
"#]]);
    assert_nothing_built(dir.path());
    assert_no_output(dir.path(), &dir.path().join("out.tar"));
}

#[test]
fn verify_needs_a_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n-----END PRIVATE KEY-----\n";
    std::fs::write(dir.path().join("key.pem"), private).unwrap();
    scratchimg(dir.path())
        .args(["verify", "127.0.0.1:1/a/b:v1", "--key", "key.pem"])
        .assert()
        .code(1)
        .stdout_eq(str![])
        .stderr_eq(str![[r#"
error: --key [ROOT]/key.pem is a private key; give the public key, which is safe to share
help: give the PEM public key of an ECDSA P-256 or Ed25519 signing key, e.g. from `openssl pkey -in key.pem -pubout -out key.pub`

"#]]);
    scratchimg(dir.path())
        .args([
            "verify",
            "127.0.0.1:1/a/b@sha256:nothex",
            "--key",
            "key.pem",
        ])
        .assert()
        .code(1)
        .stderr_eq(str![[r#"
error: `sha256:nothex` is not a digest
help: name the image as REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:<hex>

"#]]);
}
