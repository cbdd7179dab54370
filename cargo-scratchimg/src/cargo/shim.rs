//! This executable as the `rustc` that the user's own wrapper (sccache, say) runs.
//!
//! sccache's key holds rustc's arguments whole, and our `--remap-path-prefix=<path>=…` flags
//! name this machine's workspace and target directory: two clones at different paths would
//! never share a crate. So under a wrapper of the user's, ours runs `WRAPPER <link> ARGS…`,
//! where the link, named `rustc`, is this executable: the wrapper sees cargo's arguments only,
//! and the link adds our flags when it runs the real rustc. What the remapping makes of paths
//! still enters the key, without any path of this machine (see [`super::wrapper`]): the same
//! key means the same remapped bytes, since every path of the build that rustc reads (the
//! sources, `OUT_DIR`) is under a root that becomes the same fixed path everywhere, and sccache
//! hashes the working directory and the variables that name the rest.
//!
//! sccache knows a compiler by its path and modification time (its version, its sysroot's
//! libraries), so each rustc gets a link of its own, in a directory named by the rustc's path
//! and file identity and by this executable's path: a toolchain updated in place gets a new
//! link, never the old one's answers.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The link's name: sccache takes a program of that name for rustc without asking.
pub(crate) const NAME: &str = "rustc";

/// The link to `program` that stands for `rustc`, under `dir`: made when missing or wrong,
/// atomically, since cargo runs many wrappers at once.
pub(crate) fn link(dir: &Path, program: &Path, rustc: &Path) -> std::io::Result<PathBuf> {
    let link = dir.join(identity(program, rustc)?).join(NAME);
    if std::fs::read_link(&link).is_ok_and(|target| target == program) {
        return Ok(link);
    }
    let parent = link.parent().expect("a link has a directory");
    std::fs::create_dir_all(parent)?;
    let temporary = parent.join(format!(".{NAME}-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    std::os::unix::fs::symlink(program, &temporary)?;
    std::fs::rename(&temporary, &link).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })?;
    Ok(link)
}

/// The directory name of `rustc`'s link: its path, its file's device, inode, size and
/// modification time, and `program`'s path, hashed.
fn identity(program: &Path, rustc: &Path) -> std::io::Result<String> {
    let file = std::fs::metadata(rustc)?;
    let mut hasher = Sha256::new();
    for part in [program.as_os_str(), rustc.as_os_str()] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    for number in [
        file.dev(),
        file.ino(),
        file.size(),
        file.mtime() as u64,
        file.mtime_nsec() as u64,
    ] {
        hasher.update(number.to_le_bytes());
    }
    let digest = hasher.finalize();
    Ok(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

/// The rustc cargo named, as a path to a file: a bare name (`RUSTC=rustc`) is looked up on
/// `path`, as the wrapper would.
pub(crate) fn resolve(rustc: &OsStr, path: Option<&OsStr>) -> Option<PathBuf> {
    let rustc = Path::new(rustc);
    if rustc.components().count() > 1 {
        return rustc.is_file().then(|| rustc.to_path_buf());
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(rustc))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rustc_gets_its_own_link_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("cargo-scratchimg");
        std::fs::write(&program, b"tool").unwrap();
        let rustc = |name: &str| {
            let path = dir.path().join(name).join("rustc");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, name).unwrap();
            path
        };
        let (stable, nightly) = (rustc("stable"), rustc("nightly"));
        let links = dir.path().join("links");
        let link = link(&links, &program, &stable).unwrap();
        assert_eq!(link.file_name().unwrap(), NAME);
        assert_eq!(std::fs::read_link(&link).unwrap(), program);
        assert_eq!(super::link(&links, &program, &stable).unwrap(), link);
        assert_ne!(super::link(&links, &program, &nightly).unwrap(), link);
        // A rustc replaced in place (an updated toolchain) is another compiler to sccache.
        std::fs::remove_file(&stable).unwrap();
        std::fs::write(&stable, "stable, updated").unwrap();
        assert_ne!(super::link(&links, &program, &stable).unwrap(), link);
        // A link to anything else is made again.
        let other = links.join(identity(&program, &stable).unwrap()).join(NAME);
        std::fs::remove_file(&other).unwrap();
        std::os::unix::fs::symlink("/bin/sh", &other).unwrap();
        assert_eq!(super::link(&links, &program, &stable).unwrap(), other);
        assert_eq!(std::fs::read_link(&other).unwrap(), program);
        assert!(super::link(&links, &program, &dir.path().join("none")).is_err());
    }

    #[test]
    fn a_bare_rustc_is_found_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("rustc"), b"").unwrap();
        let path = std::env::join_paths(["/nonexistent".as_ref(), bin.as_path()]).unwrap();
        assert_eq!(
            resolve("rustc".as_ref(), Some(&path)),
            Some(bin.join("rustc"))
        );
        assert_eq!(resolve("rustc".as_ref(), None), None);
        assert_eq!(
            resolve(bin.join("rustc").as_os_str(), None),
            Some(bin.join("rustc"))
        );
        assert_eq!(resolve(bin.join("cc").as_os_str(), Some(&path)), None);
    }
}
