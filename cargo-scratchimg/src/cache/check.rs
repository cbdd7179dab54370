//! The check a layer cache entry passes before its bytes are used ([`check`]).

use std::io::{self, Read};
use std::sync::mpsc;

use sha2::{Digest as _, Sha256};

use crate::image::{
    Compared, Compression, FilePart, HashReader, Tar, decompressor, digest_of, streamed_digest,
};

/// Reads the entry once: its bytes must hash to `digest` and decompress to exactly the bytes
/// of `tar`, which hash to `diff_id`. So an entry gives only what compressing `tar` would,
/// whatever its name says. Decompressing runs on a thread of its own, hashing and comparing
/// what it gives on this one.
pub(super) fn check(
    stored: &FilePart,
    compression: Compression,
    diff_id: &str,
    digest: &str,
    tar: &Tar,
) -> Result<(), &'static str> {
    let (chunks, unpacked) = mpsc::sync_channel::<Vec<u8>>(4);
    let (compressed, unpacked) = std::thread::scope(|scope| {
        let unpacking = scope.spawn(move || {
            let mut hasher = Sha256::new();
            let mut bytes = HashReader {
                inner: stored.reader(),
                hasher: &mut hasher,
            };
            let unpacked =
                decompressor(&compression.media_type(), Box::new(&mut bytes)).and_then(|decoder| {
                    // No more than the tar and a byte: a bomb is cut short, and differs.
                    let mut decoder = decoder.take(tar.size() + 1);
                    loop {
                        let mut chunk = vec![0; 256 * 1024];
                        let n = decoder.read(&mut chunk)?;
                        if n == 0 {
                            return Ok(());
                        }
                        chunk.truncate(n);
                        if chunks.send(chunk).is_err() {
                            return Ok(());
                        }
                    }
                });
            drop(chunks);
            // What the decompressor left unread counts too.
            let rest = io::copy(&mut bytes, &mut io::sink());
            let whole = unpacked.is_ok() && rest.is_ok();
            (whole, digest_of(hasher.finalize()))
        });
        let chunks = Chunks {
            chunks: unpacked,
            chunk: Vec::new(),
            at: 0,
        };
        let mut compared = Compared::new(chunks, tar.reader());
        let unpacked = streamed_digest(&mut compared).map(|d| (d, compared.differs()));
        drop(compared);
        (crate::util::join(unpacking), unpacked)
    });
    let (whole, compressed) = compressed;
    if compressed.digest() != digest {
        return Err("its bytes do not match their digest");
    }
    match unpacked {
        Ok(((tar_digest, size), false))
            if whole && size == tar.size() && tar_digest.digest() == diff_id =>
        {
            Ok(())
        }
        _ => Err("it does not decompress to this layer's tar"),
    }
}

/// Reads the chunks another thread sends, in order, to their end.
struct Chunks {
    chunks: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.chunks.recv() {
                Ok(chunk) => (self.chunk, self.at) = (chunk, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = (self.chunk.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
