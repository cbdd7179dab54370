//! Files the tool reads but did not write (keys, CA certificates, YAML, `files`, images of
//! `index`), and stdin: a file is opened without blocking (a FIFO cannot hang the read), refused
//! at once unless it is a regular file (a FIFO, socket, device or folder), and read no further
//! than a bound given by what it holds; stdin is read no further than its bound either.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Key files: a PEM key is a few hundred bytes, an RSA one a few KiB.
pub const KEY_LIMIT: u64 = 64 * 1024;
/// A PEM file of CA certificates: Mozilla's whole bundle is 220 KiB.
pub(crate) const CERTIFICATES_LIMIT: u64 = 16 * 1024 * 1024;
/// A YAML file `resolve` reads: Kubernetes manifests, a Helm chart's output.
pub(crate) const YAML_LIMIT: u64 = 64 * 1024 * 1024;
/// A password or token on stdin.
pub const SECRET_LIMIT: u64 = 64 * 1024;

/// What a file that is neither a regular file nor a folder is, for errors.
pub(crate) fn special(kind: &fs::FileType) -> Option<&'static str> {
    if kind.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_dir() || kind.is_file() {
        None
    } else {
        Some("not a regular file")
    }
}

/// A regular file, open, with the size it had when it was opened: no more than that is read.
#[derive(Debug)]
pub(crate) struct RegularFile {
    file: File,
    metadata: fs::Metadata,
}

impl RegularFile {
    /// Opens `path` without blocking and without making it our terminal, and checks what it is
    /// once open (a FIFO swapped in after a check cannot hang the read).
    pub(crate) fn open(path: &Path) -> io::Result<RegularFile> {
        RegularFile::open_with(path, 0)
    }

    /// [`RegularFile::open`] for a file this tool wrote itself (a cache entry, an output): a
    /// link put in its place is not followed, so nothing else is ever opened through it.
    pub(crate) fn open_own(path: &Path) -> io::Result<RegularFile> {
        RegularFile::open_with(path, libc::O_NOFOLLOW)
    }

    fn open_with(path: &Path, flags: libc::c_int) -> io::Result<RegularFile> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | flags)
            .open(path)?;
        let metadata = file.metadata()?;
        let kind = metadata.file_type();
        if let Some(kind) = special(&kind).or(kind.is_dir().then_some("a folder")) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("it is {kind}, not a file"),
            ));
        }
        Ok(RegularFile { file, metadata })
    }

    /// What it was when it was opened.
    pub(crate) fn metadata(&self) -> &fs::Metadata {
        &self.metadata
    }

    pub(crate) fn len(&self) -> u64 {
        self.metadata.len()
    }

    /// Its bytes, when it holds at most `limit`; an error saying so, without reading, when it
    /// holds more.
    pub(crate) fn read(self, limit: u64) -> io::Result<Vec<u8>> {
        let size = self.len();
        if size > limit {
            return Err(too_large(size, limit));
        }
        let mut data = Vec::with_capacity(size as usize);
        self.file.take(size).read_to_end(&mut data)?;
        Ok(data)
    }

    /// A warning when the file, a private key, can be read by others than its owner, as ssh
    /// gives; `shown` names it.
    pub(crate) fn exposed_key_warning(&self, shown: &str) -> Option<String> {
        let mode = self.metadata.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{shown} is a private key that others can read (mode {mode:04o})\nhelp: keep it to yourself with `chmod 600`"
            )
        })
    }

    /// The open file, to read from as the caller sees fit (never more than [`Self::len`]).
    pub(crate) fn into_file(self) -> File {
        self.file
    }
}

fn too_large(size: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "it holds {}, more than the {} it may",
            crate::text::human_size(size),
            crate::text::human_size(limit)
        ),
    )
}

/// The bytes of the regular file at `path`, at most `limit` of them: see [`RegularFile`].
pub(crate) fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    RegularFile::open(path)?.read(limit)
}

/// [`read`] for a file this tool wrote itself: see [`RegularFile::open_own`].
pub(crate) fn read_own(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    RegularFile::open_own(path)?.read(limit)
}

/// All of `input` (stdin, a pipe), when it ends within `limit` bytes; an error once it gives
/// more, so `< /dev/zero` stops at the bound.
pub(crate) fn read_stream(input: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    input.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it gave more than the {} it may",
                crate::text::human_size(limit)
            ),
        ));
    }
    Ok(data)
}

/// What stdin gives (a password, a key, YAML), when it ends within `limit` bytes.
pub fn read_stdin(limit: u64) -> io::Result<Vec<u8>> {
    read_stream(io::stdin().lock(), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn only_regular_files_are_read_and_only_up_to_their_bound() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let refused = |path: &Path| read(path, 10).unwrap_err().to_string();
        // Refused at once: a writer never comes.
        assert_eq!(refused(&fifo), "it is a FIFO (named pipe), not a file");
        assert_eq!(
            refused(Path::new("/dev/zero")),
            "it is a character device, not a file"
        );
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(refused(&link), "it is a character device, not a file");
        assert_eq!(refused(dir.path()), "it is a folder, not a file");
        let big = dir.path().join("big");
        std::fs::write(&big, [b'x'; 11]).unwrap();
        assert_eq!(refused(&big), "it holds 11 B, more than the 10 B it may");
        assert_eq!(read(&big, 11).unwrap(), [b'x'; 11]);
    }

    #[test]
    fn streams_stop_at_their_bound() {
        let zero = File::open("/dev/zero").unwrap();
        assert_eq!(
            read_stream(zero, 1024).unwrap_err().to_string(),
            "it gave more than the 1.0 KiB it may"
        );
        assert_eq!(read_stream(&b"abc"[..], 3).unwrap(), b"abc");
    }

    #[test]
    fn keys_others_can_read_are_warned_of() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "k").unwrap();
        let warning = |mode: u32| {
            std::fs::set_permissions(&key, fs::Permissions::from_mode(mode)).unwrap();
            RegularFile::open(&key)
                .unwrap()
                .exposed_key_warning("--sign-key key.pem")
        };
        assert_eq!(warning(0o600), None);
        assert_eq!(warning(0o400), None);
        assert_eq!(
            warning(0o644).unwrap(),
            "--sign-key key.pem is a private key that others can read (mode 0644)\nhelp: keep it to yourself with `chmod 600`"
        );
        assert!(warning(0o640).is_some());
    }
}
