//! An image in a local tar or OCI directory, read and checked blob by blob: a source of
//! `cargo scratchimg index`, and how the tests read back what the file sinks wrote (they run
//! [`crate::image::validate`] on images read from disk, not only on the builder's values).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::image::{Artifact, Blob, Image, Index};

/// The artifact an archive at `path` holds, read back and checked blob by blob.
pub(crate) fn read_archive(path: &Path) -> Result<Artifact> {
    let file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut files = std::collections::BTreeMap::new();
    let mut tar = tar::Archive::new(file);
    for entry in tar
        .entries()
        .with_context(|| format!("{} is not a tar", path.display()))?
    {
        let mut entry = entry.with_context(|| format!("{} is not a tar", path.display()))?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        files.insert(name, data);
    }
    read_layout(&|name| match files.get(name) {
        Some(data) => Ok(data.clone()),
        None => bail!("{} has no {name}", path.display()),
    })
}

/// The artifact the layout at `path` holds, read back and checked blob by blob.
pub(crate) fn read_oci_dir(path: &Path) -> Result<Artifact> {
    read_layout(&|name| {
        let file = path.join(name);
        std::fs::read(&file).with_context(|| format!("could not read {}", file.display()))
    })
}

/// The artifact an OCI layout holds, read through `read` (which gives a file's bytes by its
/// path in the layout): every blob is checked against its digest,
/// and an index must be the one its images make.
pub(crate) fn read_layout(read: &dyn Fn(&str) -> Result<Vec<u8>>) -> Result<Artifact> {
    let index: ImageIndex = serde_json::from_slice(&read("index.json")?)
        .context("index.json is not an OCI image index")?;
    // Attestations are listed beside the image, with their artifactType.
    let images: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| d.artifact_type().is_none())
        .collect();
    let Some(top) = images.first().copied() else {
        bail!("index.json names no image");
    };
    ensure!(
        images.iter().all(|d| d.digest() == top.digest()),
        "index.json names several artifacts"
    );
    let blob = |descriptor: &Descriptor| -> Result<Blob> {
        let digest = descriptor.digest();
        let path = crate::image::layout_path(digest);
        let blob = Blob::new(descriptor.media_type().clone(), read(&path)?);
        ensure!(
            blob.digest() == digest && blob.size() == descriptor.size(),
            "{path} does not match its digest and size"
        );
        Ok(blob)
    };
    let image = |descriptor: &Descriptor| -> Result<Image> {
        let manifest_blob = blob(descriptor)?;
        let manifest: ImageManifest = serde_json::from_slice(manifest_blob.data())
            .with_context(|| format!("{} is not an image manifest", descriptor.digest()))?;
        let layers = manifest.layers().iter().map(blob).collect::<Result<_>>()?;
        Image::from_blobs(manifest_blob, blob(manifest.config())?, layers)
    };
    match top.media_type() {
        MediaType::ImageManifest => Ok(Artifact::Image(image(top)?)),
        MediaType::ImageIndex => {
            let stored = blob(top)?;
            let nested: ImageIndex = serde_json::from_slice(stored.data())
                .with_context(|| format!("{} is not an image index", top.digest()))?;
            let images = nested
                .manifests()
                .iter()
                .map(image)
                .collect::<Result<_>>()?;
            let index = Index::new(images)?;
            ensure!(
                index.manifest().digest() == stored.digest(),
                "the index {} is not the one its images make",
                stored.digest()
            );
            Ok(Artifact::Index(index))
        }
        other => bail!("index.json names a {other}, not an image or index"),
    }
}
