//! Images checked from their bytes alone, before they are trusted or republished: the ones
//! this tool builds (a bug would show), and the ones `index` reads from files someone gave it.
//! What came from elsewhere is kept within the bounds registries keep, its JSON parsed with
//! errors that quote nothing of it unclean, and each layer read once and found to be what its
//! descriptor, its media type and the config's `diff_ids` say.

use std::io::{self, BufRead, Read};

use anyhow::{Context, Result, bail, ensure};
use oci_spec::image::{Digest, ImageConfiguration, ImageManifest, MediaType};
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use super::{Blob, HashWriter, Image, decompressor, digest_of};
use crate::text::one_line;

/// Manifests, indexes and configs: 4 MiB, what registries themselves allow for manifests.
pub(crate) const DOCUMENT_LIMIT: u64 = 4 * 1024 * 1024;
/// Layers an image may have: Docker stacks no more than 125 (overlay2's depth).
pub(crate) const LAYERS_LIMIT: usize = 128;
/// Images an index may list: one per platform, and there are few.
pub(crate) const INDEX_LIMIT: usize = 16;
/// What one layer may decompress to: many times a static program.
const TAR_LIMIT: u64 = 4 << 30;

/// `bytes`, a JSON document from elsewhere, as a `T`; `what` names it in the error, which
/// keeps serde's words on one clean line (they may quote the document).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|error| {
        anyhow::anyhow!("{what} is not valid: {}", one_line(&error.to_string(), 200))
    })
}

/// Checks an image's internal consistency from its bytes alone: the manifest names the config
/// and layer blobs by their real digests and sizes, each layer is what its media type says and
/// `rootfs.diff_ids` are the digests of the decompressed layers.
pub(crate) fn validate(image: &Image) -> Result<()> {
    let manifest: ImageManifest = parse(image.manifest().data(), "the manifest")?;
    let config: ImageConfiguration = parse(image.config().data(), "the config")?;
    ensure!(
        manifest.config() == image.config().descriptor(),
        "manifest names another config"
    );
    ensure!(
        &super::sha256(image.config().data()) == image.config().digest(),
        "config digest is wrong"
    );
    ensure!(
        manifest.layers().len() == image.layers().len()
            && config.rootfs().diff_ids().len() == image.layers().len(),
        "manifest, config and image disagree on the number of layers"
    );
    for ((layer, descriptor), diff_id) in image
        .layers()
        .iter()
        .zip(manifest.layers())
        .zip(config.rootfs().diff_ids())
    {
        ensure!(
            layer.blob().descriptor() == descriptor,
            "layer {} is not the one the manifest names",
            descriptor.digest()
        );
        let diff_id: Digest = diff_id
            .parse()
            .map_err(|_| anyhow::anyhow!("diff_id `{}` is not a digest", one_line(diff_id, 80)))?;
        check_layer(layer.blob(), &diff_id)?;
    }
    ensure!(
        config.history().as_ref().map_or(0, |h| h.len()) == image.layers().len(),
        "history has one entry per layer"
    );
    Ok(())
}

/// Reads a layer blob once: its bytes must be its descriptor's (digest and size), be what its
/// media type says (a gzip labelled zstd, or a compressed tar labelled plain, is refused), and
/// decompress whole, with nothing after, to bytes whose digest is `diff_id`.
pub(crate) fn check_layer(blob: &Blob, diff_id: &Digest) -> Result<()> {
    let digest = blob.digest();
    let media_type = blob.media_type();
    let mut counted = Counted::new(blob.reader()?);
    let unpacked = {
        let mut input = io::BufReader::with_capacity(1 << 20, &mut counted);
        let head = input
            .fill_buf()
            .with_context(|| format!("could not read layer {digest}"))?;
        let (holds, says) = (format_of(head), format_of_type(media_type)?);
        if holds != says {
            bail!(
                "layer {digest} is labelled {} but holds {holds} data\nhelp: give an image as cargo scratchimg wrote it; this one was changed",
                one_line(media_type.as_ref(), 100)
            );
        }
        let mut unpack = || -> io::Result<(Digest, u64, u64)> {
            let tar = decompressor(media_type, Box::new(&mut input))?;
            let mut hasher = Sha256::new();
            let size = io::copy(&mut tar.take(TAR_LIMIT + 1), &mut HashWriter(&mut hasher))?;
            // A compressed stream ends where its data does; what follows would be unchecked.
            let after = io::copy(&mut input, &mut io::sink())?;
            Ok((digest_of(hasher.finalize()), size, after))
        };
        unpack().with_context(|| format!("layer {digest} does not decompress"))?
    };
    let (tar_digest, tar_size, after) = unpacked;
    ensure!(
        tar_size <= TAR_LIMIT,
        "layer {digest} decompresses to more than {} GiB",
        TAR_LIMIT >> 30
    );
    ensure!(
        after == 0,
        "layer {digest} has {after} bytes after its compressed data"
    );
    let (read_digest, size) = counted.finish();
    ensure!(
        &read_digest == digest && size == blob.size(),
        "layer {digest} does not match its digest and size"
    );
    ensure!(
        &tar_digest == diff_id,
        "diff_id {diff_id} is not the digest of its layer {digest}"
    );
    Ok(())
}

/// What a blob holds, by its first bytes.
fn format_of(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else if head.starts_with(b"BZh") {
        "bzip2"
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz"
    } else {
        "tar"
    }
}

/// What a layer of `media_type` holds.
fn format_of_type(media_type: &MediaType) -> Result<&'static str> {
    Ok(match media_type {
        MediaType::ImageLayerGzip => "gzip",
        MediaType::ImageLayerZstd => "zstd",
        MediaType::ImageLayer => "tar",
        other => bail!(
            "{} is not a layer cargo-scratchimg reads",
            one_line(other.as_ref(), 100)
        ),
    })
}

/// Hashes and counts what is read through it.
struct Counted<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Counted<R> {
    fn new(inner: R) -> Counted<R> {
        Counted {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (Digest, u64) {
        (digest_of(self.hasher.finalize()), self.size)
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// The digest and size of what `reader` gives.
pub(crate) fn streamed_digest(mut reader: impl io::Read) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let size = io::copy(&mut reader, &mut HashWriter(&mut hasher))?;
    Ok((digest_of(hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Algorithm, Compression, Layer, LayerBuilder, Owner};

    fn layer(compression: Option<Algorithm>) -> Layer {
        let mut builder = LayerBuilder::new(0);
        builder
            .file("app/x", &b"x"[..], 0o755, Owner::ROOT)
            .unwrap();
        let Some(algorithm) = compression else {
            return builder.uncompressed("x").unwrap();
        };
        let compression = Compression::smallest(algorithm);
        let mut bytes = Vec::new();
        let packed = builder
            .finish()
            .unwrap()
            .compress(compression, 1, &mut bytes)
            .unwrap();
        let blob = Blob::with_digest(compression.media_type(), packed.digest, bytes.into());
        Layer::from_blob(blob, packed.diff_id, "x")
    }

    /// A blob of `bytes` labelled `media_type`.
    fn blob(media_type: MediaType, bytes: Vec<u8>) -> Blob {
        Blob::new(media_type, bytes)
    }

    #[test]
    fn layers_are_what_they_say() {
        for compression in [None, Some(Algorithm::Gzip), Some(Algorithm::Zstd)] {
            let layer = layer(compression);
            check_layer(layer.blob(), layer.diff_id()).unwrap();
        }
    }

    #[test]
    fn a_layer_labelled_otherwise_or_with_more_inside_is_refused() {
        let gzip = layer(Some(Algorithm::Gzip));
        let bytes = gzip.blob().read_all();
        let diff_id = gzip.diff_id();
        let refused = |blob: Blob| format!("{:#}", check_layer(&blob, diff_id).unwrap_err());
        let as_zstd = blob(MediaType::ImageLayerZstd, bytes.clone());
        assert_eq!(
            refused(as_zstd.clone()),
            format!(
                "layer {} is labelled application/vnd.oci.image.layer.v1.tar+zstd but holds gzip data\nhelp: give an image as cargo scratchimg wrote it; this one was changed",
                as_zstd.digest()
            )
        );
        assert!(refused(blob(MediaType::ImageLayer, bytes.clone())).contains("holds gzip data"));
        // A second gzip member: Docker would unpack it too, so the diff_id must cover it.
        let twice = [bytes.clone(), bytes.clone()].concat();
        assert!(refused(blob(MediaType::ImageLayerGzip, twice)).starts_with("diff_id "),);
        let trailing = [bytes.clone(), b"junk".to_vec()].concat();
        assert!(refused(blob(MediaType::ImageLayerGzip, trailing)).contains("does not decompress"),);
        let other = blob(MediaType::Other("x\u{1b}[31m/y".into()), bytes);
        assert_eq!(refused(other), "x/y is not a layer cargo-scratchimg reads");
    }

    #[test]
    fn parse_errors_quote_nothing_unclean() {
        let error = parse::<ImageConfiguration>(
            "{\"architecture\": 7, \"os\": \"linux\u{1b}]0;x\u{7}\nhelp: run me\"}".as_bytes(),
            "the config",
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("the config is not valid: "), "{error}");
        assert!(
            !error.contains('\n') && !error.contains('\u{1b}'),
            "{error}"
        );
    }
}
