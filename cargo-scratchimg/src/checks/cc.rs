//! Whether a cross C compiler can link a program, as configure scripts (jemalloc's) and cmake's
//! compiler checks need: a compile and link of an empty program, about a second.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::env::Env;
use crate::target::Target;
use crate::text::quoted;

/// How long the probe may take: a compiler that hangs must not hold the run.
const PROBE_LIMIT: Duration = Duration::from_secs(20);

/// The C compiler cc-rs uses for a target, as the environment names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CCompiler {
    /// Where it was named: `CC_aarch64_unknown_linux_musl`, or `PATH`.
    pub origin: String,
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl CCompiler {
    /// cc-rs's choice for `target`: `CC_<triple>` (either spelling), `TARGET_CC`, else
    /// `<arch>-linux-musl-gcc` from `PATH`; `None` when there is none.
    pub(crate) fn for_target(target: &Target, env: &Env) -> Option<CCompiler> {
        let names = [
            format!("CC_{}", target.triple),
            target.cc_env(),
            "TARGET_CC".to_string(),
        ];
        for name in names {
            if let Some(value) = env.c_compilers.get(&name) {
                // cc-rs takes `CC="clang --target=x"` as a program and its arguments.
                let mut words = value.split_whitespace();
                let program = words.next()?;
                return Some(CCompiler {
                    origin: name,
                    program: program.into(),
                    args: words.map(str::to_string).collect(),
                });
            }
        }
        let gcc = target.musl_gcc();
        env.on_path(&gcc).map(|program| CCompiler {
            origin: "PATH".to_string(),
            program,
            args: Vec::new(),
        })
    }

    /// `aarch64-linux-musl-gcc --sysroot=/x`, as a user would type it.
    pub(crate) fn shown(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Compiles and links an empty C program with `compiler` in a temporary directory; `Err` holds
/// what the compiler said.
pub(crate) fn probe_link(compiler: &CCompiler) -> Result<std::result::Result<(), String>> {
    let dir = tempfile::Builder::new()
        .prefix("scratchimg-cc-probe-")
        .tempdir()
        .context("could not create a directory for the C compiler probe")?;
    let source = dir.path().join("probe.c");
    std::fs::write(&source, "int main(void) { return 0; }\n")
        .with_context(|| format!("could not write {}", source.display()))?;
    Ok(run(compiler, &source, &dir.path().join("probe")))
}

fn run(compiler: &CCompiler, source: &Path, output: &Path) -> std::result::Result<(), String> {
    let shown = compiler.shown();
    let mut child = Command::new(&compiler.program)
        .args(&compiler.args)
        .arg("-o")
        .arg(output)
        .arg(source)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout stops the driver and the linker it started.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not run `{shown}`: {e}"))?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reading = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + PROBE_LIMIT;
    let Some(status) = crate::process::wait_until(&mut child, deadline) else {
        crate::interrupt::kill_group(child.id());
        let _ = child.wait();
        return Err(format!(
            "`{shown}` did not link a program within {} s",
            PROBE_LIMIT.as_secs()
        ));
    };
    let said = reading.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(format!(
        "`{shown} -o probe probe.c` failed ({status}):{}",
        quoted(&said)
    ))
}

use std::os::unix::process::CommandExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_links_with_the_host_compiler_and_says_why_not() {
        let cc = CCompiler {
            origin: "test".into(),
            program: "cc".into(),
            args: Vec::new(),
        };
        assert_eq!(probe_link(&cc).unwrap(), Ok(()));
        let broken = CCompiler {
            args: vec!["-nostdlib".into(), "-Wl,--no-such-flag".into()],
            ..cc
        };
        let error = probe_link(&broken).unwrap().unwrap_err();
        assert!(
            error.starts_with("`cc -nostdlib -Wl,--no-such-flag -o probe probe.c` failed"),
            "{error}"
        );
        let missing = CCompiler {
            program: "/nonexistent/gcc".into(),
            ..broken
        };
        assert!(
            probe_link(&missing)
                .unwrap()
                .unwrap_err()
                .starts_with("could not run")
        );
    }

    #[test]
    fn the_compiler_is_the_one_cc_rs_takes() {
        let target = Target::musl(crate::target::Arch::Arm64);
        let env = Env::from_vars(
            "/".into(),
            [
                (
                    "CC_aarch64_unknown_linux_musl".into(),
                    "clang --target=aarch64-linux-musl".into(),
                ),
                ("PATH".into(), "/nonexistent".into()),
            ],
        );
        let cc = CCompiler::for_target(&target, &env).unwrap();
        assert_eq!(cc.origin, "CC_aarch64_unknown_linux_musl");
        assert_eq!(cc.shown(), "clang --target=aarch64-linux-musl");
        let none = Env::from_vars("/".into(), [("PATH".into(), "/nonexistent".into())]);
        assert_eq!(CCompiler::for_target(&target, &none), None);
    }
}
