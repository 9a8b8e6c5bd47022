//! Training options (`options jsonb` of `customer_value.train`): parsed once, strictly. An
//! unknown key, a key that does not apply to the chosen algorithm, or a value of the wrong type
//! is an error that names the key and lists the valid ones — a typo must never be silently
//! ignored.

use serde_json::{Map, Value};

use super::clv::options::ClvOptions;
use super::codec::{TargetTransform, Task};
use super::error::{EngineError, Result};
use super::features::{Imputation, DEFAULT_MAX_ONE_HOT};
use super::metrics::Metric;
use super::models::forest::ForestParams;
use super::models::gbm::GbmOptions;
use super::models::linear::PenaltyOptions;
use super::models::mlp::MlpOptions;
use super::models::sequence::model::SequenceLayout;
use super::models::sequence::training::{EncoderKind, SequenceOptions};
use super::models::Algorithm;
use super::models::ValueLoss;
use super::tiers::TierSpec;

mod search;
pub mod values;

pub use search::{SearchSpec, MAX_SEARCH_TRIALS};
use values::{choice, integer, number, option_error, string_list};

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
    /// Penalty of ridge, lasso, elastic net and logistic regression.
    pub penalty: PenaltyOptions,
    pub forest: ForestParams,
    pub gbm: GbmOptions,
    pub mlp: MlpOptions,
    /// The network options of `gru` and `cnn`, and the share of a table's rows that early
    /// stopping watches.
    pub sequence: SequenceOptions,
    pub sequence_validation: f64,
    /// Where `gru` and `cnn` find the history among the features: set by the trainer from the
    /// feature schema (never an option).
    pub sequence_layout: Option<SequenceLayout>,
    /// For the rows of a log's fit (cut-off order): `(rows, latest)`, the last `latest` of
    /// those `rows` being the latest cut-off's, which early stopping watches. A fit on other rows
    /// (a subset: a fold, the buyers of a hurdle) watches a random share. Never an option.
    pub sequence_latest_rows: Option<(usize, usize)>,
    /// `target_transform`: train on ln(1 + y) and predict e^p − 1 (skewed spend).
    pub target_transform: TargetTransform,
    /// `loss` of gbm and mlp value models: least squares, the two-part hurdle model, or (mlp)
    /// the zero-inflated lognormal.
    pub loss: ValueLoss,
    /// `task`: "regression" or "classification"; `None` = inferred from the target's type.
    pub task: Option<Task>,
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
    pub impute: Vec<(String, Imputation)>,
    /// `max_one_hot`: text columns with at most this many categories are one-hot encoded, more
    /// are target (mean) encoded.
    pub max_one_hot: usize,
    /// `pad`: array features of varying length are padded on the left with 0 to the longest
    /// training array (longer ones at scoring keep their last elements); without it every
    /// array must have the trained length.
    pub pad: bool,
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
            penalty: PenaltyOptions::default(),
            forest: ForestParams::default(),
            gbm: GbmOptions::default(),
            mlp: MlpOptions::default(),
            sequence: SequenceOptions::defaults(EncoderKind::Gru),
            sequence_validation: 0.1,
            sequence_layout: None,
            sequence_latest_rows: None,
            target_transform: TargetTransform::Identity,
            loss: ValueLoss::SquaredError,
            task: None,
            metric_given: false,
            class_labels: ("0".into(), "1".into()),
            classes: Vec::new(),
            as_of: None,
            impute: Vec::new(),
            max_one_hot: DEFAULT_MAX_ONE_HOT,
            pad: false,
            time_budget: None,
            search: None,
            candidates: Algorithm::CANDIDATES.to_vec(),
            clv: ClvOptions::default(),
            sample: None,
        }
    }
}

/// The options every machine-learning algorithm accepts, in the order error hints list them.
const COMMON_KEYS: [&str; 14] = [
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
    "pad",
];
/// The objective of a value model: `gbm` and `mlp` (and `auto`, for those candidates).
const LOSS_KEYS: [&str; 1] = ["loss"];
/// `auto`'s own options (it also takes every candidate's hyperparameters).
const AUTO_KEYS: [&str; 2] = ["candidates", "time_budget"];
/// Hyperparameter search applies to the algorithms that have hyperparameters.
const SEARCH_KEYS: [&str; 1] = ["search"];

/// Option keys that apply to `algorithm`: the common (or CLV) keys, then the algorithm's own
/// options type's keys ([`Algorithm::own_option_keys`]).
pub fn valid_keys(algorithm: Algorithm) -> Vec<&'static str> {
    let mut keys: Vec<&str> = if algorithm.is_clv() {
        ClvOptions::KEYS.to_vec()
    } else {
        COMMON_KEYS.to_vec()
    };
    keys.extend(algorithm.own_option_keys());
    if algorithm.has_hyperparameters() {
        keys.extend(SEARCH_KEYS);
    }
    if matches!(
        algorithm,
        Algorithm::Gbm | Algorithm::Mlp | Algorithm::Gru | Algorithm::Cnn | Algorithm::Auto
    ) {
        keys.extend(LOSS_KEYS);
    }
    if algorithm == Algorithm::Auto {
        keys.extend(PenaltyOptions::ELASTIC_NET_KEYS);
        keys.extend(ForestParams::KEYS);
        keys.extend(
            GbmOptions::KEYS
                .iter()
                .filter(|k| !ForestParams::KEYS.contains(k)),
        );
        keys.extend(AUTO_KEYS);
    }
    keys
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
        check_keys(map, algorithm)?;
        let mut o = TrainOptions::default();
        o.parse_split(map)?;
        o.parse_columns(map)?;
        o.parse_decision(map)?;
        o.parse_algorithm_options(map, algorithm)?;
        o.parse_target(map, algorithm)?;
        o.parse_encoding(map)?;
        o.parse_auto(map, algorithm)?;
        o.clv = ClvOptions::from_options(map)?;
        Ok(o)
    }

    /// `test_size`, `seed`, `sample`: which rows train and which evaluate.
    fn parse_split(&mut self, map: &Map<String, Value>) -> Result<()> {
        let between = "a number between 0 and 1 (exclusive)";
        if let Some(t) = number(map, "test_size", 0.0, 1.0, between)? {
            if t <= 0.0 || t >= 1.0 {
                return Err(option_error("test_size", between, &map["test_size"]));
            }
            self.test_size = t;
        }
        if let Some(seed) = integer(map, "seed", 0, i64::MAX as u64)? {
            self.seed = seed;
        }
        let share = "a share of the rows, greater than 0 and at most 1";
        self.sample = number(map, "sample", 1e-9, 1.0, share)?;
        Ok(())
    }

    /// `features` or `exclude`: which columns are features.
    fn parse_columns(&mut self, map: &Map<String, Value>) -> Result<()> {
        self.features = string_list(map, "features")?;
        self.exclude = string_list(map, "exclude")?.unwrap_or_default();
        if self.features.is_some() && !self.exclude.is_empty() {
            return Err(EngineError::invalid_parameter(
                "options \"features\" and \"exclude\" cannot be combined",
            )
            .with_hint("Use \"features\" to name every feature, or \"exclude\" to drop some."));
        }
        if self.features.as_ref().is_some_and(Vec::is_empty) {
            return Err(option_error(
                "features",
                "a non-empty array of column names",
                &map["features"],
            ));
        }
        Ok(())
    }

    /// `deploy`, `metric`, `tiers`: how the version is judged, deployed and tiered.
    fn parse_decision(&mut self, map: &Map<String, Value>) -> Result<()> {
        let policies = [
            ("auto", DeployPolicy::Auto),
            ("always", DeployPolicy::Always),
            ("never", DeployPolicy::Never),
        ];
        let expected = "one of \"auto\", \"always\", \"never\"";
        if let Some(policy) = choice(map, "deploy", &policies, expected)? {
            self.deploy = policy;
        }
        if let Some(v) = map.get("metric") {
            self.metric = v.as_str().and_then(Metric::from_key).ok_or_else(|| {
                let names = Metric::ALL.map(|m| format!("\"{}\"", m.key())).join(", ");
                option_error("metric", &format!("one of {names}"), v)
            })?;
        }
        self.metric_given = map.contains_key("metric");
        if let Some(v) = map.get("tiers") {
            self.tiers = TierSpec::from_json(v)?;
        }
        Ok(())
    }

    /// Each algorithm's own options type, parsed where its keys apply (`auto` takes its
    /// candidates' hyperparameters).
    fn parse_algorithm_options(
        &mut self,
        map: &Map<String, Value>,
        algorithm: Algorithm,
    ) -> Result<()> {
        self.penalty = PenaltyOptions::from_options(map)?;
        self.forest = if matches!(algorithm, Algorithm::RandomForest | Algorithm::Auto) {
            ForestParams::from_options(map, self.seed)?
        } else {
            ForestParams {
                seed: self.seed,
                ..ForestParams::default()
            }
        };
        if matches!(algorithm, Algorithm::Gbm | Algorithm::Auto) {
            self.gbm = GbmOptions::from_options(map)?;
        }
        let encoder = match algorithm {
            Algorithm::Cnn => Some(EncoderKind::Cnn),
            Algorithm::Gru => Some(EncoderKind::Gru),
            _ => None,
        };
        if let Some(encoder) = encoder {
            (self.sequence, self.sequence_validation) =
                SequenceOptions::from_options(map, encoder, self.seed)?;
        }
        self.mlp = if algorithm == Algorithm::Mlp {
            MlpOptions::from_options(map, self.seed)?
        } else {
            MlpOptions {
                seed: self.seed,
                ..MlpOptions::default()
            }
        };
        Ok(())
    }

    /// `task`, `target_transform`: what the target is and the scale it is fitted on.
    fn parse_target(&mut self, map: &Map<String, Value>, algorithm: Algorithm) -> Result<()> {
        let tasks = [
            ("regression", Task::Regression),
            ("classification", Task::Classification),
        ];
        let expected = "\"regression\" or \"classification\"";
        self.task = choice(map, "task", &tasks, expected)?;
        let transforms = [
            ("none", TargetTransform::Identity),
            ("log1p", TargetTransform::Log1p),
        ];
        let expected = "\"none\" or \"log1p\"";
        if let Some(t) = choice(map, "target_transform", &transforms, expected)? {
            self.target_transform = t;
        }
        let losses = "\"squared_error\", \"hurdle\" or \"ziln\"";
        if let Some(loss) = choice(map, "loss", &ValueLoss::CHOICES, losses)? {
            self.loss = loss;
        }
        if self.loss == ValueLoss::SquaredError {
            return Ok(());
        }
        let name = self.loss.name();
        if self.target_transform != TargetTransform::Identity {
            return Err(EngineError::invalid_parameter(format!(
                "loss \"{name}\" cannot be combined with target_transform \"log1p\""
            ))
            .with_detail("The loss models the logarithm of the spend of buyers itself."));
        }
        if self.task == Some(Task::Classification) {
            return Err(EngineError::invalid_parameter(format!(
                "loss \"{name}\" is for a value (regression) target, not a classification"
            )));
        }
        let networks = [
            Algorithm::Mlp,
            Algorithm::Gru,
            Algorithm::Cnn,
            Algorithm::Auto,
        ];
        if self.loss == ValueLoss::Ziln && !networks.contains(&algorithm) {
            return Err(EngineError::invalid_parameter(format!(
                "loss \"ziln\" is for the networks mlp, gru and cnn (three outputs), not {}",
                algorithm.name()
            ))
            .with_hint("Use loss \"hurdle\" for the two-part model of gbm."));
        }
        Ok(())
    }

    /// `as_of`, `impute`, `max_one_hot`, `pad`: how dates, NULLs, categories and arrays are
    /// encoded.
    fn parse_encoding(&mut self, map: &Map<String, Value>) -> Result<()> {
        if let Some(v) = map.get("as_of") {
            let text = v.as_str().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                option_error("as_of", "a date or timestamp like \"2026-01-31\"", v)
            })?;
            self.as_of = Some(text.to_string());
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
                let parsed = Imputation::parse(rule).ok_or_else(|| {
                    EngineError::invalid_parameter(format!(
                        "option \"impute\" for column \"{column}\" must be \"median\", \"mean\", \"mode\" or a number, got {rule}"
                    ))
                })?;
                self.impute.push((column.clone(), parsed));
            }
        }
        if let Some(n) = integer(map, "max_one_hot", 1, 100)? {
            self.max_one_hot = n as usize;
        }
        if let Some(v) = map.get("pad") {
            self.pad = v
                .as_bool()
                .ok_or_else(|| option_error("pad", "true or false", v))?;
        }
        Ok(())
    }

    /// `time_budget`, `search`, `candidates`: how candidates and hyperparameters are tried.
    fn parse_auto(&mut self, map: &Map<String, Value>, algorithm: Algorithm) -> Result<()> {
        self.time_budget = number(map, "time_budget", 0.001, 1e7, "a number of seconds > 0")?;
        if let Some(v) = map.get("search") {
            self.search = Some(SearchSpec::parse(v, map, algorithm)?);
        }
        if let Some(v) = map.get("candidates") {
            self.candidates = parse_candidates(map, v)?;
        }
        Ok(())
    }
}

/// Refuses a key that is unknown or does not apply to `algorithm`, naming the valid ones.
fn check_keys(map: &Map<String, Value>, algorithm: Algorithm) -> Result<()> {
    let valid = valid_keys(algorithm);
    let Some(key) = map.keys().find(|k| !valid.contains(&k.as_str())) else {
        return Ok(());
    };
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
    Err(EngineError::invalid_parameter(message).with_hint(format!(
        "Valid options for algorithm \"{}\" are: {}.",
        algorithm.name(),
        valid.join(", ")
    )))
}

/// `candidates`: machine-learning algorithms for `auto`, each once.
fn parse_candidates(map: &Map<String, Value>, v: &Value) -> Result<Vec<Algorithm>> {
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
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn a_huge_search_space_is_refused_before_it_is_listed() {
        // 1000 × 32 × 1000 × 1000 = 3.2·10^10 combinations, never enumerated
        let upto = |n: u64| json!((1..=n).collect::<Vec<u64>>());
        let params = json!({"n_trees": upto(1000), "max_depth": upto(32),
                            "min_samples_leaf": upto(1000), "learning_rate": upto(1000)});
        for method in ["grid", "random"] {
            let options = json!({"search": {"method": method, "params": params}});
            let err = TrainOptions::parse(&options, Algorithm::Gbm).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidParameter);
            assert!(
                err.message.contains("32000000000 combinations"),
                "{}",
                err.message
            );
        }
    }

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
