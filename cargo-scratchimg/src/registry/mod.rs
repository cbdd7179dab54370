//! Pushing images to OCI registries: a small distribution-API client ([`Registry`],
//! [`Session`]), registry authentication ([`auth`]), credentials as Docker and podman find
//! them ([`credentials`]), and bounded retries of transient failures ([`retry`]). The sink that
//! pushes an image with them is the sink module's `push`.

pub(crate) mod auth;
mod client;
pub(crate) mod credentials;
mod mounts;
mod pull;
pub(crate) mod referrers;
pub(crate) mod retry;

pub use client::{ClientOptions, DEFAULT_TIMEOUT};
pub(crate) use client::{Mount, Registry, Session};
pub use credentials::{CredentialSources, Credentials, Secret};
pub(crate) use mounts::MountSources;
pub use retry::RetryPolicy;
