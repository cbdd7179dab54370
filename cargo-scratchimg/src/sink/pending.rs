//! Outputs that appear whole or not at all: written beside their final path, then renamed.
//!
//! They are created before the build starts, so an unwritable path fails in a second instead of
//! after the compile, and the previous output stays untouched until the new one is complete.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tempfile::{NamedTempFile, TempDir};

use crate::image::Content;

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

fn parent_dir(path: &Path) -> Result<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| {
        format!(
            "could not create the output directory {}\nhelp: choose another path with -o",
            parent.display()
        )
    })?;
    Ok(parent)
}

fn prefix(path: &Path) -> String {
    format!(
        ".{}.",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    )
}

/// A file that replaces `path` atomically on `commit`.
pub(crate) struct PendingFile {
    path: PathBuf,
    temp: NamedTempFile,
}

impl PendingFile {
    pub(crate) fn create(path: &Path) -> Result<PendingFile> {
        if path.is_dir() {
            bail!(
                "output path {} is a directory\nhelp: give a file with -o, e.g. -o {}",
                path.display(),
                path.join("image.tar").display()
            );
        }
        let parent = parent_dir(path)?;
        let temp = tempfile::Builder::new()
            .prefix(&prefix(path))
            .suffix(".tmp")
            .tempfile_in(&parent)
            .with_context(|| {
                format!(
                    "could not write to {}\nhelp: choose another path with -o",
                    parent.display()
                )
            })?;
        Ok(PendingFile {
            path: path.to_path_buf(),
            temp,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `data`, flushes it to disk, and renames it over `path`.
    pub(crate) fn commit(self, data: &[u8]) -> Result<()> {
        self.commit_from(&mut &data[..])
    }

    /// Writes what `reader` gives, flushes it to disk, and renames it over `path`.
    pub(crate) fn commit_from(mut self, reader: &mut dyn Read) -> Result<()> {
        let context = || format!("could not write {}", self.path.display());
        copy(reader, &mut self.temp).with_context(context)?;
        self.temp.as_file().sync_all().with_context(context)?;
        self.temp
            .persist(&self.path)
            .map_err(|e| e.error)
            .with_context(context)?;
        Ok(())
    }
}

/// A directory that replaces `path` on `commit`.
pub(crate) struct PendingDir {
    path: PathBuf,
    temp: TempDir,
}

impl PendingDir {
    pub(crate) fn create(path: &Path) -> Result<PendingDir> {
        if path.exists() && !(path.is_dir() && path.join("oci-layout").is_file()) {
            bail!(
                "output path {} exists and is not an OCI layout; not replacing it\nhelp: remove it, or choose another path with -o",
                path.display()
            );
        }
        let parent = parent_dir(path)?;
        let temp = tempfile::Builder::new()
            .prefix(&prefix(path))
            .tempdir_in(&parent)
            .with_context(|| {
                format!(
                    "could not write to {}\nhelp: choose another path with -o",
                    parent.display()
                )
            })?;
        Ok(PendingDir {
            path: path.to_path_buf(),
            temp,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the files (paths relative to the directory) and swaps the directory into place.
    pub(crate) fn commit<'a>(
        self,
        files: impl IntoIterator<Item = (&'a str, &'a Content)>,
    ) -> Result<()> {
        let context = || format!("could not write {}", self.path.display());
        for (name, data) in files {
            let file = self.temp.path().join(name);
            if let Some(dir) = file.parent() {
                fs::create_dir_all(dir).with_context(context)?;
            }
            let mut out = BufWriter::new(fs::File::create(&file).with_context(context)?);
            copy(&mut data.reader().with_context(context)?, &mut out).with_context(context)?;
            out.flush().with_context(context)?;
        }
        let staged = self.temp.keep();
        // A directory cannot be renamed over a non-empty one: move the old one aside first.
        let old = self.path.exists().then(|| staged.with_extension("old"));
        if let Some(old) = &old {
            fs::rename(&self.path, old).with_context(context)?;
        }
        fs::rename(&staged, &self.path).with_context(context)?;
        if let Some(old) = old {
            fs::remove_dir_all(&old)
                .with_context(|| format!("could not remove {}", old.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.tar");
        let pending = PendingFile::create(&path).unwrap();
        assert!(!path.exists());
        pending.commit(b"data").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"data");
        assert_eq!(
            fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn dropped_file_leaves_the_old_output_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.tar");
        fs::write(&path, b"old").unwrap();
        drop(PendingFile::create(&path).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
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
        let (one, a, two) = (Content::from("1"), Content::from("a"), Content::from("2"));
        PendingDir::create(&path)
            .unwrap()
            .commit([("oci-layout", &one), ("blobs/a", &a)])
            .unwrap();
        PendingDir::create(&path)
            .unwrap()
            .commit([("oci-layout", &two)])
            .unwrap();
        assert_eq!(fs::read(path.join("oci-layout")).unwrap(), b"2");
        assert!(!path.join("blobs/a").exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        fs::write(dir.path().join("notes"), b"").unwrap();
        assert!(PendingDir::create(&dir.path().join("notes")).is_err());
    }
}
