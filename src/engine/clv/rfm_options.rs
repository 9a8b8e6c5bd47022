//! The options of an RFM summary (`customer_value.rfm(..., options)`): how purchases are
//! collapsed into periods and in which unit recency and t are measured.

use serde_json::{Map, Value};

use crate::engine::clv::model::MONTH_DAYS;
use crate::engine::error::{EngineError, Result};
use crate::engine::options::values::option_error;

#[derive(Debug, Clone, PartialEq)]
pub struct RfmOptions {
    /// `period`: purchases are collapsed to one per customer per day, week or month.
    pub period: &'static str,
    /// `time_unit`: recency and t in days, weeks or months (its length in days).
    pub unit_days: f64,
    /// `holdout_end`: the end of the holdout, as given (Postgres parses it).
    pub holdout_end: Option<String>,
}

impl RfmOptions {
    pub fn parse(options: &Value) -> Result<RfmOptions> {
        let empty = Map::new();
        let map = match options {
            Value::Null => &empty,
            Value::Object(m) => m,
            other => {
                return Err(EngineError::invalid_parameter(format!(
                    "options must be a JSON object, got {other}"
                )))
            }
        };
        let mut o = RfmOptions {
            period: "day",
            unit_days: 7.0,
            holdout_end: None,
        };
        let units = "\"day\", \"week\" or \"month\"";
        for (key, value) in map {
            match (key.as_str(), value.as_str()) {
                ("period", Some(p @ ("day" | "week" | "month"))) => {
                    o.period = match p {
                        "day" => "day",
                        "week" => "week",
                        _ => "month",
                    }
                }
                ("period", _) => return Err(option_error("period", units, value)),
                ("time_unit", Some("day")) => o.unit_days = 1.0,
                ("time_unit", Some("week")) => o.unit_days = 7.0,
                ("time_unit", Some("month")) => o.unit_days = MONTH_DAYS,
                ("time_unit", _) => return Err(option_error("time_unit", units, value)),
                // a parameter of the query: Postgres parses it (and rfm() checks its order)
                ("holdout_end", Some(text)) => o.holdout_end = Some(text.to_string()),
                ("holdout_end", None) => {
                    return Err(option_error("holdout_end", "a timestamp string", value))
                }
                (other, _) => {
                    return Err(EngineError::invalid_parameter(format!(
                        "unknown option \"{other}\""
                    ))
                    .with_hint("Valid options are: period, time_unit, holdout_end."))
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_are_read_and_named_when_wrong() {
        let o = RfmOptions::parse(&json!({"period": "week", "time_unit": "day",
                                          "holdout_end": "2024-06-30"}))
        .unwrap();
        assert_eq!((o.period, o.unit_days), ("week", 1.0));
        assert_eq!(o.holdout_end.as_deref(), Some("2024-06-30"));
        assert_eq!(RfmOptions::parse(&Value::Null).unwrap().unit_days, 7.0);
        let err = RfmOptions::parse(&json!({"period": "year"})).unwrap_err();
        assert_eq!(
            err.message,
            "option \"period\" must be \"day\", \"week\" or \"month\", got \"year\""
        );
        let err = RfmOptions::parse(&json!({"holdout_end": 5})).unwrap_err();
        assert_eq!(
            err.message,
            "option \"holdout_end\" must be a timestamp string, got 5"
        );
        assert!(RfmOptions::parse(&json!({"x": 1})).is_err());
        assert!(RfmOptions::parse(&json!([1])).is_err());
    }
}
