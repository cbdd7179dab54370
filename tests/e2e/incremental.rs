//! What one run keeps for the next: the next run starts the last run's `cargo build` before
//! planning and goes on with it only when the plan is the same; a changed plan or a failed
//! run never shows the build it stopped. The program is read while that build runs, and the
//! read is used only when cargo left the file as it was.

use std::path::Path;
use std::process::{Command, Output};

use scratchimg_tests::{
    assert_success, fixture_copy, host_musl_target, require_musl_target, tar_member, tool,
};

const STARTED: &str = "early: the last run's build";
const WENT_ON: &str = "went on with the build started early";

/// `cargo scratchimg -v --message-format json` with `args` in `dir`, with the default target
/// directory.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = tool(dir);
    command.args(["-v", "--message-format", "json"]).args(args);
    command
}

/// [`command`] for the `server` binary.
fn run(dir: &Path) -> Output {
    command(dir, &["--bin", "server"]).output().unwrap()
}

/// A successful run with `args`: its result, and what it said.
fn ok_with(dir: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let mut command = command(dir, args);
    let output = command.output().unwrap();
    assert_success(&command, &output);
    let result = serde_json::from_slice(&output.stdout).unwrap();
    (result, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn ok(dir: &Path) -> (serde_json::Value, String) {
    ok_with(dir, &["--bin", "server"])
}

/// The lines where cargo says it finished a build.
fn cargo_finished(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Finished `"))
        .collect()
}

#[test]
fn a_rerun_goes_on_with_the_build_it_started_and_a_new_plan_stops_it() {
    require_musl_target();
    let dir = fixture_copy("multi-bin");

    let (first, stderr) = ok(dir.path());
    assert!(
        !stderr.contains(STARTED),
        "nothing to start early yet:\n{stderr}"
    );

    let (second, stderr) = ok(dir.path());
    assert!(
        stderr.contains(WENT_ON),
        "the rerun plans the same build:\n{stderr}"
    );
    assert_eq!(
        cargo_finished(&stderr).len(),
        1,
        "one build shown:\n{stderr}"
    );
    assert_eq!(second["digest"], first["digest"]);

    // Another profile from the settings: the build started early is the old one, and stopped.
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text}\n[package.metadata.scratchimg]\nprofile = \"dev\"\n"),
    )
    .unwrap();
    let (dev, stderr) = ok(dir.path());
    assert!(stderr.contains(STARTED), "{stderr}");
    assert!(!stderr.contains(WENT_ON), "the plan changed:\n{stderr}");
    let finished = cargo_finished(&stderr);
    assert_eq!(finished.len(), 1, "only the planned build shown:\n{stderr}");
    assert!(finished[0].contains("scratchimg-dev"), "{stderr}");
    assert_ne!(dev["digest"], second["digest"]);

    // A run that fails after starting the build early shows only its error.
    std::fs::write(
        &manifest,
        format!("{text}\n[package.metadata.scratchimg]\ntags = [\"UPPER:case\"]\n"),
    )
    .unwrap();
    let output = run(dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(STARTED), "{stderr}");
    assert!(stderr.contains("UPPER"), "{stderr}");
    assert!(
        cargo_finished(&stderr).is_empty(),
        "a stopped build showed:\n{stderr}"
    );
    assert!(!stderr.contains("Compiling"), "{stderr}");
}

/// Stress: a build of tokio with thin LTO from a clean profile directory, again and again, each
/// time after the last run's build was started early, compiled dependencies for a while and was
/// stopped (the plan's features differ in the root crate alone, so both builds write the same
/// rlibs). No rustc of a stopped build may still write one that the planned build reads:
/// every run succeeds and its program runs.
#[test]
fn builds_after_a_stopped_early_build_never_lose_an_rlib() {
    require_musl_target();
    let dir = fixture_copy("threads");
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let profile_dir = dir
        .path()
        .join(format!("target/{}/scratchimg-release", host_musl_target()));
    for round in 0..4 {
        let features = if round % 2 == 0 { "[]" } else { "[\"extra\"]" };
        std::fs::write(
            &manifest,
            format!(
                "{text}\n[package.metadata.scratchimg]\nfeatures = {features}\nallow = [\"musl-malloc\"]\n"
            ),
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&profile_dir);
        let mut command = command(dir.path(), &[]);
        command
            .env("CARGO_PROFILE_RELEASE_LTO", "thin")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "4");
        let output = command.output().unwrap();
        assert_success(&command, &output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if round > 0 {
            assert!(stderr.contains(STARTED), "round {round}:\n{stderr}");
            assert!(!stderr.contains(WENT_ON), "round {round}:\n{stderr}");
        }
        let program = profile_dir.join("threads");
        let ran = Command::new(&program).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout),
            "threads\n",
            "round {round}"
        );
    }
}

const READ_AHEAD: &str = "while cargo found it up to date";

/// `/app/<bin>` in the top layer of the image in `archive`, as `result` describes it.
fn program_in(archive: &Path, result: &serde_json::Value, bin: &str) -> Vec<u8> {
    let layers = result["layers"].as_array().unwrap();
    let digest = layers.last().unwrap()["digest"].as_str().unwrap();
    let layer = tempfile::NamedTempFile::new().unwrap();
    let blob = tar_member(archive, &format!("blobs/sha256/{}", &digest[7..]));
    std::fs::write(layer.path(), blob).unwrap();
    tar_member(layer.path(), &format!("app/{bin}"))
}

/// [`ok_with`] `-o ARCHIVE` and `args`.
fn written(dir: &Path, args: &[&str], archive: &Path) -> (serde_json::Value, String) {
    let archive = archive.to_str().unwrap();
    ok_with(dir, &[&["-o", archive], args].concat())
}

/// Where cargo puts `bin` of the fixture in `dir`.
fn built(dir: &Path, bin: &str) -> std::path::PathBuf {
    dir.join(format!(
        "target/{}/scratchimg-release/{bin}",
        host_musl_target()
    ))
}

/// The program is read while cargo checks that it is up to date, and that read is used only
/// when cargo left the file as it was: after a code change the image holds the new program,
/// byte for byte the one cargo built.
#[test]
fn the_program_read_beside_cargo_is_used_only_when_cargo_left_it() {
    require_musl_target();
    let dir = fixture_copy("multi-bin");
    let archive = dir.path().join("server.tar");
    let run = || written(dir.path(), &["--bin", "server"], &archive);
    let built = built(dir.path(), "server");

    let (first, stderr) = run();
    assert!(!stderr.contains(READ_AHEAD), "nothing built yet:\n{stderr}");
    let (second, stderr) = run();
    let line = stderr.lines().find(|l| l.contains(READ_AHEAD));
    assert!(
        line.is_some_and(|l| l.contains(&built.display().to_string())),
        "the rerun reads the program beside cargo:\n{stderr}"
    );
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(
        program_in(&archive, &second, "server"),
        std::fs::read(&built).unwrap()
    );

    // A code change: cargo links a new program where the old one was read.
    let source = dir.path().join("src/bin/server.rs");
    std::fs::write(&source, "fn main() { println!(\"server, changed\"); }\n").unwrap();
    let (third, stderr) = run();
    assert!(stderr.contains("Compiling"), "{stderr}");
    assert!(!stderr.contains(READ_AHEAD), "{stderr}");
    assert_ne!(third["digest"], second["digest"]);
    let program = program_in(&archive, &third, "server");
    assert_eq!(program, std::fs::read(&built).unwrap());
    assert!(
        program.windows(15).any(|w| w == b"server, changed"),
        "the image holds the program built from the change"
    );
}

/// Two binaries in one image, one of them changed: the other is read beside cargo, the changed
/// one after cargo relinked it, and the image holds both as cargo left them.
#[test]
fn of_two_binaries_only_the_one_cargo_left_is_read_beside_it() {
    require_musl_target();
    let dir = fixture_copy("multi-bin");
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let settings = "[package.metadata.scratchimg]\nbins = [\"server\", \"migrate\"]\n";
    std::fs::write(&manifest, format!("{text}\n{settings}")).unwrap();
    let archive = dir.path().join("both.tar");
    let run = || written(dir.path(), &[], &archive);
    let read_ahead = |stderr: &str, bin: &str| {
        let path = built(dir.path(), bin).display().to_string();
        stderr
            .lines()
            .any(|l| l.contains(READ_AHEAD) && l.contains(&format!("{path} ")))
    };

    run();
    let (_, stderr) = run();
    assert!(
        read_ahead(&stderr, "server") && read_ahead(&stderr, "migrate"),
        "{stderr}"
    );

    let source = dir.path().join("src/bin/migrate.rs");
    std::fs::write(&source, "fn main() { println!(\"migrate, changed\"); }\n").unwrap();
    let (result, stderr) = run();
    assert!(read_ahead(&stderr, "server"), "{stderr}");
    assert!(!read_ahead(&stderr, "migrate"), "{stderr}");
    for bin in ["server", "migrate"] {
        let program = program_in(&archive, &result, bin);
        assert_eq!(
            program,
            std::fs::read(built(dir.path(), bin)).unwrap(),
            "{bin}"
        );
    }
    let migrate = program_in(&archive, &result, "migrate");
    assert!(migrate.windows(16).any(|w| w == b"migrate, changed"));
}
