//! Checks of SQL arguments shared by the functions.

use crate::engine::error::{EngineError, ErrorKind, Result};

/// `value`, or a 22004 error naming `what` when it is NULL.
pub(crate) fn required<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str> {
    value.ok_or_else(|| EngineError::new(ErrorKind::NullValue, format!("{what} must not be NULL")))
}
