//! Training memory: a budget in bytes (`customer_value.max_training_memory`) checked before and
//! while rows are read, and fallible allocation of the big buffers, so that running out of
//! memory is an error (53200) — never an allocation failure that aborts the backend and makes
//! the postmaster restart every connection.

use std::alloc::{GlobalAlloc, Layout};

use super::big_blocks::BigBlocks;
use super::error::{EngineError, ErrorKind, Result};

/// Bytes one value of the training table is counted for: 8 as read (NULL as NaN), 8 in the
/// encoded matrix written while the raw columns are released, the holdout rows copied out of
/// it (the training rows stay in place), and the working memory of the fits (trees' indices,
/// gradients, the boosting library's bins). Measured heap peaks on 200k rows × 10 features, one
/// thread (`engine::train::lean_tests`, `CUSTOMER_VALUE_LEAN_ALGORITHMS`): random_forest 318
/// bytes per row (29 a value), ridge 294, linear 279, gbm 199 (18), mlp 197 — the hungriest
/// sets the count, with a fifth more for what a heap count does not see (allocator slack,
/// threads, Postgres' own memory).
pub const BYTES_PER_VALUE: u64 = 36;

/// Bytes of one customer of an RFM summary (its four values, count and target) while a CLV
/// model is fitted.
pub const BYTES_PER_CUSTOMER: u64 = 96;

/// The memory a training may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryBudget {
    pub bytes: u64,
}

impl MemoryBudget {
    /// No limit (engine tests; the Postgres layer always sets one).
    pub const UNLIMITED: MemoryBudget = MemoryBudget { bytes: u64::MAX };

    /// Refuses `rows` rows of `bytes_per_row` each when they would exceed the budget;
    /// `estimated` says whether `rows` is the planner's estimate (before reading) or counted.
    pub fn check_rows(&self, rows: u64, bytes_per_row: u64, estimated: bool) -> Result<()> {
        let needed = rows.saturating_mul(bytes_per_row);
        if needed <= self.bytes {
            return Ok(());
        }
        let rows_text = if estimated {
            format!("about {rows} rows (the planner's estimate)")
        } else {
            format!("{rows} rows read so far")
        };
        Err(EngineError::new(
            ErrorKind::OutOfMemory,
            format!(
                "training would need about {} MiB for {rows_text}, more than customer_value.max_training_memory ({} MiB)",
                needed / (1 << 20),
                self.bytes / (1 << 20)
            ),
        )
        .with_detail(format!(
            "Training holds the rows it reads in memory, about {bytes_per_row} bytes per row here."
        ))
        .with_hint("Train on a sample drawn where the rows are stored, e.g. options => '{\"sample\": 0.1}', fewer feature columns, or raise customer_value.max_training_memory if the server has the memory."))
    }
}

/// A vector of `n` copies of `value`, or a 53200 error naming `what` when the allocation fails.
pub fn try_filled<T: Clone>(n: usize, value: T, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| out_of_memory(what, n, std::mem::size_of::<T>()))?;
    v.resize(n, value);
    Ok(v)
}

/// An empty vector with room for `n` values, or a 53200 error naming `what`.
pub fn try_with_capacity<T>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| out_of_memory(what, n, std::mem::size_of::<T>()))?;
    Ok(v)
}

/// Room for one more value in `v` (amortised growth), or a 53200 error naming `what`.
#[inline]
pub fn try_grow<T>(v: &mut Vec<T>, what: &str) -> Result<()> {
    try_grow_by(v, 1, what)
}

/// Room for `n` more values in `v` (amortised growth), or a 53200 error naming `what`.
#[inline]
pub fn try_grow_by<T>(v: &mut Vec<T>, n: usize, what: &str) -> Result<()> {
    if v.capacity() - v.len() >= n {
        return Ok(());
    }
    v.try_reserve(n)
        .map_err(|_| out_of_memory(what, v.len() + n, std::mem::size_of::<T>()))
}

/// Checks that `bytes` more could be allocated now, for a library's working memory, which it
/// allocates without a way to fail cleanly (an allocation failure there aborts the backend and
/// restarts every connection): maps and unmaps them at once, untouched, or returns a 53200
/// error naming `what`. Where the kernel overcommits this always passes, and the training
/// budget (`customer_value.max_training_memory`) is the guard; under an address-space or strict
/// commit limit it turns the library's failure into an error before the library runs.
pub fn check_headroom(bytes: u64, what: &str) -> Result<()> {
    let refused = || out_of_memory(what, usize::try_from(bytes).unwrap_or(usize::MAX), 1);
    let Ok(size) = usize::try_from(bytes) else {
        return Err(refused());
    };
    if size == 0 {
        return Ok(());
    }
    let layout = Layout::from_size_align(size, 16).map_err(|_| refused())?;
    // the allocator itself, not the test build's counting wrapper: nothing is held
    // SAFETY: the layout is not empty; the block is freed at once with the same layout and
    // never read or written
    let block = unsafe { BigBlocks.alloc(layout) };
    if block.is_null() {
        return Err(refused());
    }
    unsafe { BigBlocks.dealloc(block, layout) };
    Ok(())
}

fn out_of_memory(what: &str, n: usize, size: usize) -> EngineError {
    EngineError::new(
        ErrorKind::OutOfMemory,
        format!(
            "out of memory allocating {} MiB for {what}",
            (n as u64).saturating_mul(size as u64) / (1 << 20)
        ),
    )
    .with_hint("Train on a sample (options => '{\"sample\": 0.1}') or fewer feature columns, or lower customer_value.max_training_memory so that training stops before the system runs out.")
}

/// Wraps `job`, to be run on another thread, so that the test build's allocation accounting
/// ([`tracking`]) counts that thread's allocations with the caller's (the release build runs
/// `job` as it is).
#[cfg(not(test))]
pub fn on_caller_account<T>(job: impl FnOnce() -> T + Send) -> impl FnOnce() -> T + Send {
    job
}

/// Wraps `job`, to be run on another thread, so that the test build's allocation accounting
/// ([`tracking`]) counts that thread's allocations with the caller's.
#[cfg(test)]
pub fn on_caller_account<T>(job: impl FnOnce() -> T + Send) -> impl FnOnce() -> T + Send {
    let scope = tracking::Scope::current();
    move || {
        scope.enter();
        job()
    }
}

/// A thread pool's start handler that puts its threads on the caller's account in the test
/// build ([`on_caller_account`]); nothing in the release build.
#[cfg(not(test))]
pub fn pool_threads_on_caller_account() -> impl Fn(usize) + Send + Sync + 'static {
    |_| {}
}

/// A thread pool's start handler that puts its threads on the caller's account in the test
/// build ([`on_caller_account`]).
#[cfg(test)]
pub fn pool_threads_on_caller_account() -> impl Fn(usize) + Send + Sync + 'static {
    let scope = tracking::Scope::current();
    move |_| scope.enter()
}

/// Test build only: the crate's global allocator counts the bytes allocated and not yet freed,
/// per measurement ([`tracking::measure`]) and process-wide, with their peaks. A measurement
/// follows the work onto the threads it starts through [`on_caller_account`] and
/// [`pool_threads_on_caller_account`], so tests running in parallel do not disturb it.
#[cfg(test)]
pub mod tracking {
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::Cell;

    use super::super::big_blocks::BigBlocks;
    use std::sync::atomic::{AtomicI64, Ordering};

    /// Bytes allocated and not yet freed, their peak in the current phase and overall.
    #[derive(Default)]
    struct Counters {
        current: AtomicI64,
        peak: AtomicI64,
        overall: AtomicI64,
    }

    impl Counters {
        fn add(&self, bytes: i64) {
            let now = self.current.fetch_add(bytes, Ordering::Relaxed) + bytes;
            self.peak.fetch_max(now, Ordering::Relaxed);
            self.overall.fetch_max(now, Ordering::Relaxed);
        }
    }

    static PROCESS: Counters = Counters {
        current: AtomicI64::new(0),
        peak: AtomicI64::new(0),
        overall: AtomicI64::new(0),
    };

    thread_local! {
        /// The measurement this thread's allocations count for (none: the process only).
        static SCOPE: Cell<Option<&'static Counters>> = const { Cell::new(None) };
    }

    /// The measurement a thread counts for, to carry to threads it starts.
    #[derive(Clone, Copy)]
    pub struct Scope(Option<&'static Counters>);

    impl Scope {
        pub fn current() -> Scope {
            Scope(SCOPE.try_with(Cell::get).ok().flatten())
        }

        pub fn enter(self) {
            let _ = SCOPE.try_with(|s| s.set(self.0));
        }
    }

    fn record(bytes: i64) {
        PROCESS.add(bytes);
        if let Ok(Some(scope)) = SCOPE.try_with(Cell::get) {
            scope.add(bytes);
        }
    }

    struct Counting;

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    // SAFETY: every call is forwarded unchanged to the release build's allocator; the counting only
    // reads and writes atomics and a const-initialised thread-local without a destructor, so
    // it never allocates itself.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = BigBlocks.alloc(layout);
            if !p.is_null() {
                record(layout.size() as i64);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = BigBlocks.alloc_zeroed(layout);
            if !p.is_null() {
                record(layout.size() as i64);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            BigBlocks.dealloc(ptr, layout);
            record(-(layout.size() as i64));
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = BigBlocks.realloc(ptr, layout, new_size);
            if !p.is_null() {
                record(new_size as i64 - layout.size() as i64);
            }
            p
        }
    }

    /// The peak of the bytes held at once by the running [`measure`]ment (on its thread and
    /// the threads it carried its account to) since it started or since the last call, which
    /// starts a new phase: the peak is reset to the bytes held now.
    pub fn phase_peak() -> u64 {
        let Scope(Some(counters)) = Scope::current() else {
            return 0;
        };
        let now = counters.current.load(Ordering::Relaxed);
        counters.peak.swap(now, Ordering::Relaxed).max(0) as u64
    }

    /// Runs `f`, counting the bytes it allocates and frees from zero (a measurement in a
    /// measurement counts for the inner one only); returns the peak and the process-wide peak
    /// over the same time (every test running meanwhile included, a cross-check for a test run
    /// alone).
    pub fn measure<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
        let counters: &'static Counters = Box::leak(Box::default());
        let outer = Scope::current();
        let process_start = PROCESS.current.load(Ordering::Relaxed);
        PROCESS.overall.store(process_start, Ordering::Relaxed);
        Scope(Some(counters)).enter();
        let out = f();
        outer.enter();
        let peak = counters.overall.load(Ordering::Relaxed).max(0) as u64;
        let process = (PROCESS.overall.load(Ordering::Relaxed) - process_start).max(0) as u64;
        (out, peak, process)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_is_checked_without_holding_it() {
        assert!(check_headroom(0, "nothing").is_ok());
        assert!(check_headroom(64 << 20, "64 MiB").is_ok());
        // more than any address space: refused by name, as an error
        let err = check_headroom(1 << 62, "a library's working memory").unwrap_err();
        assert_eq!(err.kind, ErrorKind::OutOfMemory);
        assert!(
            err.message.contains("for a library's working memory"),
            "{}",
            err.message
        );
        assert!(check_headroom(u64::MAX, "everything").is_err());
    }

    #[test]
    fn the_budget_refuses_rows_beyond_it_by_name() {
        let budget = MemoryBudget { bytes: 64 << 20 };
        assert!(budget.check_rows(1_000_000, 32, true).is_ok());
        let err = budget.check_rows(3_000_000, 32, false).unwrap_err();
        assert_eq!(err.kind, ErrorKind::OutOfMemory);
        assert!(
            err.message
                .contains("about 91 MiB for 3000000 rows read so far"),
            "{}",
            err.message
        );
        assert!(err.message.contains("(64 MiB)"), "{}", err.message);
        assert!(MemoryBudget::UNLIMITED
            .check_rows(u64::MAX, 32, true)
            .is_ok());
    }

    #[test]
    fn impossible_allocations_are_errors_not_aborts() {
        let err = try_filled(usize::MAX / 8, 0.0f64, "the feature matrix").unwrap_err();
        assert_eq!(err.kind, ErrorKind::OutOfMemory);
        assert!(
            err.message.contains("the feature matrix"),
            "{}",
            err.message
        );
        assert!(try_with_capacity::<f64>(usize::MAX / 4, "x").is_err());
        let mut v: Vec<u8> = Vec::new();
        assert!(try_grow(&mut v, "a column").is_ok());
        assert_eq!(try_filled(3, 1.5, "y").unwrap(), vec![1.5; 3]);
    }
}
