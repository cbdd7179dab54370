//! Content-addressed bytes: a blob and the descriptor that names it.

use std::io::{self, Read};

use oci_spec::image::{Descriptor, Digest, MediaType, Sha256Digest};
use sha2::{Digest as _, Sha256};

use super::content::Content;

/// The `sha256:` digest of some bytes.
pub(crate) fn sha256(bytes: &[u8]) -> Digest {
    digest_of(Sha256::digest(bytes))
}

/// A finished SHA-256 as a digest.
pub(crate) fn digest_of(hash: impl std::fmt::LowerHex) -> Digest {
    format!("{hash:x}")
        .parse::<Sha256Digest>()
        .expect("sha256 hex is a valid digest")
        .into()
}

/// Where a blob with `digest` lives in an OCI layout: `blobs/sha256/<hex>`.
pub(crate) fn layout_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_ref(), digest.digest())
}

/// `sha256:0123456789ab`: enough of a digest to tell blobs apart in a status line.
pub(crate) fn short_digest(digest: &Digest) -> String {
    let hex = digest.digest();
    format!(
        "{}:{}",
        digest.algorithm().as_ref(),
        &hex[..hex.len().min(12)]
    )
}

/// Bytes together with their descriptor (media type, digest and size, computed once). Configs
/// and manifests are held in memory; layers may be read from elsewhere (a cache entry, their
/// tar) when a sink needs them.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    descriptor: Descriptor,
    content: Content,
}

impl Blob {
    pub(crate) fn new(media_type: MediaType, data: Vec<u8>) -> Blob {
        let digest = sha256(&data);
        let content = Content::from(data);
        Blob::with_digest(media_type, digest, content)
    }

    /// A blob whose digest was computed while its bytes were made, or checked when they were
    /// found: the content knows it too.
    pub(crate) fn with_digest(media_type: MediaType, digest: Digest, content: Content) -> Blob {
        let descriptor = Descriptor::new(media_type, content.len(), digest.clone());
        Blob {
            descriptor,
            content: content.addressed(digest),
        }
    }

    pub(crate) fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    pub(crate) fn digest(&self) -> &Digest {
        self.descriptor.digest()
    }

    pub(crate) fn size(&self) -> u64 {
        self.descriptor.size()
    }

    pub(crate) fn media_type(&self) -> &MediaType {
        self.descriptor.media_type()
    }

    pub(crate) fn content(&self) -> &Content {
        &self.content
    }

    /// The bytes of a blob made in memory: configs, manifests, indexes.
    ///
    /// # Panics
    /// On a layer read from elsewhere; read those with [`Blob::reader`].
    pub(crate) fn data(&self) -> &[u8] {
        self.content
            .bytes()
            .expect("configs and manifests are held in memory")
    }

    /// A reader of the blob's bytes, from the start.
    pub(crate) fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        self.content.reader()
    }

    /// All the bytes, read into memory: for tests and small blobs.
    #[cfg(test)]
    pub(crate) fn read_all(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.reader().unwrap().read_to_end(&mut bytes).unwrap();
        bytes
    }

    /// Where the blob lives in an OCI image layout: `blobs/sha256/<hex>`.
    pub(crate) fn layout_path(&self) -> String {
        layout_path(self.digest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_matches_the_bytes() {
        let blob = Blob::new(MediaType::ImageConfig, b"{}".to_vec());
        assert_eq!(
            blob.digest().to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(blob.size(), 2);
        assert_eq!(
            blob.layout_path(),
            "blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(blob.read_all(), b"{}");
    }
}
