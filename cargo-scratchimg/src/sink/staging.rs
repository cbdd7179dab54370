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
        let _turn = turn();
        let _lock = DirLock::take(&self.parent)?;
        self.temp_in_locked()
    }

    /// [`PendingFile::temp`], when this run holds the directory's lock already.
    fn temp_in_locked(&self) -> Result<Temporary<NamedTempFile>> {
        let parent = &self.parent;
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
        let temp = self.temp()?;
        self.write_into(temp, reader, key)
    }

    /// Writes what `reader` gives into `temp`, and flushes it to disk.
    fn write_into(
        self,
        mut temp: Temporary<NamedTempFile>,
        reader: &mut dyn Read,
        key: Option<Digest>,
    ) -> Result<Staged> {
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
                path: self.path.clone(),
                kind: StagedKind::Kept(
                    vec![placed],
                    Box::new(Unkept::File(self, content.clone(), key.clone())),
                ),
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
        let _turn = turn();
        let _lock = DirLock::take(&self.parent)?;
        self.temp_in_locked()
    }

    /// [`PendingDir::temp`], when this run holds the directory's lock already.
    fn temp_in_locked(&self) -> Result<(Temporary<TempDir>, File)> {
        let parent = &self.parent;
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
                path: self.path.clone(),
                kind: StagedKind::Kept(placed, Box::new(Unkept::Dir(self, files.to_vec(), keys))),
            });
        }
        let temp = self.temp()?;
        self.write_files(temp, files, keys)
    }

    /// Each file as it is, when the directory at `path` holds `files` (named by `keys`) and
    /// nothing else.
    fn holds(
        &self,
        files: &[(String, Content)],
        keys: &[(String, Digest)],
        written: &WrittenFiles,
    ) -> Option<Vec<Placed>> {
        // Counted, and no further than one file more than it should hold.
        let mut found = 0;
        let mut walking = vec![self.path.clone()];
        while let Some(dir) = walking.pop() {
            for entry in fs::read_dir(&dir).ok()? {
                let entry = entry.ok()?;
                match entry.file_type().ok()? {
                    kind if kind.is_dir() => walking.push(entry.path()),
                    kind if kind.is_file() => found += 1,
                    _ => return None,
                }
                if found > files.len() {
                    return None;
                }
            }
        }
        if found != files.len() {
            return None;
        }
        files
            .iter()
            .zip(keys)
            .map(|((name, data), (_, key))| written.holds(&self.path.join(name), key, data))
            .collect()
    }

    /// Writes the files and flushes them to disk, beside `path`, whatever is there.
    #[cfg(test)]
    fn stage<'a>(self, files: impl IntoIterator<Item = (&'a str, &'a Content)>) -> Result<Staged> {
        let files: Vec<(String, Content)> = (files.into_iter())
            .map(|(name, data)| (name.to_string(), data.clone()))
            .collect();
        let temp = self.temp()?;
        self.write_files(temp, &files, Vec::new())
    }

    /// Writes `files` into the temporary directory `temp`, and flushes them to disk; `keys`
    /// name their bytes, for the record of them once in place.
    fn write_files(
        self,
        (temp, lock): (Temporary<TempDir>, File),
        files: &[(String, Content)],
        keys: Vec<(String, Digest)>,
    ) -> Result<Staged> {
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
            kind: StagedKind::Dir(temp, lock, keys),
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
    /// Left as it is: it held what would be written when it was staged. Looked at again with
    /// its directory locked, and written then if another process changed it meanwhile.
    Kept(Vec<Placed>, Box<Unkept>),
}

/// What a kept output writes when, with its directory locked, it is no longer as it was found.
enum Unkept {
    File(PendingFile, Content, Digest),
    Dir(PendingDir, Vec<(String, Content)>, Vec<(String, Digest)>),
}

impl Unkept {
    /// Writes it beside its path; the directory is locked.
    fn stage_in_locked(self) -> Result<Staged> {
        match self {
            Unkept::File(pending, content, key) => {
                let context = || format!("could not write {}", pending.path.display());
                let mut reader = content.reader().with_context(context)?;
                let temp = pending.temp_in_locked()?;
                pending.write_into(temp, &mut reader, Some(key))
            }
            Unkept::Dir(pending, files, keys) => {
                let temp = pending.temp_in_locked()?;
                pending.write_files(temp, &files, keys)
            }
        }
    }
}

impl Staged {
    /// Where it goes.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is left as it is, with nothing to put in place.
    pub(crate) fn is_kept(&self) -> bool {
        matches!(self.kind, StagedKind::Kept(..))
    }

    /// Renames it into place, or leaves it as it is when it was kept and still is the same
    /// file; the directory is locked. What to record of its files, and whether it was renamed.
    fn put_in_place(self) -> Result<(Vec<Placed>, bool)> {
        if let StagedKind::Kept(placed, unkept) = self.kind {
            let same = |p: &Placed| FileIdentity::of_file(&p.path) == Some(p.identity);
            if placed.iter().all(same) {
                return Ok((placed, false));
            }
            // Another process wrote it since it was found holding these bytes.
            return Ok((unkept.stage_in_locked()?.put_in_place()?.0, true));
        }
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
            StagedKind::Kept(..) => unreachable!("kept outputs are looked at above"),
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
        Ok((placed, true))
    }
}

/// What [`commit_all`] did: what to record of the files put in place or kept, and the outputs
/// that were kept but had to be written after all (another process changed them meanwhile).
pub(crate) struct Committed {
    pub placed: Vec<Placed>,
    pub rewritten: Vec<PathBuf>,
}

/// Puts every staged output in place and removes the `stale` files (documents an earlier run
/// left that would describe the new outputs wrongly), with their directories locked and
/// without an interrupt in between.
pub(crate) fn commit_all(staged: Vec<Staged>, stale: &[PathBuf]) -> Result<Committed> {
    let dirs = |paths: &mut dyn Iterator<Item = &Path>| {
        let mut dirs: Vec<PathBuf> = paths.map(dir_of).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    };
    // Those with outputs left as they are too: what killed runs left beside them goes.
    let locked = dirs(
        &mut staged
            .iter()
            .map(Staged::path)
            .chain(stale.iter().map(PathBuf::as_path)),
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
        let mut committed = Committed {
            placed: Vec::new(),
            rewritten: Vec::new(),
        };
        let mut renamed: Vec<&Path> = stale.iter().map(PathBuf::as_path).collect();
        let paths: Vec<PathBuf> = staged.iter().map(|s| s.path.clone()).collect();
        for (output, path) in staged.into_iter().zip(&paths) {
            let kept = output.is_kept();
            let (placed, moved) = output.put_in_place()?;
            committed.placed.extend(placed);
            if moved {
                renamed.push(path);
                if kept {
                    committed.rewritten.push(path.clone());
                }
            }
        }
        // The renames themselves reach the disk.
        for dir in dirs(&mut renamed.into_iter()) {
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(committed)
    })
}

#[cfg(test)]
#[path = "staging_tests.rs"]
mod tests;
