//! The one timestamp of a build: `SOURCE_DATE_EPOCH`, else the last commit that touched the
//! package, else the Unix epoch. Never the wall clock, so rebuilds give the same bytes.

use anyhow::{Context, Result, bail};

/// Where the build's timestamp came from, for `-v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateSource {
    SourceDateEpoch,
    GitCommit,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceDate {
    pub seconds: u64,
    pub source: DateSource,
}

impl SourceDate {
    /// `SOURCE_DATE_EPOCH`'s value when it is set to something: an empty one is unset.
    pub(crate) fn set(env: Option<&str>) -> Option<&str> {
        env.filter(|v| !v.trim().is_empty())
    }

    /// `env` is the value of `SOURCE_DATE_EPOCH`, read by the caller at the edge;
    /// `last_commit_time` that of the last commit touching the package ([`crate::git`]).
    pub(crate) fn resolve(env: Option<&str>, last_commit_time: Option<u64>) -> Result<SourceDate> {
        if let Some(value) = SourceDate::set(env) {
            let Ok(seconds) = value.trim().parse::<u64>() else {
                bail!(
                    "SOURCE_DATE_EPOCH is `{value}`, not a number of seconds\n\
                     help: set it to a Unix timestamp, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)"
                );
            };
            return Ok(SourceDate {
                seconds,
                source: DateSource::SourceDateEpoch,
            });
        }
        Ok(match last_commit_time {
            Some(seconds) => SourceDate {
                seconds,
                source: DateSource::GitCommit,
            },
            None => SourceDate {
                seconds: 0,
                source: DateSource::Default,
            },
        })
    }

    pub(crate) fn timestamp(&self) -> Result<jiff::Timestamp> {
        let seconds = i64::try_from(self.seconds).ok();
        seconds
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .with_context(|| format!("source date {} is out of range", self.seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_and_bad_values_are_errors() {
        let date = SourceDate::resolve(Some("1700000000"), Some(1_600_000_000)).unwrap();
        assert_eq!(
            date,
            SourceDate {
                seconds: 1_700_000_000,
                source: DateSource::SourceDateEpoch
            }
        );
        assert_eq!(
            date.timestamp().unwrap().to_string(),
            "2023-11-14T22:13:20Z"
        );
        let err = SourceDate::resolve(Some("yesterday"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SOURCE_DATE_EPOCH is `yesterday`"), "{err}");
    }

    #[test]
    fn then_the_last_commit_then_the_epoch() {
        assert_eq!(
            SourceDate::resolve(None, Some(1_600_000_000)).unwrap(),
            SourceDate {
                seconds: 1_600_000_000,
                source: DateSource::GitCommit
            }
        );
        assert_eq!(
            SourceDate::resolve(Some(" "), None).unwrap(),
            SourceDate {
                seconds: 0,
                source: DateSource::Default
            }
        );
    }
}
