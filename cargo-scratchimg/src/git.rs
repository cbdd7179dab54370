//! What git says about a package's directory: the last commit that touched it (the build's
//! timestamp), the commit checked out (the image's revision) and where `origin` points (its
//! source). None is an error outside git or without it.
//!
//! The packages of a workspace mostly share one repository: its revision and origin are asked
//! once, and only each directory's last commit per package, side by side. That answer depends
//! only on the commit checked out (history does not change under a commit), so it is kept per
//! commit and directory, and a rerun with the same commit asks git nothing of the packages. A
//! shallow clone's history can grow under the same commit: its answers are not kept. The
//! directory a run starts from is asked as the packages are: its repository's facts first, then
//! its last commit, kept like theirs, and not asked at all when the date comes from elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cache::Keyed;
use crate::report::Reporter;
use crate::tool_dir::ToolDir;
use crate::util::{join, map_at_once};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GitFacts {
    /// The directory asked about, canonical when it exists.
    pub dir: PathBuf,
    /// Commit time of the last commit touching `dir`: asked by [`GitFacts::for_dirs`] only.
    pub last_commit_time: Option<u64>,
    /// The commit checked out.
    pub revision: Option<String>,
    /// The URL of the `origin` remote, as configured.
    pub origin: Option<String>,
    /// The repository's top directory, and whether it is a shallow clone.
    repository: Option<(PathBuf, bool)>,
}

/// Where a directory is, as these facts see it.
enum Place {
    Here,
    /// At this path in the repository.
    Repository(String),
    Outside,
    Elsewhere,
}

/// Last commit times kept: one set per commit and repository.
const KEEP: usize = 16;
/// Processes asked at once for the directories' last commits.
const AT_ONCE: usize = 8;

/// Each directory's last commit time, by its path in the repository; `None` when no commit
/// touched it.
type CommitTimes = BTreeMap<String, Option<u64>>;

impl GitFacts {
    /// The repository's facts as `dir` sees them (its revision and origin), without its last
    /// commit, which [`GitFacts::for_dirs`] asks when it is wanted, kept per commit.
    pub(crate) fn read(dir: &Path) -> GitFacts {
        std::thread::scope(|scope| {
            let origin = scope.spawn(|| git(dir, &["remote", "get-url", "origin"]));
            let head = git(
                dir,
                &[
                    "rev-parse",
                    "--show-toplevel",
                    "--is-shallow-repository",
                    "HEAD",
                ],
            );
            let mut lines = head.as_deref().unwrap_or_default().lines();
            let (top, shallow, revision) = (lines.next(), lines.next(), lines.next());
            let repository = top
                .zip(revision)
                .map(|(top, _)| (canonical(Path::new(top)), shallow != Some("false")));
            GitFacts {
                dir: canonical(dir),
                last_commit_time: None,
                revision: revision.map(str::to_string),
                origin: join(origin),
                repository,
            }
        })
    }

    /// The facts of each of `dirs`, in their order: these facts for this directory; for the
    /// others of this repository its revision and origin, and each one's last commit when
    /// `dated` (else none: the date comes from elsewhere); none for directories in no
    /// repository; for directories in another repository, all read there.
    pub(crate) fn for_dirs(
        &self,
        dirs: &[&Path],
        dated: bool,
        tool_dir: &ToolDir,
        report: &dyn Reporter,
    ) -> Vec<GitFacts> {
        let dirs: Vec<PathBuf> = dirs.iter().map(|dir| canonical(dir)).collect();
        let places: Vec<Place> = dirs.iter().map(|dir| self.place_of(dir)).collect();
        let relatives = places.iter().filter_map(|place| match place {
            Place::Repository(relative) => Some(relative),
            _ => None,
        });
        let times = if dated {
            self.commit_times(relatives, tool_dir, report)
        } else {
            CommitTimes::new()
        };
        std::thread::scope(|scope| {
            let facts: Vec<_> = dirs
                .iter()
                .zip(places)
                .map(|(dir, place)| match place {
                    Place::Here => Ok(self.clone()),
                    Place::Repository(relative) => Ok(GitFacts {
                        dir: dir.clone(),
                        last_commit_time: times.get(&relative).copied().flatten(),
                        ..self.clone()
                    }),
                    Place::Outside => Ok(GitFacts {
                        dir: dir.clone(),
                        ..GitFacts::default()
                    }),
                    Place::Elsewhere => Err(scope.spawn(move || GitFacts {
                        last_commit_time: dated.then(|| last_commit_time(dir)).flatten(),
                        ..GitFacts::read(dir)
                    })),
                })
                .collect();
            facts
                .into_iter()
                .map(|facts| facts.unwrap_or_else(join))
                .collect()
        })
    }

    /// Where `dir` is: in this repository (under its top directory, with no other
    /// repository's `.git` between them); the directory of these facts, in no repository; in
    /// no repository (this is none, and no `.git` is at or above it); or in another.
    fn place_of(&self, dir: &Path) -> Place {
        let Some((top, _)) = &self.repository else {
            if *dir == self.dir {
                return Place::Here;
            }
            return if git_at_or_above(dir, None) {
                Place::Elsewhere
            } else {
                Place::Outside
            };
        };
        let Ok(relative) = dir.strip_prefix(top) else {
            return Place::Elsewhere;
        };
        if git_at_or_above(dir, Some(top.as_path())) {
            Place::Elsewhere
        } else {
            Place::Repository(relative.to_string_lossy().into_owned())
        }
    }

    /// The last commit time of each directory (by its path in this repository): kept for this
    /// commit, else asked now, a few processes at once, and kept.
    fn commit_times<'a>(
        &self,
        relatives: impl Iterator<Item = &'a String>,
        tool_dir: &ToolDir,
        report: &dyn Reporter,
    ) -> CommitTimes {
        let (Some((top, shallow)), Some(revision)) = (&self.repository, &self.revision) else {
            return CommitTimes::new();
        };
        let cache: Keyed<CommitTimes> = Keyed::open(tool_dir, "git", KEEP);
        let key = (top, revision);
        let mut times = if *shallow {
            CommitTimes::new()
        } else {
            cache.get(&key, report).unwrap_or_default()
        };
        let mut missing: Vec<&String> = relatives.filter(|r| !times.contains_key(*r)).collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return times;
        }
        let asked = map_at_once(&missing, AT_ONCE, |relative| {
            last_commit_time(&top.join(relative))
        });
        times.extend(missing.into_iter().cloned().zip(asked));
        if !*shallow {
            cache.put(&key, &times);
        }
        times
    }
}

/// The time of the last commit that touched `dir`.
fn last_commit_time(dir: &Path) -> Option<u64> {
    git(dir, &["log", "-1", "--format=%ct", "--", "."]).and_then(|t| t.parse().ok())
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

/// Whether `dir` or a directory above it, below `top` when given, holds a `.git`.
fn git_at_or_above(dir: &Path, top: Option<&Path>) -> bool {
    dir.ancestors()
        .take_while(|ancestor| Some(*ancestor) != top)
        .any(|ancestor| ancestor.join(".git").exists())
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

    /// Runs git in `dir` at a fixed time, which the commits get.
    fn git_at(dir: &Path, time: u64, args: &[&str]) {
        let date = format!("{time} +0000");
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    /// A repository with a commit at 1600000000 and one touching `sub/` at 1600000100.
    fn repository() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let git = |time, args: &[&str]| git_at(dir.path(), time, args);
        git(0, &["init", "-q"]);
        std::fs::write(dir.path().join("f"), "x").unwrap();
        git(1_600_000_000, &["add", "f"]);
        git(1_600_000_000, &["commit", "-q", "-m", "x"]);
        git(
            0,
            &["remote", "add", "origin", "https://example.com/app.git"],
        );
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/g"), "y").unwrap();
        git(1_600_000_100, &["add", "sub/g"]);
        git(1_600_000_100, &["commit", "-q", "-m", "sub"]);
        dir
    }

    fn report() -> crate::report::Capture {
        crate::report::Capture::new(crate::report::Verbosity::Normal)
    }

    #[test]
    fn inside_git_they_name_the_last_commit_and_origin() {
        let repo = repository();
        let (dir, sub) = (repo.path(), repo.path().join("sub"));
        let facts = GitFacts::read(dir);
        assert_eq!(facts.last_commit_time, None, "asked with the packages'");
        assert_eq!(facts.revision.as_ref().map(String::len), Some(40));
        assert_eq!(facts.origin.as_deref(), Some("https://example.com/app.git"));

        // For the same directory, by another spelling, the facts are these with its last
        // commit; for another of the repository, its last commit is its own, the revision and
        // origin the repository's.
        let target = tempfile::tempdir().unwrap();
        let tool_dir = ToolDir::new(target.path());
        std::fs::write(dir.join("f"), "changed, not committed").unwrap();
        let all = facts.for_dirs(&[&dir.join("."), &sub, dir], true, &tool_dir, &report());
        let dated = GitFacts {
            last_commit_time: Some(1_600_000_100),
            ..facts.clone()
        };
        assert_eq!(all[0], dated);
        assert_eq!(all[2], dated);
        assert_eq!(all[1].dir, canonical(&sub));
        assert_eq!(all[1].last_commit_time, Some(1_600_000_100));
        assert_eq!(all[1].revision, facts.revision);
        assert_eq!(all[1].origin, facts.origin);
        let undated = facts.for_dirs(&[&sub, dir], false, &tool_dir, &report());
        assert_eq!(undated[0].last_commit_time, None);
        assert_eq!(undated[1], facts);
    }

    /// The last commit of each directory is kept for the commit checked out: asked again, git
    /// is not asked (a value planted in the cache is what comes back), until HEAD moves.
    #[test]
    fn last_commits_are_kept_per_commit() {
        let repo = repository();
        let (dir, sub) = (repo.path(), repo.path().join("sub"));
        let target = tempfile::tempdir().unwrap();
        let tool_dir = ToolDir::new(target.path());
        let facts = GitFacts::read(dir);
        let time = |facts: &GitFacts| {
            facts.for_dirs(&[&sub], true, &tool_dir, &report())[0].last_commit_time
        };
        assert_eq!(time(&facts), Some(1_600_000_100));
        let cache: Keyed<CommitTimes> = Keyed::open(&tool_dir, "git", KEEP);
        let key = (canonical(dir), facts.revision.clone().unwrap());
        let planted = CommitTimes::from([("sub".to_string(), Some(7)), (String::new(), Some(8))]);
        cache.put(&key, &planted);
        assert_eq!(time(&facts), Some(7));
        // The directory the facts were read in too: kept, not asked.
        let here = facts.for_dirs(&[dir], true, &tool_dir, &report());
        assert_eq!(here[0].last_commit_time, Some(8));
        git_at(
            dir,
            1_600_000_200,
            &["commit", "-q", "--allow-empty", "-m", "later"],
        );
        assert_eq!(time(&GitFacts::read(dir)), Some(1_600_000_100));
    }

    /// A directory in a repository of its own inside this one is read there; one in no
    /// repository has no facts.
    #[test]
    fn other_repositories_are_read_on_their_own() {
        let repo = repository();
        let nested = repo.path().join("nested");
        std::fs::create_dir(&nested).unwrap();
        git_at(&nested, 0, &["init", "-q"]);
        let outside = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        let tool_dir = ToolDir::new(target.path());
        let facts = GitFacts::read(repo.path());
        let all = facts.for_dirs(&[&nested, outside.path()], true, &tool_dir, &report());
        assert_eq!(all[0].revision, None, "the nested repository has no commit");
        assert_eq!(all[1].revision, None);
        let from_outside = GitFacts::read(outside.path());
        assert_eq!(from_outside.revision, None);
        let all = from_outside.for_dirs(&[repo.path()], true, &tool_dir, &report());
        assert_eq!(all[0].revision, facts.revision, "read where it is");
    }
}
