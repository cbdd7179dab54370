//! Layers uploaded while they are compressed. An image to push sends each new layer to the
//! repository of its first push reference as the compressor writes it (following the layer
//! cache's new entry, a [`Growing`] file), so when the last block is compressed little is left
//! to send. What went up is remembered here, and the push does not send it again.

use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use oci_spec::image::Digest;

use crate::cache::Growing;
use crate::image::{ImageRef, Layer};
use crate::registry::{Registry, Session};
use crate::report::Reporter;
use crate::util::join;

/// Bytes of a layer not yet sent when it is compressed that are worth a `HEAD` to save.
const UNSENT_WORTH_ASKING: u64 = 4 << 20;

/// The run's uploads of layers while they are compressed, through the registries connected
/// while planning.
pub(crate) struct Uploads<'a> {
    registries: &'a [Registry],
    /// What went up, checked by the registry against its digest.
    sent: Mutex<Vec<Uploaded>>,
}

/// A blob that went up while it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Uploaded {
    host: String,
    repository: String,
    digest: Digest,
}

/// Where one image's layers go while they are compressed: one session (one token, where the
/// registry uses them) for all of them.
pub(crate) struct ImageUploads<'a> {
    uploads: &'a Uploads<'a>,
    /// Where the image's assembly speaks: its lines stay with the image's.
    report: &'a dyn Reporter,
    registry: &'a Registry,
    repository: String,
    session: OnceLock<Session<'a>>,
}

impl<'a> Uploads<'a> {
    pub(crate) fn new(registries: &'a [Registry]) -> Uploads<'a> {
        Uploads {
            registries,
            sent: Mutex::new(Vec::new()),
        }
    }

    /// For an image pushed to `push_to`, whose assembly tells `report`: the repository of its
    /// first reference; `None` when it is not pushed.
    pub(crate) fn of_image(
        &'a self,
        push_to: &[ImageRef],
        report: &'a dyn Reporter,
    ) -> Option<ImageUploads<'a>> {
        let first = push_to.first()?;
        let registry = self
            .registries
            .iter()
            .find(|r| r.host() == first.registry())?;
        Some(ImageUploads {
            uploads: self,
            report,
            registry,
            repository: first.repository().to_string(),
            session: OnceLock::new(),
        })
    }

    /// Whether `digest` went up to `host`/`repository` while it was compressed.
    pub(crate) fn sent(&self, host: &str, repository: &str, digest: &Digest) -> bool {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter()
            .any(|u| u.host == host && u.repository == repository && &u.digest == digest)
    }
}

impl<'a> ImageUploads<'a> {
    /// The layer `make` gives, uploaded as it is written when `make` compresses a new one (it
    /// hands the new entry to its argument). An upload that fails is only said with `-v`: the
    /// push uploads the layer whole, and says what fails.
    pub(crate) fn while_making<T>(
        &self,
        make: impl FnOnce(&mut dyn FnMut(Arc<Growing>)) -> Result<(Layer, T)>,
    ) -> Result<(Layer, T)> {
        let report = self.report;
        std::thread::scope(|scope| {
            let mut uploading = None;
            let mut growing = None;
            let made = make(&mut |entry: Arc<Growing>| {
                growing = Some(entry.clone());
                uploading = Some(scope.spawn(move || self.follow(&entry)));
            });
            // Much left to send (a slow link) of a layer the registry may have already (pushed
            // from another machine, say): ask, and stop sending it if so; the push finds it.
            if let (Some(growing), Ok((layer, _))) = (&growing, &made)
                && growing.unread() > UNSENT_WORTH_ASKING
                && self.has(layer.blob().digest()).unwrap_or(false)
            {
                growing.cancel();
            }
            if let Some(uploading) = uploading {
                match join(uploading) {
                    Ok(done) => {
                        report.verbose("Uploaded", &|| {
                            format!(
                                "{} to {}/{} while it was compressed",
                                done.digest, done.host, done.repository
                            )
                        });
                        let mut sent = self.uploads.sent.lock().unwrap_or_else(|e| e.into_inner());
                        sent.push(done);
                    }
                    Err(e) => report.verbose("Uploading", &|| {
                        format!("while compressing failed, so after it: {e:#}")
                    }),
                }
            }
            made
        })
    }

    /// The session, opened on first use; a failure to open it is not kept, so the next use
    /// tries again.
    fn session(&self) -> Result<&Session<'a>> {
        if let Some(session) = self.session.get() {
            return Ok(session);
        }
        let session = self.registry.session(&self.repository, &[], self.report)?;
        Ok(self.session.get_or_init(|| session))
    }

    /// Whether the repository has the blob `digest` already.
    fn has(&self, digest: &Digest) -> Result<bool> {
        self.session()?.has_blob(digest)
    }

    /// Sends `entry`'s bytes as they are written, then, once it is whole, finishes the upload
    /// under its digest.
    fn follow(&self, entry: &Growing) -> Result<Uploaded> {
        let session = self.session()?;
        let body: &mut (dyn Read + Send) = &mut entry.reader();
        let location = session.stream_upload(body, entry.limit())?;
        let digest = entry.digest().context("the layer could not be made")?;
        session.finish_upload(&location, &digest)?;
        Ok(Uploaded {
            host: self.registry.host().to_string(),
            repository: self.repository.clone(),
            digest,
        })
    }
}
