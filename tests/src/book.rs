//! The user's book under `docs/`: its settings reference, read as the tables it holds (the
//! crate's unit tests compare them with the code), and where its pinned mdBook is.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::repo_root;

/// The chapter every key and flag is listed in, with its default.
pub const SETTINGS_CHAPTER: &str = "docs/src/settings.md";

/// The heading of the keys table in [`SETTINGS_CHAPTER`].
const KEYS: &str = "## Keys";
/// The heading that starts the flag tables of `cargo scratchimg` and of each subcommand
/// (`## Flags of `cargo scratchimg run``), each up to the next `## `.
const FLAGS: &str = "## Flags of `";

/// One row of the keys table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub key: String,
    /// The default as written, without backticks; empty when the cell says none.
    pub default: String,
    /// The flags named in the row's flag column (`--tag`, `-t`).
    pub flags: Vec<String>,
}

/// One row of a flag table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagRow {
    /// Every flag the first cell names: `-t` and `--tag`.
    pub names: Vec<String>,
    /// The value column as written.
    pub value: String,
    /// The default as written, without backticks; empty when the cell is.
    pub default: String,
}

/// The settings reference, as its tables say.
#[derive(Debug)]
pub struct SettingsReference {
    /// The TOML example under `## The settings table`.
    pub example: String,
    pub keys: Vec<KeyRow>,
    /// The flag rows of each command, by the command as the heading names it
    /// (`cargo scratchimg`, `cargo scratchimg run`).
    pub flags: BTreeMap<String, Vec<FlagRow>>,
}

impl SettingsReference {
    /// Reads [`SETTINGS_CHAPTER`]; panics, naming the chapter, when a table is missing.
    pub fn read() -> SettingsReference {
        let path = repo_root().join(SETTINGS_CHAPTER);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("could not read {}: {e}", path.display()));
        SettingsReference::parse(&text)
    }

    fn parse(text: &str) -> SettingsReference {
        let sections = sections(text);
        let example = sections
            .iter()
            .find(|(heading, _)| heading == "## The settings table")
            .and_then(|(_, body)| {
                let start = body.find("```toml\n")? + "```toml\n".len();
                Some(body[start..start + body[start..].find("```")?].to_string())
            })
            .unwrap_or_else(|| {
                panic!("{SETTINGS_CHAPTER} has no ```toml example under `## The settings table`")
            });
        let keys = sections
            .iter()
            .find(|(heading, _)| heading == KEYS)
            .map(|(_, body)| {
                rows(body)
                    .map(|cells| {
                        assert_eq!(
                            cells.len(),
                            4,
                            "{SETTINGS_CHAPTER}: a keys row has 4 cells: {cells:?}"
                        );
                        KeyRow {
                            key: plain(&cells[0]),
                            default: plain(&cells[2]),
                            flags: flag_names(&cells[3]),
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| panic!("{SETTINGS_CHAPTER} has no `{KEYS}` table"));
        let flags = sections
            .iter()
            .filter_map(|(heading, body)| {
                let command = heading.strip_prefix(FLAGS)?.strip_suffix('`')?;
                let rows = rows(body)
                    .map(|cells| {
                        assert_eq!(
                            cells.len(),
                            4,
                            "{SETTINGS_CHAPTER}: a flag row has 4 cells: {cells:?}"
                        );
                        FlagRow {
                            names: flag_names(&cells[0]),
                            value: cells[1].clone(),
                            default: plain(&cells[2]),
                        }
                    })
                    .collect();
                Some((command.to_string(), rows))
            })
            .collect();
        SettingsReference {
            example,
            keys,
            flags,
        }
    }

    /// The flag rows of `command` (`cargo scratchimg run`); panics when it has no section.
    pub fn flags_of(&self, command: &str) -> &[FlagRow] {
        self.flags.get(command).unwrap_or_else(|| {
            panic!("{SETTINGS_CHAPTER} has no `{FLAGS}{command}`` section: add one with a table of its flags")
        })
    }
}

/// Each `## ` heading with the text up to the next one (its `### ` sections included).
fn sections(text: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            sections.push((line.trim_end().to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}

/// The cells of each body row of the tables in `text` (not the header rows, nor the `|---|`
/// lines under them); `\|` is a `|` inside a cell.
fn rows(text: &str) -> impl Iterator<Item = Vec<String>> + '_ {
    let lines: Vec<&str> = text.lines().collect();
    (0..lines.len()).filter_map(move |i| {
        let line = lines[i].trim();
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        let separator = |l: &str| l.starts_with("|-") || l.starts_with("|:");
        if !line.starts_with('|') || separator(line) || separator(next) {
            return None;
        }
        let cells = line
            .trim_matches('|')
            .replace("\\|", "\u{0}")
            .split('|')
            .map(|cell| cell.replace('\u{0}', "|").trim().to_string())
            .collect();
        Some(cells)
    })
}

/// A cell's text without backticks.
fn plain(cell: &str) -> String {
    cell.replace('`', "").trim().to_string()
}

/// The flags a cell names: `-t`, `--tag`, `--load` of `--load[=ENGINE]`; not `--` alone.
fn flag_names(cell: &str) -> Vec<String> {
    cell.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| {
            let name = word.trim_start_matches('-');
            let long = word.len() - name.len() == 2 && name.len() > 1;
            let short = word.len() - name.len() == 1 && name.len() == 1;
            (long || short) && name.starts_with(|c: char| c.is_ascii_alphabetic())
        })
        .map(str::to_string)
        .collect()
}

/// mdBook as `scripts/test` installs it, at the version pinned there; panics with what to run
/// when it is not there.
pub fn mdbook() -> PathBuf {
    let mdbook = repo_root().join("target/tools/mdbook/bin/mdbook");
    assert!(
        mdbook.is_file(),
        "no {}: this test needs mdBook.\n\
         Install what the tests need with `scripts/test` (`scripts/test --check` lists what is missing)",
        mdbook.display()
    );
    mdbook
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_read_as_rows_of_cells() {
        let text = "# T\n\n## The settings table\n\n```toml\na = 1\n```\n\n## Keys\n\n| key | value | default | flag |\n|---|---|---|---|\n| `user` | `\"nonroot\"` | `nonroot` | `--user` |\n\n## Flags of `cargo scratchimg`\n\n### Image options\n\n| flag | value | default | meaning |\n|---|---|---|---|\n| `-t, --tag` | `NAME[:TAG]` | `<bin>:<version>` | name |\n| `--load` | `[=auto\\|docker]` | | load |\n\n## Flags of `cargo scratchimg run`\n\n| flag | value | default | meaning |\n|---|---|---|---|\n| `-- ARGS…` | | | arguments |\n";
        let reference = SettingsReference::parse(text);
        assert_eq!(reference.example, "a = 1\n");
        assert_eq!(
            reference.keys,
            [KeyRow {
                key: "user".into(),
                default: "nonroot".into(),
                flags: vec!["--user".into()],
            }]
        );
        let build = reference.flags_of("cargo scratchimg");
        assert_eq!(build[0].names, ["-t", "--tag"]);
        assert_eq!(build[0].default, "<bin>:<version>");
        assert_eq!(build[1].names, ["--load"]);
        assert_eq!(build[1].value, "`[=auto|docker]`");
        assert_eq!(build[1].default, "");
        assert!(
            reference.flags_of("cargo scratchimg run")[0]
                .names
                .is_empty()
        );
    }
}
