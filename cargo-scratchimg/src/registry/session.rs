//! Pushing to and reading from one repository of a registry: check blobs with HEAD, mount or
//! upload the missing ones, put a manifest as the exact bytes given, and fetch what the
//! registry holds. Each request carries the session's credentials, to the registry only.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use oci_spec::image::Digest;
use ureq::http::Response;

use super::client::Registry;
use super::errors::{
    WORDS_SHOWN, error_text, finish, quoted, saying, status_line, transient_status, transport_error,
};
use super::retry::RequestError;
use super::transport::{same_origin, upload_deadline};
use crate::report::Reporter;
use crate::text::one_line;

/// What a blob upload ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mount {
    /// The registry linked the blob from the other repository: nothing uploaded.
    Mounted,
    /// It did not; an upload session was opened at this location instead.
    Upload(String),
}

/// Pushing to one repository of a registry.
pub(crate) struct Session<'r> {
    registry: &'r Registry,
    report: &'r dyn Reporter,
    repository: String,
    /// The scopes of the token its requests carry, where the registry uses tokens: the token
    /// is the registry's, shared with the parallel uploads and the sessions it serves, and
    /// renewed for all of them.
    scopes: Vec<String>,
}

const START_UPLOAD: &str = "POST of a blob upload";

impl<'r> Session<'r> {
    /// A session of `registry` for `repository`, whose requests to the registry carry its
    /// credentials, or its token with `scopes`; its retries are warnings to `report`.
    pub(super) fn new(
        registry: &'r Registry,
        report: &'r dyn Reporter,
        repository: &str,
        scopes: Vec<String>,
    ) -> Session<'r> {
        Session {
            registry,
            report,
            repository: repository.to_string(),
            scopes,
        }
    }
}

impl Session<'_> {
    pub(crate) fn repository(&self) -> &str {
        &self.repository
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.registry.base, self.repository)
    }

    /// A location from a `Location` header: absolute, or relative to the registry.
    fn absolute(&self, location: &str) -> Result<String> {
        if let Some(rest) = location
            .strip_prefix("https://")
            .or_else(|| location.strip_prefix("http://"))
        {
            let host = rest.split('/').next().unwrap_or(rest);
            if location.starts_with("http://") && !self.registry.http_allowed(host) {
                let host = one_line(host, 100);
                bail!(
                    "registry {} sent an upload location over plain HTTP ({host})\nhelp: allow it with --insecure-registry {host} if you trust the network",
                    self.registry.host
                );
            }
            return Ok(location.to_string());
        }
        Ok(format!("{}{location}", self.registry.base))
    }

    /// The `Authorization` of a request to `url`: the session's, when `url` is the registry's
    /// own; an upload location on another host or port (object storage, say) gets none.
    fn authorization(&self, url: &str) -> Option<String> {
        same_origin(url, &self.registry.base)
            .then(|| self.registry.authorization(&self.scopes))
            .flatten()
    }

    /// Sends a request to `url`, which `request` makes with the `Authorization` it is given.
    /// When the registry refuses the token (it expired, or was used up), the token is renewed
    /// once and the request sent again; a second refusal is the answer.
    fn call(
        &self,
        what: &str,
        url: &str,
        mut request: impl FnMut(Option<&str>) -> Result<Response<ureq::Body>, RequestError>,
    ) -> Result<Response<ureq::Body>, RequestError> {
        let sent = self.authorization(url);
        let response = request(sent.as_deref())?;
        match sent {
            Some(refused) if self.registry.refused_token(&response) => {
                self.registry
                    .renew(&self.scopes, &refused, what, self.report)?;
                request(self.authorization(url).as_deref())
            }
            _ => Ok(response),
        }
    }

    /// Turns a response other than `expected` into an error: transient for 429 and 5xx, the
    /// credentials' fault for 401 and 403, else the registry's own message.
    fn check(
        &self,
        what: &str,
        expected: &[u16],
        mut response: Response<ureq::Body>,
    ) -> Result<Response<ureq::Body>, RequestError> {
        let host = &self.registry.host;
        let status = response.status().as_u16();
        if expected.contains(&status) {
            return Ok(response);
        }
        if let Some(transient) = transient_status(host, what, &mut response) {
            return Err(transient);
        }
        let line = status_line(&response);
        let text = error_text(&mut response);
        let repository = &self.repository;
        Err(match status {
            401 => self.registry.unauthorized(what),
            403 => {
                let whose = match &self.registry.credentials.found {
                    Some(found) => format!("the credentials from {}", found.source),
                    None => "anonymous pushes".to_string(),
                };
                anyhow!(
                    "registry {host} denied pushing to {repository} ({line} to {what}){}\nhelp: check that {whose} may push to {host}/{repository}, or that the repository exists",
                    saying(&text)
                )
            }
            _ => anyhow!(
                "registry {host} answered {line} to {what} in {repository}{}",
                saying(&text)
            ),
        }
        .into())
    }

    /// One try of a request to `url` (see [`Self::call`]): its status checked, its answer
    /// read whole within `limit`.
    fn exchange(
        &self,
        what: &str,
        expected: &[u16],
        limit: Duration,
        url: &str,
        request: impl FnMut(Option<&str>) -> Result<Response<ureq::Body>, RequestError>,
    ) -> Result<Response<ureq::Body>, RequestError> {
        let response = self.call(what, url, request)?;
        self.answered(what, expected, limit, response)
    }

    /// A response checked, and read whole within `limit`.
    fn answered(
        &self,
        what: &str,
        expected: &[u16],
        limit: Duration,
        response: Response<ureq::Body>,
    ) -> Result<Response<ureq::Body>, RequestError> {
        let mut response = self.check(what, expected, response)?;
        finish(&self.registry.host, what, limit, &mut response)?;
        Ok(response)
    }

    /// [`Self::exchange`] with retries, within the registry's timeout.
    fn send(
        &self,
        what: &str,
        expected: &[u16],
        url: &str,
        request: impl Fn(Option<&str>) -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let timeout = self.registry.timeout;
        self.registry.with_retries(what, self.report, || {
            self.exchange(what, expected, timeout, url, |authorization| {
                request(authorization).map_err(|e| self.transport_error(what, timeout, e))
            })
        })
    }

    /// A transport failure of `what`, which had `limit`.
    fn transport_error(&self, what: &str, limit: Duration, error: ureq::Error) -> RequestError {
        transport_error(&self.registry.host, what, limit, error)
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: whether the repository has the blob.
    pub(crate) fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let response = self.send("HEAD of a blob", &[200, 404], &url, |authorization| {
            authorized(self.registry.agent.head(&url), authorization).call()
        })?;
        Ok(response.status().as_u16() == 200)
    }

    /// `POST /v2/<name>/blobs/uploads/`, with `?mount=&from=` when a repository of this
    /// registry is known to hold the blob.
    pub(crate) fn start_upload(&self, digest: &Digest, from: Option<&str>) -> Result<Mount> {
        self.registry.with_retries(START_UPLOAD, self.report, || {
            self.try_start_upload(from.map(|from| (digest, from)))
        })
    }

    /// One try of [`Self::start_upload`]; `mount` is the digest and the repository to mount
    /// it from.
    fn try_start_upload(&self, mount: Option<(&Digest, &str)>) -> Result<Mount, RequestError> {
        let url = self.url("blobs/uploads/");
        let timeout = self.registry.timeout;
        let response =
            self.exchange(START_UPLOAD, &[201, 202], timeout, &url, |authorization| {
                let mut request = authorized(self.registry.agent.post(&url), authorization);
                if let Some((digest, from)) = mount {
                    request = request.query("mount", digest).query("from", from);
                }
                request
                    .send_empty()
                    .map_err(|e| self.transport_error(START_UPLOAD, timeout, e))
            })?;
        if response.status().as_u16() == 201 && mount.is_some() {
            return Ok(Mount::Mounted);
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .with_context(|| {
                format!(
                    "registry {} opened an upload without a Location",
                    self.registry.host
                )
            })?;
        Ok(Mount::Upload(self.absolute(location)?))
    }

    /// Uploads a blob of `size` bytes whole (`PUT <location>?digest=`), read from the start by
    /// `body` for each try, starting a new upload session for each retry, since a broken one
    /// cannot be resumed reliably; a try is at most that `POST` and the `PUT`, so a registry that
    /// stops answering fails within the retry policy's bound. `progress` hears the bytes sent so
    /// far.
    pub(crate) fn upload<'b>(
        &self,
        digest: &Digest,
        size: u64,
        body: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send + 'b>> + Sync),
        first: Mount,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let what = "PUT of a blob";
        let timeout = self.registry.timeout;
        let deadline = upload_deadline(timeout, size);
        let mut session = Some(first);
        self.registry.with_retries(what, self.report, || {
            let location = match session.take() {
                Some(Mount::Upload(location)) => location,
                _ => self.open_upload()?,
            };
            let url = with_digest(&location, digest);
            // Read from the start again when a renewed token sends it again.
            self.exchange(what, &[201, 204], deadline, &url, |authorization| {
                progress(0);
                let reader = body().map_err(|e| {
                    RequestError::from(anyhow!("could not read blob {digest} to upload it: {e}"))
                })?;
                let mut body = Counted {
                    reader,
                    sent: 0,
                    progress,
                };
                authorized(self.registry.agent.put(&url), authorization)
                    .config()
                    .timeout_per_call(Some(deadline))
                    .timeout_per_write(Some(timeout))
                    .build()
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", size.to_string())
                    .send(ureq::SendBody::from_reader(&mut body))
                    .map_err(|e| self.transport_error(what, deadline, e))
            })
            .map(drop)
        })
    }

    /// Opens an upload (no mount): where its bytes go.
    fn open_upload(&self) -> Result<String, RequestError> {
        match self.try_start_upload(None)? {
            Mount::Upload(location) => Ok(location),
            Mount::Mounted => unreachable!("no mount was asked for"),
        }
    }

    /// Opens an upload and sends a blob as its bytes come, in one `PATCH` whose body has no
    /// length (chunked, as `docker push` sends layers): for a blob still being compressed,
    /// whose digest is known only at its end. A body read as it is made cannot be sent again,
    /// so there are no retries, nor a second try with a renewed token; when this fails, the
    /// caller uploads the blob whole. `size` is at most the blob's size, for the time limit.
    /// Gives where to finish the upload.
    pub(crate) fn stream_upload(&self, body: &mut (dyn Read + Send), size: u64) -> Result<String> {
        let location = self
            .registry
            .with_retries(START_UPLOAD, self.report, || self.open_upload())?;
        let what = "PATCH of a blob";
        let timeout = self.registry.timeout;
        let deadline = upload_deadline(timeout, size);
        let authorization = self.authorization(&location);
        let response = authorized(
            self.registry.agent.patch(&location),
            authorization.as_deref(),
        )
        .config()
        .timeout_per_call(Some(deadline))
        .timeout_per_write(Some(timeout))
        .build()
        .header("Content-Type", "application/octet-stream")
        .send(ureq::SendBody::from_reader(body))
        .map_err(|e| self.transport_error(what, deadline, e))
        .and_then(|response| self.answered(what, &[202], deadline, response))
        .map_err(|e| anyhow!("{e}"))?;
        let next = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .with_context(|| {
                format!(
                    "registry {} took a blob's bytes without saying where the upload goes on",
                    self.registry.host
                )
            })?;
        self.absolute(next)
    }

    /// Ends an upload [`Self::stream_upload`] sent: `PUT <location>?digest=` with no body; the
    /// registry checks the digest.
    pub(crate) fn finish_upload(&self, location: &str, digest: &Digest) -> Result<()> {
        let url = with_digest(location, digest);
        self.send("PUT of a blob", &[201, 204], &url, |authorization| {
            authorized(self.registry.agent.put(&url), authorization)
                .header("Content-Type", "application/octet-stream")
                .send_empty()
        })
        .map(drop)
    }

    /// [`Session::put_manifest`] of a manifest blob, under `tag` (or its digest).
    pub(crate) fn put(&self, tag: &str, manifest: &crate::image::Blob) -> Result<Option<String>> {
        let media_type = manifest.descriptor().media_type().to_string();
        self.put_manifest(tag, &media_type, manifest.data(), manifest.digest())
    }

    /// `PUT /v2/<name>/manifests/<tag>` with `bytes` as they are, and checks that the registry
    /// computed the same digest. Gives the `OCI-Subject` header, which a registry with the
    /// referrers API sets for a manifest with a `subject`.
    pub(crate) fn put_manifest(
        &self,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
        digest: &Digest,
    ) -> Result<Option<String>> {
        let url = self.url(&format!("manifests/{tag}"));
        let response = self.send("PUT of the manifest", &[201, 200], &url, |authorization| {
            authorized(self.registry.agent.put(&url), authorization)
                .header("Content-Type", media_type)
                .send(bytes)
        })?;
        if let Some(theirs) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && theirs != digest.to_string()
        {
            bail!(
                "registry {} stored the manifest of {}:{tag} as {}, not {digest}",
                self.registry.host,
                self.repository,
                quoted(theirs)
            );
        }
        let subject = response
            .headers()
            .get("oci-subject")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(subject)
    }

    /// `GET /v2/<name>/<path>` accepting `accept`: the status (one of `expected`), the
    /// `Content-Type`, and the body, at most `limit` bytes, with the registry's retries.
    ///
    /// The call has the registry's timeout, plus, for a large answer, the time `limit` bytes
    /// take at the slowest link we allow for, as uploads do.
    pub(super) fn fetch(
        &self,
        what: &str,
        path: &str,
        accept: &str,
        expected: &[u16],
        limit: u64,
    ) -> Result<(u16, Option<String>, Vec<u8>)> {
        let url = self.url(path);
        let host = &self.registry.host;
        let deadline = upload_deadline(self.registry.timeout, limit);
        self.registry.with_retries(what, self.report, || {
            let response = self.call(what, &url, |authorization| {
                authorized(self.registry.agent.get(&url), authorization)
                    .config()
                    .timeout_per_call(Some(deadline))
                    .build()
                    .header("Accept", accept)
                    .call()
                    .map_err(|e| self.transport_error(what, deadline, e))
            })?;
            let mut response = self.check(what, expected, response)?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response
                .body_mut()
                .with_config()
                .limit(limit)
                .read_to_vec()
                .map_err(|error| {
                    RequestError::transient(format!(
                        "registry {host} broke off its answer to {what}: {}",
                        one_line(&error.to_string(), WORDS_SHOWN)
                    ))
                })?;
            Ok((status, content_type, body))
        })
    }
}

/// A request body that reports how much of it was sent.
struct Counted<'a, 'b> {
    reader: Box<dyn Read + Send + 'b>,
    sent: u64,
    progress: &'a (dyn Fn(u64) + Sync),
}

impl Read for Counted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.sent += n as u64;
        (self.progress)(self.sent);
        Ok(n)
    }
}

/// `request` with `authorization`, if it has one.
fn authorized<B>(
    request: ureq::RequestBuilder<B>,
    authorization: Option<&str>,
) -> ureq::RequestBuilder<B> {
    match authorization {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
}

/// An upload's `location` with the `digest=` that ends it.
fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}
