//! Outputs that appear whole or not at all, together, and alone.
//!
//! An output is claimed before the build ([`PendingFile`], [`PendingDir`]): its path is checked
//! and its directory made, and a file must be possible to make there, so an unwritable path
//! fails in a second instead of after the compile. After the build each is written and flushed
//! to disk beside its path, in a temporary file or directory ([`Staged`]), and only once every
//! output of the run is staged are they renamed into place together ([`commit_all`]): when one
//! cannot be written, none replaces what was there. An output that holds what would be written
//! already is left as it is ([`WrittenFiles`]): a rerun that changes nothing makes no file.
//!
//! Runs that write to one directory take turns: temporary files are made, and outputs
//! committed, under a lock on the directory (`flock`, released when the process ends however
//! it ends; see [`super::output_dir`]). Under it, a commit cleans up what a killed run left
//! beside its outputs: temporary files and directories (each live one is locked by its owner),
//! and an old OCI directory moved aside between the two renames of a commit, which goes back
//! in place when the output is missing. Outputs get the modes any file a tool writes gets
//! (0666 and 0777 less the umask), not the 0600 of temporary files.

use std::fs::{self, File, Permissions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::image::Digest;
use tempfile::{NamedTempFile, TempDir};

use super::output_dir::{
    RANDOM, dir_of, file_name, parent_dir, prefix, recover, unwritable, writable,
};
use super::written::{Placed, WrittenFiles};
use crate::cache::FileIdentity;
use crate::dir_lock::{DirLock, turn};
use crate::image::Content;
use crate::interrupt::{self, Temporary};

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

/// A file that replaces `path` once it is staged and committed.
pub(crate) struct PendingFile {
    path: PathBuf,
    parent: PathBuf,
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
        writable(&parent, path)?;
        Ok(PendingFile {
            path: path.to_path_buf(),
            parent,
        })
    }

    /// The temporary file beside `path`, made with the directory locked, and locked while this
    /// run lives: a later run's clean-up leaves it alone.
    fn temp(&self) -> Result<Temporary<NamedTempFile>> {
        let parent = &self.parent;
        let _turn = turn();
        let _lock = DirLock::take(parent)?;
        let temp = Temporary::new(|| {
            tempfile::Builder::new()
                .prefix(&prefix(&self.path))
                .rand_bytes(RANDOM)
                .suffix(".tmp")
                .permissions(Permissions::from_mode(0o666))
                .tempfile_in(parent)
        })
        .with_context(|| unwritable(parent))?;
        interrupt::hold(temp.as_file()).with_context(|| unwritable(parent))?;
        Ok(temp)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data` and flushes it to disk, beside `path`.
    pub(crate) fn stage(self, data: &[u8]) -> Result<Staged> {
        self.stage_from(&mut &data[..], None)
    }

    /// Writes what `reader` gives and flushes it to disk, beside `path`; `key` names the
    /// bytes, for the record of the file once it is in place.
    fn stage_from(self, reader: &mut dyn Read, key: Option<Digest>) -> Result<Staged> {
        let mut temp = self.temp()?;
        let context = || format!("could not write {}", self.path.display());
        copy(reader, &mut *temp).with_context(context)?;
        temp.as_file().sync_all().with_context(context)?;
        Ok(Staged {
            path: self.path,
            kind: StagedKind::File(temp, key),
        })
    }

    /// Writes `content`, whose bytes `key` names, beside `path`, unless the file at `path`
    /// holds those bytes already: then it is left as it is, and nothing is staged for it.
    pub(crate) fn stage_unless_held(
        self,
        content: &Content,
        key: &Digest,
        written: &WrittenFiles,
    ) -> Result<Staged> {
        if let Some(placed) = written.holds(&self.path, key, content) {
            return Ok(Staged {
                path: self.path,
                kind: StagedKind::Kept(vec![placed]),
            });
        }
        let context = || format!("could not write {}", self.path.display());
        let mut reader = content.reader().with_context(context)?;
        self.stage_from(&mut reader, Some(key.clone()))
    }

    /// [`PendingFile::stage_unless_held`] for bytes in memory.
    pub(crate) fn stage_bytes_unless_held(
        self,
        data: &[u8],
        written: &WrittenFiles,
    ) -> Result<Staged> {
        let content = Content::from(data.to_vec());
        let key = crate::image::sha256(data);
        self.stage_unless_held(&content, &key, written)
    }

    /// Stages `data` and puts it in place at once: for a file written alone.
    pub(crate) fn commit(self, data: &[u8]) -> Result<()> {
        commit_all(vec![self.stage(data)?], &[]).map(drop)
    }
}

/// A directory that replaces `path` once it is staged and committed.
pub(crate) struct PendingDir {
    path: PathBuf,
    parent: PathBuf,
}

impl PendingDir {
    pub(crate) fn create(path: &Path) -> Result<PendingDir> {
        let parent = parent_dir(path)?;
        if path.exists() && !(path.is_dir() && path.join("oci-layout").is_file()) {
            bail!(
                "output path {} exists and is not an OCI layout; not replacing it\nhelp: remove it, or choose another path with -o",
                path.display()
            );
        }
        writable(&parent, path)?;
        Ok(PendingDir {
            path: path.to_path_buf(),
            parent,
        })
    }

    /// The temporary directory beside `path`, made with the directory locked, and locked
    /// while this run lives.
    fn temp(&self) -> Result<(Temporary<TempDir>, File)> {
        let parent = &self.parent;
        let _turn = turn();
        let _lock = DirLock::take(parent)?;
        let temp = Temporary::new(|| {
            tempfile::Builder::new()
                .prefix(&prefix(&self.path))
                .rand_bytes(RANDOM)
                .permissions(Permissions::from_mode(0o777))
                .tempdir_in(parent)
        })
        .with_context(|| unwritable(parent))?;
        let lock = File::open(temp.path()).with_context(|| unwritable(parent))?;
        interrupt::hold(&lock).with_context(|| unwritable(parent))?;
        Ok((temp, lock))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the files (paths relative to the directory) and flushes them to disk, beside
    /// `path`, unless the directory holds those files already, and no others: then it is left
    /// as it is, and nothing is staged for it.
    pub(crate) fn stage_unless_held(
        self,
        files: &[(String, Content)],
        written: &WrittenFiles,
    ) -> Result<Staged> {
        let context = || format!("could not write {}", self.path.display());
        let keys = files
            .iter()
            .map(|(name, data)| Ok((name.clone(), data.sha256().with_context(context)?)))
            .collect::<Result<Vec<_>>>()?;
        if let Some(placed) = self.holds(files, &keys, written) {
            return Ok(Staged {
                path: self.path,
                kind: StagedKind::Kept(placed),
            });
        }
        let mut staged = self.stage(files.iter().map(|(name, data)| (name.as_str(), data)))?;
        if let StagedKind::Dir(_, _, recorded) = &mut staged.kind {
            *recorded = keys;
        }
        Ok(staged)
    }

    /// Each file as it is, when the directory at `path` holds `files` (named by `keys`) and
    /// nothing else.
    fn holds(
        &self,
        files: &[(String, Content)],
        keys: &[(String, Digest)],
        written: &WrittenFiles,
    ) -> Option<Vec<Placed>> {
        let mut found = Vec::new();
        let mut walking = vec![self.path.clone()];
        while let Some(dir) = walking.pop() {
            for entry in fs::read_dir(&dir).ok()? {
                let entry = entry.ok()?;
                match entry.file_type().ok()? {
                    kind if kind.is_dir() => walking.push(entry.path()),
                    kind if kind.is_file() => found.push(entry.path()),
                    _ => return None,
                }
            }
        }
        if found.len() != files.len() {
            return None;
        }
        files
            .iter()
            .zip(keys)
            .map(|((name, data), (_, key))| written.holds(&self.path.join(name), key, data))
            .collect()
    }

    fn stage<'a>(self, files: impl IntoIterator<Item = (&'a str, &'a Content)>) -> Result<Staged> {
        let (temp, lock) = self.temp()?;
        let context = || format!("could not write {}", self.path.display());
        for (name, data) in files {
            let file = temp.path().join(name);
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
            kind: StagedKind::Dir(temp, lock, Vec::new()),
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
    /// With the digest that names its bytes, to record.
    File(Temporary<NamedTempFile>, Option<Digest>),
    /// With each file's path in it and the digest that names its bytes, to record.
    Dir(Temporary<TempDir>, File, Vec<(String, Digest)>),
    /// Left as it is: it holds what would be written.
    Kept(Vec<Placed>),
}

impl Staged {
    /// Where it goes.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is left as it is, with nothing to put in place.
    pub(crate) fn is_kept(&self) -> bool {
        matches!(self.kind, StagedKind::Kept(_))
    }

    /// Renames it into place; the directory is locked. What to record of its files.
    fn put_in_place(self) -> Result<Vec<Placed>> {
        let context = || format!("could not write {}", self.path.display());
        let absolute = std::path::absolute(&self.path).with_context(context)?;
        let placed = match self.kind {
            StagedKind::File(temp, key) => {
                let (temp, _entry) = temp.into_parts();
                let file = temp
                    .persist(&self.path)
                    .map_err(|e| e.error)
                    .with_context(context)?;
                // Its identity once in place: the rename is a change too.
                let identity = file.metadata().ok().map(|meta| FileIdentity::of(&meta));
                identity
                    .zip(key)
                    .map(|(identity, key)| Placed {
                        path: absolute,
                        identity,
                        key,
                    })
                    .into_iter()
                    .collect()
            }
            StagedKind::Kept(placed) => placed,
            StagedKind::Dir(temp, _lock, keys) => {
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
                keys.into_iter()
                    .filter_map(|(name, key)| {
                        let path = absolute.join(name);
                        let identity = FileIdentity::of_file(&path)?;
                        Some(Placed {
                            path,
                            identity,
                            key,
                        })
                    })
                    .collect()
            }
        };
        Ok(placed)
    }
}

/// Puts every staged output in place and removes the `stale` files (documents an earlier run
/// left that would describe the new outputs wrongly), with their directories locked and
/// without an interrupt in between. What to record of the files put in place or kept.
pub(crate) fn commit_all(staged: Vec<Staged>, stale: &[PathBuf]) -> Result<Vec<Placed>> {
    let changing = |s: &&Staged| !s.is_kept();
    let dirs = |paths: &mut dyn Iterator<Item = &Path>| {
        let mut dirs: Vec<PathBuf> = paths.map(dir_of).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    };
    let stale_paths = stale.iter().map(PathBuf::as_path);
    // Those with outputs left as they are too: what killed runs left beside them goes.
    let locked = dirs(&mut staged.iter().map(Staged::path).chain(stale_paths.clone()));
    let changed = dirs(
        &mut staged
            .iter()
            .filter(changing)
            .map(Staged::path)
            .chain(stale_paths),
    );
    // In one order, so two runs never wait for each other's second lock.
    let _turn = turn();
    let _locks = locked
        .iter()
        .map(|dir| DirLock::take(dir))
        .collect::<Result<Vec<_>>>()?;
    interrupt::uninterrupted(|| {
        for dir in &locked {
            let beside: Vec<&Path> = staged
                .iter()
                .filter(|s| dir_of(&s.path) == *dir)
                .map(|s| s.path.as_path())
                .collect();
            recover(&beside, dir)?;
        }
        for path in stale {
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("could not remove {}", path.display()));
                }
                _ => {}
            }
        }
        let mut placed = Vec::new();
        for output in staged {
            placed.extend(output.put_in_place()?);
        }
        // The renames themselves reach the disk.
        for dir in &changed {
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(placed)
    })
}

#[cfg(test)]
mod tests {
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
}
