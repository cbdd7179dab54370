//! The platforms an image can be built for, and how each is named by rustc, OCI and ELF.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// A CPU architecture we build static musl binaries for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub(crate) const ALL: [Arch; 2] = [Arch::Amd64, Arch::Arm64];

    /// The architecture this tool runs on, if it is one we can target.
    pub(crate) fn host() -> Option<Arch> {
        Arch::from_rust_arch(std::env::consts::ARCH)
    }

    fn from_rust_arch(arch: &str) -> Option<Arch> {
        match arch {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// The name rustc uses in target triples.
    pub(crate) fn rust_arch(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The name OCI image configs and indexes use (GOARCH).
    pub(crate) fn oci_arch(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The OCI platform variant, where the spec defines one.
    pub(crate) fn oci_variant(self) -> Option<&'static str> {
        match self {
            Arch::Amd64 => None,
            Arch::Arm64 => Some("v8"),
        }
    }

    /// `e_machine` of an ELF executable for this architecture.
    pub(crate) fn elf_machine(self) -> u16 {
        match self {
            Arch::Amd64 => goblin::elf::header::EM_X86_64,
            Arch::Arm64 => goblin::elf::header::EM_AARCH64,
        }
    }
}

/// A rustc target triple together with the architecture it builds for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Target {
    pub triple: String,
    pub arch: Arch,
}

impl Target {
    /// The musl target of an architecture: static by default, no libc needed in the image.
    pub(crate) fn musl(arch: Arch) -> Target {
        Target {
            triple: format!("{}-unknown-linux-musl", arch.rust_arch()),
            arch,
        }
    }

    /// The musl target of the machine we run on.
    pub(crate) fn host_musl() -> Result<Target> {
        match Arch::host() {
            Some(arch) => Ok(Target::musl(arch)),
            None => bail!(
                "no default target for host architecture `{}`\n\
                 help: pass --target x86_64-unknown-linux-musl or --target aarch64-unknown-linux-musl",
                std::env::consts::ARCH
            ),
        }
    }

    /// cargo's environment variable `CARGO_TARGET_<TRIPLE>_<key>`, e.g. `_LINKER`.
    pub(crate) fn cargo_env(&self, key: &str) -> String {
        let triple = self.triple.to_uppercase().replace(['-', '.'], "_");
        format!("CARGO_TARGET_{triple}_{key}")
    }

    /// The conventional name of the target's musl cross C compiler, `aarch64-linux-musl-gcc`.
    pub(crate) fn musl_gcc(&self) -> String {
        format!("{}-linux-musl-gcc", self.arch.rust_arch())
    }

    /// cc-rs's `CC_<triple>`, which names the C compiler for the target.
    pub(crate) fn cc_env(&self) -> String {
        format!("CC_{}", self.triple.replace(['-', '.'], "_"))
    }

    /// Parses a triple given with `--target`; only Linux targets can go into a Linux image.
    pub(crate) fn parse(triple: &str) -> Result<Target> {
        let arch = triple.split('-').next().and_then(Arch::from_rust_arch);
        match arch {
            Some(arch) if triple.contains("-linux-") => Ok(Target {
                triple: triple.to_string(),
                arch,
            }),
            _ => bail!(
                "target `{triple}` cannot go into a linux image\n\
                 help: use x86_64-unknown-linux-musl or aarch64-unknown-linux-musl"
            ),
        }
    }
}

/// The platforms of `--platform` and the `platforms` setting: `linux/amd64`, `linux/arm64`
/// (or `linux/arm64/v8`), `all`, or several separated by commas.
pub(crate) fn parse_platforms(value: &str) -> Result<Vec<Arch>> {
    let mut arches = Vec::new();
    for item in value.split(',').map(str::trim) {
        let found: &[Arch] = match item {
            "all" => &Arch::ALL,
            "linux/amd64" => &[Arch::Amd64],
            "linux/arm64" | "linux/arm64/v8" => &[Arch::Arm64],
            _ => bail!(
                "platform `{item}` is not supported\n\
                 help: use linux/amd64, linux/arm64, or all (both), separated by commas"
            ),
        };
        arches.extend_from_slice(found);
    }
    Ok(crate::util::unique(arches))
}

impl Arch {
    /// `linux/amd64`, `linux/arm64/v8`: the platform as OCI indexes and `--platform` name it.
    pub(crate) fn platform(self) -> String {
        match self.oci_variant() {
            Some(variant) => format!("linux/{}/{variant}", self.oci_arch()),
            None => format!("linux/{}", self.oci_arch()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn platforms_parse() {
        use super::{Arch, parse_platforms};
        assert_eq!(
            parse_platforms("linux/amd64,linux/arm64").unwrap(),
            [Arch::Amd64, Arch::Arm64]
        );
        assert_eq!(parse_platforms("all").unwrap(), [Arch::Amd64, Arch::Arm64]);
        assert_eq!(
            parse_platforms("linux/arm64/v8, linux/arm64").unwrap(),
            [Arch::Arm64]
        );
        let err = parse_platforms("linux/amd64,linux/s390x")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("platform `linux/s390x` is not supported"),
            "{err}"
        );
        assert_eq!(Arch::Arm64.platform(), "linux/arm64/v8");
    }

    use super::*;

    #[test]
    fn musl_targets_name_their_architecture() {
        let t = Target::musl(Arch::Arm64);
        assert_eq!(t.triple, "aarch64-unknown-linux-musl");
        assert_eq!(
            (t.arch.oci_arch(), t.arch.oci_variant()),
            ("arm64", Some("v8"))
        );
        assert_eq!(
            Target::parse("x86_64-unknown-linux-musl").unwrap().arch,
            Arch::Amd64
        );
        assert!(Target::parse("x86_64-apple-darwin").is_err());
        assert!(Target::parse("riscv64gc-unknown-linux-musl").is_err());
        assert_eq!(
            t.cargo_env("LINKER"),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"
        );
        assert_eq!(t.cc_env(), "CC_aarch64_unknown_linux_musl");
    }
}
