//! What git says about a package's directory: the last commit that touched it (the build's
//! timestamp), the commit checked out (the image's revision) and where `origin` points (its
//! source). One git process each, run side by side; none is an error outside git or without it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::join;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GitFacts {
    /// The directory asked about, canonical when it exists.
    pub dir: PathBuf,
    /// Commit time of the last commit touching `dir`.
    pub last_commit_time: Option<u64>,
    /// The commit checked out.
    pub revision: Option<String>,
    /// The URL of the `origin` remote, as configured.
    pub origin: Option<String>,
}

impl GitFacts {
    pub(crate) fn read(dir: &Path) -> GitFacts {
        std::thread::scope(|scope| {
            let last = scope.spawn(|| git(dir, &["log", "-1", "--format=%ct", "--", "."]));
            let revision = scope.spawn(|| git(dir, &["rev-parse", "HEAD"]));
            let origin = git(dir, &["remote", "get-url", "origin"]);
            GitFacts {
                dir: canonical(dir),
                last_commit_time: join(last).and_then(|t| t.parse().ok()),
                revision: join(revision),
                origin,
            }
        })
    }

    /// These facts if they are about `dir`, else the facts of `dir`, read now.
    pub(crate) fn for_dir(&self, dir: &Path) -> GitFacts {
        if canonical(dir) == self.dir {
            self.clone()
        } else {
            GitFacts::read(dir)
        }
    }
}

fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// A git command's trimmed output; `None` when git is missing, fails, or prints nothing.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = crate::process::output(Command::new("git").args(args).current_dir(dir))
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_git_there_are_no_facts() {
        let dir = tempfile::tempdir().unwrap();
        let facts = GitFacts::read(dir.path());
        assert_eq!(facts.last_commit_time, None);
        assert_eq!(facts.revision, None);
        assert_eq!(facts.origin, None);
    }

    #[test]
    fn inside_git_they_name_the_last_commit_and_origin() {
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
        git(&["remote", "add", "origin", "https://example.com/app.git"]);
        let facts = GitFacts::read(dir.path());
        assert_eq!(facts.last_commit_time, Some(1_600_000_000));
        assert_eq!(facts.revision.as_ref().map(String::len), Some(40));
        assert_eq!(facts.origin.as_deref(), Some("https://example.com/app.git"));

        // Asked again for the same directory, by another spelling, the facts are reused; for
        // another directory they are read there.
        assert_eq!(facts.for_dir(&dir.path().join(".")), facts);
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let in_sub = facts.for_dir(&sub);
        assert_eq!(in_sub.dir, canonical(&sub));
        assert_eq!(in_sub.last_commit_time, None, "no commit touched sub/");
        assert_eq!(in_sub.revision, facts.revision);
    }
}
