//! `--zig` and `cross = "zig"`: the build runs through cargo-zigbuild, which makes zig the C
//! compiler and the linker of every target, as krust does by default. Both install from PyPI
//! (`pip install cargo-zigbuild ziglang`), so a cross build with C code needs no cross gcc.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Result, bail};

use crate::env::Env;
use crate::text::quoted;

const INSTALL: &str = "help: install both with `pip install cargo-zigbuild ziglang` (or cargo-zigbuild with `cargo install cargo-zigbuild` and zig from ziglang.org), or drop --zig and `cross = \"zig\"`";

/// cargo-zigbuild from `PATH`, checked to find zig: before the build, not after it.
pub(crate) fn find(env: &Env) -> Result<PathBuf> {
    let Some(zigbuild) = env.on_path("cargo-zigbuild") else {
        bail!("--zig needs cargo-zigbuild, which is not on PATH\n{INSTALL}");
    };
    // `cargo-zigbuild zig cc` is zig's C compiler, as the build will run it.
    let output = Command::new(&zigbuild)
        .args(["zig", "cc", "--", "--version"])
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => Ok(zigbuild),
        Ok(output) => bail!(
            "cargo-zigbuild at {} could not run zig ({}):{}\n{INSTALL}",
            zigbuild.display(),
            output.status,
            quoted(&output.stderr)
        ),
        Err(error) => bail!(
            "could not run cargo-zigbuild at {}: {error}\n{INSTALL}",
            zigbuild.display()
        ),
    }
}
