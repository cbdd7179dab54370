//! Pushing images to OCI registries: a small distribution-API client ([`Registry`],
//! [`Session`]) on its transport (options, deadlines, TLS roots) and its error classification,
//! registry authentication ([`auth`]) with bearer tokens kept and renewed per scope set,
//! credentials as Docker and podman find them ([`credentials`]), and bounded retries of
//! transient failures ([`retry`]). The sink that pushes an image with them is the sink
//! module's `push`.

pub(crate) mod auth;
mod client;
pub(crate) mod credentials;
mod errors;
mod mounts;
mod pull;
pub(crate) mod referrers;
pub(crate) mod retry;
mod session;
#[cfg(test)]
mod test_servers;
mod tokens;
mod transport;

pub(crate) use client::Registry;
pub use credentials::{CredentialSources, Credentials, Secret};
pub(crate) use mounts::{MountSources, Seen};
pub(crate) use pull::Pulled;
pub use retry::RetryPolicy;
pub(crate) use session::{Mount, Session};
pub use transport::{ClientOptions, DEFAULT_TIMEOUT};
