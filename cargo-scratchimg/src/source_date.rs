//! The one timestamp of a build: `SOURCE_DATE_EPOCH`, else the last commit that touched the
//! package, else the Unix epoch. Never the wall clock, so rebuilds give the same bytes.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Where the build's timestamp came from, for `-v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    SourceDateEpoch,
    GitCommit,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceDate {
    pub seconds: u64,
    pub origin: Origin,
}

impl SourceDate {
    /// `env` is the value of `SOURCE_DATE_EPOCH`, read by the caller at the edge.
    pub fn resolve(env: Option<&str>, package_dir: &Path) -> Result<SourceDate> {
        if let Some(value) = env.filter(|v| !v.trim().is_empty()) {
            let Ok(seconds) = value.trim().parse::<u64>() else {
                bail!(
                    "SOURCE_DATE_EPOCH is `{value}`, not a number of seconds\n\
                     help: set it to a Unix timestamp, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)"
                );
            };
            return Ok(SourceDate {
                seconds,
                origin: Origin::SourceDateEpoch,
            });
        }
        Ok(match last_commit_time(package_dir) {
            Some(seconds) => SourceDate {
                seconds,
                origin: Origin::GitCommit,
            },
            None => SourceDate {
                seconds: 0,
                origin: Origin::Default,
            },
        })
    }

    pub fn timestamp(&self) -> Result<jiff::Timestamp> {
        let seconds = i64::try_from(self.seconds).ok();
        seconds
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .with_context(|| format!("source date {} is out of range", self.seconds))
    }
}

/// Commit time of the last commit touching `dir`; `None` outside git or without git.
fn last_commit_time(dir: &Path) -> Option<u64> {
    git(dir, &["log", "-1", "--format=%ct", "--", "."])?
        .parse()
        .ok()
}

/// The commit checked out in `dir`, for `org.opencontainers.image.revision`.
pub fn git_revision(dir: &Path) -> Option<String> {
    git(dir, &["rev-parse", "HEAD"])
}

/// A git command's trimmed output; `None` when git is missing, fails, or prints nothing.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let stdout = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !stdout.trim().is_empty()).then(|| stdout.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let date = SourceDate::resolve(Some("1700000000"), dir.path()).unwrap();
        assert_eq!(
            date,
            SourceDate {
                seconds: 1_700_000_000,
                origin: Origin::SourceDateEpoch
            }
        );
        assert_eq!(
            date.timestamp().unwrap().to_string(),
            "2023-11-14T22:13:20Z"
        );
        let err = SourceDate::resolve(Some("yesterday"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("SOURCE_DATE_EPOCH is `yesterday`"), "{err}");
    }

    #[test]
    fn outside_git_it_is_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_revision(dir.path()).map(|r| r.len()), None);
        let date = SourceDate::resolve(None, dir.path()).unwrap();
        assert_eq!(
            date,
            SourceDate {
                seconds: 0,
                origin: Origin::Default
            }
        );
    }

    #[test]
    fn inside_git_it_is_the_last_commit() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .env("GIT_COMMITTER_DATE", "1600000000 +0000")
                .env("GIT_AUTHOR_DATE", "1600000000 +0000")
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(dir.path().join("f"), "x").unwrap();
        git(&["add", "f"]);
        git(&["commit", "-q", "-m", "x"]);
        assert_eq!(git_revision(dir.path()).map(|r| r.len()), Some(40));
        let date = SourceDate::resolve(None, dir.path()).unwrap();
        assert_eq!(
            date,
            SourceDate {
                seconds: 1_600_000_000,
                origin: Origin::GitCommit
            }
        );
    }
}
