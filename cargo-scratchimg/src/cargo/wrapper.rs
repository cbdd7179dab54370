//! cargo-scratchimg as cargo's rustc wrapper: cargo runs `cargo-scratchimg RUSTC ARGS...` for
//! every crate, and we run `RUSTC ARGS... --remap-path-prefix=...`. With the user's own wrapper
//! (sccache, say), we run `WRAPPER <link> ARGS...`, and the link, this executable named `rustc`
//! ([`super::shim`]), runs `RUSTC ARGS... --remap-path-prefix=...`: the user's wrapper sees
//! cargo's arguments only, so sccache's key names no path of this machine.
//!
//! A wrapper sees the flags cargo settled on from every source, so adding ours there never
//! overrides the user's RUSTFLAGS or config, as setting RUSTFLAGS ourselves would.
//!
//! It also adds flags to single binary crates: each binary's own dependency list goes in as
//! `-Clink-arg=<object>`. cargo sets `CARGO_PKG_NAME` and `CARGO_BIN_NAME` when it compiles a
//! binary, so one `cargo build` of several packages and binaries links each its own list
//! (`cargo rustc -- FLAGS` could only do that for one binary at a time).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde::{Deserialize, Serialize};

use super::remap::PathRemap;

/// Holds the flags to add, separated by 0x1f as in `CARGO_ENCODED_RUSTFLAGS`; its presence
/// says that cargo started us as its rustc wrapper.
const FLAGS_ENV: &str = "__SCRATCHIMG_RUSTC_FLAGS";
/// The user's own `RUSTC_WRAPPER`, which we run in turn.
const INNER_ENV: &str = "__SCRATCHIMG_INNER_RUSTC_WRAPPER";
/// Flags for single binaries: entries `package 0x1f bin 0x1f flag 0x1f flag…`, separated by 0x1e.
const BIN_FLAGS_ENV: &str = "__SCRATCHIMG_BIN_FLAGS";
/// Where the links named `rustc` that the user's wrapper runs go ([`super::shim`]).
const LINKS_ENV: &str = "__SCRATCHIMG_RUSTC_LINKS";
/// What the remapping makes of paths, with no path of this machine ([`PathRemap::roots`]).
const ROOTS_ENV: &str = "__SCRATCHIMG_REMAP_ROOTS";
/// The rustc cargo named, set for the user's wrapper: its presence says that we run as the link.
const RUSTC_ENV: &str = "__SCRATCHIMG_RUSTC";
/// [`ROOTS_ENV`] as the user's wrapper sees it. sccache puts every `CARGO_` variable of rustc's
/// environment in its key, but not the flags the link adds: so a crate compiled with our
/// remapping is never taken for one compiled without it, nor with other roots.
const KEY_VAR: &str = "CARGO_SCRATCHIMG_REMAP";

/// This executable as cargo's rustc wrapper, and what it adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Wrapper {
    /// This executable.
    pub program: PathBuf,
    /// The paths of this machine to take out of every crate.
    pub remap: PathRemap,
    /// Flags for single binary crates: each binary's dependency list to link.
    pub bin_flags: Vec<BinFlags>,
    /// The user's own wrapper (sccache, say), which ours runs in turn.
    pub inner: Option<OsString>,
    /// Files the flags name that cargo does not know of: the dependency-list objects.
    pub inputs: Vec<PathBuf>,
}

/// rustc flags for the compilation of one binary crate alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BinFlags {
    pub package: String,
    pub bin: String,
    pub flags: Vec<String>,
}

impl Wrapper {
    /// Sets up `cargo` to run this wrapper for every crate; the links for the user's wrapper go
    /// in `links`.
    pub(crate) fn install(&self, cargo: &mut Command, links: &Path) {
        if let Some(inner) = &self.inner {
            cargo
                .env(INNER_ENV, inner)
                .env(LINKS_ENV, links)
                .env(ROOTS_ENV, self.remap.roots());
        }
        let flags = self.remap.rustc_args().join(&OsString::from("\x1f"));
        cargo
            .env("RUSTC_WRAPPER", &self.program)
            .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
            .env(FLAGS_ENV, flags)
            .env(BIN_FLAGS_ENV, encode_bin_flags(&self.bin_flags));
    }
}

fn encode_bin_flags(bin_flags: &[BinFlags]) -> String {
    bin_flags
        .iter()
        .map(
            |BinFlags {
                 package,
                 bin,
                 flags,
             }| {
                [package.as_str(), bin.as_str()]
                    .into_iter()
                    .chain(flags.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join("\x1f")
            },
        )
        .collect::<Vec<_>>()
        .join("\x1e")
}

/// The flags `encoded` holds for binary `bin` of `package`.
fn flags_for<'a>(encoded: &'a str, package: &str, bin: &str) -> Vec<&'a str> {
    encoded
        .split('\x1e')
        .find_map(|entry| {
            let mut parts = entry.split('\x1f');
            (parts.next() == Some(package) && parts.next() == Some(bin)).then(|| parts.collect())
        })
        .unwrap_or_default()
}

/// When cargo started us as its rustc wrapper, or the user's wrapper started us as rustc, runs
/// rustc and never returns but with an error. Call it first in `main`, before parsing the
/// command line.
pub fn run_if_wrapping() -> Option<ExitCode> {
    let flags = std::env::var_os(FLAGS_ENV)?;
    let mut args = std::env::args_os();
    let program = args.next()?;
    // Run as the link: every argument is rustc's.
    if let Some(rustc) = std::env::var_os(RUSTC_ENV)
        && Path::new(&program).file_name() == Some(OsStr::new(super::shim::NAME))
    {
        let args: Vec<OsString> = args.collect();
        // sccache asks `rustc +stable` whether it is rustup's proxy, and would then run the
        // toolchain's rustc itself, without our flags: the link is no proxy.
        if args.first().is_some_and(|a| a.as_bytes().starts_with(b"+")) {
            eprintln!("error: cargo-scratchimg's rustc takes no toolchain argument");
            return Some(ExitCode::FAILURE);
        }
        let mut command = rustc_command(&rustc, &args, &flags);
        command.env_remove(RUSTC_ENV);
        return Some(exec(command));
    }
    let rustc = args.next()?;
    // `cargo scratchimg` run from within a build (say, a build script) is not a rustc call.
    if rustc == "scratchimg" {
        return None;
    }
    let args: Vec<OsString> = args.collect();
    let command = match std::env::var_os(INNER_ENV) {
        Some(inner) => inner_command(&inner, &rustc, &args, &flags),
        None => rustc_command(&rustc, &args, &flags),
    };
    Some(exec(command))
}

/// `RUSTC ARGS...` with our flags for compilations.
fn rustc_command(rustc: &OsStr, args: &[OsString], flags: &OsStr) -> Command {
    let mut command = Command::new(rustc);
    command.args(with_our_flags(args, flags));
    command
}

/// `args`, then our flags when they are a compilation's: `rustc -vV` and the like must answer
/// as rustc does.
fn with_our_flags(args: &[OsString], flags: &OsStr) -> Vec<OsString> {
    let mut all = args.to_vec();
    if args.iter().any(|a| a == "--crate-name") {
        all.extend(our_flags(args, flags));
    }
    all
}

/// The user's wrapper running the link for `rustc` with cargo's arguments alone; when no link
/// can be made (no rustc file to name it by, a read-only target directory), running `rustc`
/// with our flags, as a wrapper of cargo's own would.
fn inner_command(inner: &OsStr, rustc: &OsStr, args: &[OsString], flags: &OsStr) -> Command {
    let mut command = Command::new(inner);
    // cargo's terminal settings (the early build sets them) never change what rustc makes,
    // but sccache hashes every `CARGO_` variable: a terminal's width would split the cache.
    for (name, _) in std::env::vars_os() {
        if name.as_bytes().starts_with(b"CARGO_TERM_") {
            command.env_remove(name);
        }
    }
    let link = std::env::var_os(LINKS_ENV)
        .zip(std::env::current_exe().ok())
        .and_then(|(links, program)| {
            let real = super::shim::resolve(rustc, std::env::var_os("PATH").as_deref())?;
            super::shim::link(Path::new(&links), &program, &real).ok()
        });
    match link {
        Some(link) => {
            command.arg(link).args(args).env(RUSTC_ENV, rustc);
            if let Some(roots) = std::env::var_os(ROOTS_ENV) {
                command.env(KEY_VAR, roots);
            }
        }
        None => {
            command.arg(rustc).args(with_our_flags(args, flags));
        }
    }
    command
}

/// The flags a compilation with `args` takes: the remapping, and a binary's own (build
/// scripts have no CARGO_BIN_NAME).
fn our_flags(args: &[OsString], flags: &OsStr) -> Vec<OsString> {
    let mut ours: Vec<OsString> = flags
        .as_bytes()
        .split(|b| *b == 0x1f)
        .filter(|f| !f.is_empty())
        .map(|f| OsStr::from_bytes(f).to_os_string())
        .collect();
    if let (Some(package), Some(bin), Some(encoded)) = (
        std::env::var_os("CARGO_PKG_NAME"),
        std::env::var_os("CARGO_BIN_NAME"),
        std::env::var_os(BIN_FLAGS_ENV),
    ) && args
        .windows(2)
        .any(|w| w[0] == "--crate-type" && w[1] == "bin")
    {
        let encoded = encoded.to_string_lossy();
        ours.extend(
            flags_for(&encoded, &package.to_string_lossy(), &bin.to_string_lossy())
                .into_iter()
                .map(OsString::from),
        );
    }
    ours
}

/// Replaces this process with `command`; returns only when that fails.
fn exec(mut command: Command) -> ExitCode {
    let error = command.exec();
    eprintln!(
        "error: could not run {} as cargo-scratchimg's rustc wrapper: {error}\n\
         help: check RUSTC and RUSTC_WRAPPER",
        Path::new(command.get_program()).display()
    );
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_binary_gets_its_own_flags() {
        let flags = |package: &str, bin: &str, flags: &[&str]| BinFlags {
            package: package.into(),
            bin: bin.into(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
        };
        let encoded = encode_bin_flags(&[
            flags("api", "api", &["-Clink-arg=/a.o"]),
            flags(
                "tools",
                "migrate",
                &["-Clink-arg=/t.o", "-Clink-arg=-Wl,--undefined=X"],
            ),
        ]);
        assert_eq!(flags_for(&encoded, "api", "api"), ["-Clink-arg=/a.o"]);
        assert_eq!(
            flags_for(&encoded, "tools", "migrate"),
            ["-Clink-arg=/t.o", "-Clink-arg=-Wl,--undefined=X"]
        );
        assert!(flags_for(&encoded, "tools", "api").is_empty());
        assert!(flags_for(&encode_bin_flags(&[]), "api", "api").is_empty());
    }
}
