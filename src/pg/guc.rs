//! Configuration parameters (GUCs), all under the reserved prefix `customer_value.`.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

/// `customer_value.model`: the model `customer_value(row)` uses when no model is given.
pub static DEFAULT_MODEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `customer_value.max_training_rows`: training and evaluation hold the rows they read in
/// memory; past this many rows they stop with a clear error instead of exhausting memory.
pub static MAX_TRAINING_ROWS: GucSetting<i32> = GucSetting::<i32>::new(20_000_000);

/// `customer_value.max_training_memory` (kB): the memory a training may use; checked against
/// the planner's row estimate before reading and as rows arrive (53200 past it).
pub static MAX_TRAINING_MEMORY: GucSetting<i32> = GucSetting::<i32>::new(4 * 1024 * 1024);

/// `customer_value.progress_interval`: seconds between progress NOTICEs of a long training
/// (rows read, step, elapsed); 0 turns them off.
pub static PROGRESS_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(10);

pub fn register() {
    GucRegistry::define_int_guc(
        c"customer_value.progress_interval",
        c"Seconds between progress NOTICEs of a long training run (0: none).",
        c"A training that reads or fits for longer than this reports rows read, step and elapsed time at this rate.",
        &PROGRESS_INTERVAL,
        0,
        86_400,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"customer_value.max_training_rows",
        c"Most rows train() and evaluate() read from a source.",
        c"They hold the rows in memory (about 8 bytes per value); past this they stop with an error. Sample larger tables (TABLESAMPLE).",
        &MAX_TRAINING_ROWS,
        10,
        i32::MAX,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"customer_value.max_training_memory",
        c"Most memory a training may use for the rows it reads.",
        c"Checked against the planner's row estimate before reading and as rows arrive (48 bytes per value); past it, training stops with an out-of-memory error (53200) instead of exhausting the server.",
        &MAX_TRAINING_MEMORY,
        1024,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_string_guc(
        c"customer_value.model",
        c"Model used by customer_value(row) and customer_tier(row) when no model is named.",
        c"A model name, or name@version for a pinned version. Empty: the only deployed model.",
        &DEFAULT_MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    unsafe { pg_sys::MarkGUCPrefixReserved(c"customer_value".as_ptr()) };
}

/// The training memory budget.
pub fn training_budget() -> crate::engine::memory::MemoryBudget {
    crate::engine::memory::MemoryBudget {
        bytes: MAX_TRAINING_MEMORY.get().max(0) as u64 * 1024,
    }
}

/// The configured default model, if set and not empty.
pub fn default_model() -> Option<String> {
    DEFAULT_MODEL
        .get()
        .and_then(|s| s.into_string().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
