//! How the library says what it is doing: a small trait that [`crate::Shell`] implements for
//! the terminal and [`Capture`] for tests. Library code never prints.

use std::fmt::Display;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// How much to say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

/// Where status lines, warnings, progress and results go. Shared by the threads of a run.
pub trait Reporter: Sync {
    fn verbosity(&self) -> Verbosity;
    /// A cargo-style status line, `   Packing base: …`; hidden by `-q`.
    fn status(&self, verb: &str, message: &dyn Display);
    /// A status line for `-v` alone; `message` is only made when it is shown.
    fn verbose(&self, verb: &str, message: &dyn Fn() -> String);
    fn warn(&self, message: &dyn Display);
    /// A progress bar for `total` bytes, or `None` where bars are not drawn (no terminal, `-q`,
    /// `-v`): the caller then reports the end with a status line.
    fn progress(&self, verb: &str, label: &str, total: u64) -> Option<Box<dyn Progress>>;
    /// What a run produced for one image, as soon as it is published: its path and pushed
    /// references (or the JSON object) on stdout.
    fn result(&self, outcome: &Outcome);
}

/// One progress bar.
pub trait Progress: Send + Sync {
    fn set(&self, done: u64);
    /// How a progress bar ends.
    fn finish(&self, end: ProgressEnd);
}

/// How the work a progress bar shows ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEnd {
    /// Done: the bar stays, full.
    Done,
    /// Not needed after all (the blob was there already): the bar goes.
    Skipped,
    /// Failed: the bar stays where it stopped.
    Failed,
}

/// A reporter that keeps everything, for tests of the library.
#[derive(Debug, Default)]
pub struct Capture {
    verbosity: Verbosity,
    events: Mutex<Vec<Event>>,
}

/// One thing a [`Capture`] was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Status { verb: String, message: String },
    Verbose { verb: String, message: String },
    Warning(String),
    Result(Box<Outcome>),
}

impl Capture {
    pub fn new(verbosity: Verbosity) -> Capture {
        Capture {
            verbosity,
            events: Mutex::default(),
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The messages of the status lines with verb `verb`, in order.
    pub fn statuses(&self, verb: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Status { verb: v, message } if v == verb => Some(message),
                _ => None,
            })
            .collect()
    }

    /// Says everything it was told to `to`, in order.
    pub(crate) fn replay(self, to: &dyn Reporter) {
        let events = self.events.into_inner().unwrap_or_else(|e| e.into_inner());
        for event in events {
            match event {
                Event::Status { verb, message } => to.status(&verb, &message),
                Event::Verbose { verb, message } => to.verbose(&verb, &|| message.clone()),
                Event::Warning(message) => to.warn(&message),
                Event::Result(outcome) => to.result(&outcome),
            }
        }
    }

    fn push(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}

impl Reporter for Capture {
    fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    fn status(&self, verb: &str, message: &dyn Display) {
        self.push(Event::Status {
            verb: verb.to_string(),
            message: message.to_string(),
        });
    }

    fn verbose(&self, verb: &str, message: &dyn Fn() -> String) {
        if self.verbosity >= Verbosity::Verbose {
            self.push(Event::Verbose {
                verb: verb.to_string(),
                message: message(),
            });
        }
    }

    fn warn(&self, message: &dyn Display) {
        self.push(Event::Warning(message.to_string()));
    }

    fn progress(&self, _: &str, _: &str, _: u64) -> Option<Box<dyn Progress>> {
        None
    }

    fn result(&self, outcome: &Outcome) {
        self.push(Event::Result(Box::new(outcome.clone())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_keeps_what_its_verbosity_shows() {
        let capture = Capture::new(Verbosity::Normal);
        capture.status("Packing", &"base");
        capture.verbose("Cache", &|| panic!("not made unless shown"));
        capture.warn(&"careful");
        assert_eq!(capture.statuses("Packing"), ["base"]);
        assert_eq!(capture.events().len(), 2);
    }
}
