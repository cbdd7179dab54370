//! Pushing the image to registries: each blob the repository lacks is mounted or uploaded,
//! then the manifest, as the exact bytes of the local one, under each tag. A manifest is put
//! only after every blob it names is in place; an index, after every manifest it names.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::Digest;

use super::Sink;
use crate::image::{Artifact, Blob, ImageRef};
use crate::pipeline::human_size;
use crate::registry::{Mount, MountSources, Registry, Session};
use crate::shell::{Shell, Verbosity};

pub struct RegistrySink<'a> {
    registries: &'a [Registry],
    mounts: MountSources,
    shell: &'a mut Shell,
    /// Progress bars on a terminal; plain status lines otherwise.
    bars: bool,
    /// `REF@sha256:…` of each tag pushed.
    pub pushed: Vec<String>,
    /// What happened to the blobs, for the summary.
    pub uploaded: usize,
    pub mounted: usize,
    pub existing: usize,
    /// Bytes uploaded.
    pub sent: u64,
}

/// `sha256:0123456789ab`: enough to tell blobs apart in a status line.
fn short(digest: &Digest) -> String {
    let hex = digest.digest();
    format!(
        "{}:{}",
        digest.algorithm().as_ref(),
        &hex[..hex.len().min(12)]
    )
}

impl<'a> RegistrySink<'a> {
    /// Pushes through `registries`, already connected; `mounts` says where blobs were seen.
    pub fn new(
        registries: &'a [Registry],
        mounts: MountSources,
        shell: &'a mut Shell,
    ) -> RegistrySink<'a> {
        let bars = shell.verbosity() == Verbosity::Normal && std::io::stderr().is_terminal();
        RegistrySink {
            registries,
            mounts,
            shell,
            bars,
            pushed: Vec::new(),
            uploaded: 0,
            mounted: 0,
            existing: 0,
            sent: 0,
        }
    }

    fn registry(&self, host: &str) -> Result<&'a Registry> {
        self.registries
            .iter()
            .find(|r| r.host() == host)
            .with_context(|| {
                format!("registry {host} was not connected (a bug in cargo-scratchimg)")
            })
    }

    fn report_retries(&mut self, registry: &Registry) {
        for retry in registry.take_retries() {
            self.shell.warn(retry);
        }
    }

    /// A progress bar for uploading `blob`, or none when not on a terminal.
    fn bar(&self, bars: Option<&MultiProgress>, blob: &Blob, label: &str) -> Option<ProgressBar> {
        let bar = ProgressBar::new(blob.size())
            .with_style(
                ProgressStyle::with_template(
                    "{prefix:>12.green.bold} [{bar:24}] {bytes:>10}/{total_bytes:<10} {wide_msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            )
            .with_prefix("Uploading")
            .with_message(format!("{} {label}", short(blob.digest())));
        bars.map(|bars| bars.add(bar))
    }

    /// Reports what became of a blob, once all of them are in place.
    fn report(&mut self, blob: &Blob, label: &str, placed: &Placed, place: &str) {
        let digest = short(blob.digest());
        match placed {
            Placed::Existed => {
                self.existing += 1;
                self.shell.verbose("Exists", format!("{digest} in {place}"));
            }
            Placed::Mounted(from) => {
                self.mounted += 1;
                self.shell
                    .status("Mounted", format!("{digest} from {from}"));
            }
            Placed::Uploaded => {
                self.uploaded += 1;
                self.sent += blob.size();
                if !self.bars {
                    let size = human_size(blob.size());
                    self.shell
                        .status("Uploaded", format!("{digest} {size:>10}  {label}"));
                }
            }
        }
    }
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
    bar: Option<&ProgressBar>,
) -> Result<Placed> {
    let placed = try_place_blob(session, registry, mounts, blob, bar);
    if placed.is_err()
        && let Some(bar) = bar
    {
        bar.abandon();
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
    bar: Option<&ProgressBar>,
) -> Result<Placed> {
    let digest = blob.digest();
    let repository = session.repository();
    if session.has_blob(digest)? {
        bar.inspect(|b| b.finish_and_clear());
        return Ok(Placed::Existed);
    }
    let from = mounts.source(registry.host(), digest, repository);
    let first = session.start_upload(digest, from)?;
    if let (Mount::Mounted, Some(from)) = (&first, from) {
        bar.inspect(|b| b.finish_and_clear());
        return Ok(Placed::Mounted(format!("{}/{from}", registry.host())));
    }
    let progress = |sent| {
        if let Some(bar) = bar {
            bar.set_position(sent);
        }
    };
    session.upload(digest, blob.data(), first, &progress)?;
    bar.inspect(|b| b.finish());
    Ok(Placed::Uploaded)
}

impl Sink for RegistrySink<'_> {
    fn write(&mut self, artifact: &Artifact, tags: &[ImageRef]) -> Result<()> {
        let started = Instant::now();
        // One pass per repository: its blobs once, then the manifest under each of its tags.
        let mut repositories: Vec<(String, String)> = Vec::new();
        for tag in tags {
            let key = (tag.registry().to_string(), tag.repository().to_string());
            if !repositories.contains(&key) {
                repositories.push(key);
            }
        }
        let images = artifact.images();
        let base = images[0]
            .layers()
            .first()
            .map(|l| l.blob().digest().clone());
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
            let registry = self.registry(host)?;
            let session = registry.session(repository, &self.mounts.repositories(host));
            self.report_retries(registry);
            let session = session?;
            let bars = self
                .bars
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
            let blobs: Vec<(&Blob, &String)> = unique.iter().map(|(b, l)| (*b, l)).collect();
            let jobs: Vec<_> = blobs
                .iter()
                .map(|(blob, label)| (*blob, self.bar(bars.as_ref(), blob, label)))
                .collect();
            let mounts = &self.mounts;
            let session = &session;
            let placed: Vec<Result<Placed>> = std::thread::scope(|scope| {
                let handles: Vec<_> = jobs
                    .into_iter()
                    .map(|(blob, bar)| {
                        scope.spawn(move || {
                            place_blob(session, registry, mounts, blob, bar.as_ref())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            self.report_retries(registry);
            let place = format!("{host}/{repository}");
            for ((blob, label), placed) in blobs.into_iter().zip(placed) {
                let placed = placed?;
                self.report(blob, label, &placed, &place);
                // Every blob is in this repository now: later repositories of this run may
                // mount any of them; later runs remember only the base layer, shared by all.
                self.mounts.remember(host, blob.digest(), repository);
            }
            // An index's manifests go up by digest first; then what the tags name.
            if let Artifact::Index(_) = artifact {
                for image in images {
                    let manifest = image.manifest();
                    let media_type = manifest.descriptor().media_type().to_string();
                    let put = session.put_manifest(
                        manifest.digest().as_ref(),
                        &media_type,
                        manifest.data(),
                        manifest.digest(),
                    );
                    self.report_retries(registry);
                    put.with_context(|| {
                        format!(
                            "could not push the {} manifest to {host}/{repository}",
                            image.arch().platform()
                        )
                    })?;
                    self.shell.verbose(
                        "Pushed",
                        format!("{} manifest {}", image.arch().platform(), manifest.digest()),
                    );
                }
            }
            let manifest = artifact.manifest();
            let media_type = manifest.descriptor().media_type().to_string();
            for tag in tags
                .iter()
                .filter(|t| t.registry() == host && t.repository() == repository)
            {
                let put = session.put_manifest(
                    tag.tag(),
                    &media_type,
                    manifest.data(),
                    manifest.digest(),
                );
                self.report_retries(registry);
                put.with_context(|| format!("could not push the manifest of {tag}"))?;
                let pushed = format!("{tag}@{}", manifest.digest());
                self.shell.status("Pushed", &pushed);
                self.pushed.push(pushed);
            }
        }
        self.mounts.retain_only(base.as_ref());
        self.mounts.save();
        self.shell.status(
            "Pushed",
            format!(
                "{} tag{} in {:.3}s: {} blob{} uploaded ({}), {} mounted, {} already there",
                self.pushed.len(),
                if self.pushed.len() == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64(),
                self.uploaded,
                if self.uploaded == 1 { "" } else { "s" },
                human_size(self.sent),
                self.mounted,
                self.existing
            ),
        );
        Ok(())
    }
}
