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

/// The result of a scoped thread; its panic, if it panicked, goes on in this thread.
pub(crate) fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_keeps_the_first_order() {
        assert_eq!(super::unique([3, 1, 3, 2, 1]), [3, 1, 2]);
    }
}
