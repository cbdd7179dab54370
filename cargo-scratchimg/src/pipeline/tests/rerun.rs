//! Runs after a first one: what did not change is left as it is, and what did is written.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;

use super::*;

/// Each file in `dir`: its inode and modification time, which a write changes.
fn files(dir: &Path) -> BTreeMap<String, (u64, i64, i64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| {
            let meta = entry.metadata().unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, (meta.ino(), meta.mtime(), meta.mtime_nsec()))
        })
        .collect()
}

/// The fake compile step, with the binaries of `changed` built from other code.
fn compile_changing(
    changed: &str,
) -> impl Fn(&Plan, &Env, &Path, EarlyBuild, &dyn Reporter) -> Result<Vec<PlatformBuild>> + '_ {
    move |plan, env, target_dir, early, report| {
        let mut builds = fake_compile(plan, env, target_dir, early, report)?;
        for binary in builds.iter_mut().flat_map(|b| &mut b.binaries) {
            if binary.package == changed {
                let marker = format!("{} {} changed", binary.name, binary.target.triple);
                let bytes = static_elf(binary.target.arch, &marker);
                binary.sha256 = crate::image::sha256(&bytes);
                binary.bytes = bytes.into();
            }
        }
        Ok(builds)
    }
}

/// A workspace whose images a first run wrote in `format` to `out`, and how that run was
/// made, for the next.
struct FirstRun {
    /// Kept while the test runs.
    _ws: tempfile::TempDir,
    out: PathBuf,
    env: Env,
    options: Options,
    outcomes: Vec<Outcome>,
}

fn first_run(format: Format) -> FirstRun {
    let ws = workspace();
    let out = ws.path().join("out");
    let env = env(ws.path());
    let options = Options {
        verify: false,
        ..options(&out, format)
    };
    let report = Capture::new(Verbosity::Normal);
    let outcomes = run_with(&options, &env, &report, fake_compile).expect("the first run succeeds");
    FirstRun {
        _ws: ws,
        out,
        env,
        options,
        outcomes,
    }
}

/// Nothing changed: every file is left as it is, though each is checked; an archive that is
/// no longer the file the tool wrote is read, kept when it holds the image, else written.
#[test]
fn a_rerun_with_nothing_changed_leaves_every_output_as_it_is() {
    for format in [Format::Archive, Format::OciDir] {
        let first = first_run(format);
        let written = files(&first.out);
        let report = Capture::new(Verbosity::Normal);
        let again = run_with(&first.options, &first.env, &report, fake_compile)
            .expect("the rerun succeeds");
        assert_eq!(
            files(&first.out),
            written,
            "{format:?}: every file left as it is"
        );
        assert_eq!(again, first.outcomes, "the same results");
        assert!(
            report.statuses("Writing").is_empty(),
            "{:?}",
            report.events()
        );
        assert_eq!(report.statuses("Fresh").len(), written.len());
    }
}

#[test]
fn an_output_that_is_another_file_now_is_read_and_kept_only_when_it_holds_the_image() {
    let first = first_run(Format::Archive);
    let (out, env, options) = (&first.out, &first.env, &first.options);
    let archive = out.join("api-0.2.0.tar");
    let bytes = std::fs::read(&archive).unwrap();
    let replace = |with: &[u8]| {
        let new = out.join("new");
        std::fs::write(&new, with).unwrap();
        std::fs::rename(&new, &archive).unwrap();
        files(out)
    };

    // A copy of the same bytes, another file: read, and left as it is.
    let copied = replace(&bytes);
    run_with(options, env, &Capture::new(Verbosity::Normal), fake_compile).unwrap();
    assert_eq!(files(out), copied);

    // Other bytes of the same size: written again, the rest left as it is.
    let mut other = bytes.clone();
    let middle = other.len() / 2;
    other[middle] ^= 1;
    let replaced = replace(&other);
    let report = Capture::new(Verbosity::Normal);
    run_with(options, env, &report, fake_compile).unwrap();
    assert_eq!(std::fs::read(&archive).unwrap(), bytes);
    let now = files(out);
    assert_ne!(now["api-0.2.0.tar"], replaced["api-0.2.0.tar"]);
    let rest = |files: &BTreeMap<_, _>| {
        let mut files = files.clone();
        files.remove("api-0.2.0.tar");
        files
    };
    assert_eq!(rest(&now), rest(&replaced));
    assert_eq!(report.statuses("Writing"), [archive.display().to_string()]);
}

/// One member of the workspace changed: only its files are written.
#[test]
fn a_rerun_with_one_member_changed_writes_only_its_outputs() {
    let first = first_run(Format::Archive);
    let (out, env, options) = (&first.out, &first.env, &first.options);
    let before = files(out);
    let report = Capture::new(Verbosity::Normal);
    let outcomes = run_with(options, env, &report, compile_changing("worker")).unwrap();
    let after = files(out);
    for (name, identity) in &before {
        // The worker's provenance names its image by digest: it is written too.
        if name.starts_with("worker") {
            assert_ne!(&after[name], identity, "{name} is written");
        } else {
            assert_eq!(&after[name], identity, "{name} is left as it is");
        }
    }
    let worker = read_archive(outcomes[1].path.as_ref().unwrap()).unwrap();
    assert_eq!(worker.digest().to_string(), outcomes[1].digest);
    assert_eq!(
        report.statuses("Writing").len(),
        4,
        "archive, provenance, 2 SBOMs"
    );
}
