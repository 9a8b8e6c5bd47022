//! A library call that panics must not reach the user as a panic: turn it into an engine error.
//! Only library code is wrapped, never code that calls back into Postgres (an interrupt check
//! unwinds on purpose and must not be caught here).

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{EngineError, ErrorKind, Result};

pub fn catch_library_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let why = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("unknown cause");
        EngineError::new(
            ErrorKind::FitFailed,
            format!("{what} training failed inside the model library: {why}"),
        )
    })
}
