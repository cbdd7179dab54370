//! Layer compression on every core that gives the same bytes on every machine and with any
//! number of threads.
//!
//! gzip is compressed the way pigz does it: the tar is cut into fixed 128 KiB blocks, each
//! deflated on its own thread with the previous block's last 32 KiB as its dictionary (so
//! matches reach across blocks as in one stream), ended with a sync flush so the pieces join
//! byte-aligned, the last one finished; one gzip member, whose CRC-32 is the blocks' CRCs
//! combined. Where a block starts depends only on the input, and each block gets a fresh
//! compressor, so the bytes are the same whatever thread did what. It is written here on
//! flate2 (zlib-rs) rather than taken from `gzp`: gzp's dictionaries need C zlib (`libz-sys`)
//! beside zlib-rs, its `ZBuilder` gives other bytes with one thread (a plain stream), and it
//! reuses compressors with `reset()`, after which zlib-rs's output depends on the blocks a
//! compressor saw before, so gzp's bytes would depend on the thread count.
//!
//! zstd uses libzstd's own multithreading, whose output is the same for any number of workers
//! (at least one) with a fixed job size.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Mutex, mpsc};

use oci_spec::image::MediaType;

/// The compressor of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Algorithm {
    Gzip,
    Zstd,
}

impl Algorithm {
    pub(crate) const ALL: [Algorithm; 2] = [Algorithm::Gzip, Algorithm::Zstd];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Algorithm::Gzip => "gzip",
            Algorithm::Zstd => "zstd",
        }
    }

    /// The levels there are: gzip's 1 to 9, zstd's 1 to 19.
    pub(crate) fn levels(self) -> std::ops::RangeInclusive<u32> {
        match self {
            Algorithm::Gzip => 1..=9,
            Algorithm::Zstd => 1..=19,
        }
    }

    /// The level of the program's layer when none is asked for: see the table of the book's
    /// benchmarks chapter (docs/src/benchmarks.md).
    pub(crate) fn default_level(self) -> u32 {
        match self {
            Algorithm::Gzip => 3,
            Algorithm::Zstd => 3,
        }
    }

    pub(crate) fn media_type(self) -> MediaType {
        match self {
            Algorithm::Gzip => MediaType::ImageLayerGzip,
            Algorithm::Zstd => MediaType::ImageLayerZstd,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An algorithm and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Compression {
    pub algorithm: Algorithm,
    pub level: u32,
}

/// gzip's block. Each is primed with the 32 KiB before it: a quarter more to index at pigz's
/// 128 KiB, a sixteenth at 512 KiB (7% less CPU on a 100 MB program); still small enough to keep
/// cores busy on a few megabytes.
const BLOCK: usize = 512 * 1024;
/// The most a deflate match reaches back.
const DICTIONARY: usize = 32 * 1024;
/// zstd's job size: fixed, so the frame does not depend on the machine.
const ZSTD_JOB: u32 = 4 << 20;

impl Compression {
    pub(crate) fn new(algorithm: Algorithm) -> Compression {
        Compression {
            algorithm,
            level: algorithm.default_level(),
        }
    }

    /// The smallest output: for the base layer, which is compressed once and cached.
    pub(crate) fn smallest(algorithm: Algorithm) -> Compression {
        Compression {
            algorithm,
            level: *algorithm.levels().end(),
        }
    }

    pub(crate) fn media_type(self) -> MediaType {
        self.algorithm.media_type()
    }

    /// Names everything that decides the bytes, for cache entries: `gzip3-b512k`, `zstd3-j4m`.
    pub(crate) fn tag(self) -> String {
        match self.algorithm {
            Algorithm::Gzip => format!("gzip{}-b{}k", self.level, BLOCK >> 10),
            Algorithm::Zstd => format!("zstd{}-j{}m", self.level, ZSTD_JOB >> 20),
        }
    }

    /// Compresses all of `input` into `output` with `threads` threads; the bytes do not
    /// depend on `threads`.
    pub(crate) fn compress(
        self,
        input: &mut dyn Read,
        output: &mut dyn Write,
        threads: usize,
    ) -> io::Result<()> {
        let threads = threads.max(1);
        match self.algorithm {
            Algorithm::Gzip => gzip(self.level, input, output, threads),
            Algorithm::Zstd => zstd(self.level, input, output, threads),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} level {}", self.algorithm, self.level)
    }
}

/// A reader of what the layer blob `input` of `media_type` decompresses to.
pub(crate) fn decompressor<'a>(
    media_type: &MediaType,
    input: Box<dyn Read + Send + 'a>,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    Ok(match media_type {
        // Every member, as Go's reader (Docker's, podman's) unpacks them: what a layer holds is all of it.
        MediaType::ImageLayerGzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        MediaType::ImageLayerZstd => Box::new(zstd::stream::read::Decoder::new(input)?),
        MediaType::ImageLayer => input,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{other} is not a layer this tool reads"),
            ));
        }
    })
}

fn zstd(
    level: u32,
    input: &mut dyn Read,
    output: &mut dyn Write,
    threads: usize,
) -> io::Result<()> {
    let mut encoder = zstd::stream::write::Encoder::new(output, level as i32)?;
    // One worker or more: libzstd's multithreaded format, whose bytes are the same for any
    // number of workers (no workers would be its single-threaded format, other bytes).
    encoder.multithread(threads as u32)?;
    encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))?;
    encoder.include_checksum(true)?;
    let mut chunk = vec![0; BLOCK];
    loop {
        match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => encoder.write_all(&chunk[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    encoder.finish()?;
    Ok(())
}

/// One block for a worker.
struct Job {
    index: usize,
    data: Vec<u8>,
    /// The end of the block before, or nothing for the first.
    dictionary: Vec<u8>,
    last: bool,
}

/// A block deflated.
struct Deflated {
    index: usize,
    bytes: Vec<u8>,
    crc: crc32fast::Hasher,
}

fn gzip(
    level: u32,
    input: &mut dyn Read,
    output: &mut dyn Write,
    threads: usize,
) -> io::Result<()> {
    // Fixed header: no name, mtime 0, OS unknown, as Go's compress/gzip writes; the extra
    // flags say best or fastest as gzip does.
    let xfl = match level {
        9.. => 2,
        ..=1 => 4,
        _ => 0,
    };
    output.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
    let (jobs, queue) = mpsc::sync_channel::<Job>(threads);
    let queue = Mutex::new(queue);
    let (done, deflated) = mpsc::channel::<io::Result<Deflated>>();
    let (crc, size) = std::thread::scope(|scope| {
        for _ in 0..threads {
            let (queue, done) = (&queue, done.clone());
            scope.spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    if done.send(deflate(level, job)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done);
        // Dropping `jobs` on every way out ends the workers.
        feed(input, output, jobs, &deflated, threads)
    })?;
    output.write_all(&crc.finalize().to_le_bytes())?;
    // ISIZE is the size modulo 2^32.
    output.write_all(&(size as u32).to_le_bytes())?;
    Ok(())
}

/// Cuts `input` into blocks for the workers and writes what they give back in order; returns
/// the CRC and size of the whole input.
fn feed(
    input: &mut dyn Read,
    output: &mut dyn Write,
    jobs: mpsc::SyncSender<Job>,
    deflated: &mpsc::Receiver<io::Result<Deflated>>,
    threads: usize,
) -> io::Result<(crc32fast::Hasher, u64)> {
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0u64;
    let mut waiting: BTreeMap<usize, Deflated> = BTreeMap::new();
    let (mut sent, mut written) = (0, 0);
    let mut write_ready =
        |waiting: &mut BTreeMap<usize, Deflated>, written: &mut usize| -> io::Result<()> {
            while let Some(block) = waiting.remove(written) {
                output.write_all(&block.bytes)?;
                crc.combine(&block.crc);
                *written += 1;
            }
            Ok(())
        };
    let lost = || io::Error::other("a compression thread stopped");
    let mut dictionary = Vec::new();
    let mut block = read_block(input)?;
    loop {
        // A full block may be the last: look one block ahead to know.
        let next = if block.len() == BLOCK {
            read_block(input)?
        } else {
            Vec::new()
        };
        let last = next.is_empty();
        // At most two blocks per thread in flight: about 2 MiB per thread.
        while sent - written >= 2 * threads {
            let block = deflated.recv().map_err(|_| lost())??;
            waiting.insert(block.index, block);
            write_ready(&mut waiting, &mut written)?;
        }
        size += block.len() as u64;
        let tail = block[block.len().saturating_sub(DICTIONARY)..].to_vec();
        let job = Job {
            index: sent,
            data: block,
            dictionary: std::mem::replace(&mut dictionary, tail),
            last,
        };
        jobs.send(job).map_err(|_| lost())?;
        sent += 1;
        if last {
            break;
        }
        block = next;
    }
    drop(jobs);
    while written < sent {
        let block = deflated.recv().map_err(|_| lost())??;
        waiting.insert(block.index, block);
        write_ready(&mut waiting, &mut written)?;
    }
    Ok((crc, size))
}

/// Up to [`BLOCK`] bytes: fewer only at the end of the input.
fn read_block(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK);
    input.take(BLOCK as u64).read_to_end(&mut block)?;
    Ok(block)
}

fn deflate(level: u32, job: Job) -> io::Result<Deflated> {
    use flate2::{Compress, FlushCompress, Status};
    // A fresh compressor for each block: after `reset()`, zlib-rs's output depends on what the
    // compressor saw before, so reusing one would tie the bytes to the order threads took blocks.
    let mut deflate = Compress::new(flate2::Compression::new(level), false);
    if !job.dictionary.is_empty() {
        deflate
            .set_dictionary(&job.dictionary)
            .map_err(io::Error::other)?;
    }
    // Room for the worst case, so one call does it: level 1's fixed codes can grow data by an
    // eighth, and zlib-rs 0.6 panics rather than stop when a fast-level block runs out of room.
    let mut bytes = Vec::with_capacity(job.data.len() + job.data.len() / 8 + 1024);
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let read = deflate.total_in() as usize;
        let status = deflate
            .compress_vec(&job.data[read..], &mut bytes, flush)
            .map_err(io::Error::other)?;
        let all_in = deflate.total_in() as usize == job.data.len();
        let finished = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => all_in && bytes.len() < bytes.capacity(),
        };
        if finished {
            break;
        }
        bytes.reserve(bytes.capacity());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&job.data);
    Ok(Deflated {
        index: job.index,
        bytes,
        crc,
    })
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    /// Megabytes that compress like code: repeated fragments with numbers that vary, and runs
    /// of noise. Deterministic.
    fn sample(size: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(size);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while data.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(5) {
                data.extend_from_slice(&x.to_le_bytes());
            } else {
                data.extend_from_slice(
                    format!("mov rax, [rbp-{}]; call {:x}\n", x % 97, x % 4099).as_bytes(),
                );
            }
        }
        data.truncate(size);
        data
    }

    fn compress(compression: Compression, data: &[u8], threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        compression
            .compress(&mut &data[..], &mut out, threads)
            .unwrap();
        out
    }

    fn decompress(media_type: &MediaType, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompressor(media_type, Box::new(bytes))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn the_bytes_do_not_depend_on_the_thread_count() {
        // More blocks than 8 threads keep in flight.
        let data = sample(BLOCK * 17 + 12345);
        for compression in [
            Compression::new(Algorithm::Gzip),
            Compression::smallest(Algorithm::Gzip),
            Compression {
                algorithm: Algorithm::Gzip,
                level: 1,
            },
            Compression::new(Algorithm::Zstd),
        ] {
            let one = compress(compression, &data, 1);
            assert_eq!(one, compress(compression, &data, 2), "{compression}");
            assert_eq!(one, compress(compression, &data, 8), "{compression}");
            assert_eq!(
                decompress(&compression.media_type(), &one),
                data,
                "{compression}"
            );
        }
    }

    /// ZSTD_JOB is a whole number of megabytes, and the zstd sample spans several jobs.
    #[test]
    fn zstd_jobs_are_used_and_fixed() {
        let data = sample(3 * ZSTD_JOB as usize);
        let compression = Compression::new(Algorithm::Zstd);
        let one = compress(compression, &data, 1);
        assert_eq!(one, compress(compression, &data, 3));
        assert_eq!(decompress(&MediaType::ImageLayerZstd, &one), data);
    }

    #[test]
    fn block_edges_and_empty_input_make_valid_gzip() {
        for size in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, DICTIONARY] {
            let data = sample(size);
            for level in [1, 3, 9] {
                let compression = Compression {
                    algorithm: Algorithm::Gzip,
                    level,
                };
                let gz = compress(compression, &data, 2);
                assert_eq!(
                    decompress(&MediaType::ImageLayerGzip, &gz),
                    data,
                    "{size} {level}"
                );
                // The size mod 2^32 and the CRC close the member.
                assert_eq!(&gz[gz.len() - 4..], &(size as u32).to_le_bytes());
                assert_eq!(
                    &gz[gz.len() - 8..gz.len() - 4],
                    &crc32fast::hash(&data).to_le_bytes()
                );
            }
        }
    }

    /// What stays the same from one machine to another: the header, and one member.
    #[test]
    fn the_gzip_header_is_fixed() {
        let gz = compress(Compression::smallest(Algorithm::Gzip), b"layer", 1);
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        let gz = compress(Compression::new(Algorithm::Gzip), b"layer", 1);
        assert_eq!(gz[8], 0);
    }

    /// Random bytes grow at level 1 (fixed Huffman codes): each block still fits.
    #[test]
    fn incompressible_data_at_the_fastest_level() {
        let mut x: u32 = 1;
        let data: Vec<u8> = (0..3 * BLOCK)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        let compression = Compression {
            algorithm: Algorithm::Gzip,
            level: 1,
        };
        let gz = compress(compression, &data, 2);
        assert_eq!(decompress(&MediaType::ImageLayerGzip, &gz), data);
    }

    /// gzip itself accepts the blocks joined into one member.
    #[test]
    fn gzip_t_accepts_it() {
        let data = sample(5 * BLOCK + 77);
        let gz = compress(Compression::new(Algorithm::Gzip), &data, 2);
        let mut gzip = Command::new("gzip")
            .arg("-t")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gzip runs");
        gzip.stdin.take().unwrap().write_all(&gz).unwrap();
        let output = gzip.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn tags_name_what_decides_the_bytes() {
        let gzip = Compression::new(Algorithm::Gzip);
        let zstd = Compression::new(Algorithm::Zstd);
        assert_eq!(gzip.tag(), "gzip3-b512k");
        assert_eq!(zstd.tag(), "zstd3-j4m");
        assert_ne!(gzip.tag(), Compression::smallest(Algorithm::Gzip).tag());
        assert_eq!(Compression::smallest(Algorithm::Zstd).level, 19);
    }
}
