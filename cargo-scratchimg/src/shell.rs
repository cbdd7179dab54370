//! The terminal: cargo-style status lines, warnings, progress bars and errors on stderr, and
//! the result alone on stdout, as a path and references or as JSON.

use std::fmt::Display;
use std::io::Write;
use std::sync::Mutex;

use anstream::AutoStream;
use anstyle::{AnsiColor, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::env::Terminal;
use crate::outcome::Outcome;
use crate::report::{Progress, ProgressEnd, Reporter, Verbosity};
use crate::text::printable;

const STATUS: Style = AnsiColor::Green.on_default().bold();
const NOTE: Style = AnsiColor::Cyan.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();

/// How results go to stdout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MessageFormat {
    /// The path written, then `REF@sha256:…` of each pushed tag, one per line.
    #[default]
    Human,
    /// One JSON object per image.
    Json,
}

/// Writes status lines the way cargo does: a verb right-aligned in 12 columns, then a message.
pub struct Shell {
    verbosity: Verbosity,
    format: MessageFormat,
    err: Mutex<Box<dyn Write + Send>>,
    out: Mutex<Box<dyn Write + Send>>,
    /// Draws progress bars on a terminal; lines are written around them.
    bars: Option<MultiProgress>,
}

impl Shell {
    /// The process's stderr and stdout; colors when stderr is a terminal (as `anstream` finds),
    /// and progress bars only there.
    pub fn new(verbosity: Verbosity, format: MessageFormat, terminal: &Terminal) -> Shell {
        let bars = (terminal.stderr && verbosity == Verbosity::Normal)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Shell {
            verbosity,
            format,
            err: Mutex::new(Box::new(AutoStream::auto(std::io::stderr()))),
            out: Mutex::new(Box::new(std::io::stdout())),
            bars,
        }
    }

    /// A shell writing into `err` and `out`, without colors or bars: for tests.
    pub fn from_write(
        err: Box<dyn Write + Send>,
        out: Box<dyn Write + Send>,
        verbosity: Verbosity,
        format: MessageFormat,
    ) -> Shell {
        let plain =
            |w: Box<dyn Write + Send>| -> Box<dyn Write + Send> { Box::new(AutoStream::never(w)) };
        Shell {
            verbosity,
            format,
            err: Mutex::new(plain(err)),
            out: Mutex::new(out),
            bars: None,
        }
    }

    /// Prints an error and its causes, cargo's way; `help:` lines, wherever in the chain they
    /// were attached, come last. Shown even with `-q`.
    pub fn error(&self, error: &anyhow::Error) {
        let mut lines: Vec<String> = Vec::new();
        let mut help: Vec<String> = Vec::new();
        for cause in error.chain() {
            let text = printable(&cause.to_string());
            let mut cause_lines = Vec::new();
            for line in text.lines() {
                match line.strip_prefix("help: ") {
                    Some(h) => help.push(h.to_string()),
                    None => cause_lines.push(line.to_string()),
                }
            }
            if !cause_lines.is_empty() {
                lines.push(cause_lines.join("\n"));
            }
        }
        let mut out = format!(
            "{ERROR}error{ERROR:#}: {}\n",
            lines.first().map_or("", String::as_str)
        );
        if lines.len() > 1 {
            out.push_str("\nCaused by:\n");
            for cause in &lines[1..] {
                for line in cause.lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        }
        for h in help {
            out.push_str(&format!("{NOTE}help{NOTE:#}: {h}\n"));
        }
        self.write_err(&out);
    }

    fn line(&self, style: Style, verb: &str, message: &dyn Display, justified: bool) {
        let message = printable(&message.to_string());
        let line = if justified {
            format!("{style}{verb:>12}{style:#} {message}\n")
        } else {
            format!("{style}{verb}{style:#}: {message}\n")
        };
        self.write_err(&line);
    }

    fn write_err(&self, text: &str) {
        let write = || {
            let mut err = self.err.lock().unwrap_or_else(|e| e.into_inner());
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        };
        match &self.bars {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }
}

impl Reporter for Shell {
    fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn status(&self, verb: &str, message: &dyn Display) {
        if self.verbosity >= Verbosity::Normal {
            self.line(STATUS, verb, message, true);
        }
    }

    fn verbose(&self, verb: &str, message: &dyn Fn() -> String) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(NOTE, verb, &message(), true);
        }
    }

    fn warn(&self, message: &dyn Display) {
        if self.verbosity >= Verbosity::Normal {
            self.line(WARN, "warning", message, false);
        }
    }

    fn progress(&self, verb: &str, label: &str, total: u64) -> Option<Box<dyn Progress>> {
        let bars = self.bars.as_ref()?;
        let bar = ProgressBar::new(total)
            .with_style(
                ProgressStyle::with_template(
                    "{prefix:>12.green.bold} [{bar:24}] {bytes:>10}/{total_bytes:<10} {wide_msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            )
            .with_prefix(verb.to_string())
            .with_message(label.to_string());
        Some(Box::new(Bar(bars.add(bar))))
    }

    fn result(&self, outcome: &Outcome) {
        let text = match self.format {
            MessageFormat::Json => format!(
                "{}\n",
                serde_json::to_string(outcome).expect("an outcome serializes")
            ),
            MessageFormat::Human => outcome
                .path
                .iter()
                .map(|path| path.display().to_string())
                .chain(outcome.pushed.iter().cloned())
                .map(|line| format!("{line}\n"))
                .collect(),
        };
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    fn finish(&self, end: ProgressEnd) {
        match end {
            ProgressEnd::Done => self.0.finish(),
            ProgressEnd::Skipped => self.0.finish_and_clear(),
            ProgressEnd::Failed => self.0.abandon(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A `Write` whose bytes a test can read after the shell took it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn status_lines_are_right_aligned_and_help_comes_last() {
        let (err, out) = (Sink::default(), Sink::default());
        let shell = Shell::from_write(
            Box::new(err.clone()),
            Box::new(out.clone()),
            Verbosity::Normal,
            MessageFormat::Human,
        );
        shell.status("Packing", &"base");
        shell.verbose("Cache", &|| "hidden".to_string());
        let error = anyhow::anyhow!("inner\nhelp: do this").context("outer");
        shell.error(&error);
        assert_eq!(
            err.text(),
            "     Packing base\nerror: outer\n\nCaused by:\n  inner\nhelp: do this\n"
        );
        assert_eq!(out.text(), "");
    }
}
