//! The folder outputs go to, as the staging of outputs uses it: where it is, the check that
//! files can be made there, and what killed runs left beside outputs, cleaned up under its lock
//! ([`recover`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::interrupt::abandoned;

/// The directory `path` is in: `.` for a bare file name.
pub(super) fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(super) fn parent_dir(path: &Path) -> Result<PathBuf> {
    let parent = dir_of(path);
    fs::create_dir_all(&parent).with_context(|| {
        format!(
            "could not create the output directory {}\nhelp: choose another path with -o",
            parent.display()
        )
    })?;
    Ok(parent)
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `.<name>.`: what the temporary files and directories beside `path` begin with.
pub(super) fn prefix(path: &Path) -> String {
    format!(".{}.", file_name(path))
}

/// The random part of their names, `tempfile`'s `XXXXXX`.
pub(super) const RANDOM: usize = 6;

/// Cleans up in `parent` what killed runs left beside `paths` (outputs there), with the
/// directory locked, reading it once: their temporary files (`.<name>.XXXXXX.tmp`) and
/// directories (`.<name>.XXXXXX`), and an old output moved aside (`.<name>.XXXXXX.old`),
/// which goes back to its path when that is missing.
pub(super) fn recover(paths: &[&Path], parent: &Path) -> Result<()> {
    let outputs: std::collections::HashMap<String, &Path> =
        paths.iter().map(|path| (file_name(path), *path)).collect();
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((output, suffix)) = leftover_of(&name) else {
            continue;
        };
        let Some(path) = outputs.get(output) else {
            continue;
        };
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

/// The output a run's leftover named `name` was beside, and its kind (`tmp`, `old`, or none
/// for a directory): `.<output>.XXXXXX[.tmp|.old]`.
pub(super) fn leftover_of(name: &str) -> Option<(&str, &str)> {
    let name = name.strip_prefix('.')?;
    let (rest, suffix) = match name.rsplit_once('.') {
        Some((rest, suffix @ ("tmp" | "old"))) => (rest, suffix),
        _ => (name, ""),
    };
    let (output, random) = rest.rsplit_once('.')?;
    let random_ok = random.len() == RANDOM && random.chars().all(|c| c.is_ascii_alphanumeric());
    (random_ok && !output.is_empty()).then_some((output, suffix))
}

/// Fails unless a file can be made in `dir`, which exists: one is made there (named as the
/// temporary files beside `path` are) and removed, once per directory in a run.
pub(super) fn writable(dir: &Path, path: &Path) -> Result<()> {
    static WRITABLE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut writable = crate::util::lock(&WRITABLE);
    if writable.iter().any(|known| known == dir) {
        return Ok(());
    }
    tempfile::Builder::new()
        .prefix(&prefix(path))
        .rand_bytes(RANDOM)
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| unwritable(dir))?;
    writable.push(dir.to_path_buf());
    Ok(())
}

pub(super) fn unwritable(parent: &Path) -> String {
    format!(
        "could not write to {}\nhelp: choose another path with -o",
        parent.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_known_by_their_names() {
        for (name, found) in [
            (".out.tar.Qq11Ww.tmp", Some(("out.tar", "tmp"))),
            (".layout.Ab12Cd", Some(("layout", ""))),
            (".layout.Zz99Yy.old", Some(("layout", "old"))),
            (".a.tmp.Ab12Cd", Some(("a.tmp", ""))),
            (".layout.notes", None),
            (".out.tar.Qq11W.tmp", None),
            ("out.tar.Qq11Ww.tmp", None),
            ("..Qq11Ww.tmp", None),
        ] {
            assert_eq!(leftover_of(name), found, "{name}");
        }
    }
}
