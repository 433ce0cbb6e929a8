//! A bounded pool of scoped threads for the manager's per-partition work at open and
//! close (Kafka's `num.recovery.threads.per.data.dir`).
//!
//! Recovery is CPU work (CRC checks) and I/O (reads of cold segments, fsyncs of
//! rebuilt indexes); a handful of threads overlaps both, while one thread per partition
//! would start thousands. The threads live only for the call.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `work` on every item with at most `threads` threads and returns the results in
/// item order. After an item fails no further item starts (those running finish), and
/// the error of the first failed item in item order is returned, so the answer does not
/// depend on thread timing when only one item is broken. A thread that cannot be started
/// (the process is out of threads or memory) stops the pool the same way.
pub(crate) fn map<T, R, E>(
    items: &[T],
    threads: usize,
    name: &str,
    work: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send + From<std::io::Error>,
{
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(&work).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R, E>>>> =
        Mutex::new(std::iter::repeat_with(|| None).take(items.len()).collect());
    let spawned = std::thread::scope(|scope| {
        for i in 0..threads {
            let (next, failed, results, work) = (&next, &failed, &results, &work);
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn_scoped(scope, move || {
                    while !failed.load(Ordering::SeqCst) {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(item) = items.get(index) else {
                            return;
                        };
                        let result = work(item);
                        if result.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        results.lock().unwrap_or_else(|p| p.into_inner())[index] = Some(result);
                    }
                });
            if let Err(e) = thread {
                failed.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
    });
    spawned?;
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(items.len());
    for result in results {
        match result {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => return Err(e),
            // Only items after a failure are skipped, and the failure comes first.
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// An item's failure in the tests: the item.
    #[derive(Debug, PartialEq)]
    struct Failed(u32);

    impl From<std::io::Error> for Failed {
        fn from(_: std::io::Error) -> Self {
            Failed(u32::MAX)
        }
    }

    #[test]
    fn results_come_back_in_item_order_whatever_the_thread_count() {
        let items: Vec<u32> = (0..500).collect();
        for threads in [0, 1, 2, 7, 1000] {
            let out = map(&items, threads, "test", |i| Ok::<_, Failed>(i * 2)).unwrap();
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(
            map(&[] as &[u32], 4, "test", |i| Ok::<_, Failed>(*i))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn no_more_than_the_bound_run_at_once() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<u32> = (0..64).collect();
        map(&items, 3, "test", |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::yield_now();
            running.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, Failed>(())
        })
        .unwrap();
        assert!(most.load(Ordering::SeqCst) <= 3);
    }

    #[test]
    fn the_first_failing_item_in_order_is_reported() {
        let items: Vec<u32> = (0..200).collect();
        let fail = |i: &u32| {
            if *i == 10 || *i == 150 {
                Err(Failed(*i))
            } else {
                Ok(*i)
            }
        };
        // Items are handed out in order and a started item always finishes, so 10 has
        // its result even when 150 fails first.
        for _ in 0..20 {
            assert_eq!(map(&items, 4, "test", fail), Err(Failed(10)));
        }
        let started = AtomicUsize::new(0);
        let result = map(&items, 1, "test", |i| {
            started.fetch_add(1, Ordering::SeqCst);
            fail(i)
        });
        assert_eq!(result, Err(Failed(10)));
        assert_eq!(
            started.load(Ordering::SeqCst),
            11,
            "nothing starts after a failure"
        );
    }
}
