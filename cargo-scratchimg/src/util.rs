//! Two small helpers every stage uses the same way.

/// The items in their first order, each once.
pub(crate) fn unique<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut unique = Vec::new();
    for item in items {
        if !unique.contains(&item) {
            unique.push(item);
        }
    }
    unique
}

/// The mutex's value, also when a thread panicked while holding it: what it guards stays
/// usable (a list, a slot), and the panic goes on in its own thread.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `work` on each of `items`, on up to `at_once` threads, each taking the next item as it is
/// free: the results in the items' order.
pub(crate) fn map_at_once<T: Sync, R: Send>(
    items: &[T],
    at_once: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..at_once.min(items.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(index) else {
                        return;
                    };
                    let result = work(item);
                    lock(&done).push((index, result));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

/// The result of a scoped thread; its panic, if it panicked, goes on in this thread.
pub(crate) fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    /// Items that finish out of order come back in order, each once.
    #[test]
    fn map_at_once_keeps_the_items_order() {
        let items: Vec<u64> = (0..20).collect();
        let done = super::map_at_once(&items, 4, |i| {
            std::thread::sleep(std::time::Duration::from_millis(20 - i));
            i * 10
        });
        assert_eq!(done, items.iter().map(|i| i * 10).collect::<Vec<_>>());
        assert!(super::map_at_once(&[] as &[u64], 4, |i| *i).is_empty());
    }

    #[test]
    fn unique_keeps_the_first_order() {
        assert_eq!(super::unique([3, 1, 3, 2, 1]), [3, 1, 2]);
    }
}
