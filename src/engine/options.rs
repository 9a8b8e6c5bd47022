//! Training options (`options jsonb` of `customer_value.train`): parsed once, strictly. An
//! unknown key, a key that does not apply to the chosen algorithm, or a value of the wrong type
//! is an error that names the key and lists the valid ones — a typo must never be silently
//! ignored.

use serde_json::{Map, Value};

use super::codec::TargetTransform;
use super::error::{EngineError, Result};
use super::metrics::Metric;
use super::models::forest::ForestParams;
use super::models::gbm::{GbmOptions, GBM_KEYS};
use super::models::mlp::MlpOptions;
use super::models::Algorithm;
use super::tiers::TierSpec;

/// When a newly trained version becomes the deployed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployPolicy {
    /// Deploy if at least as good on holdout as the deployed version (or if none is deployed).
    Auto,
    Always,
    Never,
}

impl DeployPolicy {
    pub fn name(self) -> &'static str {
        match self {
            DeployPolicy::Auto => "auto",
            DeployPolicy::Always => "always",
            DeployPolicy::Never => "never",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub test_size: f64,
    pub seed: u64,
    /// Exactly these feature columns, in this order.
    pub features: Option<Vec<String>>,
    /// Columns never used as features.
    pub exclude: Vec<String>,
    pub deploy: DeployPolicy,
    /// Metric that picks the best `auto` candidate and decides deployment.
    pub metric: Metric,
    pub tiers: TierSpec,
    /// Penalty of ridge, lasso and elastic net.
    pub alpha: f64,
    /// Share of the elastic-net penalty that is L1.
    pub l1_ratio: f64,
    pub forest: ForestParams,
    pub gbm: GbmOptions,
    pub mlp: MlpOptions,
    /// `target_transform`: train on ln(1 + y) and predict e^p − 1 (skewed spend).
    pub target_transform: TargetTransform,
    /// `task`: "regression" or "classification"; `None` = inferred from the target's type.
    pub task: Option<super::codec::Task>,
    /// Whether `metric` was given (a classifier's default metric is auc, not rmse).
    pub metric_given: bool,
    /// Labels of a classifier's negative and positive class, as `customer_tier` returns them
    /// (set from the target's type: "false"/"true" for a boolean, "0"/"1" for a number).
    pub class_labels: (String, String),
    /// A multi-class target's labels (class index = position), set from a text target with more
    /// than two values; empty otherwise.
    pub classes: Vec<String>,
    /// `as_of`: the reference time of date features (default: the training time), as given.
    pub as_of: Option<String>,
    /// `impute`: per column, how NULLs are filled ("median" by default, "mean", "mode" or a
    /// number).
    pub impute: Vec<(String, super::features::Imputation)>,
    /// `max_one_hot`: text columns with at most this many categories are one-hot encoded, more
    /// are target (mean) encoded.
    pub max_one_hot: usize,
    /// `time_budget` (seconds): `auto` starts no further candidate once it is spent.
    pub time_budget: Option<f64>,
    /// `search`: hyperparameter search with k-fold cross-validation.
    pub search: Option<SearchSpec>,
    /// Algorithms `auto` tries.
    pub candidates: Vec<Algorithm>,
    pub clv: ClvOptions,
    /// `sample`: train on this share (0 < p ≤ 1) of a table's rows, drawn by the storage layer
    /// (TABLESAMPLE BERNOULLI, repeatable with `seed`; on Citus each shard samples itself).
    pub sample: Option<f64>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            test_size: 0.2,
            seed: 42,
            features: None,
            exclude: Vec::new(),
            deploy: DeployPolicy::Auto,
            metric: Metric::Rmse,
            tiers: TierSpec::default(),
            alpha: 1.0,
            l1_ratio: 0.5,
            forest: ForestParams::default(),
            gbm: GbmOptions::default(),
            mlp: MlpOptions::default(),
            target_transform: TargetTransform::Identity,
            task: None,
            metric_given: false,
            class_labels: ("0".into(), "1".into()),
            classes: Vec::new(),
            as_of: None,
            impute: Vec::new(),
            max_one_hot: super::features::DEFAULT_MAX_ONE_HOT,
            time_budget: None,
            search: None,
            candidates: Algorithm::CANDIDATES.to_vec(),
            clv: ClvOptions::default(),
            sample: None,
        }
    }
}

const COMMON_KEYS: [&str; 13] = [
    "test_size",
    "sample",
    "seed",
    "features",
    "exclude",
    "deploy",
    "metric",
    "tiers",
    "target_transform",
    "task",
    "as_of",
    "max_one_hot",
    "impute",
];
const MLP_KEYS: [&str; 7] = [
    "hidden_layers",
    "learning_rate",
    "epochs",
    "batch_size",
    "validation_fraction",
    "patience",
    "l2",
];
const RIDGE_KEYS: [&str; 1] = ["alpha"];
const ELASTIC_NET_KEYS: [&str; 2] = ["alpha", "l1_ratio"];
const FOREST_KEYS: [&str; 5] = [
    "n_trees",
    "max_depth",
    "min_samples_leaf",
    "min_samples_split",
    "max_features",
];
const AUTO_KEYS: [&str; 2] = ["candidates", "time_budget"];
/// Hyperparameter search applies to the algorithms that have hyperparameters.
const SEARCH_KEYS: [&str; 1] = ["search"];
const CLV_KEYS: [&str; 9] = [
    "max_iterations",
    "group",
    "deploy",
    "metric",
    "tiers",
    "columns",
    "horizon",
    "penalizer",
    "time_unit_days",
];
const CLV_COMBINED_KEYS: [&str; 2] = ["discount_rate", "count_model"];

/// Option keys that apply to `algorithm`.
pub fn valid_keys(algorithm: Algorithm) -> Vec<&'static str> {
    let mut keys: Vec<&str> = if algorithm.is_clv() {
        CLV_KEYS.to_vec()
    } else {
        COMMON_KEYS.to_vec()
    };
    match algorithm {
        Algorithm::Linear | Algorithm::BgNbd | Algorithm::ParetoNbd | Algorithm::GammaGamma => {}
        Algorithm::Ridge | Algorithm::Lasso | Algorithm::Logistic => keys.extend(RIDGE_KEYS),
        Algorithm::ElasticNet => keys.extend(ELASTIC_NET_KEYS),
        Algorithm::RandomForest => keys.extend(FOREST_KEYS),
        Algorithm::Gbm => keys.extend(GBM_KEYS),
        Algorithm::Mlp => keys.extend(MLP_KEYS),
        _ => {}
    }
    if matches!(
        algorithm,
        Algorithm::Ridge
            | Algorithm::Lasso
            | Algorithm::ElasticNet
            | Algorithm::Logistic
            | Algorithm::RandomForest
            | Algorithm::Gbm
            | Algorithm::Mlp
    ) {
        keys.extend(SEARCH_KEYS);
    }
    match algorithm {
        Algorithm::Auto => {
            keys.extend(ELASTIC_NET_KEYS);
            keys.extend(FOREST_KEYS);
            keys.extend(GBM_KEYS.iter().filter(|k| !FOREST_KEYS.contains(k)));
            keys.extend(AUTO_KEYS);
        }
        Algorithm::Clv => keys.extend(CLV_COMBINED_KEYS),
        _ => {}
    }
    keys
}

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
    fn parse(v: &Value, base: &Map<String, Value>, algorithm: Algorithm) -> Result<SearchSpec> {
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
            super::stats::SplitMix64::new(seed ^ 0x5EA2C4).shuffle(&mut picks);
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

/// The MLP's options (`hidden_layers`, `learning_rate`, `epochs`, `batch_size`,
/// `validation_fraction`, `patience`, `l2`), each checked and named when wrong.
fn parse_mlp(map: &Map<String, Value>, seed: u64) -> Result<MlpOptions> {
    let mut o = MlpOptions {
        seed,
        ..MlpOptions::default()
    };
    if let Some(v) = map.get("hidden_layers") {
        let widths: Option<Vec<usize>> = v
            .as_array()
            .map(|a| a.iter().map(|w| w.as_u64().map(|w| w as usize)).collect())
            .and_then(|w: Option<Vec<usize>>| w);
        o.hidden_layers = widths.ok_or_else(|| {
            option_error(
                "hidden_layers",
                "an array of layer widths, e.g. [64, 32]",
                v,
            )
        })?;
    }
    if let Some(r) = number(map, "learning_rate", 1e-9, 1.0, "a number from 1e-9 to 1")? {
        o.learning_rate = r;
    }
    if let Some(n) = integer(map, "epochs", 1, 10_000)? {
        o.epochs = n as usize;
    }
    if let Some(n) = integer(map, "batch_size", 1, 1_000_000)? {
        o.batch_size = n as usize;
    }
    if let Some(f) = number(
        map,
        "validation_fraction",
        0.0,
        0.5,
        "a number from 0 to 0.5",
    )? {
        o.validation_fraction = f;
    }
    if let Some(n) = integer(map, "patience", 1, 10_000)? {
        o.patience = n as usize;
    }
    if let Some(l2) = number(map, "l2", 0.0, 1e6, "a non-negative number")? {
        o.l2 = l2;
    }
    o.validate()?;
    Ok(o)
}

/// The columns of an RFM summary the CLV models read (`options->'columns'` renames them).
#[derive(Debug, Clone, PartialEq)]
pub struct RfmColumns {
    pub frequency: String,
    pub recency: String,
    pub t: String,
    pub monetary_value: String,
    /// Grouped input: the column holding how many customers share each row's summary.
    pub count: Option<String>,
}

impl Default for RfmColumns {
    fn default() -> Self {
        RfmColumns {
            frequency: "frequency".into(),
            recency: "recency".into(),
            t: "t".into(),
            monetary_value: "monetary_value".into(),
            count: None,
        }
    }
}

/// Settings of the CLV models.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvOptions {
    pub columns: RfmColumns,
    /// Horizon of `customer_value(row)` in the summary's time unit.
    pub horizon: f64,
    pub discount_rate: f64,
    pub unit_days: f64,
    pub penalizer: f64,
    pub max_iterations: usize,
    pub count_model: Algorithm,
    /// Read the summary grouped into distinct rows with counts (an exact, weighted fit):
    /// None = when the source is a Citus distributed table and there is no target.
    pub group: Option<bool>,
}

impl Default for ClvOptions {
    fn default() -> Self {
        ClvOptions {
            columns: RfmColumns::default(),
            horizon: 52.0,
            discount_rate: 0.1,
            unit_days: 7.0,
            penalizer: 0.0,
            max_iterations: 5_000,
            count_model: Algorithm::BgNbd,
            group: None,
        }
    }
}

fn option_error(key: &str, expected: &str, got: &Value) -> EngineError {
    EngineError::invalid_parameter(format!("option \"{key}\" must be {expected}, got {got}"))
}

fn number(
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

fn integer(map: &Map<String, Value>, key: &str, lo: u64, hi: u64) -> Result<Option<u64>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|i| *i >= lo && *i <= hi)
            .map(Some)
            .ok_or_else(|| option_error(key, &format!("an integer from {lo} to {hi}"), v)),
    }
}

fn string_list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>> {
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

impl TrainOptions {
    /// Parses `options` for `algorithm`. `null` means no options.
    pub fn parse(options: &Value, algorithm: Algorithm) -> Result<TrainOptions> {
        let empty = Map::new();
        let map = match options {
            Value::Null => &empty,
            Value::Object(map) => map,
            other => {
                return Err(EngineError::invalid_parameter(format!(
                    "options must be a JSON object, got {other}"
                ))
                .with_hint("Pass options like '{\"test_size\": 0.25, \"seed\": 7}'::jsonb."))
            }
        };
        let valid = valid_keys(algorithm);
        for key in map.keys() {
            if valid.contains(&key.as_str()) {
                continue;
            }
            let applies_elsewhere = Algorithm::ALL
                .iter()
                .any(|a| valid_keys(*a).contains(&key.as_str()));
            let message = if applies_elsewhere {
                format!(
                    "option \"{key}\" does not apply to algorithm \"{}\"",
                    algorithm.name()
                )
            } else {
                format!("unknown option \"{key}\"")
            };
            return Err(EngineError::invalid_parameter(message).with_hint(format!(
                "Valid options for algorithm \"{}\" are: {}.",
                algorithm.name(),
                valid.join(", ")
            )));
        }

        let mut o = TrainOptions::default();
        if let Some(t) = number(
            map,
            "test_size",
            0.0,
            1.0,
            "a number between 0 and 1 (exclusive)",
        )? {
            if t <= 0.0 || t >= 1.0 {
                return Err(option_error(
                    "test_size",
                    "a number between 0 and 1 (exclusive)",
                    &map["test_size"],
                ));
            }
            o.test_size = t;
        }
        if let Some(seed) = integer(map, "seed", 0, i64::MAX as u64)? {
            o.seed = seed;
        }
        o.forest.seed = o.seed;
        o.features = string_list(map, "features")?;
        o.exclude = string_list(map, "exclude")?.unwrap_or_default();
        if o.features.is_some() && !o.exclude.is_empty() {
            return Err(EngineError::invalid_parameter(
                "options \"features\" and \"exclude\" cannot be combined",
            )
            .with_hint("Use \"features\" to name every feature, or \"exclude\" to drop some."));
        }
        if let Some(features) = &o.features {
            if features.is_empty() {
                return Err(option_error(
                    "features",
                    "a non-empty array of column names",
                    &map["features"],
                ));
            }
        }
        if let Some(v) = map.get("deploy") {
            o.deploy = match v.as_str() {
                Some("auto") => DeployPolicy::Auto,
                Some("always") => DeployPolicy::Always,
                Some("never") => DeployPolicy::Never,
                _ => {
                    return Err(option_error(
                        "deploy",
                        "one of \"auto\", \"always\", \"never\"",
                        v,
                    ))
                }
            };
        }
        if let Some(v) = map.get("metric") {
            o.metric = v.as_str().and_then(Metric::from_key).ok_or_else(|| {
                option_error(
                    "metric",
                    &format!(
                        "one of {}",
                        Metric::ALL.map(|m| format!("\"{}\"", m.key())).join(", ")
                    ),
                    v,
                )
            })?;
        }
        if let Some(v) = map.get("tiers") {
            o.tiers = TierSpec::from_json(v)?;
        }
        if let Some(alpha) = number(map, "alpha", 0.0, f64::MAX, "a non-negative number")? {
            o.alpha = alpha;
        }
        if let Some(r) = number(map, "l1_ratio", 0.0, 1.0, "a number from 0 to 1")? {
            o.l1_ratio = r;
        }
        if let Some(n) = integer(map, "n_trees", 1, 10_000)? {
            o.forest.n_trees = n as usize;
        }
        // gradient boosting reads its own max_depth (1 to 32) below
        if algorithm != Algorithm::Gbm {
            if let Some(d) = integer(map, "max_depth", 1, 64)? {
                o.forest.max_depth = d as u16;
            }
        }
        if let Some(n) = integer(map, "min_samples_leaf", 1, 1_000_000)? {
            o.forest.min_samples_leaf = n as usize;
            if !map.contains_key("min_samples_split") {
                o.forest.min_samples_split = 2 * n as usize;
            }
        }
        if let Some(n) = integer(map, "min_samples_split", 2, 2_000_000)? {
            o.forest.min_samples_split = n as usize;
        }
        if let Some(n) = integer(map, "max_features", 1, 100_000)? {
            o.forest.max_features = Some(n as usize);
        }
        if matches!(algorithm, Algorithm::Gbm | Algorithm::Auto) {
            o.gbm = GbmOptions::from_options(map)?;
        }
        if algorithm == Algorithm::Mlp {
            o.mlp = parse_mlp(map, o.seed)?;
        }
        o.mlp.seed = o.seed;
        if let Some(v) = map.get("task") {
            o.task = Some(match v.as_str() {
                Some("regression") => super::codec::Task::Regression,
                Some("classification") => super::codec::Task::Classification,
                _ => {
                    return Err(option_error(
                        "task",
                        "\"regression\" or \"classification\"",
                        v,
                    ))
                }
            });
        }
        o.metric_given = map.contains_key("metric");
        if let Some(v) = map.get("target_transform") {
            o.target_transform = match v.as_str() {
                Some("none") => TargetTransform::Identity,
                Some("log1p") => TargetTransform::Log1p,
                _ => return Err(option_error("target_transform", "\"none\" or \"log1p\"", v)),
            };
        }
        if let Some(p) = number(
            map,
            "sample",
            1e-9,
            1.0,
            "a share of the rows, greater than 0 and at most 1",
        )? {
            o.sample = Some(p);
        }
        if let Some(v) = map.get("as_of") {
            o.as_of = Some(
                v.as_str()
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| {
                        option_error("as_of", "a date or timestamp like \"2026-01-31\"", v)
                    })?
                    .to_string(),
            );
        }
        if let Some(v) = map.get("impute") {
            let rules = v.as_object().ok_or_else(|| {
                option_error(
                    "impute",
                    "an object like {\"orders\": \"mode\", \"tenure\": 0}",
                    v,
                )
            })?;
            for (column, rule) in rules {
                let parsed = super::features::Imputation::parse(rule).ok_or_else(|| {
                    EngineError::invalid_parameter(format!(
                        "option \"impute\" for column \"{column}\" must be \"median\", \"mean\", \"mode\" or a number, got {rule}"
                    ))
                })?;
                o.impute.push((column.clone(), parsed));
            }
        }
        if let Some(n) = integer(map, "max_one_hot", 1, 100)? {
            o.max_one_hot = n as usize;
        }
        if let Some(b) = number(map, "time_budget", 0.001, 1e7, "a number of seconds > 0")? {
            o.time_budget = Some(b);
        }
        if let Some(v) = map.get("search") {
            o.search = Some(SearchSpec::parse(v, map, algorithm)?);
        }
        if let Some(v) = map.get("candidates") {
            let names = string_list(map, "candidates")?.unwrap_or_default();
            if names.is_empty() {
                return Err(option_error(
                    "candidates",
                    "a non-empty array of algorithm names",
                    v,
                ));
            }
            let mut candidates = Vec::new();
            for name in names {
                let a = Algorithm::parse(&name)?;
                if a == Algorithm::Auto || a.is_clv() {
                    return Err(option_error(
                        "candidates",
                        "machine-learning algorithms (not \"auto\" or a CLV model, which learn from an RFM summary)",
                        v,
                    ));
                }
                if !candidates.contains(&a) {
                    candidates.push(a);
                }
            }
            o.candidates = candidates;
        }
        if let Some(h) = number(map, "horizon", 0.0, 1e6, "a number of time units ≥ 0")? {
            o.clv.horizon = h;
        }
        if let Some(d) = number(
            map,
            "discount_rate",
            0.0,
            10.0,
            "a yearly rate from 0 to 10 (0.1 = 10 %)",
        )? {
            o.clv.discount_rate = d;
        }
        if let Some(u) = number(
            map,
            "time_unit_days",
            1e-6,
            1e6,
            "the length of the summary's time unit in days (7 for weeks)",
        )? {
            o.clv.unit_days = u;
        }
        if let Some(p) = number(map, "penalizer", 0.0, 1e6, "a non-negative number")? {
            o.clv.penalizer = p;
        }
        if let Some(n) = integer(map, "max_iterations", 1, 1_000_000)? {
            o.clv.max_iterations = n as usize;
        }
        if let Some(v) = map.get("group") {
            o.clv.group = Some(
                v.as_bool()
                    .ok_or_else(|| option_error("group", "true or false", v))?,
            );
        }
        if let Some(v) = map.get("count_model") {
            o.clv.count_model = match v.as_str() {
                Some("bgnbd") => Algorithm::BgNbd,
                Some("pareto_nbd") => Algorithm::ParetoNbd,
                _ => {
                    return Err(option_error(
                        "count_model",
                        "\"bgnbd\" or \"pareto_nbd\"",
                        v,
                    ))
                }
            };
        }
        if let Some(v) = map.get("columns") {
            let obj = v.as_object().ok_or_else(|| {
                option_error(
                    "columns",
                    "an object like {\"frequency\": \"x\", \"recency\": \"t_x\", \"t\": \"T\"}",
                    v,
                )
            })?;
            for (role, column) in obj {
                let column = column
                    .as_str()
                    .ok_or_else(|| option_error("columns", "an object of column names", v))?
                    .to_string();
                match role.as_str() {
                    "frequency" => o.clv.columns.frequency = column,
                    "recency" => o.clv.columns.recency = column,
                    "t" => o.clv.columns.t = column,
                    "monetary_value" => o.clv.columns.monetary_value = column,
                    "count" => o.clv.columns.count = Some(column),
                    other => {
                        return Err(EngineError::invalid_parameter(format!(
                            "unknown key \"{other}\" in option \"columns\""
                        ))
                        .with_hint("Valid keys are frequency, recency, t, monetary_value, count."))
                    }
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn defaults_apply_when_options_are_empty_or_null() {
        let o = TrainOptions::parse(&json!({}), Algorithm::Linear).unwrap();
        assert_eq!(o, TrainOptions::default());
        let o = TrainOptions::parse(&Value::Null, Algorithm::Linear).unwrap();
        assert_eq!(o.test_size, 0.2);
    }

    #[test]
    fn options_are_parsed() {
        let o = TrainOptions::parse(
            &json!({"test_size": 0.3, "seed": 7, "exclude": ["x"], "deploy": "never",
                    "metric": "gini", "n_trees": 10, "max_depth": 4, "min_samples_leaf": 3}),
            Algorithm::RandomForest,
        )
        .unwrap();
        assert_eq!(o.test_size, 0.3);
        assert_eq!(o.seed, 7);
        assert_eq!(o.forest.seed, 7);
        assert_eq!(o.exclude, vec!["x".to_string()]);
        assert_eq!(o.deploy, DeployPolicy::Never);
        assert_eq!(o.metric, Metric::Gini);
        assert_eq!(o.forest.n_trees, 10);
        assert_eq!(o.forest.max_depth, 4);
        assert_eq!(o.forest.min_samples_leaf, 3);
        assert_eq!(o.forest.min_samples_split, 6);
    }

    #[test]
    fn unknown_and_misplaced_options_are_named() {
        let err = TrainOptions::parse(&json!({"n_tree": 5}), Algorithm::RandomForest).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
        assert_eq!(err.message, "unknown option \"n_tree\"");
        assert!(err.hint.unwrap().contains("n_trees"));
        let err = TrainOptions::parse(&json!({"n_trees": 5}), Algorithm::Linear).unwrap_err();
        assert_eq!(
            err.message,
            "option \"n_trees\" does not apply to algorithm \"linear\""
        );
    }

    #[test]
    fn wrong_values_are_refused() {
        let cases = [
            (json!([1, 2]), "options must be a JSON object"),
            (
                json!({"test_size": 1.5}),
                "\"test_size\" must be a number between 0 and 1",
            ),
            (json!({"test_size": 0}), "\"test_size\" must be"),
            (json!({"test_size": "0.2"}), "\"test_size\" must be"),
            (json!({"seed": -1}), "\"seed\" must be an integer"),
            (json!({"deploy": "sometimes"}), "\"deploy\" must be one of"),
            (json!({"metric": "precision"}), "\"metric\" must be one of"),
            (json!({"exclude": "a"}), "\"exclude\" must be an array"),
            (
                json!({"features": ["a"], "exclude": ["b"]}),
                "cannot be combined",
            ),
            (
                json!({"candidates": ["auto"]}),
                "\"candidates\" must be machine-learning algorithms",
            ),
            (
                json!({"candidates": ["bgnbd"]}),
                "\"candidates\" must be machine-learning algorithms",
            ),
            (
                json!({"max_depth": 0}),
                "\"max_depth\" must be an integer from 1 to 64",
            ),
        ];
        for (value, expected) in cases {
            let err = TrainOptions::parse(&value, Algorithm::Auto).unwrap_err();
            assert!(err.message.contains(expected), "{value}: {}", err.message);
        }
    }
}
