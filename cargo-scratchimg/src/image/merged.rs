//! An index of images built elsewhere (`cargo scratchimg index`): each image known by its
//! manifest's descriptor and the platform its config names, not by its layers.

use anyhow::{Result, bail};
use oci_spec::image::{Descriptor, ImageConfiguration, Platform};

use super::{Blob, parse};
use crate::text::one_line;

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

/// The platform an image config names: `os`, `architecture` and `variant`, each checked.
pub(crate) fn platform_of(config: &[u8]) -> Result<Platform> {
    let config: ImageConfiguration = parse(config, "the config")?;
    let mut platform = Platform::default();
    platform.set_os(config.os().clone());
    platform.set_architecture(config.architecture().clone());
    platform.set_variant(config.variant().clone());
    checked_platform(&platform)
}

/// `os`, `architecture` and `variant` of `platform` (what an index lists), each refused unless
/// it is of `[a-z0-9._-]`: they are copied into the index pushed and printed, and the registry
/// or file they came from could say anything.
pub(crate) fn checked_platform(platform: &Platform) -> Result<Platform> {
    let fields = [
        ("os", Some(platform.os().to_string())),
        ("architecture", Some(platform.architecture().to_string())),
        ("variant", platform.variant().clone()),
    ];
    for (field, value) in fields {
        let Some(value) = value else { continue };
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if value.is_empty() || !value.chars().all(allowed) || value.len() > 32 {
            bail!(
                "the platform's {field} \"{}\" is not a platform name\nhelp: platform names are short, of lowercase letters, digits, `.`, `_` and `-`, as linux/arm64/v8",
                one_line(&value, 40)
            );
        }
    }
    let mut checked = Platform::default();
    checked.set_os(platform.os().clone());
    checked.set_architecture(platform.architecture().clone());
    checked.set_variant(platform.variant().clone());
    Ok(checked)
}

/// Sorts `named` by platform name; the first platform two of them share, and those two.
pub(crate) fn shared_platform<T>(named: &mut [(String, T)]) -> Option<(String, &T, &T)> {
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
        .windows(2)
        .position(|pair| pair[0].0 == pair[1].0)
        .map(|i| (named[i].0.clone(), &named[i].1, &named[i + 1].1))
}

/// The index document of `entries`, sorted by platform so that the same images give the same
/// digest whatever order they were named in; two entries of one platform are refused.
pub(crate) fn merged_index(entries: &[IndexEntry]) -> Result<Blob> {
    let mut sorted: Vec<(String, &IndexEntry)> = entries
        .iter()
        .map(|e| (platform_name(&e.platform), e))
        .collect();
    if let Some((platform, a, b)) = shared_platform(&mut sorted) {
        bail!(
            "two images are for {platform}: {} and {}\nhelp: give one image per platform",
            a.manifest.digest(),
            b.manifest.digest()
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
    super::image_index::index_document(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Index;
    use crate::image::image_index::tests::image;
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

    #[test]
    fn platform_names_are_refused_unless_plain() {
        let config = |arch: &str| {
            serde_json::to_vec(&serde_json::json!({
                "architecture": arch, "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []}
            }))
            .unwrap()
        };
        assert_eq!(
            platform_name(&platform_of(&config("riscv64")).unwrap()),
            "linux/riscv64"
        );
        let error = platform_of(&config("amd64\u{1b}]0;x\u{7}\nhelp: run me")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the platform's architecture \"amd64 help: run me\" is not a platform name\nhelp: platform names are short, of lowercase letters, digits, `.`, `_` and `-`, as linux/arm64/v8"
        );
        assert!(platform_of(&config("AMD64")).is_err());
        assert!(platform_of(&config("")).is_err());
    }
}
