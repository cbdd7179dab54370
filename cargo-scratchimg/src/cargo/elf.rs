//! Is the executable truly static? A scratch image has no dynamic loader and no shared
//! libraries, so a binary that needs either fails at `exec` with a baffling "no such file".

use std::path::Path;

use anyhow::{Context, Result, bail};
use goblin::elf::Elf;

use crate::target::Target;

/// What the ELF headers say about how a binary is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Linkage {
    pub machine: u16,
    /// `PT_INTERP`: the dynamic loader the kernel would start.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`: the shared libraries the loader would load.
    pub needed: Vec<String>,
}

impl Linkage {
    pub(crate) fn read(bytes: &[u8]) -> Result<Linkage> {
        let elf = Elf::parse(bytes).context("not an ELF executable")?;
        Ok(Linkage {
            machine: elf.header.e_machine,
            interpreter: elf.interpreter.map(str::to_string),
            needed: elf.libraries.iter().map(|l| l.to_string()).collect(),
        })
    }

    pub(crate) fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }
}

/// Checks that the binary at `path` (its `bytes`) runs in an empty filesystem on the target's
/// architecture.
pub(crate) fn check_static(path: &Path, bytes: &[u8], target: &Target) -> Result<()> {
    let linkage =
        Linkage::read(bytes).with_context(|| format!("could not inspect {}", path.display()))?;
    let expected = target.arch.elf_machine();
    if linkage.machine != expected {
        bail!(
            "{} is built for {}, but target `{}` is {}\n\
             help: check `build.target` and the `linker` set for `{}` in .cargo/config.toml",
            path.display(),
            goblin::elf::header::machine_to_str(linkage.machine),
            target.triple,
            goblin::elf::header::machine_to_str(expected),
            target.triple,
        );
    }
    if linkage.is_static() {
        return Ok(());
    }
    let mut needs: Vec<String> = linkage.needed.clone();
    if let Some(interp) = &linkage.interpreter {
        needs.push(format!("the loader {interp}"));
    }
    let mut message = format!(
        "{} is dynamically linked; it needs {}, which a scratch image does not have\n\
         help: the musl target links statically unless `-C target-feature=-crt-static` is set; \
         remove it from RUSTFLAGS and .cargo/config.toml",
        path.display(),
        needs.join(", ")
    );
    if linkage
        .needed
        .iter()
        .any(|l| l.starts_with("libssl") || l.starts_with("libcrypto"))
    {
        message.push_str(
            "\nhelp: for OpenSSL, switch to rustls (e.g. reqwest's `rustls-tls` feature) \
             or enable the openssl crate's `vendored` feature",
        );
    } else if linkage.needed.iter().any(|l| !is_c_runtime(l)) {
        message.push_str("\nhelp: a -sys crate links a system library; enable its `vendored` or `static` feature");
    }
    bail!(message)
}

/// Libraries of the C runtime itself, which `-crt-static` links dynamically.
fn is_c_runtime(library: &str) -> bool {
    [
        "libc.",
        "libgcc_s.",
        "ld-",
        "libm.",
        "libpthread.",
        "libdl.",
        "librt.",
        "libutil.",
    ]
    .iter()
    .any(|prefix| library.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::target::Arch;

    /// Compiles a C program with the host's C compiler; these tests need gcc, as cc-rs does.
    fn compile(dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
        let src = dir.join("main.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
        )
        .unwrap();
        let out = dir.join(name);
        let status = Command::new("cc")
            .args(args)
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .status();
        assert!(
            status.expect("cc (gcc) is needed for this test").success(),
            "cc {args:?} failed"
        );
        out
    }

    #[test]
    fn dynamic_binaries_are_refused_with_their_libraries() {
        let dir = tempfile::tempdir().unwrap();
        let bin = compile(dir.path(), "dynamic", &[]);
        let host = Target::host_musl().unwrap();
        let linkage = Linkage::read(&std::fs::read(&bin).unwrap()).unwrap();
        assert!(!linkage.is_static());
        assert!(
            linkage.needed.iter().any(|l| l.starts_with("libc.so")),
            "{linkage:?}"
        );
        let err = check_static(&bin, &std::fs::read(&bin).unwrap(), &host)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is dynamically linked; it needs libc.so.6"),
            "{err}"
        );
        assert!(err.contains("the loader /lib"), "{err}");
        assert!(
            err.contains("help: the musl target links statically"),
            "{err}"
        );
    }

    #[test]
    fn static_binaries_pass() {
        let dir = tempfile::tempdir().unwrap();
        let bin = compile(dir.path(), "static", &["-static"]);
        let bytes = std::fs::read(&bin).unwrap();
        let linkage = Linkage::read(&bytes).unwrap();
        assert!(linkage.is_static(), "{linkage:?}");
        check_static(&bin, &bytes, &Target::host_musl().unwrap()).unwrap();
    }

    #[test]
    fn static_pie_binaries_pass() {
        let dir = tempfile::tempdir().unwrap();
        let bin = compile(dir.path(), "static-pie", &["-static-pie", "-fPIE"]);
        check_static(
            &bin,
            &std::fs::read(&bin).unwrap(),
            &Target::host_musl().unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn wrong_architecture_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bin = compile(dir.path(), "static", &["-static"]);
        let other = Arch::ALL
            .into_iter()
            .find(|a| Some(*a) != Arch::host())
            .unwrap();
        let err = check_static(&bin, &std::fs::read(&bin).unwrap(), &Target::musl(other))
            .unwrap_err()
            .to_string();
        assert!(err.contains("but target"), "{err}");
    }

    #[test]
    fn non_elf_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
        let err = format!(
            "{:#}",
            check_static(
                &path,
                &std::fs::read(&path).unwrap(),
                &Target::host_musl().unwrap()
            )
            .unwrap_err()
        );
        assert!(
            err.contains("could not inspect") && err.contains("not an ELF"),
            "{err}"
        );
    }
}
