//! The referrers of a manifest: through the OCI 1.1
//! referrers API (`GET /v2/<name>/referrers/<digest>`) where the registry has it, else through
//! the referrers tag schema, an image index under the tag `sha256-<hex>` that clients keep up to
//! date themselves (the distribution registry 2.8, GHCR and Docker Hub have no API).

use anyhow::{Context, Result, bail, ensure};
use oci_spec::image::{Digest, MediaType};
use serde_json::{Value, json};

use super::pull::MANIFEST_LIMIT;
use super::session::Session;
use crate::image::{Blob, json as canonical};

pub(crate) const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The tag of the referrers tag schema for `digest`: `sha256-<hex>`.
pub(crate) fn fallback_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm().as_ref(), digest.digest())
}

/// How a registry lists referrers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// The OCI 1.1 referrers API.
    Api,
    /// The referrers tag schema.
    Tag,
}

impl Session<'_> {
    /// Whether the registry answers the referrers API, and the referrers of `digest` it lists.
    pub(crate) fn referrers(&self, digest: &Digest) -> Result<(Via, Vec<Value>)> {
        let (status, content_type, bytes) = self.fetch(
            "GET of the referrers",
            &format!("referrers/{digest}"),
            INDEX_MEDIA_TYPE,
            &[200, 400, 404, 405],
            MANIFEST_LIMIT,
        )?;
        let api = status == 200
            && content_type
                .as_deref()
                .is_some_and(|t| t.starts_with(INDEX_MEDIA_TYPE));
        if api {
            return Ok((Via::Api, descriptors(&bytes)?));
        }
        let listed = match self.get_manifest(&fallback_tag(digest))? {
            Some(index) => descriptors(&index.bytes)?,
            None => Vec::new(),
        };
        Ok((Via::Tag, listed))
    }

    /// Adds `entries` to the referrers index under the tag of `subject`, keeping what others
    /// listed there (see [`Session::update_tag`]). Gives how many were added.
    pub(crate) fn add_referrers_by_tag(
        &self,
        subject: &Digest,
        entries: &[Value],
    ) -> Result<usize> {
        let tag = fallback_tag(subject);
        let mut added = 0;
        self.update_tag(&tag, &mut |existing| {
            let merged = merge(existing, entries)
                .with_context(|| format!("the tag {tag} of {}", self.repository()))?;
            Ok(merged.map(|(bytes, count)| {
                added = added.max(count);
                Blob::new(MediaType::ImageIndex, bytes)
            }))
        })?;
        Ok(added)
    }

    /// Puts under `tag` what `update` makes of what the tag holds (`None`: nothing of ours is
    /// missing), then reads it back and updates it again while something of ours is missing:
    /// the registry has no conditional put, so another writer's put, made from what it read
    /// before ours, can drop what we added. Gives up after [`ROUNDS`] rounds.
    pub(crate) fn update_tag(&self, tag: &str, update: &mut Update<'_>) -> Result<()> {
        for _ in 0..ROUNDS {
            let existing = self.get_manifest(tag)?;
            let Some(manifest) = update(existing.as_ref().map(|m| m.bytes.as_slice()))? else {
                return Ok(());
            };
            self.put(tag, &manifest)
                .with_context(|| format!("could not put {tag} in {}", self.repository()))?;
        }
        bail!(
            "{tag} in {} lost what was added to it {ROUNDS} times in a row: another client keeps replacing it\nhelp: push again once the other pushes to this image are done",
            self.repository()
        )
    }
}

/// What a tag should hold given what it holds (`None`: nothing of ours is missing).
pub(crate) type Update<'a> = dyn FnMut(Option<&[u8]>) -> Result<Option<Blob>> + 'a;

/// How many times a tag is put before we give up on another writer.
const ROUNDS: usize = 8;

/// The `manifests` of a referrers index.
fn descriptors(bytes: &[u8]) -> Result<Vec<Value>> {
    let index: Value = serde_json::from_slice(bytes).context("the referrers list is not JSON")?;
    match index["manifests"].as_array() {
        Some(manifests) => Ok(manifests.clone()),
        None if index.get("manifests").is_none() || index["manifests"].is_null() => Ok(Vec::new()),
        None => bail!("the referrers list is not an image index"),
    }
}

/// `existing` (a referrers index, if any) with `entries` added that it lacks (by digest), and
/// how many; `None` when it lacks none.
pub(crate) fn merge(
    existing: Option<&[u8]>,
    entries: &[Value],
) -> Result<Option<(Vec<u8>, usize)>> {
    let mut index = match existing {
        Some(bytes) => {
            let index: Value = serde_json::from_slice(bytes)
                .context("it holds something that is not JSON; not replacing it")?;
            let is_index = index["mediaType"] == INDEX_MEDIA_TYPE
                || (index.get("mediaType").is_none() && index["manifests"].is_array());
            ensure!(
                is_index && (index["manifests"].is_array() || index["manifests"].is_null()),
                "it holds a {} rather than a referrers index; not replacing it",
                index["mediaType"].as_str().unwrap_or("document")
            );
            index
        }
        None => json!({ "schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [] }),
    };
    if index["manifests"].is_null() {
        index["manifests"] = json!([]);
    }
    let manifests = index["manifests"].as_array_mut().expect("checked above");
    let mut added = 0;
    for entry in entries {
        if !manifests.iter().any(|m| m["digest"] == entry["digest"]) {
            manifests.push(entry.clone());
            added += 1;
        }
    }
    if added == 0 {
        return Ok(None);
    }
    Ok(Some((canonical::to_vec(&index)?, added)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_others_and_adds_once() {
        let ours = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa", "size": 1, "artifactType": "application/spdx+json"});
        let theirs = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:bb", "size": 2, "artifactType": "application/example"});
        let (first, added) = merge(None, std::slice::from_ref(&ours)).unwrap().unwrap();
        assert_eq!(added, 1);
        assert!(
            merge(Some(&first), std::slice::from_ref(&ours))
                .unwrap()
                .is_none(),
            "idempotent"
        );
        let foreign = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [theirs]}),
        )
        .unwrap();
        let (both, added) = merge(Some(&foreign), &[ours]).unwrap().unwrap();
        assert_eq!(added, 1);
        let both: Value = serde_json::from_slice(&both).unwrap();
        assert_eq!(both["manifests"][0]["artifactType"], "application/example");
        assert_eq!(
            both["manifests"][1]["artifactType"],
            "application/spdx+json"
        );
        let image = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []})).unwrap();
        let error = merge(Some(&image), &[json!({"digest": "x"})])
            .unwrap_err()
            .to_string();
        assert!(error.contains("rather than a referrers index"), "{error}");
        assert_eq!(
            fallback_tag(&format!("sha256:{}", "ab".repeat(32)).parse().unwrap()),
            format!("sha256-{}", "ab".repeat(32))
        );
    }
}
