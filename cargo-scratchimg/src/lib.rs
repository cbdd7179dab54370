//! `cargo scratchimg`: build a Rust program for musl and write it into a `FROM scratch` OCI
//! image, with no Docker daemon, Dockerfile or base image.
//!
//! The pipeline: [`build`] runs cargo and gives a [`build::BuiltBinary`]; [`rootfs`] turns it and
//! the embedded base files into [`image::Layer`]s; [`image::ImageBuilder`] makes an immutable
//! [`image::Image`]; [`sink`]s write it out. [`pipeline::run`] strings them together.
//!
//! For the supply chain: [`sbom`] finds the crates compiled into the binary, which the binary
//! then carries (cargo-auditable's `.dep-v0`) and an SBOM document lists; [`provenance`] says
//! where the image came from; [`build::remap`] keeps the machine's paths out of the binary.

pub mod build;
pub mod cache;
pub mod config;
pub mod git;
pub mod image;
pub mod pipeline;
pub mod provenance;
pub mod registry;
pub mod rootfs;
pub mod sbom;
pub mod shell;
pub mod sink;
pub mod source_date;
pub mod target;

pub use pipeline::{Options, Outcome, run};
pub use shell::{Shell, Verbosity};
