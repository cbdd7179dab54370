//! Content-addressed bytes: a blob and the descriptor that names it.

use oci_spec::image::{Descriptor, Digest, MediaType, Sha256Digest};
use sha2::{Digest as _, Sha256};

/// The `sha256:` digest of some bytes.
pub(crate) fn sha256(bytes: &[u8]) -> Digest {
    let hex = format!("{:x}", Sha256::digest(bytes));
    hex.parse::<Sha256Digest>()
        .expect("sha256 hex is a valid digest")
        .into()
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

/// Bytes together with their descriptor (media type, digest and size, computed once).
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    descriptor: Descriptor,
    data: Vec<u8>,
}

impl Blob {
    pub(crate) fn new(media_type: MediaType, data: Vec<u8>) -> Blob {
        let descriptor = Descriptor::new(media_type, data.len() as u64, sha256(&data));
        Blob { descriptor, data }
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

    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// Where the blob lives in an OCI image layout: `blobs/sha256/<hex>`.
    pub(crate) fn layout_path(&self) -> String {
        let digest = self.digest();
        format!("blobs/{}/{}", digest.algorithm().as_ref(), digest.digest())
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
    }
}
