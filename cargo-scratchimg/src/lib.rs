//! `cargo scratchimg`: build a Rust program for musl and write it into a `FROM scratch` OCI
//! image, with no Docker daemon, Dockerfile or base image.
//!
//! [`run`] is the whole of it, in the steps [`pipeline`] lists: plan, compile, assemble,
//! verify, publish. The stages, each a folder or file of its own:
//!
//! - [`config`]: settings from Cargo.toml and flags, checked;
//! - [`cargo`]: everything that runs cargo or rustc; gives each [`cargo::BuiltBinary`];
//! - [`rootfs`]: the files of the image (CA roots, tzdata, users, `files`, the binaries);
//! - [`image`]: layers, configs, manifests and indexes as immutable values;
//! - [`sbom`], [`annotations`] and [`attest`]: what the image says about itself;
//! - [`sink`]: writes a finished image to a tar, an OCI directory, an engine or registries,
//!   the last through the small distribution client in [`registry`];
//! - [`cache`]: what a run keeps for the next, under the target directory's [`tool_dir`].
//!
//! The subcommands beside the build (`run`, `resolve`, `index`, `verify`) are in [`commands`].
//! ARCHITECTURE.md at the repository's root says which folder owns what, and the rules.
//!
//! The environment is read once, into an [`Env`]; everything the library says goes through a
//! [`Reporter`], which [`Shell`] implements for the terminal. Children run in process groups of
//! their own ([`process`]), and [`handle_interrupts`] makes SIGINT and SIGTERM end them and
//! remove the temporary files before the tool exits ([`interrupt`]).

mod annotations;
mod attest;
mod cache;
mod cargo;
mod checks;
mod commands;
mod config;
mod dir_lock;
mod env;
mod git;
mod image;
mod input_file;
mod interrupt;
mod local_image;
mod outcome;
mod pipeline;
mod process;
mod registry;
mod report;
mod rootfs;
mod sbom;
mod shell;
mod sign;
mod sink;
mod source_date;
mod target;
mod text;
mod tool_dir;
mod util;

pub use attest::Attach;
pub use cargo::CargoOptions;
pub use cargo::Selected;
pub use cargo::strip::Strip;
pub use cargo::wrapper::run_if_wrapping;
pub use commands::index::{IndexOptions, IndexOutcome, index};
pub use commands::resolve::{ResolveOptions, resolve};
pub use commands::run::{RunOptions, run_image};
pub use commands::verify::{Verification, VerifyOptions, verify_remote};
pub use config::ImageFlags;
pub use env::{Env, Terminal};
pub use input_file::{KEY_LIMIT, SECRET_LIMIT, read_stdin};
pub use interrupt::{handle_interrupts, interrupted};
pub use outcome::{ImageSummary, LayerSummary, Outcome, ReferrerSummary, RunRecord};
pub use pipeline::{Load, Options, run};
pub use registry::DEFAULT_TIMEOUT as DEFAULT_REGISTRY_TIMEOUT;
pub use registry::{ClientOptions, CredentialSources, Credentials, RetryPolicy, Secret};
pub use report::{Capture, Event, Progress, ProgressEnd, Reporter, Verbosity};
pub use sbom::SbomFormat;
pub use shell::{MessageFormat, Shell};
pub use sign::{KeySource, SignFormat};
pub use sink::{Engine, Format};
