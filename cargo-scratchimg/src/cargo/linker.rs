//! Cross-linking without configuration where it can work: a musl cross C compiler found by its
//! conventional name, else rust-lld for crates with no C code. The user's own configuration
//! always wins; a cross build that cannot link fails before building, with the ways to fix it.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::env::Env;
use crate::sbom::auditable::Linker;
use crate::target::{Arch, Target};

/// What is known about the machine and the crate graph when choosing a linker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkContext {
    /// `CARGO_TARGET_<TRIPLE>_LINKER` is set, or a cargo config sets `target.<triple>.linker`.
    pub configured: bool,
    /// `<arch>-linux-musl-gcc`, when it is on PATH.
    pub cross_gcc: Option<PathBuf>,
    /// The toolchain ships rust-lld.
    pub rust_lld: bool,
    /// Packages of the build that compile C code (they build-depend on `cc` or `cmake`).
    pub c_packages: Vec<String>,
}

/// The environment a build for `target` needs on a `host` machine: nothing for a native build
/// or one the user configured, else a linker, else an error naming what to install.
pub(crate) fn cross_env(
    target: &Target,
    host: Option<Arch>,
    context: &LinkContext,
) -> Result<Vec<(String, String)>> {
    if host == Some(target.arch) || context.configured {
        return Ok(Vec::new());
    }
    let var = target.cargo_env("LINKER");
    if let Some(gcc) = &context.cross_gcc {
        return Ok(vec![(var, gcc.display().to_string())]);
    }
    let gcc = target.musl_gcc();
    if context.c_packages.is_empty() && context.rust_lld {
        return Ok(vec![(var, "rust-lld".to_string())]);
    }
    let why = if context.c_packages.is_empty() {
        "this toolchain has no rust-lld".to_string()
    } else {
        format!(
            "{} build{} C code",
            context.c_packages.join(", "),
            if context.c_packages.len() == 1 {
                "s"
            } else {
                ""
            }
        )
    };
    let cc_var = target.cc_env();
    bail!(
        "cannot link for {}: no `{gcc}` on PATH, and {why}\n\
         help: install a musl cross compiler named {gcc} and put it on PATH\n\
         help: or set {var}=<linker> and {cc_var}=<C compiler> (or `[target.{}] linker` in .cargo/config.toml)\n\
         help: or build with cargo-zigbuild, which brings zig as C compiler and linker: pass --zig (pip install cargo-zigbuild ziglang)",
        target.triple,
        target.triple
    )
}

/// What decides the linker of a cross build for `target`: the user's own configuration
/// (`CARGO_TARGET_<TRIPLE>_LINKER`, or a cargo config file cargo reads), a cross gcc on `PATH`,
/// and rust-lld in the toolchain whose std for the target is in `libdir`. `c_packages` is asked
/// only when neither a configuration nor a cross gcc settles it, as it costs a `cargo metadata`.
pub(crate) fn link_context(
    target: &Target,
    libdir: &Path,
    env: &Env,
    c_packages: impl FnOnce() -> Result<Vec<String>>,
) -> Result<LinkContext> {
    let configured = env.cargo_var(&target.cargo_env("LINKER")).is_some()
        || configured_in_files(target, &cargo_config_files(env));
    let cross_gcc = env.on_path(&target.musl_gcc());
    let mut context = LinkContext {
        configured,
        cross_gcc,
        ..LinkContext::default()
    };
    if !context.configured && context.cross_gcc.is_none() {
        // <sysroot>/lib/rustlib/<target>/lib: rust-lld lives in <sysroot>/lib/rustlib/<host>/bin,
        // where rustc looks first; then on PATH (a distribution's rustc may ship none).
        let rustlib = libdir.parent().and_then(Path::parent);
        context.rust_lld = rustlib
            .and_then(|r| std::fs::read_dir(r).ok())
            .is_some_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.path().join("bin/rust-lld").is_file())
            })
            || env.on_path("rust-lld").is_some();
        context.c_packages = c_packages()?;
    }
    Ok(context)
}

/// How rustc will run the linker of `target`: the one `linker_env` sets, else the one the user
/// configured (`CARGO_TARGET_<TRIPLE>_LINKER`, then the cargo config files cargo reads), else
/// the default C compiler. A linker whose name ends in `ld` (`rust-lld`, `ld.lld`) is run bare,
/// as rustc and cargo-auditable take it.
pub(crate) fn flavor(target: &Target, linker_env: &[(String, String)], env: &Env) -> Linker {
    let var = target.cargo_env("LINKER");
    let linker = linker_env
        .iter()
        .find(|(key, _)| *key == var)
        .map(|(_, value)| value.clone())
        .or_else(|| env.cargo_var(&var).map(str::to_string))
        .or_else(|| configured_linker(target, &cargo_config_files(env)));
    let stem = linker.as_deref().map(|l| {
        let name = Path::new(l)
            .file_name()
            .map_or(l.into(), |n| n.to_string_lossy());
        name.trim_end_matches(".exe").to_string()
    });
    match stem {
        Some(name) if name.ends_with("ld") => Linker::Bare,
        _ => Linker::Driver,
    }
}

/// Whether one of the cargo config `files` sets `target.<triple>.linker`.
fn configured_in_files(target: &Target, files: &[PathBuf]) -> bool {
    configured_linker(target, files).is_some()
}

/// The `target.<triple>.linker` of the first of the cargo config `files` that sets one.
fn configured_linker(target: &Target, files: &[PathBuf]) -> Option<String> {
    files.iter().find_map(|file| {
        let text = std::fs::read_to_string(file).ok()?;
        let config = text.parse::<toml::Table>().ok()?;
        let linker = config.get("target")?.get(&target.triple)?.get("linker")?;
        Some(linker.as_str().unwrap_or_default().to_string())
    })
}

/// The config files the cargo we run reads, whether or not they exist: it runs in our working
/// directory, so the `.cargo/config.toml` (or old `.cargo/config`) there and in each parent,
/// then the cargo home's. (`--manifest-path` does not change where cargo looks.)
pub(crate) fn cargo_config_files(env: &Env) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = env
        .cwd
        .ancestors()
        .flat_map(|d| [d.join(".cargo/config.toml"), d.join(".cargo/config")])
        .collect();
    if let Some(home) = &env.cargo_home {
        files.extend([home.join("config.toml"), home.join("config")]);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm() -> Target {
        Target::musl(Arch::Arm64)
    }

    #[test]
    fn native_and_configured_builds_need_nothing() {
        assert!(
            cross_env(&arm(), Some(Arch::Arm64), &LinkContext::default())
                .unwrap()
                .is_empty()
        );
        let configured = LinkContext {
            configured: true,
            ..LinkContext::default()
        };
        assert!(
            cross_env(&arm(), Some(Arch::Amd64), &configured)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_cross_gcc_comes_first_then_rust_lld() {
        let gcc = LinkContext {
            cross_gcc: Some("/usr/bin/aarch64-linux-musl-gcc".into()),
            rust_lld: true,
            ..LinkContext::default()
        };
        assert_eq!(
            cross_env(&arm(), Some(Arch::Amd64), &gcc).unwrap(),
            [(
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER".to_string(),
                "/usr/bin/aarch64-linux-musl-gcc".to_string()
            )]
        );
        let lld = LinkContext {
            rust_lld: true,
            ..LinkContext::default()
        };
        assert_eq!(
            cross_env(&arm(), Some(Arch::Amd64), &lld).unwrap()[0].1,
            "rust-lld"
        );
    }

    #[test]
    fn c_code_without_a_cross_compiler_says_how_to_fix_it() {
        let context = LinkContext {
            rust_lld: true,
            c_packages: vec!["ring".into()],
            ..LinkContext::default()
        };
        let err = cross_env(&arm(), Some(Arch::Amd64), &context)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot link for aarch64-unknown-linux-musl: no `aarch64-linux-musl-gcc` on PATH, and ring builds C code"), "{err}");
        assert!(err.contains("help: or set CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=<linker> and CC_aarch64_unknown_linux_musl=<C compiler>"), "{err}");
        assert!(err.contains("cargo-zigbuild"), "{err}");
    }

    #[test]
    fn bare_linkers_are_known_by_their_names() {
        let arm = arm();
        let env = Env::default();
        let with = |linker: &str| vec![(arm.cargo_env("LINKER"), linker.to_string())];
        assert_eq!(flavor(&arm, &with("rust-lld"), &env), Linker::Bare);
        assert_eq!(flavor(&arm, &with("/usr/bin/ld.lld"), &env), Linker::Bare);
        assert_eq!(
            flavor(&arm, &with("/usr/bin/aarch64-linux-musl-gcc"), &env),
            Linker::Driver
        );
        assert_eq!(flavor(&arm, &[], &env), Linker::Driver);
        let mut configured = Env::default();
        configured
            .cargo_vars
            .insert(arm.cargo_env("LINKER"), "rust-lld".into());
        assert_eq!(flavor(&arm, &[], &configured), Linker::Bare);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        std::fs::write(
            dir.path().join(".cargo/config.toml"),
            "[target.aarch64-unknown-linux-musl]\nlinker = \"ld.lld\"\n",
        )
        .unwrap();
        let in_dir = Env {
            cwd: dir.path().to_path_buf(),
            ..Env::default()
        };
        assert_eq!(flavor(&arm, &[], &in_dir), Linker::Bare);
    }

    #[test]
    fn cargo_config_files_are_read_upwards() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("a/b");
        std::fs::create_dir_all(&project).unwrap();
        let files = cargo_config_files(&Env {
            cwd: project.clone(),
            ..Env::default()
        });
        assert!(!configured_in_files(&arm(), &files));
        std::fs::create_dir_all(dir.path().join("a/.cargo")).unwrap();
        std::fs::write(
            dir.path().join("a/.cargo/config.toml"),
            "[target.aarch64-unknown-linux-musl]\nlinker = \"my-ld\"\n",
        )
        .unwrap();
        assert!(configured_in_files(&arm(), &files));
        assert!(!configured_in_files(&Target::musl(Arch::Amd64), &files));
    }

    /// With `CARGO_HOME` unset, cargo reads `~/.cargo/config.toml`: so does the linker choice.
    #[test]
    fn a_linker_in_the_default_cargo_home_counts_as_configured() {
        // The project outside the home, so only the cargo home can be where the linker is set.
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let project = elsewhere.path().join("src/app");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::create_dir_all(home.path().join(".cargo")).unwrap();
        std::fs::write(
            home.path().join(".cargo/config.toml"),
            "[target.aarch64-unknown-linux-musl]\nlinker = \"my-ld\"\n",
        )
        .unwrap();
        let env = Env::from_vars(
            project.clone(),
            [("HOME".into(), home.path().as_os_str().to_owned())],
        );
        assert_eq!(env.cargo_home, Some(home.path().join(".cargo")));
        let context = link_context(&arm(), Path::new("/nowhere"), &env, || {
            panic!("not asked: the configuration settles it")
        })
        .unwrap();
        assert!(context.configured);
        assert!(
            cross_env(&arm(), Some(Arch::Amd64), &context)
                .unwrap()
                .is_empty(),
            "cargo uses the configured linker"
        );
    }
}
