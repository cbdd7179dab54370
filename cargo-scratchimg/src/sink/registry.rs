//! Pushing the image to registries: each blob the repository lacks is mounted or uploaded,
//! then the manifest, as the exact bytes of the local one, under each tag. A manifest is put
//! only after every blob it names is in place; an index, after every manifest it names.

use std::time::Instant;

use anyhow::{Context, Result};

use super::attach::{AttachRequest, Attached, attach};
use super::uploads::Uploads;

use crate::image::{Artifact, Blob, ImageRef, short_digest};
use crate::registry::{Mount, MountSources, Registry, Session};
use crate::report::{Progress, ProgressEnd, Reporter};
use crate::text::human_size;

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// `REF@sha256:…` of each tag pushed.
    pub refs: Vec<String>,
    pub uploaded: usize,
    pub mounted: usize,
    pub existing: usize,
    /// Bytes uploaded.
    pub sent: u64,
    pub elapsed: std::time::Duration,
    /// What went up next to the image, per repository (`sink::attach`).
    pub attached: Vec<(String, Attached)>,
}

/// A push that failed, and the tags it pushed before it did: they are in the registry.
#[derive(Debug)]
pub(crate) struct PushError {
    pub pushed: Vec<String>,
    pub error: anyhow::Error,
}

/// What became of one blob.
enum Placed {
    Existed,
    /// Mounted from this repository (`registry/repo`).
    Mounted(String),
    Uploaded,
}

/// Makes sure the repository of `session` has `blob`: already there, mounted from where
/// `mounts` saw it, or uploaded. Blobs are placed in parallel, one thread each.
fn place_blob(
    session: &Session<'_>,
    registry: &Registry,
    mounts: &MountSources,
    blob: &Blob,
    bar: Option<&dyn Progress>,
) -> Result<Placed> {
    let placed = try_place_blob(session, registry, mounts, blob, bar);
    if let Some(bar) = bar {
        bar.finish(match &placed {
            Ok(Placed::Uploaded) => ProgressEnd::Done,
            Ok(Placed::Existed | Placed::Mounted(_)) => ProgressEnd::Skipped,
            Err(_) => ProgressEnd::Failed,
        });
    }
    placed.with_context(|| {
        format!(
            "could not upload blob {} to {}/{}",
            blob.digest(),
            registry.host(),
            session.repository()
        )
    })
}

fn try_place_blob(
    session: &Session<'_>,
    registry: &Registry,
    mounts: &MountSources,
    blob: &Blob,
    bar: Option<&dyn Progress>,
) -> Result<Placed> {
    let digest = blob.digest();
    let repository = session.repository();
    if session.has_blob(digest)? {
        return Ok(Placed::Existed);
    }
    let from = mounts.source(registry.host(), digest, repository);
    let first = session.start_upload(digest, from)?;
    if let (Mount::Mounted, Some(from)) = (&first, from) {
        return Ok(Placed::Mounted(format!("{}/{from}", registry.host())));
    }
    let progress = |sent| {
        if let Some(bar) = bar {
            bar.set(sent);
        }
    };
    session.upload(digest, blob.size(), &|| blob.reader(), first, &progress)?;
    Ok(Placed::Uploaded)
}

/// Pushes `artifact` under `tags` through `registries` (connected before the build): per
/// repository, each blob the repository lacks is mounted (from where `mounts` saw it) or
/// uploaded, in parallel; then the manifests. `mounts` learns where blobs now are; keeping it
/// is the caller's.
pub(crate) fn push(
    registries: &[Registry],
    mounts: &mut MountSources,
    artifact: &Artifact,
    tags: &[ImageRef],
    attachments: Option<&AttachRequest<'_>>,
    uploads: &Uploads<'_>,
    report: &dyn Reporter,
) -> Result<Pushed, PushError> {
    let started = Instant::now();
    let mut pushed = Pushed::default();
    match push_to(
        registries,
        mounts,
        artifact,
        tags,
        attachments,
        uploads,
        report,
        &mut pushed,
    ) {
        Ok(()) => {
            pushed.elapsed = started.elapsed();
            Ok(pushed)
        }
        Err(error) => Err(PushError {
            pushed: pushed.refs,
            error,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn push_to(
    registries: &[Registry],
    mounts: &mut MountSources,
    artifact: &Artifact,
    tags: &[ImageRef],
    attachments: Option<&AttachRequest<'_>>,
    uploads: &Uploads<'_>,
    report: &dyn Reporter,
    pushed: &mut Pushed,
) -> Result<()> {
    // One pass per repository: its blobs once, then the manifest under each of its tags.
    let repositories = crate::util::unique(
        tags.iter()
            .map(|tag| (tag.registry().to_string(), tag.repository().to_string())),
    );
    let images = artifact.images();
    // Every platform's config and layers; blobs that platforms share, once.
    let mut unique: Vec<(&Blob, String)> = Vec::new();
    for image in images {
        let platform = if images.len() > 1 {
            format!(" ({})", image.arch().platform())
        } else {
            String::new()
        };
        let labels = std::iter::once(format!("config{platform}"))
            .chain(image.layers().iter().map(|l| l.comment().to_string()));
        for (blob, label) in image.blobs().zip(labels) {
            if !unique.iter().any(|(b, _)| b.digest() == blob.digest()) {
                unique.push((blob, label));
            }
        }
    }
    for (host, repository) in &repositories {
        let registry = registries
            .iter()
            .find(|r| r.host() == host)
            .with_context(|| {
                format!("registry {host} was not connected (a bug in cargo-scratchimg)")
            })?;
        let sources = mounts.repositories(host, unique.iter().map(|(blob, _)| blob.digest()));
        let session = registry.session(repository, &sources, report)?;
        let bars: Vec<Option<Box<dyn Progress>>> = unique
            .iter()
            .map(|(blob, label)| {
                report.progress(
                    "Uploading",
                    &format!("{} {label}", short_digest(blob.digest())),
                    blob.size(),
                )
            })
            .collect();
        let (session, known) = (&session, &*mounts);
        // A blob that went up while it was compressed is there: the registry checked it.
        let sent_early = |blob: &Blob| uploads.sent(host, repository, blob.digest());
        let placed: Vec<Result<Placed>> = std::thread::scope(|scope| {
            let handles: Vec<_> = unique
                .iter()
                .zip(&bars)
                .map(|((blob, _), bar)| {
                    let early = sent_early(blob);
                    scope.spawn(move || {
                        if early {
                            if let Some(bar) = bar {
                                bar.set(blob.size());
                                bar.finish(ProgressEnd::Done);
                            }
                            return Ok(Placed::Uploaded);
                        }
                        place_blob(session, registry, known, blob, bar.as_deref())
                    })
                })
                .collect();
            handles.into_iter().map(crate::util::join).collect()
        });
        let place = format!("{host}/{repository}");
        for ((blob, label), placed) in unique.iter().zip(placed) {
            let digest = short_digest(blob.digest());
            match placed? {
                Placed::Existed => {
                    pushed.existing += 1;
                    report.verbose("Exists", &|| format!("{digest} in {place}"));
                }
                Placed::Mounted(from) => {
                    pushed.mounted += 1;
                    report.status("Mounted", &format!("{digest} from {from}"));
                }
                Placed::Uploaded => {
                    pushed.uploaded += 1;
                    pushed.sent += blob.size();
                    if bars.iter().all(Option::is_none) {
                        let size = human_size(blob.size());
                        report.status("Uploaded", &format!("{digest} {size:>10}  {label}"));
                    }
                }
            }
            // Every blob is in this repository now: later repositories of this run may mount
            // any of them.
            mounts.remember(host, blob.digest(), repository);
        }
        // An index's manifests go up by digest first; then what the tags name.
        if let Artifact::Index(_) = artifact {
            for image in images {
                let manifest = image.manifest();
                let put = session.put(manifest.digest().as_ref(), manifest);
                put.with_context(|| {
                    format!(
                        "could not push the {} manifest to {host}/{repository}",
                        image.arch().platform()
                    )
                })?;
                report.verbose("Pushed", &|| {
                    format!("{} manifest {}", image.arch().platform(), manifest.digest())
                });
            }
        }
        // Attestations before the tags: a tag never names an image without them.
        if let Some(attachments) = attachments
            && let Some(attached) = attach(session, &place, artifact, attachments, report)?
        {
            pushed.attached.push((place.clone(), attached));
        }
        let manifest = artifact.manifest();
        for tag in tags
            .iter()
            .filter(|t| t.registry() == host && t.repository() == repository)
        {
            let put = session.put(tag.tag(), manifest);
            put.with_context(|| format!("could not push the manifest of {tag}"))?;
            let reference = format!("{tag}@{}", manifest.digest());
            report.status("Pushed", &reference);
            pushed.refs.push(reference);
        }
    }
    Ok(())
}
