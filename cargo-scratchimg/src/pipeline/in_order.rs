//! Work on several images at once that reads as if it ran one after another: each image runs
//! on one of a few threads with what it says held back, and what they say, and their results,
//! come in the images' order. An image that fails stops the others from starting, and the
//! error is that of the first image in order that failed; what images after it said is not
//! told, as a run one after another would not have got to them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::report::{Capture, Reporter};
use crate::util::lock;

/// `work` on each of `items`, on up to `jobs` threads: the results in the items' order, what
/// each said told to `report` in that order, as soon as the items before it are done.
pub(crate) fn each_in_order<T: Send, R: Send>(
    items: Vec<T>,
    jobs: usize,
    report: &dyn Reporter,
    work: impl Fn(T, &dyn Reporter) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let count = items.len();
    if jobs <= 1 || count <= 1 {
        return items.into_iter().map(|item| work(item, report)).collect();
    }
    let queue = Mutex::new(items.into_iter().enumerate().collect::<VecDeque<_>>());
    let done: Vec<Mutex<Option<Result<R>>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let said = Mutex::new(Said {
        next: 0,
        held: (0..count).map(|_| None).collect(),
        stopped: false,
    });
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(count) {
            scope.spawn(|| {
                loop {
                    let next = lock(&queue).pop_front();
                    let Some((index, item)) = next.filter(|_| !failed.load(Ordering::Relaxed))
                    else {
                        return;
                    };
                    let held = Capture::new(report.verbosity());
                    let result = work(item, &held);
                    let failure = result.is_err();
                    failed.fetch_or(failure, Ordering::Relaxed);
                    *lock(&done[index]) = Some(result);
                    lock(&said).hold(index, (held, failure), report);
                }
            });
        }
    });
    let mut results = Vec::with_capacity(count);
    for slot in done {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(result) => results.push(result?),
            // Not started: an image before it failed, and that error came first.
            None => unreachable!("an image was left undone though none before it failed"),
        }
    }
    Ok(results)
}

/// What the images said, and whether each failed, held until those before them have been said.
struct Said {
    next: usize,
    held: Vec<Option<(Capture, bool)>>,
    /// An image failed and was said: nothing after it is.
    stopped: bool,
}

impl Said {
    fn hold(&mut self, index: usize, held: (Capture, bool), report: &dyn Reporter) {
        self.held[index] = Some(held);
        while !self.stopped {
            let Some((held, failed)) = self.held.get_mut(self.next).and_then(Option::take) else {
                return;
            };
            held.replay(report);
            self.stopped = failed;
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verbosity;

    /// Items that finish out of order are said, and given back, in order.
    #[test]
    fn results_and_what_is_said_come_in_order() {
        let report = Capture::new(Verbosity::Normal);
        let items: Vec<u64> = (0..8).collect();
        let results = each_in_order(items, 4, &report, |i, report| {
            // The first items take longest.
            std::thread::sleep(std::time::Duration::from_millis(40 - 5 * i));
            report.status("Packing", &i);
            report.status("Packed", &i);
            Ok(i * 10)
        })
        .unwrap();
        assert_eq!(results, [0, 10, 20, 30, 40, 50, 60, 70]);
        let said: Vec<String> = report.statuses("Packing");
        assert_eq!(said, ["0", "1", "2", "3", "4", "5", "6", "7"]);
        let verbs: Vec<String> = report
            .events()
            .into_iter()
            .map(|e| match e {
                crate::report::Event::Status { verb, .. } => verb,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(verbs.chunks(2).all(|pair| pair == ["Packing", "Packed"]));
    }

    /// The first failure in order is the error, no item starts after a failure, and what
    /// items after it said is not told: as one after another, up to the failure.
    #[test]
    fn the_first_failure_in_order_is_the_error() {
        let report = Capture::new(Verbosity::Normal);
        let started = std::sync::atomic::AtomicUsize::new(0);
        let error = each_in_order((0..64).collect(), 2, &report, |i: u64, report| {
            report.status("Packing", &i);
            started.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(if i == 2 {
                30
            } else {
                1
            }));
            match i {
                2 | 3 => anyhow::bail!("item {i} failed"),
                _ => Ok(i),
            }
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "item 2 failed");
        assert!(started.into_inner() < 64, "later items did not start");
        assert_eq!(report.statuses("Packing"), ["0", "1", "2"]);
    }
}
