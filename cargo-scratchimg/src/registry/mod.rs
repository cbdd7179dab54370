//! Pushing images to OCI registries: a small distribution-API client ([`Registry`],
//! [`Session`]), registry authentication ([`auth`]), credentials as Docker and podman find
//! them ([`credentials`]), and bounded retries of transient failures ([`retry`]). The sink that
//! pushes an image with them is `crate::sink::push`.

pub mod auth;
mod client;
pub mod credentials;
mod mounts;
pub mod retry;

pub use client::{ClientOptions, DEFAULT_TIMEOUT, Mount, Registry, Session};
pub use credentials::{CredentialSources, Credentials, Secret};
pub use mounts::MountSources;
pub use retry::RetryPolicy;
