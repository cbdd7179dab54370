//! The files of an OCI image layout, and Docker's `manifest.json` beside them.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType, OciLayoutBuilder};
use serde::Serialize;

use crate::attest::Referrer;
use crate::image::{Artifact, Content, Image, ImageRef, json};

/// containerd's and Docker's name for the full reference of an index entry.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation of an index entry that refers to another, naming its subject.
const CONTAINERD_SUBJECT: &str = "io.containerd.manifest.subject";

/// `oci-layout`, `index.json` and `blobs/sha256/…`, as (path, contents) pairs; layers are read
/// when written. The index has one entry per tag, annotated the way `docker save` does since
/// Docker 25, pointing at the image manifest or at the image index: an index is named as an
/// image is, and containerd-backed importers name and unpack it as a pull would. Blobs that platforms share
/// are stored once. With `referrers` (attestations), each one's manifest and blobs are stored
/// too, and listed in `index.json` with its `artifactType`, as OCI 1.1 layouts hold artifacts
/// next to images. Tools that read a layout without naming a tag (`skopeo … oci-archive:FILE`)
/// want one entry, so they then need the tag (`oci-archive:FILE:TAG`).
pub(crate) fn oci_layout(
    artifact: &Artifact,
    tags: &[ImageRef],
    referrers: &[Referrer],
) -> Result<Vec<(String, Content)>> {
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()?;
    let manifests = tags
        .iter()
        .map(|tag| {
            let mut descriptor: Descriptor = artifact.manifest().descriptor().clone();
            descriptor.set_annotations(Some(HashMap::from([
                (CONTAINERD_NAME.to_string(), tag.qualified()),
                (REF_NAME.to_string(), tag.tag().to_string()),
            ])));
            descriptor
        })
        .collect::<Vec<_>>();
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()?;
    let mut index = serde_json::to_value(&index)?;
    if let Some(entries) = index["manifests"].as_array_mut() {
        entries.extend(referrers.iter().map(|referrer| {
            // containerd's mark of a referrer, as its own exporter writes it: importers
            // (`ctr images import`, Docker 29's `docker load`) make no image of the entry.
            let mut entry = referrer.descriptor();
            entry["annotations"][CONTAINERD_SUBJECT] = referrer.subject.to_string().into();
            entry
        }));
    }
    let mut blobs: BTreeMap<String, Content> = BTreeMap::new();
    blobs.insert(
        artifact.manifest().layout_path(),
        artifact.manifest().content().clone(),
    );
    let images = artifact
        .images()
        .iter()
        .flat_map(|image| std::iter::once(image.manifest()).chain(image.blobs()));
    let attestations = referrers
        .iter()
        .flat_map(|referrer| std::iter::once(&referrer.manifest).chain(&referrer.blobs));
    for blob in images.chain(attestations) {
        blobs
            .entry(blob.layout_path())
            .or_insert_with(|| blob.content().clone());
    }
    let mut files = vec![
        ("oci-layout".to_string(), json::to_vec(&layout)?.into()),
        ("index.json".to_string(), json::to_vec(&index)?.into()),
    ];
    files.extend(blobs);
    Ok(files)
}

/// An entry of Docker's `manifest.json`, which `docker load` reads (it ignores the OCI index).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerManifest {
    pub config: String,
    pub repo_tags: Vec<String>,
    pub layers: Vec<String>,
}

/// `manifest.json`, pointing into the same `blobs/` as the OCI layout, so no blob is stored twice.
pub(crate) fn docker_manifest(image: &Image, tags: &[ImageRef]) -> Result<Vec<u8>> {
    let entry = DockerManifest {
        config: image.config().layout_path(),
        repo_tags: tags.iter().map(ImageRef::familiar).collect(),
        layers: image
            .layers()
            .iter()
            .map(|l| l.blob().layout_path())
            .collect(),
    };
    Ok(json::to_vec(&[entry])?)
}
