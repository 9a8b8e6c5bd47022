//! `options->'search'`: hyperparameter search with k-fold cross-validation, every combination
//! parsed (and so checked) before any training starts.

use serde_json::{Map, Value};

use super::values::option_error;
use super::{valid_keys, TrainOptions};
use crate::engine::error::{EngineError, Result};
use crate::engine::models::Algorithm;

/// Most parameter combinations a search may try (each is fitted `folds` times).
pub const MAX_SEARCH_TRIALS: usize = 200;

/// `options->'search'`: `{"method": "grid" | "random", "params": {"max_depth": [3, 6], …},
/// "folds": 3, "trials": 10}`. Every combination is a full set of options (the other options
/// with these values), parsed — and so checked — before any training starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    pub method: &'static str,
    pub folds: usize,
    /// The combinations to try, each as (the values set, the options they give).
    pub combinations: Vec<(Map<String, Value>, TrainOptions)>,
}

impl SearchSpec {
    pub(super) fn parse(
        v: &Value,
        base: &Map<String, Value>,
        algorithm: Algorithm,
    ) -> Result<SearchSpec> {
        let bad = |what: &str| option_error("search", what, v);
        let spec = v
            .as_object()
            .ok_or_else(|| bad("an object like {\"params\": {\"max_depth\": [3, 6]}}"))?;
        for key in spec.keys() {
            if !["method", "params", "folds", "trials"].contains(&key.as_str()) {
                return Err(EngineError::invalid_parameter(format!(
                    "unknown key \"{key}\" in option \"search\""
                ))
                .with_hint("Valid keys are method, params, folds, trials."));
            }
        }
        let method = match spec.get("method").map(Value::as_str) {
            None | Some(Some("grid")) => "grid",
            Some(Some("random")) => "random",
            _ => return Err(bad("an object whose method is \"grid\" or \"random\"")),
        };
        let folds = match spec.get("folds") {
            None => 3,
            Some(f) => f
                .as_u64()
                .filter(|f| (2..=20).contains(f))
                .ok_or_else(|| bad("an object whose folds is an integer from 2 to 20"))?
                as usize,
        };
        let params = spec
            .get("params")
            .and_then(Value::as_object)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("an object with \"params\": {\"<option>\": [values…], …}"))?;
        let valid = valid_keys(algorithm);
        let mut grid: Vec<(String, Vec<Value>)> = Vec::new();
        for (key, values) in params {
            if !valid.contains(&key.as_str())
                || [
                    "search",
                    "features",
                    "exclude",
                    "deploy",
                    "metric",
                    "tiers",
                    "task",
                    "seed",
                    "test_size",
                ]
                .contains(&key.as_str())
            {
                return Err(EngineError::invalid_parameter(format!(
                    "search parameter \"{key}\" is not a hyperparameter of algorithm \"{}\"",
                    algorithm.name()
                )));
            }
            let values = values.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                EngineError::invalid_parameter(format!(
                    "search parameter \"{key}\" needs a non-empty array of values"
                ))
            })?;
            grid.push((key.clone(), values.clone()));
        }
        let total: usize = grid.iter().map(|(_, v)| v.len()).product();
        let mut picks: Vec<usize> = (0..total).collect();
        if method == "random" {
            let trials = match spec.get("trials") {
                None => 10,
                Some(t) => t
                    .as_u64()
                    .filter(|t| (1..=MAX_SEARCH_TRIALS as u64).contains(t))
                    .ok_or_else(|| bad("an object whose trials is an integer from 1 to 200"))?
                    as usize,
            };
            let seed = base.get("seed").and_then(Value::as_u64).unwrap_or(42);
            crate::engine::stats::SplitMix64::new(seed ^ 0x5EA2C4).shuffle(&mut picks);
            picks.truncate(trials);
        } else if total > MAX_SEARCH_TRIALS {
            return Err(EngineError::invalid_parameter(format!(
                "the search grid has {total} combinations; at most {MAX_SEARCH_TRIALS} are allowed"
            ))
            .with_hint("Use fewer values, or \"method\": \"random\" with \"trials\"."));
        }
        let mut combinations = Vec::with_capacity(picks.len());
        for pick in picks {
            let mut chosen = Map::new();
            let mut rest = pick;
            for (key, values) in &grid {
                chosen.insert(key.clone(), values[rest % values.len()].clone());
                rest /= values.len();
            }
            let mut options = base.clone();
            options.remove("search");
            for (k, v) in &chosen {
                options.insert(k.clone(), v.clone());
            }
            let parsed = TrainOptions::parse(&Value::Object(options), algorithm)?;
            combinations.push((chosen, parsed));
        }
        Ok(SearchSpec {
            method,
            folds,
            combinations,
        })
    }
}
