//! Tests of [`super`]: outputs staged, committed together, kept, and cleaned up after.

use std::os::unix::fs::MetadataExt;

use super::super::output_dir::leftover_of;
use super::*;

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn file_appears_only_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/out.tar");
    let pending = PendingFile::create(&path).unwrap();
    assert!(!path.exists());
    let staged = pending.stage(b"data").unwrap();
    assert!(!path.exists(), "staged is not in place");
    commit_all(vec![staged], &[]).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"data");
    assert_eq!(
        names(&dir.path().join("sub")),
        ["out.tar"],
        "no temp file left"
    );
}

#[test]
fn dropped_file_leaves_the_old_output_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tar");
    fs::write(&path, b"old").unwrap();
    drop(PendingFile::create(&path).unwrap());
    drop(PendingFile::create(&path).unwrap().stage(b"new").unwrap());
    assert_eq!(fs::read(&path).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["out.tar"]);
}

#[test]
fn unwritable_paths_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("file"), b"").unwrap();
    let err = format!(
        "{:#}",
        PendingFile::create(&dir.path().join("file/out.tar"))
            .err()
            .unwrap()
    );
    assert!(
        err.contains("could not create the output directory"),
        "{err}"
    );
    let err = PendingFile::create(dir.path()).err().unwrap().to_string();
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn directory_replaces_an_old_layout_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout");
    let write = |files: &[(&'static str, &'static str)]| {
        let contents: Vec<(&str, Content)> =
            files.iter().map(|(n, c)| (*n, Content::from(*c))).collect();
        let staged = PendingDir::create(&path)
            .unwrap()
            .stage(contents.iter().map(|(n, c)| (*n, c)))
            .unwrap();
        commit_all(vec![staged], &[]).unwrap();
    };
    write(&[("oci-layout", "1"), ("blobs/a", "a")]);
    write(&[("oci-layout", "2")]);
    assert_eq!(fs::read(path.join("oci-layout")).unwrap(), b"2");
    assert!(!path.join("blobs/a").exists());
    assert_eq!(names(dir.path()), ["layout"]);
    fs::write(dir.path().join("notes"), b"").unwrap();
    let err = PendingDir::create(&dir.path().join("notes")).err().unwrap();
    assert!(err.to_string().contains("is not an OCI layout"), "{err}");
}

/// Outputs get 0666 and 0777 less the umask, as any file a tool writes, not 0600.
#[test]
fn outputs_get_the_usual_modes() {
    let dir = tempfile::tempdir().unwrap();
    // This process's umask, read without changing it.
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
        .unwrap();
    let file = dir.path().join("out.tar");
    PendingFile::create(&file).unwrap().commit(b"x").unwrap();
    assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o666 & !umask);
    let layout = dir.path().join("layout");
    let staged = PendingDir::create(&layout)
        .unwrap()
        .stage([
            ("oci-layout", &Content::from("1")),
            ("blobs/sha256/a", &Content::from("a")),
        ])
        .unwrap();
    commit_all(vec![staged], &[]).unwrap();
    for (path, mode) in [
        (layout.clone(), 0o777),
        (layout.join("blobs/sha256"), 0o777),
        (layout.join("oci-layout"), 0o666),
        (layout.join("blobs/sha256/a"), 0o666),
    ] {
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, mode & !umask, "{}", path.display());
    }
}

/// A run's outputs go in place together, and documents an earlier run left go.
#[test]
fn outputs_are_committed_together_and_stale_files_removed() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("out.tar");
    let sbom = dir.path().join("out.tar.spdx.json");
    let stale = dir.path().join("out.tar.linux-arm64.spdx.json");
    fs::write(&tar, b"old").unwrap();
    fs::write(&stale, b"{}").unwrap();
    let staged = vec![
        PendingFile::create(&tar).unwrap().stage(b"new").unwrap(),
        PendingFile::create(&sbom).unwrap().stage(b"doc").unwrap(),
    ];
    assert_eq!(
        fs::read(&tar).unwrap(),
        b"old",
        "nothing moves while staging"
    );
    commit_all(staged, std::slice::from_ref(&stale)).unwrap();
    assert_eq!(fs::read(&tar).unwrap(), b"new");
    assert_eq!(fs::read(&sbom).unwrap(), b"doc");
    assert_eq!(names(dir.path()), ["out.tar", "out.tar.spdx.json"]);
}

/// When one output of a run cannot be staged, the run stops before [`commit_all`]: what was
/// staged is dropped, and nothing replaces what was there.
#[test]
fn a_failed_staging_replaces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("out.tar");
    fs::write(&tar, b"old").unwrap();
    let layout = dir.path().join("layout");
    let staged = PendingFile::create(&tar).unwrap().stage(b"new").unwrap();
    // `x` is a file, so nothing can go inside it.
    let error = PendingDir::create(&layout)
        .unwrap()
        .stage([("x", &Content::from("1")), ("x/y", &Content::from("2"))])
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        format!("could not write {}", layout.display())
    );
    drop(staged);
    assert_eq!(fs::read(&tar).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["out.tar"]);
}

/// An output found holding what this run would write, then changed by another process
/// before this run's commit (a run writing another image there): written at the commit,
/// with the directory locked, and said; one still as it was found is left as it is.
#[test]
fn a_kept_output_changed_before_the_commit_is_written_then() {
    let dir = tempfile::tempdir().unwrap();
    let written = WrittenFiles::none(&crate::tool_dir::ToolDir::new(dir.path()));
    let tar = dir.path().join("out.tar");
    let layout = dir.path().join("layout");
    fs::write(&tar, b"image").unwrap();
    let (image, key) = (Content::from("image"), crate::image::sha256(b"image"));
    let files = [
        ("oci-layout".to_string(), Content::from("1")),
        ("blobs/a".to_string(), Content::from("a")),
    ];
    fs::create_dir_all(layout.join("blobs")).unwrap();
    fs::write(layout.join("oci-layout"), b"1").unwrap();
    fs::write(layout.join("blobs/a"), b"a").unwrap();
    let stage = || {
        vec![
            (PendingFile::create(&tar).unwrap())
                .stage_unless_held(&image, &key, &written)
                .unwrap(),
            (PendingDir::create(&layout).unwrap())
                .stage_unless_held(&files, &written)
                .unwrap(),
        ]
    };
    let staged = stage();
    assert!(staged.iter().all(Staged::is_kept));
    // Another run puts its image in both places meanwhile.
    let other = dir.path().join("other.tar");
    fs::write(&other, b"other").unwrap();
    fs::rename(&other, &tar).unwrap();
    fs::remove_dir_all(&layout).unwrap();
    fs::create_dir_all(layout.join("blobs")).unwrap();
    fs::write(layout.join("oci-layout"), b"1").unwrap();
    fs::write(layout.join("blobs/a"), b"b").unwrap();
    let committed = commit_all(staged, &[]).unwrap();
    assert_eq!(fs::read(&tar).unwrap(), b"image");
    assert_eq!(fs::read(layout.join("blobs/a")).unwrap(), b"a");
    assert_eq!(committed.rewritten, [tar.clone(), layout.clone()]);
    assert_eq!(committed.placed.len(), 3);
    for placed in &committed.placed {
        assert_eq!(Some(placed.identity), FileIdentity::of_file(&placed.path));
    }
    assert_eq!(names(dir.path()), ["layout", "out.tar"]);
    // Left as it was found, it stays as it is.
    let before = FileIdentity::of_file(&tar);
    let committed = commit_all(stage(), &[]).unwrap();
    assert!(committed.rewritten.is_empty());
    assert_eq!(FileIdentity::of_file(&tar), before);
}

/// A killed run leaves temporary files and directories, and maybe the old layout moved
/// aside between the two renames: the next commit of those outputs cleans them up (the old
/// layout back in place, then replaced), and leaves a live run's alone.
#[test]
fn what_a_killed_run_left_is_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    fs::create_dir_all(dir.path().join(".layout.Ab12Cd/blobs")).unwrap();
    fs::create_dir_all(dir.path().join(".layout.Zz99Yy.old")).unwrap();
    fs::write(dir.path().join(".layout.Zz99Yy.old/oci-layout"), b"old").unwrap();
    fs::write(dir.path().join(".out.tar.Qq11Ww.tmp"), b"partial").unwrap();
    fs::write(dir.path().join(".layout.notes"), b"not ours").unwrap();
    let one = [("oci-layout", &Content::from("new"))];
    // Other runs, alive, with outputs staged there.
    let live = PendingDir::create(&dir.path().join("other"))
        .unwrap()
        .stage(one)
        .unwrap();
    let racing = PendingDir::create(&layout).unwrap().stage(one).unwrap();

    let file = PendingFile::create(&dir.path().join("out.tar")).unwrap();
    let ours = PendingDir::create(&layout).unwrap().stage(one).unwrap();
    commit_all(vec![file.stage(b"x").unwrap(), ours], &[]).unwrap();
    assert_eq!(fs::read(layout.join("oci-layout")).unwrap(), b"new");
    let left = names(dir.path());
    assert!(left.contains(&".layout.notes".to_string()), "{left:?}");
    assert!(
        !left
            .iter()
            .any(|n| n.contains("Ab12Cd") || n.contains("Zz99Yy") || n.contains("Qq11Ww")),
        "{left:?}"
    );
    let live_dirs = |output: &str| {
        let of = |n: &&String| leftover_of(n).is_some_and(|(o, _)| o == output);
        left.iter().filter(of).count()
    };
    assert_eq!(
        live_dirs("other"),
        1,
        "a live run's directory stays: {left:?}"
    );
    assert_eq!(live_dirs("layout"), 1, "so does one of the same output");
    drop((live, racing));
    assert_eq!(names(dir.path()), [".layout.notes", "layout", "out.tar"]);
}
