//! Checks before the build that a program in a scratch image needs, from the crate graph the
//! run resolves anyway and the target: what would fail after minutes of compiling, or run
//! badly, is said before cargo starts, with the fix. Each check has a key that the `allow`
//! setting names to turn it off.

mod cc;
mod graph_checks;
mod levers;

use std::fmt;

use anyhow::{Result, bail};
use serde::Deserialize;

pub(crate) use cc::{CCompiler, probe_link};
pub(crate) use graph_checks::{cross_c_crates, graph_findings};
pub(crate) use levers::PackageFeatures;

use crate::env::Env;
use crate::report::Reporter;
use crate::sbom::vendored::Lookups;
use crate::target::{Arch, Target};

/// A check, by the key `allow` names it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Check {
    /// A `-sys` crate whose build for a musl target links a system library (openssl-sys
    /// without `vendored`), or may.
    SystemLibrary,
    /// A multi-threaded program on musl's malloc.
    MuslMalloc,
    /// A `--target` that is not musl.
    NonMuslTarget,
    /// A cross C compiler that cannot link the test programs a configure script builds.
    CrossCCompiler,
    /// A service: as PID 1 it must handle SIGTERM, or it ignores `docker stop`.
    Sigterm,
}

impl Check {
    #[cfg(test)]
    pub(crate) const ALL: [Check; 5] = [
        Check::SystemLibrary,
        Check::MuslMalloc,
        Check::NonMuslTarget,
        Check::CrossCCompiler,
        Check::Sigterm,
    ];

    /// The key in `allow = [...]`.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Check::SystemLibrary => "system-library",
            Check::MuslMalloc => "musl-malloc",
            Check::NonMuslTarget => "non-musl-target",
            Check::CrossCCompiler => "cross-c-compiler",
            Check::Sigterm => "sigterm",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// How much a finding stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Said, and the build goes on.
    Note,
    Warning,
    /// The build would fail or make a broken image: it does not start.
    Error,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub check: Check,
    pub severity: Severity,
    /// The first line says what; `help:` lines say how to fix it.
    pub message: String,
}

impl Finding {
    /// The message with the line that says how to turn the check off.
    fn with_allow(&self) -> String {
        format!(
            "{}\nhelp: or, if that is intended, add allow = [\"{}\"] to [package.metadata.scratchimg]",
            self.message, self.check
        )
    }
}

/// Says every finding that `allowed` does not turn off, each once: notes and warnings go on,
/// errors stop the run before anything is built.
pub(crate) fn report(
    findings: Vec<Finding>,
    allowed: impl Fn(Check) -> bool,
    report: &dyn Reporter,
) -> Result<()> {
    let findings = crate::util::unique(findings.into_iter().filter(|f| !allowed(f.check)));
    let mut errors = Vec::new();
    for finding in findings {
        match finding.severity {
            Severity::Note => {
                for (i, line) in finding.with_allow().lines().enumerate() {
                    report.status(if i == 0 { "Note" } else { "" }, &line);
                }
            }
            Severity::Warning => report.warn(&finding.with_allow()),
            Severity::Error => errors.push(finding.with_allow()),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    bail!("{}", errors.join("\nerror: "))
}

/// What the `-sys` crates' lookups of a system library can find when building for `target`.
pub(crate) fn lookups(target: &Target, env: &Env) -> Lookups {
    Lookups {
        vars: env.native_vars.clone(),
        triple: target.triple.clone(),
        // This tool built for musl runs on a musl host (Alpine): building for its own
        // architecture there, pkg-config and the C compiler see the host's libraries.
        native_host: cfg!(target_env = "musl")
            && Arch::host() == Some(target.arch)
            && target.triple.ends_with("-musl"),
    }
}

/// A `--target` that does not link musl statically: glibc's targets link `libc.so`, which a
/// scratch image does not have. `+crt-static` in the rustflags makes a static glibc binary,
/// which the ELF check after the build judges.
pub(crate) fn target_finding(target: &Target, rustflags: &[&str]) -> Option<Finding> {
    if target.triple.ends_with("-musl") || rustflags.iter().any(|f| f.contains("+crt-static")) {
        return None;
    }
    let musl = Target::musl(target.arch).triple;
    Some(Finding {
        check: Check::NonMuslTarget,
        severity: Severity::Error,
        message: format!(
            "target `{}` is not a musl target: its binaries need the C library at run time, which a scratch image does not have\n\
             help: build for {musl} (drop --target, or pass --platform {})",
            target.triple,
            target.arch.platform()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Capture, Event, Verbosity};
    use crate::target::Arch;

    #[test]
    fn keys_are_the_ones_settings_take() {
        for check in Check::ALL {
            let parsed: Check = serde_json::from_value(serde_json::json!(check.key())).unwrap();
            assert_eq!(parsed, check);
        }
    }

    #[test]
    fn gnu_targets_are_refused_unless_static() {
        let gnu = Target::parse("x86_64-unknown-linux-gnu").unwrap();
        let finding = target_finding(&gnu, &[]).unwrap();
        assert_eq!(finding.severity, Severity::Error);
        assert!(
            finding
                .message
                .starts_with("target `x86_64-unknown-linux-gnu` is not a musl target"),
            "{}",
            finding.message
        );
        assert!(target_finding(&gnu, &["-C target-feature=+crt-static"]).is_none());
        assert!(target_finding(&Target::musl(Arch::Arm64), &[]).is_none());
    }

    #[test]
    fn allowed_findings_are_not_said_and_errors_stop() {
        let finding = |check, severity| Finding {
            check,
            severity,
            message: format!("{check} found\nhelp: fix it"),
        };
        let capture = Capture::new(Verbosity::Normal);
        let findings = vec![
            finding(Check::MuslMalloc, Severity::Warning),
            finding(Check::MuslMalloc, Severity::Warning),
            finding(Check::Sigterm, Severity::Note),
        ];
        report(findings.clone(), |_| false, &capture).unwrap();
        let events = capture.events();
        assert_eq!(
            events[0],
            Event::Warning(
                "musl-malloc found\nhelp: fix it\nhelp: or, if that is intended, add allow = [\"musl-malloc\"] to [package.metadata.scratchimg]".into()
            )
        );
        assert_eq!(
            events.len(),
            1 + 3,
            "one warning, once; a note of three lines"
        );
        let quiet = Capture::new(Verbosity::Normal);
        report(findings, |c| c != Check::SystemLibrary, &quiet).unwrap();
        assert!(quiet.events().is_empty());
        let error = report(
            vec![finding(Check::SystemLibrary, Severity::Error)],
            |_| false,
            &quiet,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("system-library found\nhelp: fix it")
        );
    }
}
