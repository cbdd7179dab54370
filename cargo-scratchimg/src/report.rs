//! How the library says what it is doing: a small trait that [`crate::Shell`] implements for
//! the terminal and [`Capture`] for tests. Library code never prints.

use std::fmt::Display;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// How much to say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

/// Where status lines, warnings, progress and results go. Shared by the threads of a run.
pub trait Reporter: Sync {
    fn verbosity(&self) -> Verbosity;
    /// A cargo-style status line, `   Packing base: …`; hidden by `-q`.
    fn status(&self, verb: &str, message: &dyn Display);
    /// A status line for `-v` alone; `message` is only made when it is shown.
    fn verbose(&self, verb: &str, message: &dyn Fn() -> String);
    fn warn(&self, message: &dyn Display);
    /// A progress bar for `total` bytes, or `None` where bars are not drawn (no terminal, `-q`,
    /// `-v`): the caller then reports the end with a status line.
    fn progress(&self, verb: &str, label: &str, total: u64) -> Option<Box<dyn Progress>>;
    /// What a run produced for one image, as soon as it is published: its path and pushed
    /// references (or the JSON object) on stdout.
    fn result(&self, outcome: &Outcome);
}

/// One progress bar.
pub trait Progress: Send + Sync {
    fn set(&self, done: u64);
    /// How a progress bar ends.
    fn finish(&self, end: ProgressEnd);
}

/// How the work a progress bar shows ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEnd {
    /// Done: the bar stays, full.
    Done,
    /// Not needed after all (the blob was there already): the bar goes.
    Skipped,
    /// Failed: the bar stays where it stopped.
    Failed,
}

/// A reporter that keeps everything, for tests of the library.
#[derive(Debug, Default)]
pub struct Capture {
    verbosity: Verbosity,
    events: Mutex<Vec<Event>>,
}

/// One thing a [`Capture`] was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Status { verb: String, message: String },
    Verbose { verb: String, message: String },
    Warning(String),
    Result(Box<Outcome>),
}

impl Capture {
    pub fn new(verbosity: Verbosity) -> Capture {
        Capture {
            verbosity,
            events: Mutex::default(),
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The messages of the status lines with verb `verb`, in order.
    pub fn statuses(&self, verb: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Status { verb: v, message } if v == verb => Some(message),
                _ => None,
            })
            .collect()
    }

    fn push(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}

impl Reporter for Capture {
    fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn status(&self, verb: &str, message: &dyn Display) {
        self.push(Event::Status {
            verb: verb.to_string(),
            message: message.to_string(),
        });
    }

    fn verbose(&self, verb: &str, message: &dyn Fn() -> String) {
        if self.verbosity >= Verbosity::Verbose {
            self.push(Event::Verbose {
                verb: verb.to_string(),
                message: message(),
            });
        }
    }

    fn warn(&self, message: &dyn Display) {
        self.push(Event::Warning(message.to_string()));
    }

    fn progress(&self, _: &str, _: &str, _: u64) -> Option<Box<dyn Progress>> {
        None
    }

    fn result(&self, outcome: &Outcome) {
        self.push(Event::Result(Box::new(outcome.clone())));
    }
}

/// Sizes as cargo prints them: `512 B`, `1.5 KiB`, `3.0 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// Registry text (error bodies, headers) on one line: escape sequences, control characters and
/// bidirectional overrides removed, whitespace collapsed, at most `max` characters. Nothing a
/// registry says can then start a line of ours, such as a `help:` line, or restyle the terminal.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let stripped = anstream::adapter::strip_str(text).to_string();
    let mut line = String::new();
    let mut count = 0;
    for c in stripped.chars() {
        if invisible(c) {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            if !line.is_empty() && !line.ends_with(' ') {
                line.push(' ');
            }
            continue;
        }
        if count == max {
            line.push('…');
            return line;
        }
        line.push(c);
        count += 1;
    }
    line.trim_end().to_string()
}

/// Zero-width and bidirectional-override characters: they reorder or hide what is shown.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// A message as the terminal gets it: escape sequences, control characters other than the
/// newline, and invisible characters removed. The shell writes every message through it, so
/// text from elsewhere that a message quoted without [`one_line`] still cannot restyle the
/// terminal, move its cursor or rewrite a line.
pub(crate) fn printable(text: &str) -> String {
    anstream::adapter::strip_str(text)
        .to_string()
        .chars()
        .filter(|&c| c == '\n' || !(c.is_control() || invisible(c)))
        .collect()
}

/// Another program's output, as part of one of our messages: every line indented, escape and
/// control characters removed, at most [`QUOTED_LINES`] lines. None of it can pass for our own
/// `help:` lines, or move the terminal's cursor.
pub(crate) fn quoted(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<String> = text
        .lines()
        .map(|line| one_line(line, 300))
        .filter(|line| !line.is_empty())
        .collect();
    let mut quoted: Vec<String> = lines
        .iter()
        .take(QUOTED_LINES)
        .map(|line| format!("    {line}"))
        .collect();
    if lines.len() > QUOTED_LINES {
        quoted.push(format!("    … ({} more lines)", lines.len() - QUOTED_LINES));
    }
    if quoted.is_empty() {
        "(it printed nothing)".to_string()
    } else {
        format!("\n{}", quoted.join("\n"))
    }
}

/// How much of another program's output a message quotes.
const QUOTED_LINES: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_cargo() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn quoted_output_cannot_pass_for_ours() {
        let output = b"error: no such image\nhelp: run \x1b[31mrm -rf\x1b[0m\n\n\x07done\n";
        assert_eq!(
            quoted(output),
            "\n    error: no such image\n    help: run rm -rf\n    done"
        );
        assert_eq!(quoted(b""), "(it printed nothing)");
        let many: String = (0..30).map(|i| format!("line {i}\n")).collect();
        assert!(quoted(many.as_bytes()).ends_with("    … (10 more lines)"));
    }

    #[test]
    fn printable_text_keeps_lines_and_nothing_that_drives_the_terminal() {
        assert_eq!(
            printable("a\x1b[2J\x1b]0;t\x07b\r\nc\u{202e}d\x08"),
            "ab\ncd"
        );
    }

    #[test]
    fn a_capture_keeps_what_its_verbosity_shows() {
        let capture = Capture::new(Verbosity::Normal);
        capture.status("Packing", &"base");
        capture.verbose("Cache", &|| panic!("not made unless shown"));
        capture.warn(&"careful");
        assert_eq!(capture.statuses("Packing"), ["base"]);
        assert_eq!(capture.events().len(), 2);
    }
}
