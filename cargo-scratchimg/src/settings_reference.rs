//! The book's settings reference (docs/src/settings.md) checked against the command line
//! `--help` is made from: every flag listed, each with the default the help states, the values
//! clap takes and the key it names; so the reference cannot drift from the code.

use clap::CommandFactory;
use scratchimg_tests::book::{SETTINGS_CHAPTER, SettingsReference};

/// A flag's help on one line.
fn help_of(arg: &clap::Arg) -> String {
    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
    help.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The default a flag's help states: clap's own `default_value`, else the `default:` of its
/// bracket (`[default: X]`, `[setting: K; default: X]`).
fn stated_default(arg: &clap::Arg) -> String {
    if !arg.get_action().takes_values() {
        // A switch: clap's `false` is no default a reader needs told.
        return String::new();
    }
    let given: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !given.is_empty() {
        return given.join(", ");
    }
    let help = help_of(arg);
    help.find("default: ")
        .filter(|&at| help[..at].ends_with('[') || help[..at].ends_with("; "))
        .map(|at| {
            let rest = &help[at + "default: ".len()..];
            rest[..rest.find(']').unwrap_or(rest.len())].to_string()
        })
        .unwrap_or_default()
}

/// The keys a flag's help names in `[setting: K]` (`[setting: bin, bins]`,
/// `[setting: cross = "zig"]`), and whether that bracket states the default too.
fn settings_named(arg: &clap::Arg) -> (Vec<String>, bool) {
    let help = help_of(arg);
    let Some(at) = help.find("[setting: ") else {
        return (Vec::new(), false);
    };
    let bracket = &help[at + "[setting: ".len()..];
    let bracket = &bracket[..bracket.find(']').unwrap_or(bracket.len())];
    let (keys, rest) = bracket.split_once(';').unwrap_or((bracket, ""));
    let keys = keys
        .split(',')
        .map(|k| k.split(" =").next().unwrap_or(k).trim().to_string())
        .collect();
    (keys, rest.contains("default: "))
}

/// `--tag` and `-t` of an option; nothing for positional arguments, `--help`, `--version`.
fn names(arg: &clap::Arg) -> Vec<String> {
    if arg.is_positional()
        || arg.is_hide_set()
        || ["help", "version"].contains(&arg.get_id().as_str())
    {
        return Vec::new();
    }
    let short = arg.get_short().map(|c| format!("-{c}"));
    let long = arg.get_long().map(|l| format!("--{l}"));
    short.into_iter().chain(long).collect()
}

/// The book's settings reference lists exactly the flags `--help` is made from, each with
/// the default the help states, the values clap takes and the key it names.
#[test]
fn the_settings_reference_lists_every_flag_with_its_default() {
    let reference = SettingsReference::read();
    let mut cargo = crate::cli::Cargo::command();
    cargo.build();
    let build = cargo.find_subcommand("scratchimg").unwrap();
    let build_names: Vec<String> = build.get_arguments().flat_map(names).collect();
    let mut commands = vec![("cargo scratchimg".to_string(), build)];
    commands.extend(
        build
            .get_subcommands()
            .filter(|sub| sub.get_name() != "help")
            .map(|sub| (format!("cargo scratchimg {}", sub.get_name()), sub)),
    );
    let mut wrong = Vec::new();
    for row in &reference.keys {
        for name in row.flags.iter().filter(|n| !build_names.contains(n)) {
            wrong.push(format!(
                "the key `{}` names {name}, which `cargo scratchimg` does not take",
                row.key
            ));
        }
    }
    for (command, clap_command) in &commands {
        let rows = reference.flags_of(command);
        let accepted: Vec<String> = clap_command.get_arguments().flat_map(names).collect();
        for row in rows {
            for name in row.names.iter().filter(|n| !accepted.contains(n)) {
                wrong.push(format!(
                    "`{command}` has no flag {name}: remove it from its table"
                ));
            }
        }
        for arg in clap_command.get_arguments() {
            let names = names(arg);
            let Some(row) = rows
                .iter()
                .find(|row| names.iter().any(|n| row.names.contains(n)))
            else {
                // A subcommand's table need not repeat the flags it shares with a build.
                let shared =
                    *command != "cargo scratchimg" && names.iter().all(|n| build_names.contains(n));
                if !names.is_empty() && !shared {
                    wrong.push(format!(
                        "{} of `{command}` is not listed: add a row to its table",
                        names.join(", ")
                    ));
                }
                continue;
            };
            let shown = names.join(", ");
            if let Some(missing) = names.iter().find(|n| !row.names.contains(n)) {
                wrong.push(format!(
                    "the row of {shown} (`{command}`) does not name {missing}"
                ));
            }
            let default = stated_default(arg);
            if row.default != default {
                wrong.push(format!(
                    "{shown} (`{command}`): the help's default is `{default}`, the book's `{}`",
                    row.default
                ));
            }
            for value in arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
            {
                let word = value.get_name();
                let said = row
                    .value
                    .split(|c: char| !(c.is_alphanumeric() || c == '-'))
                    .any(|w| w == word);
                if !said {
                    wrong.push(format!(
                        "{shown} (`{command}`): the value column does not name `{word}`"
                    ));
                }
            }
            let (keys, with_default) = settings_named(arg);
            for key in keys {
                let Some(key_row) = reference.keys.iter().find(|k| k.key == key) else {
                    wrong.push(format!(
                        "{shown} names the setting `{key}`, which the `## Keys` table lacks"
                    ));
                    continue;
                };
                if !names.iter().any(|n| key_row.flags.contains(n)) {
                    wrong.push(format!("the key `{key}` does not name its flag {shown}"));
                }
                if with_default && key_row.default != default {
                    wrong.push(format!(
                        "the key `{key}`: the help of {shown} says its default is `{default}`, the book `{}`",
                        key_row.default
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{SETTINGS_CHAPTER} and --help disagree:\n  {}",
        wrong.join("\n  ")
    );
}
