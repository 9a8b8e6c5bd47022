//! `options->'search'`: hyperparameter search with k-fold cross-validation, every combination
//! parsed (and so checked) before any training starts.

use serde_json::{Map, Value};

use super::values::option_error;
use super::{valid_keys, TrainOptions};
use crate::engine::error::{EngineError, Result};
use crate::engine::models::Algorithm;

/// Most combinations a random search draws from (it shuffles their numbers).
pub const MAX_RANDOM_SPACE: usize = 1_000_000;

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

/// Options that select data, evaluation or the search itself rather than the model, so a search
/// may not vary them even where the algorithm accepts them.
const NOT_SEARCHABLE: [&str; 9] = [
    "search",
    "features",
    "exclude",
    "deploy",
    "metric",
    "tiers",
    "task",
    "seed",
    "test_size",
];

impl SearchSpec {
    /// Parses `options->'search'`; `base` is the whole options object, whose other options every
    /// combination starts from. The checks run in a fixed order (keys, method, folds, params,
    /// trials or grid size, then each combination's options) so the first problem is reported.
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
        let grid = SearchGrid::parse(params, algorithm)?;
        let picks = grid.picks(method, spec, base, &bad)?;
        let mut combinations = Vec::with_capacity(picks.len());
        for pick in picks {
            let chosen = grid.combination(pick);
            let parsed = options_with(base, &chosen, algorithm)?;
            combinations.push((chosen, parsed));
        }
        Ok(SearchSpec {
            method,
            folds,
            combinations,
        })
    }
}

/// The values to try for each searched hyperparameter, in the order of `params`. Combination
/// number `k` (0 ≤ k < [`SearchGrid::size`]) is read as a mixed-radix number, first parameter
/// fastest: the first parameter takes value `k mod len₁`, the next `(k / len₁) mod len₂`, …
struct SearchGrid {
    axes: Vec<(String, Vec<Value>)>,
}

impl SearchGrid {
    /// Checks that every key is a hyperparameter of `algorithm` with a non-empty array of values.
    fn parse(params: &Map<String, Value>, algorithm: Algorithm) -> Result<SearchGrid> {
        let valid = valid_keys(algorithm);
        let mut axes: Vec<(String, Vec<Value>)> = Vec::new();
        for (key, values) in params {
            if !valid.contains(&key.as_str()) || NOT_SEARCHABLE.contains(&key.as_str()) {
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
            axes.push((key.clone(), values.clone()));
        }
        Ok(SearchGrid { axes })
    }

    /// Number of combinations.
    fn size(&self) -> usize {
        self.axes
            .iter()
            .fold(1usize, |n, (_, v)| n.saturating_mul(v.len()))
    }

    /// The numbers of the combinations to try: all of them, in order, for a grid search (at most
    /// [`MAX_SEARCH_TRIALS`]); for a random search `trials` of them drawn with the options' seed,
    /// so the same options always try the same combinations.
    fn picks(
        &self,
        method: &str,
        spec: &Map<String, Value>,
        base: &Map<String, Value>,
        bad: &dyn Fn(&str) -> EngineError,
    ) -> Result<Vec<usize>> {
        let total = self.size();
        // The size is checked before any list of combinations is made: a grid of 10 parameters
        // × 40 values (10^16 combinations) is an error, not an allocation that aborts.
        if method == "random" {
            let trials = match spec.get("trials") {
                None => 10,
                Some(t) => t
                    .as_u64()
                    .filter(|t| (1..=MAX_SEARCH_TRIALS as u64).contains(t))
                    .ok_or_else(|| bad("an object whose trials is an integer from 1 to 200"))?
                    as usize,
            };
            if total > MAX_RANDOM_SPACE {
                return Err(EngineError::invalid_parameter(format!(
                    "the search space has {total} combinations; a random search draws from at most {MAX_RANDOM_SPACE}"
                ))
                .with_hint("Use fewer values per parameter."));
            }
            let mut picks: Vec<usize> = (0..total).collect();
            let seed = base.get("seed").and_then(Value::as_u64).unwrap_or(42);
            crate::engine::stats::SplitMix64::new(seed ^ 0x5EA2C4).shuffle(&mut picks);
            picks.truncate(trials);
            return Ok(picks);
        }
        if total > MAX_SEARCH_TRIALS {
            return Err(EngineError::invalid_parameter(format!(
                "the search grid has {total} combinations; at most {MAX_SEARCH_TRIALS} are allowed"
            ))
            .with_hint("Use fewer values, or \"method\": \"random\" with \"trials\"."));
        }
        Ok((0..total).collect())
    }

    /// The values of combination number `pick`.
    fn combination(&self, pick: usize) -> Map<String, Value> {
        let mut chosen = Map::new();
        let mut rest = pick;
        for (key, values) in &self.axes {
            chosen.insert(key.clone(), values[rest % values.len()].clone());
            rest /= values.len();
        }
        chosen
    }
}

/// The full options of one combination: `base` without the search, with the chosen values set,
/// parsed (and so checked) like any options.
fn options_with(
    base: &Map<String, Value>,
    chosen: &Map<String, Value>,
    algorithm: Algorithm,
) -> Result<TrainOptions> {
    let mut options = base.clone();
    options.remove("search");
    for (k, v) in chosen {
        options.insert(k.clone(), v.clone());
    }
    TrainOptions::parse(&Value::Object(options), algorithm)
}
