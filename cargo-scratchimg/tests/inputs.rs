//! Every file the tool reads is bounded: a key, a CA file, YAML or a password that is a FIFO,
//! a device or endless is refused at once, with an error naming it, before anything is built
//! or written, within a few seconds and a few dozen MiB (each run's address space is limited
//! too, so one that read without bound would fail rather than take the machine).

use std::path::Path;
use std::process::{Command, Stdio};

use scratchimg_tests::{Bounded, assert_no_output, fixture_copy, run_bounded, tool};

/// The tool in `dir` with `args`, bounded to 2 GiB of address space, `stdin` given.
fn bounded(dir: &Path, args: &[&str], stdin: Stdio) -> Bounded {
    let mut command = tool(dir);
    command.args(args);
    run_bounded(&command, 2048, stdin)
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

/// Refused at once: exit 1, the message, under 10 s and 64 MiB, nothing written.
fn assert_refused(run: &Bounded, what: &str, message: &str, dir: &Path) {
    assert_refused_within(run, what, message, dir, 64);
}

/// [`assert_refused`] with a bound of `mib` MiB.
fn assert_refused_within(run: &Bounded, what: &str, message: &str, dir: &Path, mib: u64) {
    run.report(what);
    run.assert_refused(message, 10, mib);
    assert!(run.output.stdout.is_empty(), "{what}: nothing on stdout");
    assert_no_output(dir, &dir.join("out.tar"));
}

#[test]
fn key_and_certificate_files_that_are_no_files_are_refused_at_once() {
    let dir = fixture_copy("multi-bin");
    let root = dir.path();
    let fifo = root.join("fifo.pem");
    mkfifo(&fifo);
    for (flag, file, kind) in [
        ("--sign-key", "/dev/zero", "a character device"),
        ("--sign-key", "fifo.pem", "a FIFO (named pipe)"),
    ] {
        let run = bounded(
            root,
            &["--bin", "server", "-o", "out.tar", flag, file],
            Stdio::null(),
        );
        assert_refused(
            &run,
            &format!("{flag} {file}"),
            &format!(
                "error: could not read {flag} {file}\n\nCaused by:\n  it is {kind}, not a file\n"
            ),
            root,
        );
    }
    // The CA file is read when the registry is connected: before anything else is.
    let run = bounded(
        root,
        &[
            "index",
            "--push",
            "127.0.0.1:9/x:y",
            "--registry-ca",
            "fifo.pem",
            "127.0.0.1:9/x:a",
        ],
        Stdio::null(),
    );
    assert_refused(
        &run,
        "--registry-ca FIFO",
        "error: could not read --registry-ca fifo.pem\n\nCaused by:\n  it is a FIFO (named pipe), not a file\n",
        root,
    );
    let run = bounded(
        root,
        &["verify", "127.0.0.1:9/x:a", "--key", "/dev/zero"],
        Stdio::null(),
    );
    assert_refused(
        &run,
        "verify --key /dev/zero",
        "error: could not read --key /dev/zero\n\nCaused by:\n  it is a character device, not a file\n",
        root,
    );
}

#[test]
fn endless_stdin_and_yaml_that_is_no_file_are_refused_at_once() {
    let dir = fixture_copy("multi-bin");
    let root = dir.path();
    let zero = || Stdio::from(std::fs::File::open("/dev/zero").unwrap());
    let run = bounded(
        root,
        &[
            "--bin",
            "server",
            "-o",
            "out.tar",
            "--registry-user",
            "u",
            "--registry-password-stdin",
        ],
        zero(),
    );
    assert_refused(
        &run,
        "--registry-password-stdin < /dev/zero",
        "error: could not read the registry password from --registry-password-stdin\n\nCaused by:\n  it gave more than the 64.0 KiB it may\n",
        root,
    );
    let run = bounded(
        root,
        &["--bin", "server", "-o", "out.tar", "--sign-key-stdin"],
        zero(),
    );
    assert_refused(
        &run,
        "--sign-key-stdin < /dev/zero",
        "it gave more than the 64.0 KiB it may",
        root,
    );
    let fifo = root.join("deploy.yaml");
    mkfifo(&fifo);
    for file in ["deploy.yaml", "/dev/zero"] {
        let run = bounded(root, &["resolve", "-f", file], Stdio::null());
        assert_refused(
            &run,
            &format!("resolve -f {file}"),
            "help: give -f a YAML file, a directory or -",
            root,
        );
    }
    // Read up to its bound of 64 MiB, then refused.
    let run = bounded(root, &["resolve", "-f", "-"], zero());
    assert_refused_within(
        &run,
        "resolve -f - < /dev/zero",
        "error: could not read YAML from stdin\n\nCaused by:\n  it gave more than the 64.0 MiB it may\n",
        root,
        160,
    );
}

#[test]
fn a_private_key_others_can_read_is_warned_of() {
    use std::os::unix::fs::PermissionsExt;
    let dir = fixture_copy("multi-bin");
    let root = dir.path();
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out", "key.pem"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(made.success());
    let key = root.join("key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A package that is not there fails the run just after the key is read.
    let args = ["-p", "nope", "-o", "out.tar", "--sign-key", "key.pem"];
    let run = bounded(root, &args, Stdio::null());
    assert!(
        run.stderr().starts_with(
            "warning: --sign-key key.pem is a private key that others can read (mode 0644)\nhelp: keep it to yourself with `chmod 600`\n"
        ),
        "{}",
        run.stderr()
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = bounded(root, &args, Stdio::null());
    assert!(!run.stderr().contains("warning"), "{}", run.stderr());
}
