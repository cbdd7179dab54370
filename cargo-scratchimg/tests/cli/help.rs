//! `--help` of the tool and of each subcommand, as snapshots.

use super::*;
use snapbox::file;

#[test]
fn help_documents_every_option() {
    let dir = tempfile::tempdir().unwrap();
    scratchimg(dir.path())
        .arg("--help")
        .assert()
        .success()
        .stdout_eq(file!["snapshots/help.txt"]);
}

#[test]
fn subcommand_help_documents_every_option() {
    let dir = tempfile::tempdir().unwrap();
    for (command, snapshot) in [
        ("run", file!["snapshots/help-run.txt"]),
        ("resolve", file!["snapshots/help-resolve.txt"]),
        ("index", file!["snapshots/help-index.txt"]),
        ("verify", file!["snapshots/help-verify.txt"]),
    ] {
        scratchimg(dir.path())
            .args([command, "--help"])
            .assert()
            .success()
            .stdout_eq(snapshot);
    }
}
