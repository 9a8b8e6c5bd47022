//! Training memory: a budget in bytes (`customer_value.max_training_memory`) checked before and
//! while rows are read, and fallible allocation of the big buffers, so that running out of
//! memory is an error (53200) — never an allocation failure that aborts the backend and makes
//! the postmaster restart every connection.

use super::error::{EngineError, ErrorKind, Result};

/// Bytes one value of the training table is counted for: 16 as read (a value and its NULL
/// flag), then 8 encoded while the raw column is released, 8 for the training and holdout
/// copies, and the working memory of the fits (trees' indices, gradients, the boosting
/// library's own matrix). Measured peaks on 10 features (scripts/drills/memory.sh, README):
/// linear 33 bytes per value, gbm 42 — the hungriest sets the count.
pub const BYTES_PER_VALUE: u64 = 48;

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
    if v.len() < v.capacity() {
        return Ok(());
    }
    v.try_reserve(1)
        .map_err(|_| out_of_memory(what, v.len() + 1, std::mem::size_of::<T>()))
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

#[cfg(test)]
mod tests {
    use super::*;

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
