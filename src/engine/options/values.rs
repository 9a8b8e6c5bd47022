//! Reading one option from the options object, with one wording for every error: "option "key"
//! must be <what is expected>, got <value>". Every options type parses through these.

use serde_json::{Map, Value};

use crate::engine::error::{EngineError, Result};

pub fn option_error(key: &str, expected: &str, got: &Value) -> EngineError {
    EngineError::invalid_parameter(format!("option \"{key}\" must be {expected}, got {got}"))
}

/// A number within `[lo, hi]` (`bounds` says so in the error).
pub fn number(
    map: &Map<String, Value>,
    key: &str,
    lo: f64,
    hi: f64,
    bounds: &str,
) -> Result<Option<f64>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => {
            let f = v
                .as_f64()
                .filter(|f| f.is_finite() && *f >= lo && *f <= hi)
                .ok_or_else(|| option_error(key, bounds, v))?;
            Ok(Some(f))
        }
    }
}

/// A whole number within `[lo, hi]`.
pub fn integer(map: &Map<String, Value>, key: &str, lo: u64, hi: u64) -> Result<Option<u64>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|i| *i >= lo && *i <= hi)
            .map(Some)
            .ok_or_else(|| option_error(key, &format!("an integer from {lo} to {hi}"), v)),
    }
}

/// A number in `(0, 1]` (a rate or a share, where zero would mean no learning or no rows).
pub fn fraction(map: &Map<String, Value>, key: &str) -> Result<Option<f64>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| *f > 0.0 && *f <= 1.0)
            .map(Some)
            .ok_or_else(|| option_error(key, "a number greater than 0 and at most 1", v)),
    }
}

/// An array of column names.
pub fn string_list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => {
            let items = v
                .as_array()
                .ok_or_else(|| option_error(key, "an array of column names", v))?;
            items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| option_error(key, "an array of column names", v))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some)
        }
    }
}

/// One of the named `choices` (`expected` lists them in the error).
pub fn choice<T: Copy>(
    map: &Map<String, Value>,
    key: &str,
    choices: &[(&str, T)],
    expected: &str,
) -> Result<Option<T>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|s| choices.iter().find(|(name, _)| *name == s))
            .map(|(_, value)| Some(*value))
            .ok_or_else(|| option_error(key, expected, v)),
    }
}
