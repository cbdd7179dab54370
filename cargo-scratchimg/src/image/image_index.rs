//! Multi-platform images: an OCI image index of single-platform [`Image`]s.

use anyhow::{Result, ensure};
use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType, Os, PlatformBuilder};

use super::{Blob, Image, json, oci_arch};

/// An image index: one image per platform, and the index document naming them.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    images: Vec<Image>,
    manifest: Blob,
}

impl Index {
    /// Indexes `images`, one per architecture, in the order given.
    pub(crate) fn new(images: Vec<Image>) -> Result<Index> {
        ensure!(!images.is_empty(), "an index needs at least one image");
        let mut arches: Vec<_> = images.iter().map(Image::arch).collect();
        arches.sort();
        arches.dedup();
        ensure!(
            arches.len() == images.len(),
            "an index has one image per platform"
        );
        let manifests = images
            .iter()
            .map(|image| {
                let mut platform = PlatformBuilder::default()
                    .architecture(oci_arch(image.arch()))
                    .os(Os::Linux)
                    .build()?;
                platform.set_variant(image.arch().oci_variant().map(str::to_string));
                let mut descriptor: Descriptor = image.manifest().descriptor().clone();
                descriptor.set_platform(Some(platform));
                Ok(descriptor)
            })
            .collect::<Result<Vec<_>>>()?;
        let manifest = index_document(manifests)?;
        Ok(Index { images, manifest })
    }

    pub(crate) fn images(&self) -> &[Image] {
        &self.images
    }

    /// The index document: what tags point at.
    pub(crate) fn manifest(&self) -> &Blob {
        &self.manifest
    }
}

/// The index document that lists `manifests`: this tool's, and a merged one.
pub(super) fn index_document(manifests: Vec<Descriptor>) -> Result<Blob> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()?;
    Ok(Blob::new(MediaType::ImageIndex, json::to_vec(&index)?))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::image::{ImageBuilder, LayerBuilder, Owner};
    use crate::target::Arch;

    /// An image of one file, `content`, for `arch`.
    pub(in crate::image) fn image(arch: Arch, content: &'static [u8]) -> Image {
        let mut files = LayerBuilder::new(0);
        files.file("app/x", content, 0o755, Owner::ROOT).unwrap();
        ImageBuilder::new(arch, jiff::Timestamp::UNIX_EPOCH)
            .layer(files.build("x").unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn entries_carry_their_platform() {
        let index =
            Index::new(vec![image(Arch::Amd64, b"x86"), image(Arch::Arm64, b"arm")]).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(index.manifest().data()).unwrap();
        assert_eq!(doc["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(
            doc["manifests"][0]["platform"],
            serde_json::json!({"architecture": "amd64", "os": "linux"})
        );
        assert_eq!(
            doc["manifests"][1]["platform"],
            serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
        );
        assert_eq!(
            doc["manifests"][1]["digest"],
            index.images()[1].digest().to_string()
        );
        let again =
            Index::new(vec![image(Arch::Amd64, b"x86"), image(Arch::Arm64, b"arm")]).unwrap();
        assert_eq!(index.manifest().digest(), again.manifest().digest());
    }

    #[test]
    fn one_image_per_platform() {
        assert!(Index::new(vec![image(Arch::Amd64, b"a"), image(Arch::Amd64, b"b")]).is_err());
        assert!(Index::new(Vec::new()).is_err());
    }
}

/// What tags point at: one image, or an index of one image per platform.
// One or two exist per run, so boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Artifact {
    Image(Image),
    Index(Index),
}

impl Artifact {
    /// The image manifest or the index document.
    pub(crate) fn manifest(&self) -> &Blob {
        match self {
            Artifact::Image(image) => image.manifest(),
            Artifact::Index(index) => index.manifest(),
        }
    }

    pub(crate) fn digest(&self) -> &oci_spec::image::Digest {
        self.manifest().digest()
    }

    pub(crate) fn images(&self) -> &[Image] {
        match self {
            Artifact::Image(image) => std::slice::from_ref(image),
            Artifact::Index(index) => index.images(),
        }
    }

    /// The image a daemon on `arch` runs: that platform's, or a single image whatever its platform.
    pub(crate) fn image_for(&self, arch: Option<crate::target::Arch>) -> Option<&Image> {
        match self {
            Artifact::Image(image) => Some(image),
            Artifact::Index(index) => index.images().iter().find(|i| Some(i.arch()) == arch),
        }
    }
}
