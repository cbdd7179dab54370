//! `cargo run --release -p cargo-scratchimg --example compress -- FILE ALGORITHM LEVELS THREADS`:
//! compresses FILE with the tool's own layer compressor (the same source file, compiled in) and
//! prints, per level, the compressed size and the seconds it took. `THREADS` = `floor` instead
//! runs plain zlib-rs (flate2's one-stream gzip encoder) or single-threaded zstd on one thread:
//! the floor the parallel compressor is measured against. For the scripts under bench/.

use std::io::Write;
use std::time::Instant;

#[allow(dead_code)]
#[path = "../src/image/compress.rs"]
mod compress;

use compress::{Algorithm, Compression};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, algorithm, levels, threads] = &args[..] else {
        eprintln!("usage: compress FILE gzip|zstd LEVEL[,LEVEL...] THREADS|floor");
        std::process::exit(2);
    };
    let data = std::fs::read(file).expect("FILE can be read");
    let algorithm = match algorithm.as_str() {
        "gzip" => Algorithm::Gzip,
        "zstd" => Algorithm::Zstd,
        other => panic!("{other} is not gzip or zstd"),
    };
    for level in levels.split(',') {
        let level: u32 = level.parse().expect("levels are numbers");
        let started = Instant::now();
        let size = if threads == "floor" {
            floor(algorithm, level, &data)
        } else {
            let mut out = Vec::with_capacity(data.len());
            let threads = threads.parse().expect("THREADS is a number or `floor`");
            Compression { algorithm, level }
                .compress(&mut &data[..], &mut out, threads)
                .expect("compression works");
            out.len()
        };
        let seconds = started.elapsed().as_secs_f64();
        println!("{algorithm} {level} {size} {seconds:.3}");
    }
}

/// One stream on one thread, as a plain compressor makes it.
fn floor(algorithm: Algorithm, level: u32, data: &[u8]) -> usize {
    match algorithm {
        Algorithm::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len()),
                flate2::Compression::new(level),
            );
            encoder.write_all(data).expect("compression works");
            encoder.finish().expect("compression works").len()
        }
        Algorithm::Zstd => zstd::bulk::compress(data, level as i32)
            .expect("compression works")
            .len(),
    }
}
