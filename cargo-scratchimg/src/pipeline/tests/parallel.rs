//! Images assembled and written side by side give what one after another gives.

use std::collections::BTreeMap;

use super::*;

/// A workspace of `count` binary packages, `m0`, `m1`, …
fn members(count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..count).map(|i| format!("\"m{i}\"")).collect();
    let write = |path: &str, text: &str| write(&dir, path, text);
    write(
        "Cargo.toml",
        &format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n",
            names.join(", ")
        ),
    );
    for i in 0..count {
        write(
            &format!("m{i}/Cargo.toml"),
            &format!("[package]\nname = \"m{i}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        );
        write(&format!("m{i}/src/main.rs"), "fn main() {}\n");
    }
    dir
}

/// Every file a run wrote, by name, and all it said but the run's time, with `out` called OUT.
fn run_in(ws: &Path, jobs: usize) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let out = ws.join(format!("out-{jobs}"));
    let mut env = env(ws);
    env.jobs = Some(jobs.to_string());
    let mut options = options(&out, Format::Archive);
    options.verify = false;
    options.platforms = Some("linux/amd64".into());
    // Nothing cached from the other run: every layer compressed anew.
    options.cargo.target_dir = Some(ws.join(format!("target-{jobs}")));
    let report = Capture::new(Verbosity::Verbose);
    run_with(&options, &env, &report, fake_compile).expect("the run succeeds");
    let files = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    let said = report
        .events()
        .into_iter()
        .map(|event| format!("{event:?}"))
        .filter(|event| !event.contains("\"Finished\""))
        .map(|event| {
            let event = event.replace(&out.display().to_string(), "OUT");
            event.replace(&format!("target-{jobs}"), "TARGET")
        })
        .collect();
    (files, said)
}

#[test]
fn images_side_by_side_give_the_bytes_and_order_of_one_after_another() {
    let ws = members(6);
    let (serial_files, serial_said) = run_in(ws.path(), 1);
    let (files, said) = run_in(ws.path(), 4);
    assert_eq!(
        files.len(),
        6 * 3,
        "each image, its provenance and its SBOM"
    );
    assert!(files == serial_files, "the same files, byte for byte");
    assert_eq!(
        said, serial_said,
        "the same lines and results, in the same order"
    );
}

/// `SCRATCHIMG_JOBS` that is not 1 or more is refused before anything is built or written.
#[test]
fn jobs_that_are_not_a_count_are_refused() {
    let ws = members(2);
    let out = ws.path().join("out");
    let mut options = options(&out, Format::Archive);
    options.verify = false;
    for value in ["0", "many", "-2"] {
        let mut env = env(ws.path());
        env.jobs = Some(value.to_string());
        let compiled = std::cell::Cell::new(false);
        let compile = |plan: &Plan, env: &Env, dir: &Path, early, report: &dyn Reporter| {
            compiled.set(true);
            fake_compile(plan, env, dir, early, report)
        };
        let report = Capture::new(Verbosity::Normal);
        let error = run_with(&options, &env, &report, compile).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "SCRATCHIMG_JOBS={value} is not a number of images to make at once\nhelp: set it to 1 or more (1 makes them one after another), or unset it for one per core"
            )
        );
        assert!(!compiled.get(), "nothing built");
        assert!(!out.exists(), "nothing written");
    }
}
