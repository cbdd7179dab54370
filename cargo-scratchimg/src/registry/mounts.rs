//! Where a registry is known to hold a blob, so a push can mount it instead of uploading it.
//!
//! The base layer is the same in every image of the same settings that this version of the
//! tool builds, so any project's push finds it where an earlier push of any project of the
//! user put it. The record of it lives in the user's cache directory, bounded and checked like
//! every cache; losing it only costs an upload, and a wrong entry only a refused mount.

use std::str::FromStr;

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use crate::image::Repository;

/// How many blobs the record keeps, the most recently seen: a user's registries, each with
/// the base layers of a few settings and tool versions.
const LIMIT: usize = 256;

/// A repository of a registry seen to hold a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Seen {
    pub registry: String,
    pub digest: String,
    pub repository: String,
}

impl Seen {
    /// A registry host, a repository name and a SHA-256 digest, as a push would have them: an
    /// entry of the record is any other program's to write.
    fn is_well_formed(&self) -> bool {
        let name = format!("{}/{}", self.registry, self.repository);
        Repository::from_str(&name)
            .is_ok_and(|r| r.registry() == self.registry && r.repository() == self.repository)
            && Digest::from_str(&self.digest).is_ok_and(|d| d.to_string() == self.digest)
            && self.digest.starts_with("sha256:")
    }

    fn is(&self, registry: &str, digest: &str) -> bool {
        self.registry == registry && self.digest == digest
    }
}

/// What this run knows of where blobs are: the record, then what its pushes saw.
#[derive(Debug, Default)]
pub(crate) struct MountSources {
    /// Oldest first.
    known: Vec<Seen>,
    /// What this run's pushes saw, in order.
    learned: Vec<Seen>,
}

impl MountSources {
    /// What `record` says, but its entries that are not well formed.
    pub(crate) fn new(record: Vec<Seen>) -> MountSources {
        MountSources {
            known: record.into_iter().filter(Seen::is_well_formed).collect(),
            learned: Vec::new(),
        }
    }

    /// A repository of `registry` other than `repository` that holds `digest`: the one it was
    /// seen in last.
    pub(crate) fn source(&self, registry: &str, digest: &Digest, repository: &str) -> Option<&str> {
        let digest = digest.to_string();
        self.known
            .iter()
            .rev()
            .find(|seen| seen.is(registry, &digest) && seen.repository != repository)
            .map(|seen| seen.repository.as_str())
    }

    /// The repositories of `registry` that `digests` may be mounted from: a push asks for
    /// access to these alone.
    pub(crate) fn repositories<'a>(
        &self,
        registry: &str,
        digests: impl IntoIterator<Item = &'a Digest>,
    ) -> Vec<String> {
        let digests: Vec<String> = digests.into_iter().map(Digest::to_string).collect();
        let mut repositories: Vec<String> = self
            .known
            .iter()
            .filter(|seen| digests.iter().any(|d| seen.is(registry, d)))
            .map(|seen| seen.repository.clone())
            .collect();
        repositories.sort();
        repositories.dedup();
        repositories
    }

    pub(crate) fn remember(&mut self, registry: &str, digest: &Digest, repository: &str) {
        let seen = Seen {
            registry: registry.to_string(),
            digest: digest.to_string(),
            repository: repository.to_string(),
        };
        self.known.retain(|s| *s != seen);
        self.known.push(seen.clone());
        self.learned.push(seen);
    }

    /// `record` with what this run saw of `keep` (the base layers, which later runs share:
    /// other layers change with each build, and mounting them helps only within a run), each
    /// once, newest last, and no more than [`LIMIT`] entries.
    pub(crate) fn merge_into(&self, record: &mut Vec<Seen>, keep: &[Digest]) {
        let keep: Vec<String> = keep.iter().map(Digest::to_string).collect();
        record.retain(Seen::is_well_formed);
        for seen in self.learned.iter().filter(|s| keep.contains(&s.digest)) {
            record.retain(|s| s != seen);
            record.push(seen.clone());
        }
        let over = record.len().saturating_sub(LIMIT);
        record.drain(..over);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::sha256;

    fn seen(registry: &str, digest: &Digest, repository: &str) -> Seen {
        Seen {
            registry: registry.into(),
            digest: digest.to_string(),
            repository: repository.into(),
        }
    }

    #[test]
    fn remembered_base_layers_are_mount_sources_for_later_runs() {
        let (base, app) = (sha256(b"base"), sha256(b"app"));
        let mut first = MountSources::new(Vec::new());
        first.remember("ghcr.io", &base, "acme/api");
        first.remember("ghcr.io", &app, "acme/api");
        let mut record = Vec::new();
        first.merge_into(&mut record, std::slice::from_ref(&base));
        assert_eq!(record, [seen("ghcr.io", &base, "acme/api")]);

        let second = MountSources::new(record);
        assert_eq!(
            second.source("ghcr.io", &base, "acme/web"),
            Some("acme/api")
        );
        assert_eq!(second.source("ghcr.io", &base, "acme/api"), None);
        assert_eq!(second.source("quay.io", &base, "acme/web"), None);
        assert_eq!(second.source("ghcr.io", &app, "acme/web"), None);
        assert_eq!(second.repositories("ghcr.io", [&base]), ["acme/api"]);
        assert!(second.repositories("ghcr.io", [&app]).is_empty());
    }

    #[test]
    fn the_record_keeps_the_newest_and_no_more() {
        let base = sha256(b"base");
        let mut record = vec![seen("ghcr.io", &base, "acme/old")];
        let mut run = MountSources::new(record.clone());
        run.remember("ghcr.io", &base, "acme/new");
        run.merge_into(&mut record, std::slice::from_ref(&base));
        let run = MountSources::new(record.clone());
        assert_eq!(run.source("ghcr.io", &base, "acme/web"), Some("acme/new"));
        assert_eq!(run.source("ghcr.io", &base, "acme/new"), Some("acme/old"));

        let digests: Vec<Digest> = (0..LIMIT + 10)
            .map(|i| sha256(i.to_string().as_bytes()))
            .collect();
        let mut run = MountSources::new(Vec::new());
        for digest in &digests {
            run.remember("ghcr.io", digest, "acme/api");
        }
        run.merge_into(&mut record, &digests);
        assert_eq!(record.len(), LIMIT);
        assert_eq!(
            record.last().unwrap().digest,
            digests.last().unwrap().to_string()
        );
    }

    #[test]
    fn entries_that_are_not_well_formed_are_dropped() {
        let base = sha256(b"base");
        let good = seen("127.0.0.1:5000", &base, "acme/api");
        let bad = [
            seen("not a host", &base, "acme/api"),
            seen("ghcr.io", &base, "Acme/API"),
            seen("ghcr.io", &base, "acme/api --flag"),
            Seen {
                digest: "sha256:short".into(),
                ..good.clone()
            },
            Seen {
                digest: format!("sha512:{}", "0".repeat(128)),
                ..good.clone()
            },
        ];
        let run = MountSources::new(bad.iter().cloned().chain([good.clone()]).collect());
        assert_eq!(run.known, [good]);
    }
}
