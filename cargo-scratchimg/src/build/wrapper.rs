//! cargo-scratchimg as cargo's rustc wrapper: cargo runs `cargo-scratchimg RUSTC ARGS...` for
//! every crate, and we run `RUSTC ARGS... --remap-path-prefix=...` (through the user's own
//! wrapper, such as sccache, when there is one).
//!
//! A wrapper sees the flags cargo settled on from every source, so adding ours there never
//! overrides the user's RUSTFLAGS or config, as setting RUSTFLAGS ourselves would.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use super::remap::PathRemap;

/// Holds the flags to add, separated by 0x1f as in `CARGO_ENCODED_RUSTFLAGS`; its presence
/// says that cargo started us as its rustc wrapper.
const FLAGS_ENV: &str = "__SCRATCHIMG_RUSTC_FLAGS";
/// The user's own `RUSTC_WRAPPER`, which we run in turn.
const INNER_ENV: &str = "__SCRATCHIMG_INNER_RUSTC_WRAPPER";

/// Sets up `cargo` to run `program` (this executable) as its rustc wrapper with `remap`.
pub fn install(cargo: &mut Command, program: &Path, remap: &PathRemap) {
    let inner = ["RUSTC_WRAPPER", "CARGO_BUILD_RUSTC_WRAPPER"]
        .into_iter()
        .find_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()));
    if let Some(inner) = inner {
        cargo.env(INNER_ENV, inner);
    }
    let flags = remap.rustc_args().join(&OsString::from("\x1f"));
    cargo
        .env("RUSTC_WRAPPER", program)
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .env(FLAGS_ENV, flags);
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
    }
    let error = command.exec();
    eprintln!(
        "error: could not run {} as cargo-scratchimg's rustc wrapper: {error}\n\
         help: check RUSTC and RUSTC_WRAPPER",
        rustc.to_string_lossy()
    );
    Some(ExitCode::FAILURE)
}
