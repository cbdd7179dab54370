//! Where a registry is known to hold a blob, so a push can mount it instead of uploading it.
//!
//! The base layer is the same in every image this version of the tool builds, so the second
//! service of a workspace pushed to a registry finds it in the first one's repository. The
//! record lives in the target directory's cache; losing it only costs an upload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

/// Per registry host, per digest, a repository that holds the blob.
#[derive(Debug, Default)]
pub(crate) struct MountSources {
    file: Option<PathBuf>,
    known: BTreeMap<String, BTreeMap<String, String>>,
}

impl MountSources {
    /// The record in `file`; empty when it is missing or unreadable.
    pub(crate) fn load(file: &Path) -> MountSources {
        let known = std::fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        MountSources {
            file: Some(file.to_path_buf()),
            known,
        }
    }

    /// A repository of `registry` other than `repository` that holds `digest`.
    pub(crate) fn source(&self, registry: &str, digest: &Digest, repository: &str) -> Option<&str> {
        self.known
            .get(registry)?
            .get(&digest.to_string())
            .map(String::as_str)
            .filter(|from| *from != repository)
    }

    /// Every repository of `registry` that may be mounted from.
    pub(crate) fn repositories(&self, registry: &str) -> Vec<String> {
        let mut repositories: Vec<String> = self
            .known
            .get(registry)
            .map(|blobs| blobs.values().cloned().collect())
            .unwrap_or_default();
        repositories.sort();
        repositories.dedup();
        repositories
    }

    pub(crate) fn remember(&mut self, registry: &str, digest: &Digest, repository: &str) {
        self.known
            .entry(registry.to_string())
            .or_default()
            .insert(digest.to_string(), repository.to_string());
    }

    /// Forgets every blob but those of `keep`, which later runs share: other layers change
    /// with each build, and mounting them from this run's repositories only helps within it.
    pub(crate) fn retain_only(&mut self, keep: &[Digest]) {
        let keep: Vec<String> = keep.iter().map(Digest::to_string).collect();
        for blobs in self.known.values_mut() {
            blobs.retain(|d, _| keep.contains(d));
        }
    }

    /// Writes the record back, best effort: it is a cache.
    pub(crate) fn save(&self) {
        if let Some(file) = &self.file
            && let Ok(bytes) = serde_json::to_vec(&self.known)
        {
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = std::fs::write(file, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::sha256;

    #[test]
    fn remembered_blobs_are_mount_sources_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mounts.json");
        let digest = sha256(b"base");
        let mut sources = MountSources::load(&file);
        sources.remember("ghcr.io", &digest, "acme/api");
        sources.save();
        let sources = MountSources::load(&file);
        assert_eq!(
            sources.source("ghcr.io", &digest, "acme/web"),
            Some("acme/api")
        );
        assert_eq!(sources.source("ghcr.io", &digest, "acme/api"), None);
        assert_eq!(sources.source("quay.io", &digest, "acme/web"), None);
        assert_eq!(sources.repositories("ghcr.io"), ["acme/api"]);
    }
}
