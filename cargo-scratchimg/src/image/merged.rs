//! An index of images built elsewhere (`cargo scratchimg index`): each image known by its
//! manifest's descriptor and the platform its config names, not by its layers.

use anyhow::{Context, Result, bail};
use oci_spec::image::{Descriptor, ImageConfiguration, Platform};

use super::Blob;

/// One image of a merged index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// The image manifest's media type, digest and size.
    pub manifest: Descriptor,
    pub platform: Platform,
}

/// `linux/arm64/v8`: a platform as `--platform` and the summaries write it.
pub(crate) fn platform_name(platform: &Platform) -> String {
    let mut name = format!("{}/{}", platform.os(), platform.architecture());
    if let Some(variant) = platform.variant() {
        name.push('/');
        name.push_str(variant);
    }
    name
}

/// The platform an image config names: `os`, `architecture` and `variant`.
pub(crate) fn platform_of(config: &[u8]) -> Result<Platform> {
    let config: ImageConfiguration =
        serde_json::from_slice(config).context("the config is not an OCI image config")?;
    let mut platform = Platform::default();
    platform.set_os(config.os().clone());
    platform.set_architecture(config.architecture().clone());
    platform.set_variant(config.variant().clone());
    Ok(platform)
}

/// The index document of `entries`, sorted by platform so that the same images give the same
/// digest whatever order they were named in; two entries of one platform are refused.
pub(crate) fn merged_index(entries: &[IndexEntry]) -> Result<Blob> {
    let mut sorted: Vec<(String, &IndexEntry)> = entries
        .iter()
        .map(|e| (platform_name(&e.platform), e))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        bail!(
            "two images are for {}: {} and {}\nhelp: give one image per platform",
            pair[0].0,
            pair[0].1.manifest.digest(),
            pair[1].1.manifest.digest()
        );
    }
    if sorted.is_empty() {
        bail!("an index needs at least one image");
    }
    let manifests = sorted
        .into_iter()
        .map(|(_, entry)| {
            // The same descriptor the tool's own indexes have: media type, digest, size, platform.
            let mut descriptor = Descriptor::new(
                entry.manifest.media_type().clone(),
                entry.manifest.size(),
                entry.manifest.digest().clone(),
            );
            descriptor.set_platform(Some(entry.platform.clone()));
            descriptor
        })
        .collect::<Vec<_>>();
    super::index::index_document(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Index;
    use crate::image::index::tests::image;
    use crate::target::Arch;

    fn entry(image: &crate::image::Image) -> IndexEntry {
        IndexEntry {
            manifest: image.manifest().descriptor().clone(),
            platform: platform_of(image.config().data()).unwrap(),
        }
    }

    #[test]
    fn a_merged_index_is_the_one_a_build_of_both_makes() {
        let (amd, arm) = (image(Arch::Amd64, b"x86"), image(Arch::Arm64, b"arm"));
        let built = Index::new(vec![amd.clone(), arm.clone()]).unwrap();
        let merged = merged_index(&[entry(&arm), entry(&amd)]).unwrap();
        assert_eq!(
            merged.digest(),
            built.manifest().digest(),
            "same bytes, whatever the order"
        );
        assert_eq!(platform_name(&entry(&arm).platform), "linux/arm64/v8");
        let twice = merged_index(&[entry(&amd), entry(&image(Arch::Amd64, b"other"))]);
        assert!(
            twice
                .unwrap_err()
                .to_string()
                .starts_with("two images are for linux/amd64: "),
        );
    }
}
