//! Transient registry failures, and the bounded backoff that retries them.

use std::time::Duration;

use thiserror::Error;

use crate::report::Reporter;

/// Why one request failed: transient failures are worth another try, the rest are final.
#[derive(Debug, Error)]
pub enum RequestError {
    /// The connection dropped or failed, or the registry answered 429 or 5xx.
    #[error("{message}")]
    Transient {
        message: String,
        /// The registry's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error(transparent)]
    Final(#[from] anyhow::Error),
}

impl RequestError {
    pub fn transient(message: impl Into<String>) -> RequestError {
        RequestError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// How many times a request is tried, and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// The first wait; each next one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five tries within about four seconds: long enough for a registry behind a load balancer
    /// to recover, short enough that a dead one fails a CI job quickly.
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `attempt + 1` (1-based `attempt`), honouring `Retry-After` up to
    /// `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .base_delay
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(self.max_delay);
        retry_after.map_or(backoff, |after| after.min(self.max_delay))
    }

    /// The longest `run` takes when every try runs into `per_try` (a request's deadline) and no
    /// `Retry-After` asks for longer waits: the tries, and the backoff between them.
    #[cfg(test)]
    pub fn bound(&self, per_try: Duration) -> Duration {
        (1..self.attempts).fold(per_try.saturating_mul(self.attempts), |total, attempt| {
            total.saturating_add(self.delay(attempt, None))
        })
    }

    /// Runs `request` until it succeeds, fails finally, or has failed transiently `attempts`
    /// times; `on_retry` hears about each retry (attempt number and message).
    pub fn run<T>(
        &self,
        mut request: impl FnMut() -> Result<T, RequestError>,
        mut on_retry: impl FnMut(u32, &str),
    ) -> anyhow::Result<T> {
        let mut attempt = 1;
        loop {
            match request() {
                Ok(value) => return Ok(value),
                Err(RequestError::Final(error)) => return Err(error),
                Err(RequestError::Transient {
                    message,
                    retry_after,
                }) => {
                    if attempt >= self.attempts {
                        anyhow::bail!(
                            "{message} (gave up after {attempt} tries)\n\
                             help: check that the registry is up and reachable, then run the same \
                             command again: blobs already pushed are not sent again"
                        );
                    }
                    on_retry(attempt, &message);
                    std::thread::sleep(self.delay(attempt, retry_after));
                    attempt += 1;
                }
            }
        }
    }

    /// [`Self::run`], each retry of `what` said to `report` as a warning as it happens.
    pub(crate) fn run_reported<T>(
        &self,
        what: &str,
        report: &dyn Reporter,
        request: impl FnMut() -> Result<T, RequestError>,
    ) -> anyhow::Result<T> {
        self.run(request, |attempt, message| {
            report.warn(&format!(
                "{message}; retrying {what} (try {} of {})",
                attempt + 1,
                self.attempts
            ));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    #[test]
    fn transient_failures_are_retried_until_success() {
        let mut calls = 0;
        let mut retries = Vec::new();
        let value = instant(5)
            .run(
                || {
                    calls += 1;
                    match calls {
                        1 | 2 => Err(RequestError::transient(format!("reset {calls}"))),
                        _ => Ok(calls),
                    }
                },
                |attempt, message| retries.push(format!("{attempt}: {message}")),
            )
            .unwrap();
        assert_eq!(value, 3);
        assert_eq!(retries, ["1: reset 1", "2: reset 2"]);
    }

    #[test]
    fn retries_are_bounded() {
        let mut calls = 0;
        let error = instant(3)
            .run::<()>(
                || {
                    calls += 1;
                    Err(RequestError::transient("registry answered 503"))
                },
                |_, _| {},
            )
            .unwrap_err();
        assert_eq!(calls, 3);
        assert!(
            error
                .to_string()
                .starts_with("registry answered 503 (gave up after 3 tries)\nhelp: "),
            "{error}"
        );
    }

    #[test]
    fn final_failures_are_not_retried() {
        let mut calls = 0;
        let error = instant(5)
            .run::<()>(
                || {
                    calls += 1;
                    Err(anyhow::anyhow!("denied").into())
                },
                |_, _| {},
            )
            .unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(error.to_string(), "denied");
    }

    #[test]
    fn backoff_doubles_up_to_a_limit_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(policy.delay(1, None)), 250);
        assert_eq!(ms(policy.delay(2, None)), 500);
        assert_eq!(ms(policy.delay(3, None)), 1000);
        assert_eq!(ms(policy.delay(10, None)), 4000);
        assert_eq!(ms(policy.delay(1, Some(Duration::from_secs(2)))), 2000);
        assert_eq!(ms(policy.delay(1, Some(Duration::from_secs(60)))), 4000);
    }
}
