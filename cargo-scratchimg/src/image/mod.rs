//! OCI images as values: layers go in, an immutable [`Image`] with every digest computed comes
//! out. Nothing here touches the filesystem; sinks write images.

mod blob;
mod compress;
mod content;
mod image_index;
pub(crate) mod json;
mod layer;
mod merged;
mod reference;
mod tar_stream;
mod validate;

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use oci_spec::image::{
    Config, ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

pub(crate) use blob::{Blob, digest_of, layout_path, sha256, short_digest};
pub(crate) use compress::{Algorithm, Compression, decompressor};
pub(crate) use content::{Compared, Content, FilePart, HashReader, HashWriter, Stream};
pub(crate) use image_index::{Artifact, Index};
pub(crate) use layer::{EntryKind, Layer, LayerBuilder, Owner, Xattrs};
pub(crate) use merged::{
    IndexEntry, checked_platform, merged_index, platform_name, platform_of, shared_platform,
};
pub(crate) use reference::{ImageRef, Repository, split_tag};
pub(crate) use tar_stream::Tar;
pub(crate) use validate::{
    DOCUMENT_LIMIT, INDEX_LIMIT, LAYERS_LIMIT, check_layer, parse, streamed_digest, validate,
};

use crate::target::Arch;

/// What `history[].created_by` says made each layer.
pub(crate) const CREATED_BY: &str = concat!("cargo-scratchimg ", env!("CARGO_PKG_VERSION"));

/// The runtime settings of an image: what the OCI config calls `config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=VALUE` pairs, in the order given.
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    /// `8080/tcp`-style.
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

/// Assembles an image from layers and settings.
#[derive(Debug, Clone)]
pub(crate) struct ImageBuilder {
    arch: Arch,
    created: jiff::Timestamp,
    run: RunConfig,
    annotations: BTreeMap<String, String>,
    layers: Vec<Layer>,
}

/// A complete single-platform image: its layers, config and manifest, each with its digest.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    arch: Arch,
    layers: Vec<Layer>,
    config: Blob,
    manifest: Blob,
}

impl ImageBuilder {
    /// `created` is the one timestamp of the image: config, history and layer mtimes share it.
    pub(crate) fn new(arch: Arch, created: jiff::Timestamp) -> ImageBuilder {
        ImageBuilder {
            arch,
            created,
            run: RunConfig::default(),
            annotations: BTreeMap::new(),
            layers: Vec::new(),
        }
    }

    pub(crate) fn run_config(mut self, run: RunConfig) -> Self {
        self.run = run;
        self
    }

    /// Annotations of the manifest.
    pub(crate) fn annotations(mut self, annotations: BTreeMap<String, String>) -> Self {
        self.annotations = annotations;
        self
    }

    /// Adds a layer on top of the ones before it.
    pub(crate) fn layer(mut self, layer: Layer) -> Self {
        self.layers.push(layer);
        self
    }

    pub(crate) fn build(self) -> Result<Image> {
        let created = self.created.to_string();
        let history = self
            .layers
            .iter()
            .map(|layer| {
                HistoryBuilder::default()
                    .created(created.clone())
                    .created_by(CREATED_BY)
                    .comment(layer.comment())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rootfs = RootFsBuilder::default()
            .typ("layers")
            .diff_ids(
                self.layers
                    .iter()
                    .map(|l| l.diff_id().to_string())
                    .collect::<Vec<_>>(),
            )
            .build()?;
        let mut configuration = ImageConfigurationBuilder::default()
            .created(created)
            .architecture(oci_arch(self.arch))
            .os(Os::Linux)
            .config(self.container_config()?)
            .rootfs(rootfs)
            .history(history)
            .build()?;
        configuration.set_variant(self.arch.oci_variant().map(str::to_string));
        let config = Blob::new(MediaType::ImageConfig, json::to_vec(&configuration)?);

        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config.descriptor().clone())
            .layers(
                self.layers
                    .iter()
                    .map(|l| l.blob().descriptor().clone())
                    .collect::<Vec<_>>(),
            )
            .build()?;
        let mut manifest = manifest;
        if !self.annotations.is_empty() {
            manifest.set_annotations(Some(self.annotations.into_iter().collect()));
        }
        let manifest = Blob::new(MediaType::ImageManifest, json::to_vec(&manifest)?);
        Ok(Image {
            arch: self.arch,
            layers: self.layers,
            config,
            manifest,
        })
    }

    fn container_config(&self) -> Result<Config> {
        let run = &self.run;
        let mut config = ConfigBuilder::default().build()?;
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let some_str = |s: &String| (!s.is_empty()).then(|| s.clone());
        config.set_entrypoint(some(&run.entrypoint));
        config.set_cmd(some(&run.cmd));
        config.set_env(some(&run.env));
        config.set_user(some_str(&run.user));
        config.set_working_dir(some_str(&run.working_dir));
        config.set_exposed_ports(some(&run.exposed_ports));
        config.set_volumes(some(&run.volumes));
        if !run.labels.is_empty() {
            config.set_labels(Some(run.labels.clone().into_iter().collect()));
        }
        config.set_stop_signal(run.stop_signal.clone());
        Ok(config)
    }
}

fn oci_arch(arch: Arch) -> oci_spec::image::Arch {
    match arch {
        Arch::Amd64 => oci_spec::image::Arch::Amd64,
        Arch::Arm64 => oci_spec::image::Arch::ARM64,
    }
}

impl Image {
    pub(crate) fn arch(&self) -> Arch {
        self.arch
    }

    /// The manifest digest: the image's identity in registries and OCI layouts.
    pub(crate) fn digest(&self) -> &oci_spec::image::Digest {
        self.manifest.digest()
    }

    pub(crate) fn manifest(&self) -> &Blob {
        &self.manifest
    }

    pub(crate) fn config(&self) -> &Blob {
        &self.config
    }

    pub(crate) fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Every blob of the image: config first, then layers bottom to top.
    pub(crate) fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter().map(Layer::blob))
    }

    /// Compressed size of the config and every layer: what a pull downloads.
    pub(crate) fn compressed_size(&self) -> u64 {
        self.blobs().map(Blob::size).sum()
    }
}

impl Image {
    /// An image from the blobs an OCI layout or registry holds: its manifest, config and
    /// layers, in the manifest's order. Architecture, diff_ids and comments come from the
    /// config; [`validate`] checks that the blobs agree.
    pub(crate) fn from_blobs(manifest: Blob, config: Blob, layers: Vec<Blob>) -> Result<Image> {
        let parsed: ImageConfiguration = parse(config.data(), "the config")?;
        let arch = Arch::ALL
            .into_iter()
            .find(|a| &oci_arch(*a) == parsed.architecture())
            .with_context(|| {
                format!(
                    "the image is for {}, which cargo-scratchimg does not build",
                    crate::text::one_line(&parsed.architecture().to_string(), 100)
                )
            })?;
        let diff_ids = parsed.rootfs().diff_ids();
        let comments: Vec<String> = parsed
            .history()
            .iter()
            .flatten()
            .filter(|h| !h.empty_layer().unwrap_or(false))
            .map(|h| h.comment().clone().unwrap_or_default())
            .collect();
        ensure!(
            diff_ids.len() == layers.len(),
            "the config lists {} diff_ids for {} layers",
            diff_ids.len(),
            layers.len()
        );
        let layers = layers
            .into_iter()
            .zip(diff_ids)
            .enumerate()
            .map(|(i, (blob, diff_id))| {
                let diff_id: oci_spec::image::Digest = diff_id.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "diff_id `{}` is not a digest",
                        crate::text::one_line(diff_id, 80)
                    )
                })?;
                let comment = comments.get(i).cloned().unwrap_or_default();
                Ok(Layer::from_blob(blob, diff_id, comment))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Image {
            arch,
            layers,
            config,
            manifest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str) -> Layer {
        let mut b = LayerBuilder::new(0);
        b.file(name, name.as_bytes().to_vec(), 0o644, Owner::ROOT)
            .unwrap();
        b.build(format!("holds {name}")).unwrap()
    }

    fn image() -> Image {
        ImageBuilder::new(
            Arch::Arm64,
            jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        )
        .run_config(RunConfig {
            entrypoint: vec!["/app/hello".into()],
            env: vec!["PATH=/app".into()],
            user: "65532:65532".into(),
            working_dir: "/home/nonroot".into(),
            ..RunConfig::default()
        })
        .layer(layer("base"))
        .layer(layer("app/hello"))
        .build()
        .unwrap()
    }

    #[test]
    fn built_images_validate() {
        validate(&image()).unwrap();
    }

    #[test]
    fn config_says_what_the_image_is() {
        let image = image();
        let config: serde_json::Value = serde_json::from_slice(image.config().data()).unwrap();
        assert_eq!(config["architecture"], "arm64");
        assert_eq!(config["variant"], "v8");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["config"]["Entrypoint"][0], "/app/hello");
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["WorkingDir"], "/home/nonroot");
        assert!(config["config"].get("Cmd").is_none());
        assert_eq!(config["history"][1]["comment"], "holds app/hello");
        assert_eq!(config["history"][1]["created_by"], CREATED_BY);
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            image.layers()[0].diff_id().to_string()
        );
    }

    #[test]
    fn same_inputs_same_digest() {
        assert_eq!(image().digest(), image().digest());
        let later = ImageBuilder::new(Arch::Arm64, jiff::Timestamp::from_second(1).unwrap())
            .layer(layer("base"))
            .build()
            .unwrap();
        assert_ne!(later.digest(), image().digest());
    }

    #[test]
    fn validate_catches_a_corrupt_layer() {
        let mut image = image();
        let bad = layer("other");
        image.layers[1] = Layer::clone(&bad);
        assert!(validate(&image).is_err());
    }
}
