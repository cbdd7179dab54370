//! `files`: the user's files and folders, copied into a layer of their own. The layer only
//! adds to the image: it never replaces a file or folder of the base or the programs, and the
//! folders it passes through keep the base's owner and mode (`/tmp` stays 1777).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::{BaseFiles, app_path, base_files, certs, tzdata};
use crate::image::{Content, EntryKind, LayerBuilder, Owner, Stream};
use crate::input_file::{RegularFile, special};

/// One `files` entry, checked: `src` exists, `dst` is absolute and stays in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileCopy {
    pub src: PathBuf,
    pub dst: String,
    /// The mode of every file copied; else 0755 for executables and 0644 for the rest.
    pub mode: Option<u32>,
    /// Symlinks must resolve inside this directory: the package, or the current directory.
    pub root: PathBuf,
    /// Where `src` was given, for errors.
    pub origin: String,
    /// Where `dst` was given, for errors.
    pub dst_origin: String,
}

/// The layer of `copies`, or `None` when there are none, over the base layer of `base` and
/// under the programs `bins`. Files are opened and checked now, so a broken entry fails before
/// anything is built; their bytes are read when the layer is packed, never held whole. Symlinks
/// are followed, and must stay inside `root`.
pub(crate) fn files_layer(
    copies: &[FileCopy],
    base: &BaseFiles,
    bins: &[String],
    mtime: u64,
) -> Result<Option<LayerBuilder>> {
    if copies.is_empty() {
        return Ok(None);
    }
    let taken = Taken::new(base, bins)?;
    let mut layer = LayerBuilder::new(mtime);
    for copy in copies {
        let root = fs::canonicalize(&copy.root)
            .with_context(|| format!("could not read {}", copy.root.display()))?;
        let (resolved, meta) = source(copy, &root, &copy.src)?;
        let dst = if meta.is_dir() {
            copy.dst.clone()
        } else {
            file_dst(&copy.dst, &copy.src)
        };
        let path = inside(&dst);
        taken.check(copy, &path)?;
        // The folders on the way keep the owner and mode the base gives them.
        for (i, _) in path.match_indices('/') {
            if let Some(existing) = taken.entries.get(&path[..i]) {
                layer.dir(&path[..i], existing.mode, existing.owner)?;
            }
        }
        add(
            &mut layer,
            copy,
            &root,
            &copy.src,
            (resolved, meta),
            &dst,
            &mut Vec::new(),
        )?;
    }
    Ok(Some(layer))
}

/// An entry of the image that `files` must leave alone.
struct Existing {
    dir: bool,
    mode: u32,
    owner: Owner,
    /// What it is, for errors: "the base's", "the programs'".
    of: &'static str,
}

/// Every path of the base layer and of the programs' layer.
struct Taken {
    entries: BTreeMap<String, Existing>,
    bins: Vec<String>,
}

impl Taken {
    fn new(base: &BaseFiles, bins: &[String]) -> Result<Taken> {
        let mut programs = LayerBuilder::new(0);
        for bin in bins {
            programs.file(&app_path(bin), &[][..], 0o755, Owner::ROOT)?;
        }
        programs.dir(crate::sbom::IMAGE_DIR, 0o755, Owner::ROOT)?;
        let base = base_files(base)?;
        let mut entries = BTreeMap::new();
        for (layer, of) in [(&programs, "the programs'"), (&base, "the base's")] {
            for (path, entry) in layer.entries() {
                let existing = Existing {
                    dir: matches!(entry.kind, EntryKind::Dir),
                    mode: entry.mode,
                    owner: entry.owner,
                    of,
                };
                entries.insert(path.to_string(), existing);
            }
        }
        Ok(Taken {
            entries,
            bins: bins.to_vec(),
        })
    }

    /// Refuses a copy to `path` (without the leading `/`) that would replace an entry, or
    /// go inside a file.
    fn check(&self, copy: &FileCopy, path: &str) -> Result<()> {
        let (origin, dst) = (&copy.dst_origin, &copy.dst);
        for (i, _) in path.match_indices('/') {
            if let Some(existing) = self.entries.get(&path[..i]).filter(|e| !e.dir) {
                bail!(
                    "{origin}: `dst` `{dst}` would go inside /{}, {} file\n\
                     help: a file cannot hold files; choose a path inside a folder",
                    &path[..i],
                    existing.of,
                );
            }
        }
        // The SBOM of each program, whichever format `--sbom` picks.
        let sbom_of = path
            .strip_prefix(crate::sbom::IMAGE_DIR)
            .and_then(|name| name.strip_prefix('/'))
            .and_then(|name| {
                self.bins
                    .iter()
                    .find(|b| name.starts_with(&format!("{b}.")))
            });
        if let Some(bin) = sbom_of {
            bail!(
                "{origin}: `dst` `{dst}` is where the image keeps the SBOM of `{bin}` (/{}/{bin}.*)\n\
                 help: choose another path",
                crate::sbom::IMAGE_DIR
            );
        }
        let Some(existing) = self.entries.get(path) else {
            return Ok(());
        };
        let name = copy
            .src
            .file_name()
            .map_or("name".into(), |n| n.to_string_lossy());
        let help = if existing.dir {
            format!(
                "`files` adds to the image's folders and never replaces one; name a path inside it, e.g. /{path}/{name}"
            )
        } else if self.bins.iter().any(|b| app_path(b) == format!("/{path}")) {
            "the program is the one cargo built; put other files beside it, e.g. /app/static"
                .to_string()
        } else if path == certs::PATH {
            "add CA certificates with `ca-certs` (--ca-cert), which checks them".to_string()
        } else if path.starts_with(tzdata::DIR) {
            "choose the zones with `tz` (--tz)".to_string()
        } else if ["etc/passwd", "etc/group", "etc/nsswitch.conf"].contains(&path) {
            "they hold the image's accounts, root, nonroot and nobody; choose who runs with `user` (--user)".to_string()
        } else {
            "`files` never replaces a file the image has; choose another path".to_string()
        };
        let kind = if existing.dir { "folder" } else { "file" };
        bail!(
            "{origin}: `dst` `{dst}` would replace /{path}, {} {kind}\nhelp: {help}",
            existing.of
        );
    }
}

/// `dst` as a path inside the image, without the leading `/`.
fn inside(dst: &str) -> String {
    let parts: Vec<&str> = dst.split('/').filter(|p| !p.is_empty()).collect();
    parts.join("/")
}

/// Where a file goes: `dst`, or inside it when it ends with `/`.
fn file_dst(dst: &str, src: &Path) -> String {
    if dst.ends_with('/') {
        let name = src.file_name().map(|n| n.to_string_lossy());
        format!("{dst}{}", name.unwrap_or_default())
    } else {
        dst.to_string()
    }
}

/// `src` resolved and checked: it exists, stays inside `root`, and is a file or a folder.
fn source(copy: &FileCopy, root: &Path, src: &Path) -> Result<(PathBuf, fs::Metadata)> {
    let origin = &copy.origin;
    let resolved = match fs::canonicalize(src) {
        Ok(path) => path,
        Err(e) => {
            let link = fs::read_link(src).ok();
            match link {
                Some(target) => bail!(
                    "{origin}: {} is a symlink to {}, which cannot be read ({e})\n\
                     help: remove the broken link or the entry",
                    src.display(),
                    target.display()
                ),
                None => bail!(
                    "{origin}: {} cannot be read ({e})\n\
                     help: check that it exists and can be read, or remove the entry",
                    src.display()
                ),
            }
        }
    };
    if !resolved.starts_with(root) {
        bail!(
            "{origin}: {} points outside the package, to {}\n\
             help: copy the file into the package, or list it in `files` from where it lives",
            src.display(),
            resolved.display()
        );
    }
    let meta = match fs::metadata(&resolved) {
        Ok(meta) => meta,
        Err(e) => bail!(
            "{origin}: {} cannot be read ({e})\n\
             help: check that it can be read, or remove the entry",
            src.display()
        ),
    };
    if let Some(kind) = special(&meta.file_type()) {
        bail!(
            "{origin}: {} is {kind}, not a file or a folder\n\
             help: `files` copies regular files and folders; remove the entry, or leave the file out of the folder",
            src.display()
        );
    }
    Ok((resolved, meta))
}

/// A file `files` copies, read each time its layer is: opened as [`RegularFile`] opens it,
/// and no more than the size it had when it was checked (a file that shrank is an error).
#[derive(Debug)]
struct SourceFile {
    path: PathBuf,
    /// As the settings name it, for errors.
    shown: PathBuf,
    size: u64,
}

impl Stream for SourceFile {
    fn len(&self) -> u64 {
        self.size
    }

    fn open(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        let file = RegularFile::open(&self.path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.shown.display())))?;
        Ok(Box::new(file.into_file()))
    }
}

fn add(
    layer: &mut LayerBuilder,
    copy: &FileCopy,
    root: &Path,
    src: &Path,
    (resolved, meta): (PathBuf, fs::Metadata),
    dst: &str,
    folders: &mut Vec<PathBuf>,
) -> Result<()> {
    let origin = &copy.origin;
    if meta.is_dir() {
        if folders.contains(&resolved) {
            bail!(
                "{origin}: {} leads back to {}, a folder it is in, so the copy would never end\n\
                 help: remove the symlink, or leave it out with another `files` entry",
                src.display(),
                resolved.display()
            );
        }
        layer
            .dir(dst, 0o755, Owner::ROOT)
            .with_context(|| format!("{}: could not add {}", copy.dst_origin, src.display()))?;
        let listing = fs::read_dir(&resolved).and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<Vec<_>>>()
        });
        let mut children = match listing {
            Ok(children) => children,
            Err(e) => bail!(
                "{origin}: the folder {} cannot be read ({e})\n\
                 help: check that it can be read, or remove the entry",
                src.display()
            ),
        };
        children.sort();
        folders.push(resolved);
        for name in children {
            let child_dst = format!("{}/{}", dst.trim_end_matches('/'), name.to_string_lossy());
            let child = src.join(&name);
            let found = source(copy, root, &child)?;
            add(layer, copy, root, &child, found, &child_dst, folders)?;
        }
        folders.pop();
    } else {
        let size = match RegularFile::open(&resolved) {
            Ok(file) => file.len(),
            Err(e) => bail!(
                "{origin}: {} cannot be read ({e})\n\
                 help: check that it can be read, or remove the entry",
                src.display()
            ),
        };
        let data = Content::stream(Arc::new(SourceFile {
            path: resolved,
            shown: src.to_path_buf(),
            size,
        }));
        let executable = meta.permissions().mode() & 0o111 != 0;
        let mode = copy.mode.unwrap_or(if executable { 0o755 } else { 0o644 });
        layer
            .file(&file_dst(dst, src), data, mode, Owner::ROOT)
            .with_context(|| format!("{}: could not add {}", copy.dst_origin, src.display()))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn copy(root: &Path, src: &str, dst: &str, mode: Option<u32>) -> FileCopy {
        FileCopy {
            src: root.join(src),
            dst: dst.into(),
            mode,
            root: root.into(),
            origin: "Cargo.toml:5:10: `files`".into(),
            dst_origin: "Cargo.toml:5:30: `files`".into(),
        }
    }

    /// The layer of `copies` over the default base, under the program `web`.
    fn layer(copies: &[FileCopy]) -> Result<LayerBuilder> {
        Ok(files_layer(copies, &BaseFiles::default(), &["web".into()], 0)?.unwrap())
    }

    fn listing(layer: &LayerBuilder) -> Vec<(String, u32)> {
        layer
            .entries()
            .map(|(p, e)| (p.to_string(), e.mode))
            .collect()
    }

    pub(crate) fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo touches nothing else.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
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
        assert_eq!(
            listing(&layer(&copies).unwrap()),
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
        let with_mode = layer(&[copy(root, "static", "/srv", Some(0o600))]).unwrap();
        assert!(listing(&with_mode).contains(&("srv/index.html".into(), 0o600)));
        assert!(
            files_layer(&[], &BaseFiles::default(), &[], 0)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn folders_of_the_base_keep_their_owner_and_mode() {
        let pkg = tempfile::tempdir().unwrap();
        let root = pkg.path();
        fs::write(root.join("seed.txt"), "seed").unwrap();
        fs::write(root.join("app.toml"), "x = 1").unwrap();
        let copies = [
            copy(root, "seed.txt", "/tmp/seed.txt", None),
            copy(root, "app.toml", "/home/nonroot/.config/app.toml", None),
            copy(root, "seed.txt", "/etc/web/", None),
        ];
        let layer = layer(&copies).unwrap();
        let entries: Vec<(&str, u32, u64, u64)> = layer
            .entries()
            .map(|(p, e)| (p, e.mode, e.owner.uid, e.owner.gid))
            .collect();
        assert_eq!(
            entries,
            [
                ("etc", 0o755, 0, 0),
                ("etc/web", 0o755, 0, 0),
                ("etc/web/seed.txt", 0o644, 0, 0),
                ("home", 0o755, 0, 0),
                ("home/nonroot", 0o700, 65532, 65532),
                ("home/nonroot/.config", 0o755, 0, 0),
                ("home/nonroot/.config/app.toml", 0o644, 0, 0),
                ("tmp", 0o1777, 0, 0),
                ("tmp/seed.txt", 0o644, 0, 0),
            ]
        );
        // The same as the base layer has them, entry for entry.
        let base = base_files(&BaseFiles::default()).unwrap();
        for (path, entry) in base.entries() {
            if let Some((_, mode, uid, gid)) = entries.iter().find(|e| e.0 == path) {
                assert_eq!(
                    (*mode, *uid, *gid),
                    (entry.mode, entry.owner.uid, entry.owner.gid)
                );
            }
        }
    }

    #[test]
    fn nothing_of_the_base_or_the_programs_is_replaced() {
        let pkg = tempfile::tempdir().unwrap();
        let root = pkg.path();
        fs::create_dir(root.join("dir")).unwrap();
        fs::write(root.join("file"), "x").unwrap();
        let err = |src: &str, dst: &str| {
            layer(&[copy(root, src, dst, None)])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("dir", "/tmp"),
            "Cargo.toml:5:30: `files`: `dst` `/tmp` would replace /tmp, the base's folder\n\
             help: `files` adds to the image's folders and never replaces one; name a path inside it, e.g. /tmp/dir"
        );
        assert_eq!(
            err("file", "/etc/passwd"),
            "Cargo.toml:5:30: `files`: `dst` `/etc/passwd` would replace /etc/passwd, the base's file\n\
             help: they hold the image's accounts, root, nonroot and nobody; choose who runs with `user` (--user)"
        );
        assert_eq!(
            err("file", "/app/web"),
            "Cargo.toml:5:30: `files`: `dst` `/app/web` would replace /app/web, the programs' file\n\
             help: the program is the one cargo built; put other files beside it, e.g. /app/static"
        );
        assert!(err("dir", "/app/").contains("would replace /app, the programs' folder"));
        assert!(err("file", "/etc/ssl/certs/ca-certificates.crt").contains("`ca-certs`"));
        assert!(err("file", "/usr/share/zoneinfo/UTC").contains("`tz`"));
        assert!(err("dir", "/home/nonroot/").contains("would replace /home/nonroot"));
        assert_eq!(
            err("file", "/etc/passwd/extra"),
            "Cargo.toml:5:30: `files`: `dst` `/etc/passwd/extra` would go inside /etc/passwd, the base's file\n\
             help: a file cannot hold files; choose a path inside a folder"
        );
        assert!(
            err("file", "/usr/share/doc/sbom/web.spdx.json")
                .contains("is where the image keeps the SBOM of `web` (/usr/share/doc/sbom/web.*)")
        );
        // Beside them is fine, and a file into a folder of the base with a trailing `/`.
        let ok = layer(&[
            copy(root, "file", "/tmp/", None),
            copy(root, "dir", "/app/static", None),
            copy(root, "file", "/usr/share/doc/sbom/notes.txt", None),
        ])
        .unwrap();
        assert!(ok.entries().any(|(p, _)| p == "tmp/file"));
        // Another program's name is free.
        assert!(
            files_layer(
                &[copy(root, "file", "/app/web", None)],
                &BaseFiles::default(),
                &["api".into()],
                0
            )
            .is_ok()
        );
    }

    /// Files are checked when planned and read when the layer is packed, never held whole; one
    /// that shrank meanwhile is an error naming it.
    #[test]
    fn files_are_read_when_packed() {
        let pkg = tempfile::tempdir().unwrap();
        let root = pkg.path();
        fs::write(root.join("data.bin"), vec![1u8; 10_000]).unwrap();
        let layer = layer(&[copy(root, "data.bin", "/srv/data.bin", None)]).unwrap();
        fs::write(root.join("data.bin"), vec![2u8; 10_000]).unwrap();
        let tar = layer.tar().unwrap();
        assert!(tar.windows(10_000).any(|w| w.iter().all(|b| *b == 2)));
        fs::write(root.join("data.bin"), b"short").unwrap();
        let err = layer.finish().unwrap().diff_id().unwrap_err().to_string();
        assert!(
            err.starts_with("could not read `/srv/data.bin`: it ended 9995 bytes early"),
            "{err}"
        );
        fs::remove_file(root.join("data.bin")).unwrap();
        let err = layer.finish().unwrap().diff_id().unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{}: No such file",
                root.join("data.bin").display()
            )),
            "{err}"
        );
    }

    #[test]
    fn fifos_and_sockets_are_refused_without_reading() {
        let pkg = tempfile::tempdir().unwrap();
        let root = pkg.path();
        mkfifo(&root.join("pipe"));
        let err = layer(&[copy(root, "pipe", "/app/pipe", None)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "Cargo.toml:5:10: `files`: {}/pipe is a FIFO (named pipe), not a file or a folder\n\
                 help: `files` copies regular files and folders; remove the entry, or leave the file out of the folder",
                root.display()
            )
        );
        fs::create_dir(root.join("run")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.join("run/app.sock")).unwrap();
        let err = layer(&[copy(root, "run", "/run", None)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("run/app.sock is a socket, not a file"),
            "{err}"
        );
    }

    #[test]
    fn symlinks_out_of_the_package_or_in_a_circle_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "x").unwrap();
        let pkg = tempfile::tempdir().unwrap();
        fs::create_dir(pkg.path().join("static")).unwrap();
        symlink(
            outside.path().join("secret"),
            pkg.path().join("static/secret"),
        )
        .unwrap();
        let err = layer(&[copy(pkg.path(), "static", "/app/static", None)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("points outside the package"), "{err}");
        fs::remove_file(pkg.path().join("static/secret")).unwrap();
        symlink("..", pkg.path().join("static/up")).unwrap();
        let err = layer(&[copy(pkg.path(), "static", "/app/static", None)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Cargo.toml:5:10: `files`: ")
                && err.contains("static/up/static leads back to"),
            "{err}"
        );
    }

    #[test]
    fn what_cannot_be_read_names_the_entry() {
        let pkg = tempfile::tempdir().unwrap();
        symlink("missing", pkg.path().join("dangling")).unwrap();
        let err = layer(&[copy(pkg.path(), "dangling", "/x", None)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "Cargo.toml:5:10: `files`: {}/dangling is a symlink to missing, which cannot be read (No such file or directory (os error 2))\n\
                 help: remove the broken link or the entry",
                pkg.path().display()
            )
        );
        // Inside a folder too.
        fs::create_dir(pkg.path().join("static")).unwrap();
        symlink("nowhere", pkg.path().join("static/gone")).unwrap();
        let err = layer(&[copy(pkg.path(), "static", "/srv", None)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Cargo.toml:5:10: `files`: ")
                && err.contains("static/gone is a symlink to nowhere"),
            "{err}"
        );
    }
}
