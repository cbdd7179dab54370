//! Outputs that appear whole or not at all, together, and alone.
//!
//! An output is claimed before the build ([`PendingFile`], [`PendingDir`]): a temporary file or
//! directory beside its path, so an unwritable path fails in a second instead of after the
//! compile. After the build each is written and flushed to disk there ([`Staged`]), and only
//! once every output of the run is staged are they renamed into place together
//! ([`commit_all`]): when one cannot be written, none replaces what was there.
//!
//! Runs that write to one directory take turns: claims and commits hold a lock on the directory
//! (`flock`, released when the process ends however it ends). Under it, what a killed run left
//! is cleaned up: its temporary files and directories (each live one is locked by its owner),
//! and an old OCI directory moved aside between the two renames of a commit, which goes back in
//! place when the output is missing. Outputs get the modes any file a tool writes gets (0666 and
//! 0777 less the umask), not the 0600 of temporary files.

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tempfile::{NamedTempFile, TempDir};

use crate::dir_lock::DirLock;
use crate::image::Content;
use crate::interrupt::{self, Temporary, abandoned};

/// Copies `reader` into `writer` in large chunks: blobs are tens of megabytes.
pub(crate) fn copy(reader: &mut dyn Read, writer: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0; 1 << 20];
    let mut total = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The directory `path` is in: `.` for a bare file name.
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn parent_dir(path: &Path) -> Result<PathBuf> {
    let parent = dir_of(path);
    fs::create_dir_all(&parent).with_context(|| {
        format!(
            "could not create the output directory {}\nhelp: choose another path with -o",
            parent.display()
        )
    })?;
    Ok(parent)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `.<name>.`: what the temporary files and directories beside `path` begin with.
fn prefix(path: &Path) -> String {
    format!(".{}.", file_name(path))
}

/// The random part of their names, `tempfile`'s `XXXXXX`.
const RANDOM: usize = 6;

/// Cleans up beside `path` what killed runs left, with the directory locked: their temporary
/// files (`.<name>.XXXXXX.tmp`) and directories (`.<name>.XXXXXX`), and an old output moved
/// aside (`.<name>.XXXXXX.old`), which goes back to `path` when `path` is missing.
fn recover(path: &Path, parent: &Path) -> Result<()> {
    let prefix = prefix(path);
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let (random, suffix) = rest.split_once('.').unwrap_or((rest, ""));
        if random.len() != RANDOM
            || !random.chars().all(|c| c.is_ascii_alphanumeric())
            || !matches!(suffix, "" | "tmp" | "old")
        {
            continue;
        }
        let leftover = entry.path();
        let context = || format!("could not clean up {}", leftover.display());
        if suffix == "old" {
            // Only a commit, which holds the lock, has one: this one's run was killed.
            if !path.exists() {
                fs::rename(&leftover, path).with_context(context)?;
            } else {
                fs::remove_dir_all(&leftover).with_context(context)?;
            }
        } else if abandoned(&leftover) {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => fs::remove_dir_all(&leftover),
                _ => fs::remove_file(&leftover),
            }
            .with_context(context)?;
        }
    }
    Ok(())
}

fn unwritable(parent: &Path) -> String {
    format!(
        "could not write to {}\nhelp: choose another path with -o",
        parent.display()
    )
}

/// A file that replaces `path` once it is staged and committed.
pub(crate) struct PendingFile {
    path: PathBuf,
    temp: Temporary<NamedTempFile>,
}

impl PendingFile {
    pub(crate) fn create(path: &Path) -> Result<PendingFile> {
        if path.is_dir() {
            // The output itself is checked before (with a help of its own): this is a file
            // written beside it, whose name comes from the output's.
            bail!(
                "could not write {}: it is a directory\nhelp: move the directory away, or choose another path with -o",
                path.display()
            );
        }
        let parent = parent_dir(path)?;
        let _lock = DirLock::take(&parent)?;
        recover(path, &parent)?;
        let temp = Temporary::new(|| {
            tempfile::Builder::new()
                .prefix(&prefix(path))
                .rand_bytes(RANDOM)
                .suffix(".tmp")
                .permissions(Permissions::from_mode(0o666))
                .tempfile_in(&parent)
        })
        .with_context(|| unwritable(&parent))?;
        // Held while this run lives: a later run's clean-up leaves it alone.
        interrupt::hold(temp.as_file()).with_context(|| unwritable(&parent))?;
        Ok(PendingFile {
            path: path.to_path_buf(),
            temp,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data` and flushes it to disk, beside `path`.
    pub(crate) fn stage(self, data: &[u8]) -> Result<Staged> {
        self.stage_from(&mut &data[..])
    }

    /// Writes what `reader` gives and flushes it to disk, beside `path`.
    pub(crate) fn stage_from(mut self, reader: &mut dyn Read) -> Result<Staged> {
        let context = || format!("could not write {}", self.path.display());
        copy(reader, &mut *self.temp).with_context(context)?;
        self.temp.as_file().sync_all().with_context(context)?;
        Ok(Staged {
            path: self.path,
            kind: StagedKind::File(self.temp),
        })
    }

    /// Stages `data` and puts it in place at once: for a file written alone.
    pub(crate) fn commit(self, data: &[u8]) -> Result<()> {
        commit_all(vec![self.stage(data)?], &[])
    }
}

/// A directory that replaces `path` once it is staged and committed.
pub(crate) struct PendingDir {
    path: PathBuf,
    temp: Temporary<TempDir>,
    /// The temporary directory, locked while this run lives.
    _lock: File,
}

impl PendingDir {
    pub(crate) fn create(path: &Path) -> Result<PendingDir> {
        let parent = parent_dir(path)?;
        let _lock = DirLock::take(&parent)?;
        recover(path, &parent)?;
        if path.exists() && !(path.is_dir() && path.join("oci-layout").is_file()) {
            bail!(
                "output path {} exists and is not an OCI layout; not replacing it\nhelp: remove it, or choose another path with -o",
                path.display()
            );
        }
        let temp = Temporary::new(|| {
            tempfile::Builder::new()
                .prefix(&prefix(path))
                .rand_bytes(RANDOM)
                .permissions(Permissions::from_mode(0o777))
                .tempdir_in(&parent)
        })
        .with_context(|| unwritable(&parent))?;
        let lock = File::open(temp.path()).with_context(|| unwritable(&parent))?;
        interrupt::hold(&lock).with_context(|| unwritable(&parent))?;
        Ok(PendingDir {
            path: path.to_path_buf(),
            temp,
            _lock: lock,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the files (paths relative to the directory) and flushes them to disk, beside
    /// `path`.
    pub(crate) fn stage<'a>(
        self,
        files: impl IntoIterator<Item = (&'a str, &'a Content)>,
    ) -> Result<Staged> {
        let context = || format!("could not write {}", self.path.display());
        for (name, data) in files {
            let file = self.temp.path().join(name);
            if let Some(dir) = file.parent() {
                fs::create_dir_all(dir).with_context(context)?;
            }
            let mut out = BufWriter::new(File::create(&file).with_context(context)?);
            copy(&mut data.reader().with_context(context)?, &mut out).with_context(context)?;
            let out = out
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(context)?;
            out.sync_all().with_context(context)?;
        }
        Ok(Staged {
            path: self.path,
            kind: StagedKind::Dir(self.temp, self._lock),
        })
    }
}

/// An output written whole beside its path, waiting to be put in place by [`commit_all`];
/// dropped, it is removed and the old output stays.
pub(crate) struct Staged {
    path: PathBuf,
    kind: StagedKind,
}

enum StagedKind {
    File(Temporary<NamedTempFile>),
    Dir(Temporary<TempDir>, File),
}

impl Staged {
    /// Where it goes.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames it into place; the directory is locked.
    fn put_in_place(self) -> Result<()> {
        let context = || format!("could not write {}", self.path.display());
        match self.kind {
            StagedKind::File(temp) => {
                let (temp, _entry) = temp.into_parts();
                temp.persist(&self.path)
                    .map_err(|e| e.error)
                    .with_context(context)?;
            }
            StagedKind::Dir(temp, _lock) => {
                let (temp, _entry) = temp.into_parts();
                let staged = temp.keep();
                // A directory cannot be renamed over a non-empty one: the old one goes aside
                // first. A run killed in between leaves it for the next to put back.
                let old = self
                    .path
                    .exists()
                    .then(|| staged.with_file_name(format!("{}.old", file_name(&staged))));
                if let Some(old) = &old {
                    fs::rename(&self.path, old).with_context(context)?;
                }
                if let Err(error) = fs::rename(&staged, &self.path) {
                    if let Some(old) = &old {
                        let _ = fs::rename(old, &self.path);
                    }
                    let _ = fs::remove_dir_all(&staged);
                    return Err(error).with_context(context);
                }
                if let Some(old) = old {
                    fs::remove_dir_all(&old)
                        .with_context(|| format!("could not remove {}", old.display()))?;
                }
            }
        }
        Ok(())
    }
}

/// Puts every staged output in place and removes the `stale` files (documents an earlier run
/// left that would describe the new outputs wrongly), with their directories locked and
/// without an interrupt in between.
pub(crate) fn commit_all(staged: Vec<Staged>, stale: &[PathBuf]) -> Result<()> {
    let mut dirs: Vec<PathBuf> = staged
        .iter()
        .map(|s| s.path.as_path())
        .chain(stale.iter().map(PathBuf::as_path))
        .map(dir_of)
        .collect();
    dirs.sort();
    dirs.dedup();
    // In one order, so two runs never wait for each other's second lock.
    let _locks = dirs
        .iter()
        .map(|dir| DirLock::take(dir))
        .collect::<Result<Vec<_>>>()?;
    interrupt::uninterrupted(|| {
        for output in &staged {
            recover(&output.path, &dir_of(&output.path))?;
        }
        for path in stale {
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("could not remove {}", path.display()));
                }
                _ => {}
            }
        }
        for output in staged {
            output.put_in_place()?;
        }
        // The renames themselves reach the disk.
        for dir in &dirs {
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

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

    /// A killed run leaves temporary files and directories, and maybe the old layout moved
    /// aside between the two renames: the next claim cleans them up and puts the old layout
    /// back, and leaves a live run's alone.
    #[test]
    fn what_a_killed_run_left_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        fs::create_dir_all(dir.path().join(".layout.Ab12Cd/blobs")).unwrap();
        fs::create_dir_all(dir.path().join(".layout.Zz99Yy.old")).unwrap();
        fs::write(dir.path().join(".layout.Zz99Yy.old/oci-layout"), b"old").unwrap();
        fs::write(dir.path().join(".out.tar.Qq11Ww.tmp"), b"partial").unwrap();
        fs::write(dir.path().join(".layout.notes"), b"not ours").unwrap();
        let live = PendingDir::create(&dir.path().join("other")).unwrap();

        let pending = PendingDir::create(&layout).unwrap();
        assert_eq!(
            fs::read(layout.join("oci-layout")).unwrap(),
            b"old",
            "the old layout is back in place"
        );
        drop(PendingFile::create(&dir.path().join("out.tar")).unwrap());
        let left = names(dir.path());
        assert!(left.contains(&".layout.notes".to_string()), "{left:?}");
        assert!(
            !left
                .iter()
                .any(|n| n.contains("Ab12Cd") || n.contains("Zz99Yy") || n.contains("Qq11Ww")),
            "{left:?}"
        );
        let hidden = left.iter().filter(|n| n.starts_with(".other.")).count();
        assert_eq!(hidden, 1, "a live run's directory stays: {left:?}");
        let live_path = live.temp.path().to_path_buf();
        // A live claim of the same output stays too.
        drop(PendingDir::create(&layout).unwrap());
        assert!(pending.temp.path().exists());
        drop((live, pending));
        assert!(!live_path.exists());
    }
}
