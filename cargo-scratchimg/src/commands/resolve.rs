//! `cargo scratchimg resolve -f FILE|DIR|-`, as `ko resolve` does for Go: the YAML (Kubernetes
//! manifests, compose files, Helm values) comes out as it went in, except that each
//! `scratchimg://PACKAGE[/BIN]` is now the image pushed for it, `REGISTRY/REPO@sha256:…`.
//! The text is replaced where it stands, so comments, key order and formatting stay.
//!
//! Every referenced image comes from one plan (the packages selected explicitly) and one cargo
//! build, pushed as `--push` pushes.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cargo::Selected;
use crate::env::Env;
use crate::image::ImageRef;
use crate::input_file::{self, YAML_LIMIT};
use crate::outcome::Outcome;
use crate::pipeline::{Options, run};
use crate::report::{Progress, Reporter, Verbosity};

/// The scheme of a reference to an image of this workspace.
const SCHEME: &str = "scratchimg://";

/// Where `resolve` reads YAML.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Files, directories (their `.yaml` and `.yml` files, sorted, recursively), or `-` for
    /// stdin.
    pub files: Vec<PathBuf>,
}

/// Builds and pushes every image the files reference; the files' text with each reference
/// replaced by the pushed image's digest reference.
pub fn resolve(
    options: &Options,
    resolve: &ResolveOptions,
    env: &Env,
    report: &dyn Reporter,
) -> Result<String> {
    let text = read_inputs(&resolve.files, &env.cwd)?;
    check_references(&text)?;
    let references = find(&text);
    if references.is_empty() {
        report.warn(&format!(
            "no {SCHEME}PACKAGE reference in the files: nothing to build\nhelp: write image: {SCHEME}<package> where an image goes"
        ));
        return Ok(text);
    }
    if !options.tags.is_empty() {
        bail!(
            "-t would give every image `resolve` builds one name\nhelp: set `name` in each package's [package.metadata.scratchimg], and SCRATCHIMG_REPO or --push REPO"
        );
    }
    let mut env = env.clone();
    // `--push REPO` is the repository the images go under, as $SCRATCHIMG_REPO is.
    if let Some(repo) = options.push.iter().rev().find(|r| !r.is_empty()) {
        env.default_repo = Some(repo.clone());
    }
    if env.default_repo.is_none() {
        bail!(
            "`resolve` pushes the images it builds, and no repository was given\nhelp: set SCRATCHIMG_REPO (e.g. ghcr.io/acme) or pass --push REPO"
        );
    }
    let mut options = options.clone();
    options.cargo.selected = references.clone();
    options.push = vec![String::new()];
    options.skip_output = true;
    // stdout is the YAML's: the results stay off it.
    let outcomes = run(&options, &env, &Quiet(report))?;
    let resolved: Vec<(Selected, String)> = references
        .into_iter()
        .zip(&outcomes)
        .map(|(reference, outcome)| Ok((reference, by_digest(outcome)?)))
        .collect::<Result<_>>()?;
    Ok(replace(&text, |selected| {
        resolved
            .iter()
            .find(|(s, _)| s == selected)
            .map(|(_, image)| image.clone())
    }))
}

/// `REGISTRY/REPO@sha256:…` of what an image was pushed as.
fn by_digest(outcome: &Outcome) -> Result<String> {
    let pushed = outcome
        .pushed
        .first()
        .context("an image of `resolve` was not pushed (a bug in cargo-scratchimg)")?;
    let (tagged, digest) = pushed
        .split_once('@')
        .context("a pushed reference without a digest (a bug in cargo-scratchimg)")?;
    let image: ImageRef = tagged.parse()?;
    Ok(format!(
        "{}/{}@{digest}",
        image.registry(),
        image.repository()
    ))
}

/// The text of every input, files one after another as YAML documents (`---` between them).
fn read_inputs(inputs: &[PathBuf], cwd: &Path) -> Result<String> {
    let mut files = Vec::new();
    for input in inputs {
        if input == Path::new("-") {
            files.push(None);
            continue;
        }
        let path = cwd.join(input);
        let meta = std::fs::metadata(&path).with_context(|| {
            format!(
                "could not read {}\nhelp: give -f a YAML file, a directory or -",
                path.display()
            )
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            yaml_files(&path, &mut found, &mut BTreeSet::new())?;
            found.sort();
            // A file linked beside itself is read once, where it comes first.
            let mut real = BTreeSet::new();
            found.retain(|file| {
                real.insert(std::fs::canonicalize(file).unwrap_or_else(|_| file.clone()))
            });
            files.extend(found.into_iter().map(Some));
        } else {
            files.push(Some(path));
        }
    }
    let mut documents = Vec::new();
    for file in files {
        let (bytes, shown) = match file {
            Some(path) => (
                input_file::read(&path, YAML_LIMIT).with_context(|| {
                    format!(
                        "could not read {}\nhelp: give -f a YAML file, a directory or -",
                        path.display()
                    )
                })?,
                path.display().to_string(),
            ),
            None => (
                input_file::read_stdin(YAML_LIMIT).context("could not read YAML from stdin")?,
                "stdin".to_string(),
            ),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{shown} is not UTF-8 text, as YAML is"))?;
        documents.push(text);
    }
    let mut joined = String::new();
    for (i, document) in documents.iter().enumerate() {
        if i > 0 {
            if !joined.is_empty() && !joined.ends_with('\n') {
                joined.push('\n');
            }
            joined.push_str("---\n");
        }
        joined.push_str(document);
    }
    Ok(joined)
}

/// The `.yaml` and `.yml` files under `dir`, recursively. A folder reached twice (through a
/// symlink to it, or to a folder above it) is read once, so links cannot loop or repeat files.
fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>, seen: &mut BTreeSet<PathBuf>) -> Result<()> {
    let real =
        std::fs::canonicalize(dir).with_context(|| format!("could not read {}", dir.display()))?;
    if !seen.insert(real) {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("could not read {}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, found, seen)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    Ok(())
}

/// A character of a package or binary name.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Each reference in `text` at its byte range, as the image it selects.
fn references(text: &str) -> Vec<(std::ops::Range<usize>, Selected)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(SCHEME) {
        let start = from + at;
        let rest = &text[start + SCHEME.len()..];
        let package_len = rest.find(|c| !name_char(c)).unwrap_or(rest.len());
        let mut end = start + SCHEME.len() + package_len;
        let mut bin = None;
        if let Some(after) = rest[package_len..].strip_prefix('/') {
            let bin_len = after.find(|c| !name_char(c)).unwrap_or(after.len());
            if bin_len > 0 {
                bin = Some(after[..bin_len].to_string());
                end += 1 + bin_len;
            }
        }
        if package_len > 0 {
            found.push((
                start..end,
                Selected {
                    package: rest[..package_len].to_string(),
                    bin,
                },
            ));
        }
        from = end.max(start + SCHEME.len());
    }
    found
}

/// Refuses a reference with a tag or digest (`scratchimg://api:v1`, `…@sha256:…`): the image
/// is the one built now, and what follows would make its pushed reference malformed.
fn check_references(text: &str) -> Result<()> {
    for (range, _) in references(text) {
        let rest = &text[range.end..];
        let tagged = rest
            .strip_prefix(':')
            .is_some_and(|tag| tag.starts_with(|c: char| !c.is_whitespace()));
        if tagged || rest.starts_with('@') {
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ']' | '}'))
                .unwrap_or(rest.len());
            let written = crate::text::one_line(&text[range.start..range.end + end], 200);
            bail!(
                "`{written}` names a tag or digest; a {SCHEME} reference names a package and binary only\nhelp: write `{}`: resolve puts the digest of the image it builds there",
                &text[range]
            );
        }
    }
    Ok(())
}

/// The images `text` references, each once, in the order they first appear.
fn find(text: &str) -> Vec<Selected> {
    crate::util::unique(references(text).into_iter().map(|(_, s)| s))
}

/// `text` with each reference replaced by what `image` gives for it.
fn replace(text: &str, image: impl Fn(&Selected) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (range, selected) in references(text) {
        if let Some(replacement) = image(&selected) {
            out.push_str(&text[last..range.start]);
            out.push_str(&replacement);
            last = range.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// A reporter that passes everything on but the results, which would go to stdout.
struct Quiet<'a>(&'a dyn Reporter);

impl Reporter for Quiet<'_> {
    fn verbosity(&self) -> Verbosity {
        self.0.verbosity()
    }
    fn status(&self, verb: &str, message: &dyn Display) {
        self.0.status(verb, message)
    }
    fn verbose(&self, verb: &str, message: &dyn Fn() -> String) {
        self.0.verbose(verb, message)
    }
    fn warn(&self, message: &dyn Display) {
        self.0.warn(message)
    }
    fn progress(&self, verb: &str, label: &str, total: u64) -> Option<Box<dyn Progress>> {
        self.0.progress(verb, label, total)
    }
    fn result(&self, _: &Outcome) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selected(package: &str, bin: Option<&str>) -> Selected {
        Selected {
            package: package.into(),
            bin: bin.map(str::to_string),
        }
    }

    #[test]
    fn references_are_found_and_replaced_in_place() {
        let text = "# api: scratchimg://api is built\nimage: scratchimg://api # same\n  image: \"scratchimg://worker/migrate\"\nx: scratchimg://\nimage: scratchimg://api\n";
        assert_eq!(
            find(text),
            [selected("api", None), selected("worker", Some("migrate"))]
        );
        let out = replace(text, |s| {
            Some(format!(
                "reg/{}@sha256:1",
                s.bin.as_deref().unwrap_or(&s.package)
            ))
        });
        assert_eq!(
            out,
            "# api: reg/api@sha256:1 is built\nimage: reg/api@sha256:1 # same\n  image: \"reg/migrate@sha256:1\"\nx: scratchimg://\nimage: reg/api@sha256:1\n"
        );
    }

    #[test]
    fn directories_are_read_sorted_and_recursively() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/z.yml"), "z: 1\n").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "a: 1").unwrap();
        std::fs::write(dir.path().join("b/notes.txt"), "no").unwrap();
        let text = read_inputs(&[PathBuf::from(".")], dir.path()).unwrap();
        assert_eq!(text, "a: 1\n---\nz: 1\n");
        let missing = read_inputs(&[PathBuf::from("nope.yaml")], dir.path()).unwrap_err();
        assert!(
            missing.to_string().starts_with("could not read"),
            "{missing}"
        );
    }

    #[test]
    fn directory_links_are_followed_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x.yaml"), "x: 1\n").unwrap();
        // Two links up: a loop each way, and a link to a file beside it.
        std::os::unix::fs::symlink("..", dir.path().join("a/b/up")).unwrap();
        std::os::unix::fs::symlink("../..", dir.path().join("a/b/top")).unwrap();
        std::os::unix::fs::symlink("x.yaml", dir.path().join("a/b/y.yaml")).unwrap();
        let text = read_inputs(&[PathBuf::from(".")], dir.path()).unwrap();
        assert_eq!(text, "x: 1\n");
    }

    #[test]
    fn what_is_not_a_yaml_file_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let error = read_inputs(std::slice::from_ref(&fifo), dir.path()).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "could not read {}\nhelp: give -f a YAML file, a directory or -: it is a FIFO (named pipe), not a file",
                fifo.display()
            )
        );
        let error = read_inputs(&[PathBuf::from("/dev/zero")], dir.path()).unwrap_err();
        assert!(
            format!("{error:#}").ends_with("it is a character device, not a file"),
            "{error:#}"
        );
    }

    #[test]
    fn references_with_a_tag_or_digest_are_refused() {
        check_references(
            "a: scratchimg://api\nb: \"scratchimg://worker/migrate\"\nc: {scratchimg://api: x}\n",
        )
        .unwrap();
        let refused = |text: &str| check_references(text).unwrap_err().to_string();
        assert_eq!(
            refused("image: scratchimg://api:v1\n"),
            "`scratchimg://api:v1` names a tag or digest; a scratchimg:// reference names a package and binary only\nhelp: write `scratchimg://api`: resolve puts the digest of the image it builds there"
        );
        assert!(
            refused("image: \"scratchimg://worker/migrate@sha256:00\"")
                .starts_with("`scratchimg://worker/migrate@sha256:00` names a tag or digest"),
        );
        assert!(
            refused("image: scratchimg://api:\x1b[31mred").starts_with("`scratchimg://api:red`")
        );
    }
}
