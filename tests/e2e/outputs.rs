//! Outputs are whole, readable and alone: several runs writing one OCI directory or one tar at
//! the same time all succeed, one after the other, and leave one whole, readable output with
//! the modes any file a tool writes gets, and nothing temporary beside it; what a killed run
//! left there is cleaned up by the next.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use scratchimg_tests::{
    assert_success, fixture_copy, require_musl_target, require_tool, run_ok, tool,
};

/// This process's umask, which the tool inherits, read without changing it.
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
        .expect("a Umask line")
}

fn build(dir: &Path, args: &[&str]) -> Command {
    let mut command = tool(dir);
    command
        .args(["--bin", "server", "--message-format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Every file and folder under `path` (itself included) with its mode bits.
fn modes(path: &Path) -> Vec<(String, u32, bool)> {
    let meta = std::fs::metadata(path).unwrap();
    let mut all = vec![(
        path.display().to_string(),
        meta.mode() & 0o7777,
        meta.is_dir(),
    )];
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            all.extend(modes(&entry.path()));
        }
    }
    all
}

/// Starts `runs` runs at once, all writing to `output`; each must succeed.
fn at_once(dir: &Path, args: &[&str], runs: usize) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..runs)
        .map(|_| build(dir, args).spawn().unwrap())
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert_success(&tool(dir), &output);
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect()
}

fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn concurrent_runs_to_one_output_all_succeed_one_after_the_other() {
    require_musl_target();
    require_tool("skopeo", &["--version"]);
    let dir = fixture_copy("multi-bin");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // One run first, so the others find the build done and race at writing.
    let layout = out.join("layout");
    let layout_arg = layout.to_str().unwrap();
    let first = build(dir.path(), &["--format", "oci-dir", "-o", layout_arg])
        .output()
        .unwrap();
    assert_success(&tool(dir.path()), &first);
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();

    for result in at_once(dir.path(), &["--format", "oci-dir", "-o", layout_arg], 4) {
        assert_eq!(result["digest"], first["digest"]);
    }
    let tar = out.join("server.tar");
    for result in at_once(dir.path(), &["-o", tar.to_str().unwrap()], 4) {
        assert_eq!(result["digest"], first["digest"]);
    }

    // One whole layout and one whole tar, readable as what they are, nothing else.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "layout",
            "layout.intoto.json",
            "layout.spdx.json",
            "server.tar",
            "server.tar.intoto.json",
            "server.tar.spdx.json"
        ]
    );
    assert!(hidden(&out).is_empty(), "{:?}", hidden(&out));
    for reference in [
        format!("oci:{}", layout.display()),
        format!("oci-archive:{}", tar.display()),
    ] {
        let raw = run_ok(Command::new("skopeo").args(["inspect", "--raw", &reference]));
        let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(manifest["schemaVersion"], 2, "{reference}");
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], first["digest"]);

    // What a run killed midway leaves: its temporary folder and file, and the old layout moved
    // aside between the two renames of the swap (the output itself missing). The next run
    // cleans up and writes whole.
    std::fs::rename(&layout, out.join(".layout.Zz99Yy.old")).unwrap();
    std::fs::create_dir_all(out.join(".layout.Ab12Cd/blobs/sha256")).unwrap();
    std::fs::write(out.join(".server.tar.Qq11Ww.tmp"), b"half a tar").unwrap();
    for args in [
        &["--format", "oci-dir", "-o", layout_arg][..],
        &["-o", tar.to_str().unwrap()][..],
    ] {
        let again = build(dir.path(), args).output().unwrap();
        assert_success(&tool(dir.path()), &again);
    }
    assert!(hidden(&out).is_empty(), "{:?}", hidden(&out));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], first["digest"]);

    // The modes of any file a tool writes: 0666 and 0777 less the umask.
    let umask = umask();
    for path in [out.join("server.tar"), out.join("server.tar.spdx.json")]
        .iter()
        .flat_map(|p| modes(p))
        .chain(modes(&layout))
    {
        let (name, mode, is_dir) = path;
        let want = if is_dir { 0o777 } else { 0o666 } & !umask;
        assert_eq!(mode, want, "{name}: {mode:o}");
    }
}

/// An SBOM that cannot be written beside the tar (a folder is where it goes) fails the run,
/// names it, and leaves the tar of the run before as it was, with nothing temporary beside it.
#[test]
fn an_sbom_that_cannot_be_written_leaves_the_old_tar() {
    require_musl_target();
    let dir = fixture_copy("multi-bin");
    let tar = dir.path().join("server.tar");
    let first = build(dir.path(), &["-o", tar.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&tool(dir.path()), &first);
    let before = std::fs::read(&tar).unwrap();
    let sbom = dir.path().join("server.tar.spdx.json");
    std::fs::remove_file(&sbom).unwrap();
    std::fs::create_dir(&sbom).unwrap();
    // Another timestamp: the new tar would differ from the old one.
    let again = build(dir.path(), &["-o", tar.to_str().unwrap()])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{stderr}");
    assert!(again.stdout.is_empty());
    assert!(
        stderr.contains(&format!("error: could not write {}", sbom.display())),
        "{stderr}"
    );
    assert!(
        std::fs::read(&tar).unwrap() == before,
        "the tar was replaced"
    );
    assert!(hidden(dir.path()).is_empty(), "{:?}", hidden(dir.path()));
}
