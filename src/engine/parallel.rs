//! Work over customers split across the training's threads (`customer_value.training_threads`).
//!
//! Sums ([`map_chunks`]) are split by the data alone — chunks of [`CHUNK`] customers, summed in
//! chunk order — so one thread and several give the same bits; items computed each on its own
//! ([`map_each`]) may be split any way. The helper threads are scoped to one call, start
//! with every signal blocked (Postgres' handlers are written for the backend's thread) and only
//! compute; the calling thread takes its share too and polls nothing: a call lasts milliseconds,
//! and the optimiser checks for cancel between calls.

use std::ops::Range;

/// Customers per chunk: below this, one chunk, exactly the serial loop.
pub const CHUNK: usize = 65_536;

/// The chunks of `0..n`.
pub fn chunks(n: usize) -> Vec<Range<usize>> {
    (0..n.div_ceil(CHUNK).max(1))
        .map(|k| k * CHUNK..((k + 1) * CHUNK).min(n))
        .collect()
}

/// `work` on every chunk of `0..n`, the results in chunk order, on up to `threads` threads. A
/// helper thread that cannot start leaves its chunks to the calling thread.
pub fn map_chunks<R: Send>(
    n: usize,
    threads: usize,
    work: &(dyn Fn(Range<usize>) -> R + Sync),
) -> Vec<R> {
    map_ranges(chunks(n), threads, work)
}

/// `work` on every index of `0..n`, the results in index order, on up to `threads` threads: for
/// items computed each on its own (nothing summed across them), which any split gives the same
/// bits. Split into a few ranges per thread, so that uneven items even out.
pub fn map_each<R: Send>(n: usize, threads: usize, work: &(dyn Fn(usize) -> R + Sync)) -> Vec<R> {
    let threads = threads.max(1);
    let size = n.div_ceil(4 * threads).max(1);
    let ranges: Vec<Range<usize>> = (0..n.div_ceil(size).max(1))
        .map(|k| k * size..((k + 1) * size).min(n))
        .collect();
    let parts = map_ranges(ranges, threads, &|range| {
        range.map(work).collect::<Vec<R>>()
    });
    parts.into_iter().flatten().collect()
}

/// `work` on every range, the results in range order, on up to `threads` threads (a sum over
/// ranges cut by the data alone, added in order, is the same for any number of threads).
pub(crate) fn map_ranges<R: Send>(
    ranges: Vec<Range<usize>>,
    threads: usize,
    work: &(dyn Fn(Range<usize>) -> R + Sync),
) -> Vec<R> {
    let threads = threads.clamp(1, ranges.len().max(1));
    if threads == 1 {
        return ranges.into_iter().map(work).collect();
    }
    let share = |t: usize| -> Vec<(usize, R)> {
        (t..ranges.len())
            .step_by(threads)
            .map(|k| (k, work(ranges[k].clone())))
            .collect()
    };
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .map(|t| {
                (
                    t,
                    spawn_scoped_with_signals_blocked(scope, move || share(t)),
                )
            })
            .collect();
        let mut results = share(0);
        for (t, helper) in helpers {
            match helper.map(|h| h.join()) {
                Ok(Ok(part)) => results.extend(part),
                // a helper that could not start: its share here
                Err(_) => results.extend(share(t)),
                // a panic in a helper is a bug: the same panic on the calling thread
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    results.sort_by_key(|(k, _)| *k);
    results.into_iter().map(|(_, r)| r).collect()
}

/// A scoped helper thread, started with every signal blocked (see [`with_signals_blocked`]).
fn spawn_scoped_with_signals_blocked<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    job: impl FnOnce() -> T + Send + 'scope,
) -> std::io::Result<std::thread::ScopedJoinHandle<'scope, T>> {
    with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("customer_value fit".into())
            .spawn_scoped(scope, crate::engine::memory::on_caller_account(job))
    })
}

/// Runs `spawn`, which starts threads, with every signal blocked in the calling thread, and
/// restores its mask right after: the threads inherit the blocked mask, so they (and any thread
/// they start) never run one of Postgres' signal handlers, which are written for the backend's
/// own thread. Every thread the engine starts goes through here.
pub(crate) fn with_signals_blocked<T>(spawn: impl FnOnce() -> T) -> T {
    // SAFETY: sigfillset/pthread_sigmask on local, initialised sets; the old mask is restored
    // before returning (spawning a thread does not unwind)
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        let spawned = spawn();
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        spawned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_range_once() {
        assert_eq!(chunks(0), vec![0..0]);
        assert_eq!(chunks(10), vec![0..10]);
        let c = chunks(2 * CHUNK + 5);
        assert_eq!(
            c,
            vec![0..CHUNK, CHUNK..2 * CHUNK, 2 * CHUNK..2 * CHUNK + 5]
        );
    }

    #[test]
    fn every_thread_count_gives_the_same_sums_in_order() {
        let n = 5 * CHUNK + 123;
        let value = |i: usize| ((i * 7919) % 1000) as f64 / 7.0;
        let work = |r: Range<usize>| r.clone().map(value).sum::<f64>();
        let one = map_chunks(n, 1, &work);
        assert_eq!(one.len(), 6);
        for threads in [2, 3, 8, 64] {
            let many = map_chunks(n, threads, &work);
            assert_eq!(
                many.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                one.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn each_item_once_in_order_on_any_thread_count() {
        for n in [0, 1, 7, 100, 1_001] {
            let want: Vec<usize> = (0..n).map(|i| i * i).collect();
            for threads in [1, 2, 3, 8] {
                assert_eq!(map_each(n, threads, &|i| i * i), want, "{n} on {threads}");
            }
        }
    }

    #[test]
    fn helpers_run_with_signals_blocked() {
        let blocked = map_chunks(2 * CHUNK, 2, &|r: Range<usize>| {
            // SAFETY: reads this thread's mask into a local set
            unsafe {
                let mut mask: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
                (r.start, libc::sigismember(&mask, libc::SIGINT) == 1)
            }
        });
        // the second chunk ran on the helper
        assert_eq!(blocked[1], (CHUNK, true));
    }
}
