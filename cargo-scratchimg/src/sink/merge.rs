//! Pushing an index of images from several places (`cargo scratchimg index`): blobs of images
//! read from files are uploaded, those of pushed images mounted from their repository (or
//! copied from another registry), each only when the repository lacks it; then every image
//! manifest by digest, then the index under its tag, so the tag never names what is missing.

use anyhow::{Context, Result};
use oci_spec::image::Descriptor;

use crate::image::{Blob, ImageRef};
use crate::registry::{Mount, Registry, Session};
use crate::report::Reporter;

/// The largest blob copied from one registry to another (it passes through memory): far more
/// than the layers of a static program.
const COPY_LIMIT: u64 = 512 * 1024 * 1024;

/// Where a blob of an index's image is.
pub(crate) enum BlobSource<'a> {
    /// Read from a file the tool wrote.
    Local(Blob),
    /// In a repository of a registry.
    Remote {
        descriptor: Descriptor,
        registry: &'a Registry,
        repository: String,
    },
}

impl BlobSource<'_> {
    pub(crate) fn digest(&self) -> &oci_spec::image::Digest {
        match self {
            BlobSource::Local(blob) => blob.digest(),
            BlobSource::Remote { descriptor, .. } => descriptor.digest(),
        }
    }
}

/// One image of the index: its manifest and where its config and layers are.
pub(crate) struct SourceImage<'a> {
    pub manifest: Blob,
    pub blobs: Vec<BlobSource<'a>>,
}

/// What a merged push did.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub uploaded: usize,
    pub mounted: usize,
    pub existing: usize,
}

/// Pushes `images`, then `index` under `tag`, through `registry` (connected).
pub(crate) fn push_index(
    registry: &Registry,
    tag: &ImageRef,
    images: &[SourceImage<'_>],
    index: &Blob,
    report: &dyn Reporter,
) -> Result<Merged> {
    let repository = tag.repository();
    let sources: Vec<String> = images
        .iter()
        .flat_map(|i| &i.blobs)
        .filter_map(|b| match b {
            BlobSource::Remote {
                registry: from,
                repository,
                ..
            } if from.host() == registry.host() => Some(repository.clone()),
            _ => None,
        })
        .collect();
    let session = registry.session(repository, &crate::util::unique(sources), report)?;
    let mut merged = Merged::default();
    let mut placed: Vec<oci_spec::image::Digest> = Vec::new();
    for image in images {
        for blob in &image.blobs {
            if placed.contains(blob.digest()) {
                continue;
            }
            place(&session, registry, blob, &mut merged, report).with_context(|| {
                format!(
                    "could not put blob {} into {}/{repository}",
                    blob.digest(),
                    registry.host()
                )
            })?;
            placed.push(blob.digest().clone());
        }
        let manifest = &image.manifest;
        session
            .put(manifest.digest().as_ref(), manifest)
            .with_context(|| format!("could not push manifest {}", manifest.digest()))?;
    }
    session
        .put(tag.tag(), index)
        .with_context(|| format!("could not push the index to {tag}"))?;
    Ok(merged)
}

/// Makes sure the session's repository has `blob`.
fn place(
    session: &Session<'_>,
    registry: &Registry,
    blob: &BlobSource<'_>,
    merged: &mut Merged,
    report: &dyn Reporter,
) -> Result<()> {
    let digest = blob.digest();
    if session.has_blob(digest)? {
        merged.existing += 1;
        return Ok(());
    }
    let mut first = None;
    // A file's blob is read from it as it goes up (as often as the upload is tried); another
    // registry's is fetched into memory, checked against its digest, first.
    let fetched: Blob;
    let data = match blob {
        BlobSource::Local(blob) => blob,
        BlobSource::Remote {
            descriptor,
            registry: from,
            repository,
        } => {
            // In the same registry a mount links it without a byte sent.
            if from.host() == registry.host() {
                let mount = session.start_upload(digest, Some(repository))?;
                if mount == Mount::Mounted {
                    merged.mounted += 1;
                    report.verbose("Mounted", &|| format!("{digest} from {repository}"));
                    return Ok(());
                }
                first = Some(mount);
            }
            // Copied through memory: bounded, whatever the source manifest says.
            anyhow::ensure!(
                descriptor.size() <= COPY_LIMIT,
                "blob {digest} of {} is {} bytes, more than the {COPY_LIMIT} cargo scratchimg copies between registries\nhelp: push that image to {} first: blobs in the same registry are mounted, not copied",
                from.host(),
                descriptor.size(),
                registry.host()
            );
            let pull = from.read_session(repository, report)?;
            let bytes = pull.get_blob(digest.as_ref(), descriptor.size())?;
            fetched = Blob::new(descriptor.media_type().clone(), bytes);
            &fetched
        }
    };
    let first = match first {
        Some(mount) => mount,
        None => session.start_upload(digest, None)?,
    };
    session.upload(digest, data.size(), &|| data.reader(), first, &|_| {})?;
    merged.uploaded += 1;
    report.verbose("Uploaded", &|| format!("{digest}"));
    Ok(())
}
