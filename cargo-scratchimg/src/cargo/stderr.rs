//! cargo's stderr, passed on to ours as it comes, with two changes: an early build's is held
//! back until the build is adopted (a stopped one never shows), and a line longer than
//! [`LINE_LIMIT`] (the rustc command line of cargo's `process didn't exit successfully: …`,
//! 14 KB of flags for a large crate) is cut, unless `-v` asked for everything.

use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::env::Terminal;

/// Bytes of one line shown before the rest is cut.
pub(crate) const LINE_LIMIT: usize = 600;

/// cargo colors, and draws its progress bar, only on a terminal: its output, piped to us, is
/// shown on ours. The user's own settings win.
pub(crate) fn as_on_a_terminal(command: &mut Command, terminal: &Terminal) {
    if terminal.stderr && !terminal.color_set {
        command.env("CARGO_TERM_COLOR", "always");
    }
    if let Some(width) = terminal.width
        && !terminal.progress_set
    {
        command
            .env("CARGO_TERM_PROGRESS_WHEN", "always")
            .env("CARGO_TERM_PROGRESS_WIDTH", width.to_string());
    }
}

/// What is passed on, and what is held back until adopted.
pub(crate) struct Held {
    adopted: bool,
    bytes: Vec<u8>,
    cut: Option<Cut>,
}

impl Held {
    /// Passing on at once (`adopted`) or holding back, cutting long lines unless `whole`.
    pub(crate) fn new(adopted: bool, whole: bool) -> Arc<Mutex<Held>> {
        Arc::new(Mutex::new(Held {
            adopted,
            bytes: Vec::new(),
            cut: (!whole).then(Cut::default),
        }))
    }

    /// Passes on what was held, and from now on everything as it comes.
    pub(crate) fn adopt(held: &Mutex<Held>) {
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        held.adopted = true;
        let bytes = std::mem::take(&mut held.bytes);
        held.pass(&bytes);
    }

    fn pass(&mut self, bytes: &[u8]) {
        let mut stderr = std::io::stderr().lock();
        let _ = match &mut self.cut {
            Some(cut) => stderr.write_all(&cut.apply(bytes)),
            None => stderr.write_all(bytes),
        };
    }
}

/// Reads `pipe` to its end on a thread, passing it on as `held` says.
pub(crate) fn forward(
    mut pipe: impl Read + Send + 'static,
    held: Arc<Mutex<Held>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
            if held.adopted {
                held.pass(&chunk[..n]);
            } else {
                held.bytes.extend_from_slice(&chunk[..n]);
            }
        }
    })
}

/// Cuts lines longer than [`LINE_LIMIT`], as bytes stream by: what a line shows is passed on at
/// once (progress bars redraw without a newline), the rest dropped and counted, and said at the
/// line's end.
#[derive(Default)]
pub(crate) struct Cut {
    /// Bytes of the current line so far.
    length: usize,
    dropped: usize,
    /// The part shown holds an escape sequence (a color), which the cut may leave open.
    colored: bool,
}

impl Cut {
    pub(crate) fn apply(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for &byte in bytes {
            if byte == b'\n' || byte == b'\r' {
                if self.dropped > 0 {
                    if self.colored {
                        out.extend_from_slice(b"\x1b[0m");
                    }
                    out.extend_from_slice(
                        format!("… ({} more bytes; -v shows the whole line)", self.dropped)
                            .as_bytes(),
                    );
                }
                out.push(byte);
                self.length = 0;
                self.dropped = 0;
                self.colored = false;
            } else if self.length < LINE_LIMIT {
                out.push(byte);
                self.length += 1;
                self.colored |= byte == 0x1b;
            } else {
                self.dropped += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_short_ones_pass_as_they_come() {
        let mut cut = Cut::default();
        let flags = "-C opt-level=3 ".repeat(1000);
        let line =
            format!("  process didn't exit successfully: `rustc {flags}` (exit status: 101)\n");
        // In pieces, as a pipe gives them.
        let (a, b) = line.as_bytes().split_at(4000);
        let out = [
            cut.apply(b"error: could not compile `big`\n"),
            cut.apply(a),
            cut.apply(b),
        ]
        .concat();
        let out = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "error: could not compile `big`");
        assert!(lines[1].starts_with("  process didn't exit successfully: `rustc -C opt-level=3"));
        let dropped = line.len() - 1 - LINE_LIMIT;
        assert!(
            lines[1].ends_with(&format!(
                "… ({dropped} more bytes; -v shows the whole line)"
            )),
            "{}",
            lines[1]
        );
        // A progress bar's redraws pass at once, each a line of its own for the count.
        assert_eq!(
            cut.apply(b"\r  Building [==>  ] 3/9"),
            b"\r  Building [==>  ] 3/9"
        );
    }
}
