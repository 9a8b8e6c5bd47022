//! The one place where engine errors become Postgres errors: each [`ErrorKind`] maps to one
//! SQLSTATE, and message, detail and hint are passed through unchanged.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

use crate::engine::error::{EngineError, ErrorKind};

pub fn sqlstate(kind: ErrorKind) -> PgSqlErrorCode {
    use PgSqlErrorCode::*;
    match kind {
        ErrorKind::InvalidParameter => ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::UndefinedColumn => ERRCODE_UNDEFINED_COLUMN,
        ErrorKind::DatatypeMismatch => ERRCODE_DATATYPE_MISMATCH,
        ErrorKind::NotSupported => ERRCODE_FEATURE_NOT_SUPPORTED,
        ErrorKind::InsufficientData => ERRCODE_DATA_EXCEPTION,
        ErrorKind::NonFiniteValue => ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        ErrorKind::DataCorrupted => ERRCODE_DATA_CORRUPTED,
        ErrorKind::UndefinedObject => ERRCODE_UNDEFINED_OBJECT,
        ErrorKind::UndefinedTable => ERRCODE_UNDEFINED_TABLE,
        ErrorKind::DuplicateColumn => ERRCODE_DUPLICATE_COLUMN,
        ErrorKind::NullValue => ERRCODE_NULL_VALUE_NOT_ALLOWED,
        ErrorKind::TooManyRows => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        ErrorKind::FitFailed => ERRCODE_DATA_EXCEPTION,
        ErrorKind::InsufficientPrivilege => ERRCODE_INSUFFICIENT_PRIVILEGE,
        ErrorKind::ReadOnly => ERRCODE_READ_ONLY_SQL_TRANSACTION,
        ErrorKind::PrerequisiteState => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        ErrorKind::OutOfMemory => ERRCODE_OUT_OF_MEMORY,
        ErrorKind::InsufficientResources => ERRCODE_INSUFFICIENT_RESOURCES,
        ErrorKind::CardinalityViolation => ERRCODE_CARDINALITY_VIOLATION,
        ErrorKind::ArrayShape => ERRCODE_ARRAY_ELEMENT_ERROR, // 2202E, array_subscript_error
        ErrorKind::Internal => ERRCODE_INTERNAL_ERROR,
    }
}

/// Raises `error` as a Postgres ERROR. Does not return.
pub fn raise(error: EngineError) -> ! {
    let mut report = ErrorReport::new(sqlstate(error.kind), error.message, "customer_value");
    if let Some(detail) = error.detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = error.hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ereport(ERROR) returned")
}

pub trait OrRaise<T> {
    /// The value, or the error raised as a Postgres ERROR.
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, EngineError> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}

impl<T> OrRaise<T> for Result<T, pgrx::spi::SpiError> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(EngineError::new(
                ErrorKind::Internal,
                format!("customer_value internal query failed: {e}"),
            )),
        }
    }
}
