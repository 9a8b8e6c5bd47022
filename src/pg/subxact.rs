//! Running a step in its own subtransaction, so that its failure can be *recorded* instead of
//! losing everything: the same mechanism as PL/pgSQL's `BEGIN … EXCEPTION` (an internal
//! subtransaction, rolled back on error). Cancellation is never swallowed: a cancel or
//! statement timeout rolls the step back and is re-raised, aborting the statement as the user
//! asked.

use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::{self, PgTryBuilder};
use pgrx::PgSqlErrorCode;

/// A failure caught from a step: SQLSTATE code and message (detail and hint appended).
#[derive(Debug, Clone)]
pub struct StepError {
    pub sqlstate: String,
    pub message: String,
}

fn step_error(caught: &CaughtError) -> StepError {
    let report = match caught {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
        CaughtError::RustPanic { ereport, .. } => ereport,
    };
    let mut message = report.message().to_string();
    if let Some(detail) = report.detail() {
        message.push_str(&format!(" (detail: {detail})"));
    }
    StepError {
        sqlstate: sqlstate_text(report.sql_error_code()),
        message,
    }
}

/// The five-character SQLSTATE (`MAKE_SQLSTATE` packs six bits per character).
pub fn sqlstate_text(code: PgSqlErrorCode) -> String {
    let packed = code as isize as u32;
    (0..5)
        .map(|i| char::from((((packed >> (6 * i)) & 0x3f) as u8) + b'0'))
        .collect()
}

fn is_cancel(caught: &CaughtError) -> bool {
    let report = match caught {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
        CaughtError::RustPanic { ereport, .. } => ereport,
    };
    report.sql_error_code() == PgSqlErrorCode::ERRCODE_QUERY_CANCELED
}

/// Runs `step` in an internal subtransaction: its effects are kept if it returns, undone if it
/// raises an error (which is returned). Cancellation is re-raised after the rollback.
pub fn run_in_subtransaction<T>(step: impl FnOnce() -> T) -> Result<T, StepError> {
    // SAFETY: the PL/pgSQL exception-block protocol (pl_exec.c, exec_stmt_block): remember the
    // memory context and resource owner, begin, and on either outcome release or roll back the
    // subtransaction and restore both.
    unsafe {
        let memory = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(memory);
        let restore = move || {
            pg_sys::MemoryContextSwitchTo(memory);
            pg_sys::CurrentResourceOwner = owner;
        };
        let outcome = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| Ok(step())))
            .catch_others(|caught| Err(Box::new(caught)))
            .execute();
        match outcome {
            Ok(value) => {
                pg_sys::ReleaseCurrentSubTransaction();
                restore();
                Ok(value)
            }
            Err(caught) => {
                pg_sys::MemoryContextSwitchTo(memory);
                pg_sys::RollbackAndReleaseCurrentSubTransaction();
                restore();
                if is_cancel(&caught) {
                    (*caught).rethrow();
                }
                Err(step_error(&caught))
            }
        }
    }
}
