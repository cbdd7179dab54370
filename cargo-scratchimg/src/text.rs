//! Text for the terminal: sizes as cargo prints them, and other programs' and registries'
//! words made safe to show (one line, no escape or control characters) so that none of it can
//! pass for a line of ours or restyle the terminal.

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
}
