//! All human-facing output: cargo-style status lines on stderr. stdout is left to the caller,
//! for the result alone.

use std::fmt::Display;
use std::io::Write;

use anstream::AutoStream;
use anstyle::{AnsiColor, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

const STATUS: Style = AnsiColor::Green.on_default().bold();
const NOTE: Style = AnsiColor::Cyan.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();

/// Writes status lines the way cargo does: a verb right-aligned in 12 columns, then a message.
pub struct Shell {
    verbosity: Verbosity,
    err: AutoStream<std::io::Stderr>,
}

impl Shell {
    pub fn new(verbosity: Verbosity) -> Shell {
        Shell {
            verbosity,
            err: AutoStream::auto(std::io::stderr()),
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// `   Compiling hello v0.1.0`-style line; hidden by `-q`.
    pub fn status(&mut self, verb: impl Display, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            self.line(STATUS, verb, message, true);
        }
    }

    /// A status line shown only with `-v`.
    pub fn verbose(&mut self, verb: impl Display, message: impl Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(NOTE, verb, message, true);
        }
    }

    pub fn warn(&mut self, message: impl Display) {
        if self.verbosity >= Verbosity::Normal {
            self.line(WARN, "warning", message, false);
        }
    }

    /// Prints an error and its causes, cargo's way; `help:` lines, wherever in the chain they
    /// were attached, come last. Shown even with `-q`.
    pub fn error(&mut self, error: &anyhow::Error) {
        let mut lines: Vec<String> = Vec::new();
        let mut help: Vec<String> = Vec::new();
        for cause in error.chain() {
            let text = cause.to_string();
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
        let _ = self.err.write_all(out.as_bytes());
    }

    fn line(&mut self, style: Style, verb: impl Display, message: impl Display, justified: bool) {
        let line = if justified {
            format!("{style}{verb:>12}{style:#} {message}\n")
        } else {
            format!("{style}{verb}{style:#}: {message}\n")
        };
        let _ = self.err.write_all(line.as_bytes());
    }
}
