//! `[package.metadata.scratchimg]` and `[workspace.metadata.scratchimg]`, read from Cargo.toml
//! with their positions, so every error can point at the line to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::checks::Check;

/// A Cargo.toml and its text, to turn byte spans into `path:line:column`.
#[derive(Debug, Clone)]
pub(crate) struct ManifestText {
    pub path: PathBuf,
    text: String,
}

impl ManifestText {
    pub(crate) fn read(path: &Path) -> Result<ManifestText> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        Ok(ManifestText {
            path: path.to_path_buf(),
            text,
        })
    }

    /// `Cargo.toml:12:5` for a span, as compilers print positions.
    pub(crate) fn position(&self, span: &Range<usize>) -> String {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("{}:{line}:{column}", self.path.display())
    }

    /// The directory relative paths in this file are relative to.
    pub(crate) fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// A string, or a list of strings: `tz = "all"` or `tz = ["Europe/Berlin"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WordOrList {
    Word(String),
    List(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for WordOrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WordOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WordOrList, E> {
                Ok(WordOrList::Word(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WordOrList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(WordOrList::List(items))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A list of strings, or a table of such lists: `capabilities = ["net_bind_service"]` for every
/// binary, or `capabilities = { web = ["net_bind_service"] }` for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListOrTable {
    List(Vec<Spanned<String>>),
    Table(BTreeMap<Spanned<String>, Vec<Spanned<String>>>),
}

impl<'de> Deserialize<'de> for ListOrTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ListOrTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of strings, or a table of binary names to lists of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ListOrTable, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(ListOrTable::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListOrTable, A::Error> {
                let mut table = BTreeMap::new();
                while let Some((key, value)) = map.next_entry()? {
                    table.insert(key, value);
                }
                Ok(ListOrTable::Table(table))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// One entry of `files`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileEntry {
    pub src: Spanned<String>,
    pub dst: Spanned<String>,
    /// Octal, as a string (`"0644"`) or a number written in octal (`0o644`).
    pub mode: Option<Spanned<Mode>>,
    /// `mode` may set the setuid or setgid bit.
    pub allow_setuid: Option<bool>,
    /// `mode` may let everyone write.
    pub allow_world_writable: Option<bool>,
}

/// A file mode: `0o755` or `"0755"` in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal file mode such as 0o644 or \"0644\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mode, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .map(Mode)
                    .ok_or_else(|| E::custom(format!("mode {v:o} is out of range (0 to 0o7777)")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Mode, E> {
                let digits = v.trim_start_matches("0o");
                u32::from_str_radix(digits, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .map(Mode)
                    .ok_or_else(|| {
                        E::custom(format!("`{v}` is not an octal file mode such as \"0644\""))
                    })
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The settings table as written; every key optional, unknown keys refused.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Table {
    pub name: Option<Spanned<String>>,
    pub tags: Option<Vec<Spanned<String>>>,
    pub entrypoint: Option<Spanned<Vec<String>>>,
    pub cmd: Option<Spanned<Vec<String>>>,
    pub env: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub workdir: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub ports: Option<Vec<Spanned<String>>>,
    pub volumes: Option<Vec<Spanned<String>>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<Spanned<String>>,
    pub files: Option<Vec<FileEntry>>,
    pub tz: Option<Spanned<WordOrList>>,
    pub ca_certs: Option<Spanned<WordOrList>>,
    pub bin: Option<String>,
    pub bins: Option<Vec<String>>,
    pub features: Option<Vec<String>>,
    pub profile: Option<String>,
    pub platforms: Option<Vec<Spanned<String>>>,
    /// Checks before the build to turn off, by key.
    pub allow: Option<Vec<Check>>,
    /// How C code is cross-compiled: `"zig"` for cargo-zigbuild.
    pub cross: Option<Cross>,
    pub compression: Option<Spanned<String>>,
    pub sign_format: Option<Spanned<String>>,
    /// File capabilities: a list for every binary, or a table of binary names to lists.
    pub capabilities: Option<ListOrTable>,
    /// What of the symbol table and debug info cargo strips: `symbols`, `debuginfo`, `none`.
    pub strip: Option<Spanned<String>>,
}

/// The `cross` setting.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Cross {
    /// cargo-zigbuild: zig compiles the C code and links.
    Zig,
}

#[derive(Deserialize)]
struct Document {
    package: Option<Section>,
    workspace: Option<Section>,
}

#[derive(Deserialize)]
struct Section {
    metadata: Option<Metadata>,
}

/// A `metadata` table: ours, and the names of other tools' tables that look like a typo of ours.
#[derive(Default)]
struct Metadata {
    scratchimg: Option<Table>,
    typos: Vec<Spanned<String>>,
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut metadata = Metadata::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    if key.get_ref() == TABLE {
                        metadata.scratchimg = Some(map.next_value()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                        if looks_like_ours(key.get_ref()) {
                            metadata.typos.push(key);
                        }
                    }
                }
                Ok(metadata)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// The name of our table under `metadata`.
const TABLE: &str = "scratchimg";

/// `scratchimage`, `scratch-img`, `Scratch_Img`, `scrachimg`: another spelling of ours.
fn looks_like_ours(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    squashed.starts_with("scratchim") || strsim::damerau_levenshtein(&squashed, TABLE) <= 2
}

/// The settings tables of one Cargo.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tables {
    /// `[workspace.metadata.scratchimg]`
    pub workspace: Option<Table>,
    /// `[package.metadata.scratchimg]`
    pub package: Option<Table>,
    /// Warnings about tables under `[workspace.metadata]` named like a typo of ours.
    pub workspace_typos: Vec<String>,
    /// The same under `[package.metadata]`.
    pub package_typos: Vec<String>,
}

/// Reads both settings tables of a Cargo.toml.
pub(super) fn read(source: &ManifestText) -> Result<Tables> {
    let document: Document = toml::from_str(&source.text).map_err(|e| {
        // The error is in the table whose header comes last before it.
        let before = &source.text[..e.span().map_or(0, |s| s.start).min(source.text.len())];
        let header = before
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('['));
        let table = match header {
            Some(h) if h.trim_start().starts_with("[workspace") => {
                "[workspace.metadata.scratchimg]"
            }
            _ => "[package.metadata.scratchimg]",
        };
        // A typo's message already lists the keys; other errors get them as help.
        let message = e.to_string();
        let help = if message.contains("expected one of") {
            String::new()
        } else {
            format!("help: the keys are: {}", keys().join(", "))
        };
        anyhow::anyhow!(
            "invalid {table} in {}\n{message}{help}",
            source.path.display()
        )
    })?;
    let metadata = |section: Option<Section>| section.and_then(|s| s.metadata).unwrap_or_default();
    let typos = |section: &str, metadata: &Metadata| -> Vec<String> {
        metadata
            .typos
            .iter()
            .map(|name| {
                format!(
                    "{}: `[{section}.metadata.{}]` is not read by cargo-scratchimg; did you mean `{TABLE}`?\n\
                     help: rename it to [{section}.metadata.{TABLE}]",
                    source.position(&name.span()),
                    name.get_ref(),
                )
            })
            .collect()
    };
    let (workspace, package) = (metadata(document.workspace), metadata(document.package));
    Ok(Tables {
        workspace_typos: typos("workspace", &workspace),
        package_typos: typos("package", &package),
        workspace: workspace.scratchimg,
        package: package.scratchimg,
    })
}

/// Every key of the table, as it is written in Cargo.toml: the field names serde derives for
/// [`Table`], so a new key is listed without anyone keeping a list.
pub(super) fn keys() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The derived `deserialize` hands its field names to `deserialize_struct`, then gives up.
    let _ = Table::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only records the field names of the struct asked of it.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only a struct's field names are read"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> ManifestText {
        ManifestText {
            path: PathBuf::from("/p/Cargo.toml"),
            text: text.to_string(),
        }
    }

    #[test]
    fn reads_the_table_with_positions() {
        let src = source(
            "[package]\nname = \"web\"\n\n[package.metadata.scratchimg]\nports = [\"8080/tcp\"]\ntz = [\"Europe/Berlin\"]\nfiles = [{ src = \"static\", dst = \"/app/static\", mode = \"0644\" }]\n",
        );
        let table = read(&src).unwrap().package.unwrap();
        let port = &table.ports.as_ref().unwrap()[0];
        assert_eq!(port.get_ref(), "8080/tcp");
        assert_eq!(src.position(&port.span()), "/p/Cargo.toml:5:10");
        let WordOrList::List(zones) = table.tz.unwrap().into_inner() else {
            panic!()
        };
        assert_eq!(zones[0].get_ref(), "Europe/Berlin");
        assert_eq!(
            table.files.unwrap()[0].mode.as_ref().unwrap().get_ref(),
            &Mode(0o644)
        );
        assert!(read(&src).unwrap().workspace.is_none());
    }

    #[test]
    fn keys_are_every_field_of_the_table() {
        macro_rules! fields {
            ($($field:ident),* $(,)?) => {{
                // Names every field: one added to `Table` and not here does not compile.
                let Table { $($field: _),* } = Table::default();
                [$(stringify!($field).replace('_', "-")),*]
            }};
        }
        let fields = fields!(
            name,
            tags,
            entrypoint,
            cmd,
            env,
            workdir,
            user,
            ports,
            volumes,
            labels,
            annotations,
            stop_signal,
            files,
            tz,
            ca_certs,
            bin,
            bins,
            features,
            profile,
            platforms,
            allow,
            cross,
            compression,
            sign_format,
            capabilities,
            strip,
        );
        assert_eq!(keys(), fields);
    }

    /// The book's settings reference lists every key, and its example shows each of them.
    #[test]
    fn the_settings_reference_lists_every_key() {
        use scratchimg_tests::book::{SETTINGS_CHAPTER, SettingsReference};
        let reference = SettingsReference::read();
        let mut keys = keys().to_vec();
        keys.sort_unstable();
        let mut listed: Vec<&str> = reference.keys.iter().map(|row| row.key.as_str()).collect();
        listed.sort_unstable();
        assert_eq!(
            listed, keys,
            "the `## Keys` table of {SETTINGS_CHAPTER} must list every key of [package.metadata.scratchimg], once"
        );
        let example: toml::Table = toml::from_str(&reference.example).unwrap();
        let shown: Vec<&str> = example["package"]["metadata"]["scratchimg"]
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            shown, keys,
            "the example of {SETTINGS_CHAPTER} must show every key"
        );
    }

    #[test]
    fn other_spellings_of_the_table_are_typos() {
        for typo in [
            "scratchimage",
            "scratch-img",
            "scratch_img",
            "Scratchimg",
            "scrachimg",
            "scratch-image",
        ] {
            assert!(looks_like_ours(typo), "{typo}");
        }
        for other in ["release", "docker", "deb", "scratch", "generate-rpm"] {
            assert!(!looks_like_ours(other), "{other}");
        }
        let src = source(
            "[package]\nname = \"x\"\nmetadata = { scratch_img = { user = \"root\" }, docs = {} }\n",
        );
        let tables = read(&src).unwrap();
        assert_eq!(
            tables.package_typos,
            [
                "/p/Cargo.toml:3:14: `[package.metadata.scratch_img]` is not read by cargo-scratchimg; did you mean `scratchimg`?\n\
              help: rename it to [package.metadata.scratchimg]"
            ]
        );
        assert!(tables.package.is_none() && tables.workspace_typos.is_empty());
    }

    #[test]
    fn typos_name_the_key_the_line_and_the_choices() {
        let src = source(
            "[package]\nname = \"x\"\n[package.metadata.scratchimg]\nentrypiont = [\"/app/x\"]\n",
        );
        let err = read(&src).unwrap_err().to_string();
        assert!(
            err.contains("invalid [package.metadata.scratchimg] in /p/Cargo.toml"),
            "{err}"
        );
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("unknown field `entrypiont`"), "{err}");
        assert!(err.contains("`entrypoint`"), "{err}");
    }

    #[test]
    fn wrong_types_are_refused() {
        let src = source("[workspace.metadata.scratchimg]\nports = 8080\n");
        let err = read(&src).unwrap_err().to_string();
        assert!(
            err.contains("invalid [workspace.metadata.scratchimg]"),
            "{err}"
        );
        assert!(
            err.contains("line 2") && err.contains("invalid type"),
            "{err}"
        );
        let src = source("[package.metadata.scratchimg]\ntz = 3\n");
        let err = read(&src).unwrap_err().to_string();
        assert!(err.contains("a string or a list of strings"), "{err}");
        let src = source(
            "[package.metadata.scratchimg]\nfiles = [{ src = \"a\", dst = \"/a\", mode = \"rwx\" }]\n",
        );
        let err = read(&src).unwrap_err().to_string();
        assert!(err.contains("not an octal file mode"), "{err}");
    }
}
