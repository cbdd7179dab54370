//! cargo-scratchimg as cargo's rustc wrapper: cargo runs `cargo-scratchimg RUSTC ARGS...` for
//! every crate, and we run `RUSTC ARGS... --remap-path-prefix=...` (through the user's own
//! wrapper, such as sccache, when there is one).
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
use std::path::PathBuf;
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
    /// Sets up `cargo` to run this wrapper for every crate.
    pub(crate) fn install(&self, cargo: &mut Command) {
        if let Some(inner) = &self.inner {
            cargo.env(INNER_ENV, inner);
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

/// When cargo started us as its rustc wrapper, runs rustc and never returns but with an error.
/// Call it first in `main`, before parsing the command line.
pub fn run_if_wrapping() -> Option<ExitCode> {
    let flags = std::env::var_os(FLAGS_ENV)?;
    let mut args = std::env::args_os().skip(1);
    let rustc = args.next()?;
    // `cargo scratchimg` run from within a build (say, a build script) is not a rustc call.
    if rustc == "scratchimg" {
        return None;
    }
    let args: Vec<OsString> = args.collect();
    let mut command = match std::env::var_os(INNER_ENV) {
        Some(inner) => {
            let mut command = Command::new(inner);
            command.arg(&rustc);
            command
        }
        None => Command::new(&rustc),
    };
    command.args(&args);
    // Only compilations take the flags; `rustc -vV` and the like must answer as rustc does.
    if args.iter().any(|a| a == "--crate-name") {
        for flag in flags
            .as_bytes()
            .split(|b| *b == 0x1f)
            .filter(|f| !f.is_empty())
        {
            command.arg(OsStr::from_bytes(flag));
        }
        // A binary target of ours (build scripts have no CARGO_BIN_NAME).
        if let (Some(package), Some(bin), Some(encoded)) = (
            std::env::var_os("CARGO_PKG_NAME"),
            std::env::var_os("CARGO_BIN_NAME"),
            std::env::var_os(BIN_FLAGS_ENV),
        ) && args
            .windows(2)
            .any(|w| w[0] == "--crate-type" && w[1] == "bin")
        {
            let encoded = encoded.to_string_lossy();
            command.args(flags_for(
                &encoded,
                &package.to_string_lossy(),
                &bin.to_string_lossy(),
            ));
        }
    }
    let error = command.exec();
    eprintln!(
        "error: could not run {} as cargo-scratchimg's rustc wrapper: {error}\n\
         help: check RUSTC and RUSTC_WRAPPER",
        rustc.to_string_lossy()
    );
    Some(ExitCode::FAILURE)
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
