//! `files`: the user's files and folders, copied into a layer of their own.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::image::{LayerBuilder, Owner};

/// One `files` entry, checked: `src` exists, `dst` is absolute and stays in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCopy {
    pub src: PathBuf,
    pub dst: String,
    /// The mode of every file copied; else 0755 for executables and 0644 for the rest.
    pub mode: Option<u32>,
    /// Symlinks must resolve inside this directory: the package, or the current directory.
    pub root: PathBuf,
    /// Where the entry was given, for errors.
    pub origin: String,
}

/// The layer of `copies`, or `None` when there are none. Files are read now, so a broken
/// entry fails before anything is built. Symlinks are followed, and must stay inside `root`.
pub fn files_layer(copies: &[FileCopy], mtime: u64) -> Result<Option<LayerBuilder<'static>>> {
    if copies.is_empty() {
        return Ok(None);
    }
    let mut layer = LayerBuilder::new(mtime);
    for copy in copies {
        let root = fs::canonicalize(&copy.root)
            .with_context(|| format!("could not read {}", copy.root.display()))?;
        add(&mut layer, copy, &root, &copy.src, &copy.dst)?;
    }
    Ok(Some(layer))
}

fn add(
    layer: &mut LayerBuilder<'static>,
    copy: &FileCopy,
    root: &Path,
    src: &Path,
    dst: &str,
) -> Result<()> {
    let origin = &copy.origin;
    let resolved = match fs::canonicalize(src) {
        Ok(path) => path,
        Err(e) => bail!(
            "{origin}: {} cannot be read ({e})\nhelp: remove the broken link or the entry",
            src.display()
        ),
    };
    if !resolved.starts_with(root) {
        bail!(
            "{origin}: {} points outside the package, to {}\n\
             help: copy the file into the package, or list it in `files` from where it lives",
            src.display(),
            resolved.display()
        );
    }
    let meta = fs::metadata(&resolved)
        .with_context(|| format!("could not read {}", resolved.display()))?;
    if meta.is_dir() {
        layer.dir(dst, 0o755, Owner::ROOT)?;
        let mut children: Vec<_> = fs::read_dir(&resolved)
            .with_context(|| format!("could not read {}", resolved.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("could not read {}", resolved.display()))?;
        children.sort();
        for name in children {
            let child_dst = format!("{}/{}", dst.trim_end_matches('/'), name.to_string_lossy());
            add(layer, copy, root, &src.join(&name), &child_dst)?;
        }
    } else {
        let data = fs::read(&resolved)
            .with_context(|| format!("could not read {}", resolved.display()))?;
        let executable = meta.permissions().mode() & 0o111 != 0;
        let mode = copy.mode.unwrap_or(if executable { 0o755 } else { 0o644 });
        let dst = if dst.ends_with('/') {
            format!(
                "{dst}{}",
                src.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )
        } else {
            dst.to_string()
        };
        layer
            .file(&dst, data, mode, Owner::ROOT)
            .with_context(|| format!("{origin}: could not add {}", src.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn copy(root: &Path, src: &str, dst: &str, mode: Option<u32>) -> FileCopy {
        FileCopy {
            src: root.join(src),
            dst: dst.into(),
            mode,
            root: root.into(),
            origin: "test".into(),
        }
    }

    fn listing(layer: &LayerBuilder<'_>) -> Vec<(String, u32)> {
        layer
            .entries()
            .map(|(p, e)| (p.to_string(), e.mode))
            .collect()
    }

    #[test]
    fn folders_are_copied_sorted_with_modes() {
        let pkg = tempfile::tempdir().unwrap();
        let root = pkg.path();
        fs::create_dir_all(root.join("static/css")).unwrap();
        fs::write(root.join("static/index.html"), "<h1>hi</h1>").unwrap();
        fs::write(root.join("static/css/site.css"), "h1{}").unwrap();
        fs::write(root.join("run.sh"), "#!/bin/sh").unwrap();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        symlink("index.html", root.join("static/home.html")).unwrap();
        let copies = [
            copy(root, "static", "/app/static", None),
            copy(root, "run.sh", "/app/bin/", None),
        ];
        let layer = files_layer(&copies, 0).unwrap().unwrap();
        assert_eq!(
            listing(&layer),
            [
                ("app", 0o755),
                ("app/bin", 0o755),
                ("app/bin/run.sh", 0o755),
                ("app/static", 0o755),
                ("app/static/css", 0o755),
                ("app/static/css/site.css", 0o644),
                ("app/static/home.html", 0o644),
                ("app/static/index.html", 0o644),
            ]
            .map(|(p, m)| (p.to_string(), m))
        );
        let with_mode = files_layer(&[copy(root, "static", "/srv", Some(0o600))], 0)
            .unwrap()
            .unwrap();
        assert!(listing(&with_mode).contains(&("srv/index.html".into(), 0o600)));
    }

    #[test]
    fn symlinks_out_of_the_package_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "x").unwrap();
        let pkg = tempfile::tempdir().unwrap();
        fs::create_dir(pkg.path().join("static")).unwrap();
        symlink(
            outside.path().join("secret"),
            pkg.path().join("static/secret"),
        )
        .unwrap();
        let err = files_layer(&[copy(pkg.path(), "static", "/app/static", None)], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("points outside the package"), "{err}");
        symlink("missing", pkg.path().join("dangling")).unwrap();
        let err = files_layer(&[copy(pkg.path(), "dangling", "/x", None)], 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be read"), "{err}");
    }
}
