//! Options of `train_from_log` that are about time: the horizon to predict, the target window,
//! the cut-offs, the count model behind the CLV features. They are taken out of the options
//! object; the rest (algorithm hyperparameters, tiers, deploy, metric) are the usual training
//! options.

use serde_json::{json, Map, Value};

use crate::engine::clv::model::CountModel;
use crate::engine::error::{EngineError, Result};
use crate::engine::metrics::Metric;
use crate::engine::models::{Algorithm, ValueLoss};
use crate::engine::options::values::{choice, integer, option_error};
use crate::engine::options::TrainOptions;

use super::sequence::{SequenceShape, MAX_PERIODS};

/// Longest horizon: 100 years of days.
pub const MAX_HORIZON_DAYS: u64 = 36_525;
/// Most training cut-offs (each one is a copy of the customer base as training rows).
pub const MAX_CUTOFFS: u64 = 52;

#[derive(Debug, Clone, PartialEq)]
pub struct LogOptions {
    /// `horizon_days`: the window whose spend the model predicts.
    pub horizon_days: i32,
    /// `window_days`: the target window of training examples (default: the horizon, shortened
    /// when the history is short — see [`super::plan`]).
    pub window_days: Option<i32>,
    /// `cutoffs`: how many training cut-offs at most.
    pub cutoffs: usize,
    /// `cutoff_step_days`: days between training cut-offs (default: a third of the window).
    pub cutoff_step_days: Option<i32>,
    /// `count_model`: the purchase-count model behind the CLV features and the extrapolation.
    pub count_model: Algorithm,
    /// `algorithm`: what learns from the features (`auto` by default).
    pub algorithm: Algorithm,
    /// `attributes`: a table, view or query of static customer attributes, joined by the
    /// log's customer column.
    pub attributes: Option<String>,
    /// `sequence_period`, `sequence_length`: the history the sequence models (`gru`, `cnn`)
    /// read beside the features (default: 52 weeks); `None` for the other algorithms.
    pub sequence: Option<SequenceShape>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            horizon_days: 365,
            window_days: None,
            cutoffs: 6,
            cutoff_step_days: None,
            count_model: Algorithm::BgNbd,
            algorithm: Algorithm::Auto,
            attributes: None,
            sequence: None,
        }
    }
}

impl LogOptions {
    pub const KEYS: [&'static str; 9] = [
        "algorithm",
        "horizon_days",
        "window_days",
        "cutoffs",
        "cutoff_step_days",
        "count_model",
        "attributes",
        "sequence_period",
        "sequence_length",
    ];
    /// Training options that have no meaning here: the holdout is a time window, and the
    /// features are computed as of each cut-off.
    const REFUSED: [(&'static str, &'static str); 4] = [
        (
            "test_size",
            "the holdout is the most recent window before as_of",
        ),
        ("sample", "every customer of the log is used"),
        ("as_of", "as_of is an argument of train_from_log"),
        ("task", "train_from_log predicts spend (a regression)"),
    ];

    /// Splits `options` into the log's options and the remaining training options.
    pub fn split(options: &Value) -> Result<(LogOptions, Value)> {
        let mut map = match options {
            Value::Null => Map::new(),
            Value::Object(map) => map.clone(),
            other => {
                return Err(EngineError::invalid_parameter(format!(
                    "options must be a JSON object, got {other}"
                ))
                .with_hint("Pass options like '{\"horizon_days\": 90}'::jsonb."))
            }
        };
        for (key, why) in LogOptions::REFUSED {
            if map.contains_key(key) {
                return Err(EngineError::invalid_parameter(format!(
                    "option \"{key}\" does not apply to train_from_log: {why}"
                )));
            }
        }
        let mut own = Map::new();
        for key in LogOptions::KEYS {
            if let Some(v) = map.remove(key) {
                own.insert(key.to_string(), v);
            }
        }
        Ok((LogOptions::parse(&own)?, Value::Object(map)))
    }

    fn parse(map: &Map<String, Value>) -> Result<LogOptions> {
        let mut o = LogOptions::default();
        let days = |key: &str| -> Result<Option<i32>> {
            Ok(integer(map, key, 1, MAX_HORIZON_DAYS)?.map(|d| d as i32))
        };
        if let Some(h) = days("horizon_days")? {
            o.horizon_days = h;
        }
        o.window_days = days("window_days")?;
        if let Some(w) = o.window_days {
            if w > o.horizon_days {
                return Err(EngineError::invalid_parameter(format!(
                    "option \"window_days\" ({w}) must not exceed \"horizon_days\" ({})",
                    o.horizon_days
                )));
            }
        }
        if let Some(n) = integer(map, "cutoffs", 1, MAX_CUTOFFS)? {
            o.cutoffs = n as usize;
        }
        o.cutoff_step_days = days("cutoff_step_days")?;
        let (count_models, listed) = CountModel::choices();
        if let Some(m) = choice(map, "count_model", &count_models, &listed)? {
            o.count_model = m;
        }
        if let Some(v) = map.get("algorithm") {
            let name = v
                .as_str()
                .ok_or_else(|| option_error("algorithm", "the name of an algorithm", v))?;
            o.algorithm = Algorithm::parse(name)?;
        }
        if let Some(v) = map.get("attributes") {
            let source = v.as_str().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                option_error(
                    "attributes",
                    "a table, view or SELECT query with the customer column and the attributes",
                    v,
                )
            })?;
            o.attributes = Some(source.to_string());
        }
        o.sequence = sequence_shape(map, o.algorithm)?;
        Ok(o)
    }

    /// The training options of a log model: `rest` (what [`LogOptions::split`] left) parsed for
    /// `algorithm`, with these defaults of its own: a sequence model's loss is `ziln`; `auto`
    /// and the deploy decision compare models by their backtest **Gini** unless `metric` says
    /// otherwise — spend is heavy-tailed, and the RMSE of a backtest window is decided by its
    /// few largest customers.
    pub fn training_options(&self, rest: &Value) -> Result<TrainOptions> {
        let mut options = TrainOptions::parse(rest, self.algorithm)?;
        // a sequence network predicts spend, 0 or more, through the zero-inflated lognormal
        // (the mlp family's loss for customer value) unless told otherwise
        if self.algorithm.reads_sequence() && rest.get("loss").is_none() {
            options.loss = ValueLoss::Ziln;
        }
        crate::engine::target::check_value_algorithm(self.algorithm, &options)?;
        if !options.metric_given {
            options.metric = Metric::Gini;
        }
        Ok(options)
    }

    /// The options as stored in the model's spec (every default spelled out).
    pub fn to_json(&self) -> Value {
        json!({
            "horizon_days": self.horizon_days,
            "window_days": self.window_days,
            "cutoffs": self.cutoffs,
            "cutoff_step_days": self.cutoff_step_days,
            "count_model": self.count_model.name(),
            "algorithm": self.algorithm.name(),
            "attributes": self.attributes,
            "sequence_period": self.sequence.map(|s| s.period_days),
            "sequence_length": self.sequence.map(|s| s.length),
        })
    }
}

/// Days of a `sequence_period`: "day", "week", "month" (30 days) or a number of days.
const PERIODS: [(&str, i32); 3] = [("day", 1), ("week", 7), ("month", 30)];

/// The history a sequence model reads: `sequence_period` (default a week) and
/// `sequence_length` (default 52 periods); for another algorithm, an error if either is given.
fn sequence_shape(map: &Map<String, Value>, algorithm: Algorithm) -> Result<Option<SequenceShape>> {
    let period = match map.get("sequence_period") {
        None => None,
        Some(Value::String(name)) => PERIODS.iter().find(|(n, _)| n == name).map(|(_, d)| *d),
        Some(v) => v
            .as_u64()
            .filter(|d| (1..=366).contains(d))
            .map(|d| d as i32),
    };
    if let (None, Some(v)) = (period, map.get("sequence_period")) {
        return Err(option_error(
            "sequence_period",
            "\"day\", \"week\", \"month\" (30 days) or a number of days from 1 to 366",
            v,
        ));
    }
    let length = integer(map, "sequence_length", 1, MAX_PERIODS as u64)?;
    if !algorithm.reads_sequence() {
        if let Some(key) = ["sequence_period", "sequence_length"]
            .into_iter()
            .find(|k| map.contains_key(*k))
        {
            return Err(EngineError::invalid_parameter(format!(
                "option \"{key}\" applies to the sequence models gru and cnn, not {}",
                algorithm.name()
            )));
        }
        return Ok(None);
    }
    Ok(Some(SequenceShape {
        period_days: period.unwrap_or(7),
        length: length.map_or(52, |n| n as usize),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::ErrorKind;

    #[test]
    fn log_options_are_taken_out_and_the_rest_left() {
        let (o, rest) = LogOptions::split(&json!({
            "horizon_days": 90, "cutoffs": 3, "n_trees": 50, "count_model": "pareto_nbd"
        }))
        .unwrap();
        assert_eq!(o.horizon_days, 90);
        assert_eq!(o.cutoffs, 3);
        assert_eq!(o.count_model, Algorithm::ParetoNbd);
        assert_eq!(rest, json!({"n_trees": 50}));
        let (o, rest) = LogOptions::split(&Value::Null).unwrap();
        assert_eq!(o, LogOptions::default());
        assert_eq!(rest, json!({}));
    }

    #[test]
    fn log_models_are_compared_by_gini_unless_told() {
        let (o, rest) = LogOptions::split(&json!({"algorithm": "gbm"})).unwrap();
        assert_eq!(o.training_options(&rest).unwrap().metric, Metric::Gini);
        let (o, rest) = LogOptions::split(&json!({"metric": "rmse"})).unwrap();
        assert_eq!(o.training_options(&rest).unwrap().metric, Metric::Rmse);
    }

    #[test]
    fn static_attributes_name_a_source() {
        let (o, _) = LogOptions::split(&json!({"attributes": "customers"})).unwrap();
        assert_eq!(o.attributes.as_deref(), Some("customers"));
        for bad in [json!({"attributes": 1}), json!({"attributes": " "})] {
            let err = LogOptions::split(&bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidParameter);
        }
    }

    #[test]
    fn sequence_models_read_52_weeks_unless_told() {
        let (o, _) = LogOptions::split(&json!({"algorithm": "gru"})).unwrap();
        assert_eq!(
            o.sequence,
            Some(SequenceShape {
                period_days: 7,
                length: 52
            })
        );
        let (o, _) = LogOptions::split(
            &json!({"algorithm": "cnn", "sequence_period": "month", "sequence_length": 12}),
        )
        .unwrap();
        assert_eq!(
            o.sequence.map(|s| (s.period_days, s.length)),
            Some((30, 12))
        );
        let (o, _) =
            LogOptions::split(&json!({"algorithm": "gru", "sequence_period": 14})).unwrap();
        assert_eq!(o.sequence.map(|s| s.period_days), Some(14));
        assert_eq!(LogOptions::split(&json!({})).unwrap().0.sequence, None);
    }

    #[test]
    fn bad_log_options_name_the_key() {
        for (options, needle) in [
            (json!({"horizon_days": 0}), "\"horizon_days\""),
            (json!({"horizon_days": -5}), "\"horizon_days\""),
            (json!({"horizon_days": "a year"}), "\"horizon_days\""),
            (json!({"window_days": 400}), "must not exceed"),
            (json!({"cutoffs": 0}), "\"cutoffs\""),
            (json!({"count_model": "gbm"}), "\"count_model\""),
            (
                json!({"algorithm": "gru", "sequence_period": "year"}),
                "\"sequence_period\"",
            ),
            (
                json!({"algorithm": "gru", "sequence_period": 0}),
                "\"sequence_period\"",
            ),
            (
                json!({"algorithm": "cnn", "sequence_length": 0}),
                "\"sequence_length\"",
            ),
            (
                json!({"algorithm": "gbm", "sequence_length": 8}),
                "applies to the sequence models",
            ),
            (json!({"test_size": 0.2}), "does not apply"),
            (json!([1]), "JSON object"),
        ] {
            let err = LogOptions::split(&options).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidParameter, "{options}");
            assert!(err.message.contains(needle), "{options}: {}", err.message);
        }
    }
}
