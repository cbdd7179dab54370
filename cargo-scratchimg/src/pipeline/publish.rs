//! Step 5: every image written to its claimed output with its SBOMs and provenance beside it,
//! all put in place together; then each loaded into the engine, pushed to its registries with
//! its attestations, and its [`Outcome`] reported as soon as it is done.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use oci_spec::image::Digest;

use super::assemble::{AssembledImage, Attestations};
use super::in_order::each_in_order;
use super::{Connections, ImagePlan, Plan};
use crate::attest::Referrer;
use crate::cache::Keyed;
use crate::image::Artifact;
use crate::outcome::{Outcome, RunRecord};
use crate::registry::{MountSources, Seen};
use crate::report::Reporter;
use crate::sink::{
    AttachRequest, Engine, PendingFile, PushError, Staged, Uploads, WrittenFiles, commit_all, load,
    push,
};
use crate::text::human_size;

/// The key of the one entry of the record of where blobs were seen.
const MOUNT_RECORD: &str = "registry-mounts";

/// Publishes every image, in plan order, through what the plan connected to; the layers in
/// `uploads` went up while they were compressed. Then the run's record goes to `record`
/// (`--metadata-file`, claimed with the other outputs): last, since it names what was pushed,
/// and only when every image was published.
pub(crate) fn publish(
    plan: &Plan,
    connections: &Connections,
    uploads: &Uploads<'_>,
    images: Vec<AssembledImage>,
    record: Option<PendingFile>,
    report: &dyn Reporter,
) -> Result<Vec<Outcome>> {
    // Where blobs were seen is the user's: read and written only by runs that push.
    let mount_record: Keyed<Vec<Seen>> = Keyed::open_at(plan.mount_record.clone(), 1);
    let pushes = !connections.registries.is_empty();
    let seen = pushes.then(|| mount_record.get(&MOUNT_RECORD, report));
    let mut mounts = MountSources::new(seen.flatten().unwrap_or_default());
    // Later runs remember only the base layers, which every image of a tool version shares;
    // the others change with each build.
    let bases: Vec<Digest> = images
        .iter()
        .map(|i| i.image.base.blob().digest().clone())
        .collect();
    let published = publish_each(plan, connections, uploads, images, &mut mounts, report);
    if pushes {
        mount_record.update(&MOUNT_RECORD, report, |seen| {
            mounts.merge_into(seen, &bases)
        });
    }
    let outcomes = published?;
    if let Some(record) = record {
        report.status("Writing", &record.path().display());
        let path = record.path().to_path_buf();
        let mut json = serde_json::to_vec_pretty(&serde_json::to_value(RunRecord::of(&outcomes))?)
            .with_context(|| format!("could not write {}", path.display()))?;
        json.push(b'\n');
        commit_all(vec![record.stage(&json)?], &[])?;
    }
    Ok(outcomes)
}

fn publish_each(
    plan: &Plan,
    connections: &Connections,
    uploads: &Uploads<'_>,
    images: Vec<AssembledImage>,
    mounts: &mut MountSources,
    report: &dyn Reporter,
) -> Result<Vec<Outcome>> {
    // Every file of the run is written whole beside its path first, then all are put in place
    // together: when one cannot be written, none replaces what was there. Documents an earlier
    // run left beside an output, which this run does not write, go in the same step. A file
    // that holds what would be written is left as it is.
    let records = WrittenFiles::load(&plan.tool_dir, report);
    let staging = each_in_order(images, plan.jobs, report, |image, report| {
        stage(plan, image, &records, report)
    })?;
    let mut staged = Vec::new();
    let mut stale = Vec::new();
    let mut written = Vec::new();
    for Staging {
        files,
        mut stale_sboms,
        image,
    } in staging
    {
        staged.extend(files);
        stale.append(&mut stale_sboms);
        written.push(image);
    }
    let committed = commit_all(staged, &stale)?;
    for path in &committed.rewritten {
        report.status(
            "Writing",
            &format!(
                "{} again: another process changed it while this run ran",
                path.display()
            ),
        );
    }
    records.record(committed.placed);
    records.save();

    let mut outcomes = Vec::new();
    for Written {
        image,
        artifact,
        path,
        files,
        attestations,
    } in written
    {
        let mut outcome = Outcome::of(&artifact, &image.tags, plan.format.name());
        // Where the attestations went: into the output when --attach asked for them, or to a
        // registry that took them.
        let mut referrers_went = plan.attach_explicit && path.is_some();
        outcome.path = path;
        outcome.files = files;
        outcome.compression = image
            .compression
            .map(|c| format!("{}:{}", c.algorithm, c.level));
        if let Some(engine) = &connections.engine {
            let loaded = match (engine.engine, &connections.containerd) {
                (Engine::Containerd, Some(containerd)) => {
                    containerd.import(&artifact, &image.tags, image.date.seconds)
                }
                _ => load(engine, &artifact, &image.tags, image.date.seconds),
            }
            .with_context(|| format!("could not load the image into {engine}"))?;
            for name in &loaded.names {
                report.status("Loaded", &format!("{name} ({engine})"));
            }
            outcome.loaded_into = Some(engine.to_string());
        }
        if !image.push_to.is_empty() {
            let attachments = AttachRequest {
                referrers: &attestations.referrers,
                key: (plan.sign_key.as_ref()).filter(|_| image.settings.sign_format.legacy()),
                explicit: plan.attach_explicit,
            };
            let attachments = (!attestations.referrers.is_empty() || plan.sign_key.is_some())
                .then_some(&attachments);
            match push(
                &connections.registries,
                mounts,
                &artifact,
                &image.push_to,
                attachments,
                uploads,
                report,
            ) {
                Ok(pushed) => {
                    for (place, attached) in &pushed.attached {
                        report.status("Attached", &attached.describe(place));
                    }
                    let tags = pushed.refs.len();
                    report.status(
                        "Pushed",
                        &format!(
                            "{tags} tag{} in {:.3}s: {} blob{} uploaded ({}), {} mounted, {} already there",
                            if tags == 1 { "" } else { "s" },
                            pushed.elapsed.as_secs_f64(),
                            pushed.uploaded,
                            if pushed.uploaded == 1 { "" } else { "s" },
                            human_size(pushed.sent),
                            pushed.mounted,
                            pushed.existing
                        ),
                    );
                    outcome.pushed = pushed.refs;
                    referrers_went |= !pushed.attached.is_empty();
                }
                Err(PushError { pushed, error }) => {
                    // What went up is there: say so on stdout, then fail.
                    if !pushed.is_empty() || outcome.path.is_some() {
                        outcome.pushed = pushed;
                        report.result(&outcome);
                    }
                    return Err(error);
                }
            }
        }
        if referrers_went {
            outcome.referrers = (attestations.referrers.iter())
                .map(Referrer::summary)
                .collect();
        }
        summarize(&outcome, report);
        report.result(&outcome);
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// An image's files, staged.
struct Staging {
    files: Vec<Staged>,
    /// Documents an earlier run left beside its output, which this run does not write.
    stale_sboms: Vec<PathBuf>,
    image: Written,
}

/// Writes `image`'s files beside their paths (those that do not hold their bytes already): the
/// output, its provenance and its SBOMs.
fn stage(
    plan: &Plan,
    image: AssembledImage,
    records: &WrittenFiles,
    report: &dyn Reporter,
) -> Result<Staging> {
    let AssembledImage {
        mut image,
        artifact,
        sboms,
        attestations,
    } = image;
    let mut files = Vec::new();
    let outputs = &mut image.outputs;
    let path = match outputs.destination.take() {
        Some(destination) => {
            // File outputs hold the attestations when --attach asks: readers that name no
            // tag want a layout with one entry.
            let referrers: &[_] = if plan.attach_explicit {
                &attestations.referrers
            } else {
                &[]
            };
            let path = destination.path().to_path_buf();
            let output = destination.stage(&artifact, &image.tags, referrers, records)?;
            files.push(said(output, report));
            Some(path)
        }
        None => None,
    };
    if let Some(claim) = outputs.provenance.take() {
        let file = claim.stage_bytes_unless_held(&attestations.provenance_file, records)?;
        files.push(said(file, report));
    }
    // Claimed for a written image only, in the order the documents are made.
    let claims = std::mem::take(&mut outputs.sboms);
    ensure!(
        claims.is_empty()
            || claims.len() == sboms.len()
                && claims
                    .iter()
                    .zip(&sboms)
                    .all(|(c, d)| c.target == d.target && c.bin == d.bin),
        "the SBOM documents are not the ones claimed (a bug in cargo-scratchimg)"
    );
    for (claim, document) in claims.into_iter().zip(&sboms) {
        let file = claim
            .file
            .stage_bytes_unless_held(&document.bytes, records)?;
        files.push(said(file, report));
    }
    let stale_sboms = std::mem::take(&mut outputs.stale_sboms);
    let paths = files.iter().map(|file| file.path().to_path_buf()).collect();
    Ok(Staging {
        files,
        stale_sboms,
        image: Written {
            image,
            artifact,
            path,
            files: paths,
            attestations,
        },
    })
}

/// Says whether a file is written, or left as it is since it holds the same bytes.
fn said(staged: Staged, report: &dyn Reporter) -> Staged {
    let verb = if staged.is_kept() { "Fresh" } else { "Writing" };
    report.status(verb, &staged.path().display());
    staged
}

/// An image whose files are staged: what the rest of publishing needs of it.
struct Written {
    image: ImagePlan,
    artifact: Artifact,
    /// The output, once committed.
    path: Option<PathBuf>,
    /// Every file of it, written or left as it is.
    files: Vec<PathBuf>,
    attestations: Attestations,
}

/// The summary on stderr: name, digest, and each layer's size.
fn summarize(outcome: &Outcome, report: &dyn Reporter) {
    let platforms: Vec<&str> = outcome.images.iter().map(|i| i.platform.as_str()).collect();
    let index = platforms.len() > 1;
    let kind = if index { "index of " } else { "" };
    report.status(
        "Image",
        &format!(
            "{} ({kind}{})",
            outcome.tags.join(", "),
            platforms.join(", ")
        ),
    );
    report.status("Digest", &outcome.digest);
    if index {
        for image in &outcome.images {
            report.status(
                "Platform",
                &format!(
                    "{:<15} {}  {}",
                    image.platform,
                    image.digest,
                    human_size(image.size)
                ),
            );
        }
        if outcome.format == "archive" {
            report.status(
                "Note",
                &format!(
                    "docker load gets {} from this tar (one platform per name)",
                    outcome.platform
                ),
            );
        }
        report.status("Layers", &format!("of {}:", outcome.platform));
    }
    for layer in &outcome.layers {
        report.status(
            "Layer",
            &format!("{:>10}  {}", human_size(layer.size), layer.comment),
        );
    }
    let how = match &outcome.compression {
        Some(compression) => format!("compressed ({compression})"),
        None => "uncompressed (loaded only)".to_string(),
    };
    let what = if index {
        format!("{how}, all platforms, shared blobs once")
    } else {
        format!("{how}, config included")
    };
    report.status(
        "Total",
        &format!("{:>10}  {what}", human_size(outcome.size)),
    );
}
