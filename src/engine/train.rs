//! Training: seeded holdout split, fitting, holdout metrics, `auto` selection and tier cuts.

use serde_json::{json, Value};
use std::time::Instant;

use super::clv::bgnbd::BgNbd;
use super::clv::data::{self as clv_data, Customer};
use super::clv::gamma_gamma::GammaGamma;
use super::clv::model::{ClvModel, CountModel};
use super::clv::optimize::FitOptions;
use super::clv::pareto_nbd::ParetoNbd;
use super::codec::{Link, TargetTransform};
use super::codec::{ModelArtifact, Task};
use super::drift::BinProfile;
use super::error::{EngineError, ErrorKind, Result};
use super::features::{Dataset, Encoding, FeatureSpec};
use super::metrics::Totals;
use super::metrics::{ClassificationMetrics, HoldoutMetrics, Metric};
use super::models::explain::{feature_means, node_covers};
use super::models::forest::fit_random_forest;
use super::models::gbm::sigmoid;
use super::models::gbm::{fit_gbm, GbmLoss};
use super::models::importance::{gain_importance, mean_squared_error, permutation_importance};
use super::models::mlp::{fit_mlp, MlpTask};
use super::models::{Algorithm, ClassModel, LinearModel, Predictor};
use super::options::TrainOptions;
use super::stats::SplitMix64;
use super::tiers::TierSpec;
use super::tiers::{Tier, TierScheme};

/// Fewest usable rows any algorithm is trained on: below this a holdout says nothing.
pub const MIN_TRAINING_ROWS: usize = 10;

/// One candidate fitted by `auto` (or the only one for a concrete algorithm).
#[derive(Debug, Clone)]
pub struct Trial {
    pub algorithm: Algorithm,
    pub outcome: std::result::Result<HoldoutMetrics, EngineError>,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub artifact: ModelArtifact,
    /// Holdout metrics of the kept model (CLV models: against the target, when one is given).
    pub metrics: Option<HoldoutMetrics>,
    /// Further facts stored in the `metrics` jsonb (e.g. a CLV fit's log-likelihood).
    pub extra: serde_json::Map<String, Value>,
    pub trials: Vec<Trial>,
    pub n_train: usize,
    pub n_test: usize,
    pub dropped_null_target: usize,
    /// The rows the metrics were computed on, as indices into the training rows (regression:
    /// the holdout; CLV: every customer with a target), so another model can be scored on
    /// exactly the same rows (champion/challenger).
    pub evaluation_rows: Vec<usize>,
    /// The predictions' distribution on the training population (for drift).
    pub prediction_profile: BinProfile,
}

/// Train/test row indices for a seeded split; `test_size` of the rows (at least one) go to test.
pub fn holdout_split(n: usize, test_size: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed).shuffle(&mut order);
    let n_test = ((n as f64 * test_size).round() as usize).clamp(1, n.saturating_sub(1));
    let test = order[..n_test].to_vec();
    let train = order[n_test..].to_vec();
    (train, test)
}

/// A fitted predictor with what explanations and importances need from training.
struct Fit {
    predictor: Predictor,
    covers: Vec<f64>,
    gains: Vec<f64>,
    link: Link,
}

impl From<Predictor> for Fit {
    fn from(predictor: Predictor) -> Fit {
        Fit {
            predictor,
            covers: Vec::new(),
            gains: Vec::new(),
            link: Link::Identity,
        }
    }
}

impl Fit {
    /// The prediction for an encoded row: the raw output through the link.
    fn output(&self, raw: f64) -> f64 {
        match self.link {
            Link::Identity => raw,
            Link::Logistic => sigmoid(raw),
        }
    }
}

/// Fits a binary classifier on 0/1 labels.
fn fit_classifier(
    algorithm: Algorithm,
    train: &Dataset,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Fit> {
    match algorithm {
        Algorithm::Logistic => Ok(Fit {
            link: Link::Logistic,
            ..Fit::from(Predictor::Linear(LinearModel::fit_logistic(
                train,
                options.alpha,
            )?))
        }),
        Algorithm::Gbm => {
            let fitted = fit_gbm(train, GbmLoss::LogLoss, &options.gbm, interrupt)?;
            Ok(Fit {
                predictor: Predictor::Trees(fitted.ensemble),
                covers: fitted.hessian_covers,
                gains: fitted.split_gains,
                link: Link::Logistic,
            })
        }
        Algorithm::Mlp => {
            let (model, _report) = fit_mlp(train, MlpTask::Binary, &options.mlp, interrupt)?;
            Ok(Fit::from(Predictor::Mlp(model)))
        }
        // a forest of regression trees on 0/1 labels averages them into a probability
        Algorithm::RandomForest => fit(algorithm, train, options, interrupt),
        other => Err(cannot_classify(other)),
    }
}

/// A multi-class classifier as one binary classifier per class (class k against the rest).
fn fit_one_vs_rest(
    algorithm: Algorithm,
    train: &Dataset,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Fit> {
    let binary_options = TrainOptions {
        classes: Vec::new(),
        ..options.clone()
    };
    let mut models = Vec::with_capacity(options.classes.len());
    for k in 0..options.classes.len() {
        interrupt();
        let mut one = train.clone();
        for y in &mut one.y {
            *y = f64::from(u8::from(*y == k as f64));
        }
        if !one.y.contains(&1.0) {
            return Err(EngineError::insufficient_data(format!(
                "class \"{}\" has no training row",
                options.classes[k]
            )));
        }
        let fitted = fit(algorithm, &one, &binary_options, interrupt)?;
        models.push(ClassModel {
            predictor: fitted.predictor,
            logistic: fitted.link == Link::Logistic,
        });
    }
    Ok(Fit::from(Predictor::OneVsRest(models)))
}

fn cannot_classify(algorithm: Algorithm) -> EngineError {
    EngineError::invalid_parameter(format!(
        "algorithm \"{}\" cannot learn a classification target",
        algorithm.name()
    ))
    .with_hint("Use logistic, gbm, mlp, random_forest or auto; or options => '{\"task\": \"regression\"}' for a numeric target.")
}

fn fit(
    algorithm: Algorithm,
    train: &Dataset,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Fit> {
    if options.task == Some(Task::Classification) && options.classes.len() > 2 {
        return fit_one_vs_rest(algorithm, train, options, interrupt);
    }
    if options.task == Some(Task::Classification) && algorithm != Algorithm::RandomForest {
        return fit_classifier(algorithm, train, options, interrupt);
    }
    let linear = |m: Result<LinearModel>| m.map(|m| Fit::from(Predictor::Linear(m)));
    match algorithm {
        Algorithm::Linear => linear(LinearModel::fit_ols(train)),
        Algorithm::Ridge => linear(LinearModel::fit_ridge(train, options.alpha)),
        Algorithm::Lasso => linear(LinearModel::fit_lasso(train, options.alpha)),
        Algorithm::ElasticNet => linear(LinearModel::fit_elastic_net(
            train,
            options.alpha,
            options.l1_ratio,
        )),
        Algorithm::RandomForest => {
            let forest = fit_random_forest(train, &options.forest, interrupt)?;
            // row counts per node: TreeSHAP's cover for a forest
            let covers = node_covers(&forest, train)?;
            Ok(Fit {
                predictor: Predictor::Trees(forest),
                covers,
                gains: Vec::new(),
                link: Link::Identity,
            })
        }
        Algorithm::Gbm => {
            let fitted = fit_gbm(train, GbmLoss::SquaredError, &options.gbm, interrupt)?;
            Ok(Fit {
                predictor: Predictor::Trees(fitted.ensemble),
                covers: fitted.hessian_covers,
                gains: fitted.split_gains,
                link: Link::Identity,
            })
        }
        Algorithm::Mlp => {
            let (model, _report) = fit_mlp(train, MlpTask::Regression, &options.mlp, interrupt)?;
            Ok(Fit::from(Predictor::Mlp(model)))
        }
        other => Err(EngineError::new(
            ErrorKind::Internal,
            format!("{} is not a regression algorithm", other.name()),
        )),
    }
}

fn predict_all(predictor: &Predictor, data: &Dataset) -> Result<Vec<f64>> {
    let predictions: Vec<f64> = (0..data.n_rows)
        .map(|i| predictor.predict(data.row(i)))
        .collect();
    if let Some(i) = predictions.iter().position(|p| !p.is_finite()) {
        return Err(EngineError::new(
            ErrorKind::NonFiniteValue,
            format!(
                "the fitted model predicts {} for a training row",
                predictions[i]
            ),
        )
        .with_hint("Features may have extreme values; try ridge or scale the inputs."));
    }
    Ok(predictions)
}

/// What the target is: it decides the fit, the metrics and the default selection metric.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TargetKind {
    Value,
    Binary,
    MultiClass,
}

impl TargetKind {
    /// The metrics computed for this kind of target: a `metric` option outside them would
    /// compare nothing with nothing (NULL with NULL) when deciding deployment.
    fn metrics(self) -> &'static [Metric] {
        match self {
            TargetKind::Value => &[
                Metric::Rmse,
                Metric::Mae,
                Metric::R2,
                Metric::Spearman,
                Metric::Gini,
                Metric::TopDecileCapture,
            ],
            TargetKind::Binary => &[
                Metric::Auc,
                Metric::LogLoss,
                Metric::Accuracy,
                Metric::F1,
                Metric::Gini,
                Metric::Spearman,
                Metric::TopDecileCapture,
                Metric::Rmse,
                Metric::Mae,
            ],
            TargetKind::MultiClass => &[Metric::Accuracy, Metric::LogLoss, Metric::F1],
        }
    }

    fn check_metric(self, options: &TrainOptions) -> Result<()> {
        let applicable = self.metrics();
        if !options.metric_given || applicable.contains(&options.metric) {
            return Ok(());
        }
        let what = match self {
            TargetKind::Value => "a value (regression) model",
            TargetKind::Binary => "a binary classifier",
            TargetKind::MultiClass => "a multi-class classifier",
        };
        let names: Vec<&str> = applicable.iter().map(|m| m.key()).collect();
        Err(EngineError::invalid_parameter(format!(
            "metric \"{}\" does not apply to {what}",
            options.metric.key()
        ))
        .with_hint(format!("Use one of: {}.", names.join(", "))))
    }

    /// The metric that ranks candidates and search combinations: the `metric` option, else AUC
    /// for a binary classifier and accuracy for a multi-class one.
    fn selection_metric(self, options: &TrainOptions) -> Metric {
        match (self, options.metric_given) {
            (TargetKind::Binary, false) => Metric::Auc,
            (TargetKind::MultiClass, false) => Metric::Accuracy,
            _ => options.metric,
        }
    }
}

/// Metrics of `fitted` on the rows of `set`, whose actual targets (on the original scale) are
/// `actual`; `back` undoes the target transform.
fn evaluate_fit(
    fitted: &Fit,
    set: &Dataset,
    actual: &[f64],
    kind: TargetKind,
    back: &dyn Fn(f64) -> f64,
) -> Result<HoldoutMetrics> {
    if kind == TargetKind::MultiClass {
        let probabilities: Vec<Vec<f64>> = (0..set.n_rows)
            .map(|i| fitted.predictor.class_probabilities(set.row(i)))
            .collect();
        return Ok(HoldoutMetrics::compute_multiclass(actual, &probabilities));
    }
    let predicted: Vec<f64> = predict_all(&fitted.predictor, set)?
        .into_iter()
        .map(|raw| back(fitted.output(raw)))
        .collect();
    Ok(if kind == TargetKind::Binary {
        HoldoutMetrics::compute_classification(actual, &predicted)
    } else {
        HoldoutMetrics::compute(actual, &predicted)
    })
}

/// `combo`'s options with what was settled from the target (task, classes) taken from `options`.
fn with_target_settings(combo: &TrainOptions, options: &TrainOptions) -> TrainOptions {
    TrainOptions {
        task: options.task,
        class_labels: options.class_labels.clone(),
        classes: options.classes.clone(),
        search: None,
        ..combo.clone()
    }
}

/// Trains `algorithm` on `data` as `options` say. `interrupt` is called between units of work
/// (trees, candidates) so the caller can cancel.
pub fn train(
    features: Vec<FeatureSpec>,
    data: &Dataset,
    algorithm: Algorithm,
    target: Option<&str>,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<TrainOutcome> {
    if data.n_rows < MIN_TRAINING_ROWS {
        return Err(EngineError::insufficient_data(format!(
            "the source has {} usable rows; training needs at least {MIN_TRAINING_ROWS}",
            data.n_rows
        ))
        .with_detail(format!(
            "Rows whose target is NULL are not used ({} of them).",
            data.dropped_null_target
        )));
    }
    let classify = options.task == Some(Task::Classification);
    let multiclass = classify && options.classes.len() > 2;
    let kind = match (classify, multiclass) {
        (true, true) => TargetKind::MultiClass,
        (true, false) => TargetKind::Binary,
        _ => TargetKind::Value,
    };
    kind.check_metric(options)?;
    if multiclass {
        let k = options.classes.len() as f64;
        if let Some(y) = data
            .y
            .iter()
            .find(|y| **y < 0.0 || **y >= k || y.fract() != 0.0)
        {
            return Err(EngineError::new(
                ErrorKind::Internal,
                format!("class index {y} outside 0..{k}"),
            ));
        }
    }
    if classify && !multiclass {
        if let Some(y) = data.y.iter().find(|y| **y != 0.0 && **y != 1.0) {
            return Err(EngineError::new(
                ErrorKind::DatatypeMismatch,
                format!("a classification target must be boolean or 0/1; the target holds {y}"),
            )
            .with_hint(
                "Use a boolean column (e.g. churned), or options => '{\"task\": \"regression\"}'.",
            ));
        }
        if !algorithm.can_classify() {
            return Err(cannot_classify(algorithm));
        }
        if options.target_transform != TargetTransform::Identity {
            return Err(EngineError::invalid_parameter(
                "target_transform applies to value models, not to a classification target",
            ));
        }
        let default_candidates = options.candidates == Algorithm::CANDIDATES;
        for a in &options.candidates {
            if algorithm == Algorithm::Auto && !default_candidates && !a.can_classify() {
                return Err(cannot_classify(*a));
            }
        }
    }
    let (train_idx, test_idx) = holdout_split(data.n_rows, options.test_size, options.seed);
    // target encoding learns its category means from the training rows only
    let mut features = features;
    let encoded_data;
    let data = if data.pending_target_means.is_empty() {
        data
    } else {
        let mut copy = data.clone();
        copy.encode_target_means(&mut features, &train_idx);
        encoded_data = copy;
        &encoded_data
    };
    let log1p = options.target_transform == TargetTransform::Log1p;
    if log1p {
        if let Some(y) = data.y.iter().find(|y| **y <= -1.0) {
            return Err(EngineError::invalid_parameter(format!(
                "target_transform \"log1p\" needs a target above -1; the target holds {y}"
            )));
        }
    }
    let mut train_set = data.subset(&train_idx);
    if log1p {
        // fit on ln(1 + y); every prediction below is transformed back, so metrics, tiers and
        // scoring are on the original scale
        for y in &mut train_set.y {
            *y = y.ln_1p();
        }
    }
    let test_set = data.subset(&test_idx);
    let back = |p: f64| if log1p { p.exp_m1() } else { p };

    // Hyperparameter search: k-fold cross-validation on the training split only (the holdout
    // stays untouched for the final, honest metrics), then the best combination is fitted as
    // usual.
    let mut search_report: Option<Value> = None;
    let searched: Option<TrainOptions> = match &options.search {
        None => None,
        Some(search) => {
            if algorithm == Algorithm::Auto {
                return Err(EngineError::invalid_parameter(
                    "option \"search\" needs a concrete algorithm, not auto",
                ));
            }
            let metric = kind.selection_metric(options);
            let k = search.folds.min(train_set.n_rows);
            let mut order: Vec<usize> = (0..train_set.n_rows).collect();
            SplitMix64::new(options.seed ^ 0xF01D).shuffle(&mut order);
            let mut best: Option<(usize, Option<f64>)> = None;
            let mut trials_json = Vec::new();
            for (ci, (params, combo)) in search.combinations.iter().enumerate() {
                let combo = with_target_settings(combo, options);
                let started = Instant::now();
                let mut scores = Vec::with_capacity(k);
                for fold in 0..k {
                    interrupt();
                    let (fit_rows, val_rows): (Vec<usize>, Vec<usize>) = order
                        .iter()
                        .enumerate()
                        .fold((Vec::new(), Vec::new()), |mut acc, (i, &row)| {
                            if i % k == fold {
                                acc.1.push(row);
                            } else {
                                acc.0.push(row);
                            }
                            acc
                        });
                    let fit_set = train_set.subset(&fit_rows);
                    let val_set = train_set.subset(&val_rows);
                    let fitted = fit(algorithm, &fit_set, &combo, interrupt)?;
                    // the training rows' targets are on the fitted (transformed) scale
                    let actual: Vec<f64> = val_set.y.iter().map(|y| back(*y)).collect();
                    let m = evaluate_fit(&fitted, &val_set, &actual, kind, &back)?;
                    scores.push(m.get(metric));
                }
                let defined: Vec<f64> = scores.iter().flatten().copied().collect();
                let mean = (defined.len() == scores.len() && !defined.is_empty())
                    .then(|| defined.iter().sum::<f64>() / defined.len() as f64);
                let sd = mean.map(|m| {
                    (defined.iter().map(|v| (v - m) * (v - m)).sum::<f64>()
                        / defined.len().max(1) as f64)
                        .sqrt()
                });
                trials_json.push(json!({
                    "params": params,
                    "cv_mean": mean,
                    "cv_sd": sd,
                    "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                }));
                let better = match &best {
                    None => true,
                    Some((_, incumbent)) => !metric.at_least_as_good(*incumbent, mean),
                };
                if better {
                    best = Some((ci, mean));
                }
            }
            let (ci, _) = best.ok_or_else(|| {
                EngineError::new(ErrorKind::Internal, "a search without combinations")
            })?;
            let (params, combo) = &search.combinations[ci];
            search_report = Some(json!({
                "method": search.method,
                "folds": k,
                "metric": metric.key(),
                "best": params,
                "trials": trials_json,
            }));
            Some(TrainOptions {
                metric: options.metric,
                metric_given: options.metric_given,
                ..with_target_settings(combo, options)
            })
        }
    };
    let options = searched.as_ref().unwrap_or(options);
    let all_started = Instant::now();
    let candidates: Vec<Algorithm> = if algorithm != Algorithm::Auto {
        vec![algorithm]
    } else if classify && options.candidates == Algorithm::CANDIDATES {
        Algorithm::CLASSIFIER_CANDIDATES.to_vec()
    } else {
        options.candidates.clone()
    };
    let metric = kind.selection_metric(options);
    let mut trials = Vec::new();
    let mut best: Option<(Algorithm, Fit, HoldoutMetrics)> = None;
    let mut first_error: Option<EngineError> = None;
    for candidate in candidates {
        interrupt();
        if let Some(budget) = options.time_budget {
            // the budget is checked between candidates: the first always runs
            if !trials.is_empty() && all_started.elapsed().as_secs_f64() > budget {
                trials.push(Trial {
                    algorithm: candidate,
                    outcome: Err(EngineError::new(
                        ErrorKind::InsufficientData,
                        format!("skipped: the time_budget of {budget} s was spent"),
                    )),
                    seconds: 0.0,
                });
                continue;
            }
        }
        let started = Instant::now();
        let fitted = fit(candidate, &train_set, options, interrupt).and_then(|fitted| {
            let metrics = evaluate_fit(&fitted, &test_set, &test_set.y, kind, &back)?;
            Ok((fitted, metrics))
        });
        let seconds = started.elapsed().as_secs_f64();
        match fitted {
            Ok((fitted, metrics)) => {
                trials.push(Trial {
                    algorithm: candidate,
                    outcome: Ok(metrics.clone()),
                    seconds,
                });
                let better = match &best {
                    None => true,
                    Some((_, _, incumbent)) => {
                        // strictly better replaces; ties keep the earlier (simpler) candidate
                        !metric.at_least_as_good(incumbent.get(metric), metrics.get(metric))
                    }
                };
                if better {
                    best = Some((candidate, fitted, metrics));
                }
            }
            Err(e) if algorithm == Algorithm::Auto && e.kind != ErrorKind::Internal => {
                trials.push(Trial {
                    algorithm: candidate,
                    outcome: Err(e.clone()),
                    seconds,
                });
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    let (chosen, fitted, metrics) = match best {
        Some(b) => b,
        None => {
            return Err(first_error.unwrap_or_else(|| {
                EngineError::new(ErrorKind::Internal, "no candidate algorithm to train")
            }))
        }
    };
    // Tiers are cut on the whole training population (train and holdout rows).
    let population: Vec<f64> = predict_all(&fitted.predictor, data)?
        .into_iter()
        .map(|raw| back(fitted.output(raw)))
        .collect();
    if let Some(p) = population.iter().find(|p| !p.is_finite()) {
        return Err(EngineError::new(
            ErrorKind::NonFiniteValue,
            format!("the fitted model predicts {p} for a training row after the log1p transform"),
        ));
    }
    // a classifier's tier is its predicted class (probability ≥ 0.5), unless tiers were given
    let tiers = if classify && !multiclass && options.tiers == TierSpec::default() {
        let (negative, positive) = options.class_labels.clone();
        TierScheme {
            tiers: vec![
                Tier {
                    name: positive,
                    min: Some(0.5),
                    share: None,
                },
                Tier {
                    name: negative,
                    min: None,
                    share: None,
                },
            ],
        }
    } else {
        options.tiers.fit(&population)
    };
    let prediction_profile = profile_of(&population);
    let mut artifact = ModelArtifact::regression(
        chosen,
        if classify {
            Task::Classification
        } else {
            Task::Regression
        },
        target.map(str::to_string),
        features,
        fitted.predictor,
        tiers,
    );
    artifact.target_transform = options.target_transform;
    artifact.link = fitted.link;
    if multiclass {
        artifact.classes = options.classes.clone();
    } else if classify {
        let (negative, positive) = options.class_labels.clone();
        artifact.classes = vec![negative, positive];
    }
    artifact.covers = fitted.covers;
    artifact.gains = fitted.gains;
    artifact.feature_means = feature_means(&train_set);
    // importance of each feature on the holdout: how much the loss grows when the feature's
    // values are shuffled (any model), and for boosted trees the split gains
    let mut importance = Vec::new();
    {
        let sample: Vec<usize> = (0..test_set.n_rows.min(20_000)).collect();
        let holdout = test_set.subset(&sample);
        let predict = |x: &[f64]| {
            if multiclass {
                artifact
                    .predictor
                    .predicted_class(x)
                    .map_or(f64::NAN, |k| k as f64)
            } else {
                artifact.predict(x)
            }
        };
        let loss = |y: &[f64], p: &[f64]| {
            if multiclass {
                // the error rate: a multi-class model's loss on predicted classes
                y.iter().zip(p).filter(|(a, b)| a != b).count() as f64 / y.len().max(1) as f64
            } else if classify {
                ClassificationMetrics::compute(y, p).log_loss
            } else {
                mean_squared_error(y, p)
            }
        };
        let permutation =
            permutation_importance(&predict, &holdout, &loss, 3, options.seed, interrupt)?;
        let gains = match &artifact.predictor {
            Predictor::Trees(t) if !artifact.gains.is_empty() => {
                Some(gain_importance(t, &artifact.gains)?)
            }
            _ => None,
        };
        let total_gain: f64 = gains.iter().flatten().sum();
        for (j, spec) in artifact.features.iter().enumerate() {
            let mut entry = serde_json::Map::new();
            entry.insert("feature".into(), json!(spec.name));
            entry.insert("permutation".into(), json!(permutation[j]));
            if let Some(g) = &gains {
                entry.insert(
                    "gain".into(),
                    json!(if total_gain > 0.0 {
                        g[j] / total_gain
                    } else {
                        0.0
                    }),
                );
            }
            importance.push(Value::Object(entry));
        }
    }
    let mut extra = serde_json::Map::new();
    if let Some(report) = search_report {
        extra.insert("search".into(), report);
    }
    extra.insert("feature_importance".into(), Value::Array(importance));
    extra.insert(
        "importance_loss".into(),
        json!(if multiclass {
            "error_rate"
        } else if classify {
            "log_loss"
        } else {
            "mse"
        }),
    );
    artifact.validate()?;
    Ok(TrainOutcome {
        artifact,
        metrics: Some(metrics),
        extra,
        trials,
        n_train: train_idx.len(),
        n_test: test_idx.len(),
        dropped_null_target: data.dropped_null_target,
        evaluation_rows: test_idx,
        prediction_profile,
    })
}

/// Fits a CLV model (`bgnbd`, `pareto_nbd`, `gamma_gamma` or `clv`) on an RFM summary.
/// Parameters of a fitted CLV model that are usable: finite and within [1e-8, 1e8]. A fit that
/// ran off to a boundary (e.g. r, α → 10³⁸ with a likelihood of 0 on very regular buyers)
/// reached no valid optimum and is refused instead of deployed.
fn check_clv_fit(model: &str, names: &[&str], values: &[f64], log_likelihood: f64) -> Result<()> {
    let out_of_range = |v: f64| !v.is_finite() || !(1e-8..=1e8).contains(&v);
    if values.iter().all(|&v| !out_of_range(v)) && log_likelihood.is_finite() {
        return Ok(());
    }
    let shown: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n} = {v:.4e}"))
        .collect();
    Err(EngineError::new(
        ErrorKind::FitFailed,
        format!(
            "{model} did not converge to a valid optimum: {} (log-likelihood {log_likelihood})",
            shown.join(", ")
        ),
    )
    .with_detail("A parameter ran off towards 0 or infinity: the data carry too little heterogeneity for this model (e.g. customers who all buy on the same schedule).")
    .with_hint("Add a penalty, e.g. options => '{\"penalizer\": 0.01}', or use more varied data."))
}

/// `features` name the summary's columns (frequency, recency, t and, for spend models,
/// monetary_value); `target`, if given, is compared with each customer's value (e.g. the
/// holdout purchases or spend) — these models are evaluated over time, not on a row holdout.
pub fn train_clv(
    features: Vec<FeatureSpec>,
    customers: &[Customer],
    target: Option<(&str, &[Option<f64>])>,
    algorithm: Algorithm,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<TrainOutcome> {
    clv_data::validate(customers)?;
    if target.is_some() {
        TargetKind::Value.check_metric(options)?;
    }
    let o = &options.clv;
    let fit_options = FitOptions {
        penalizer: o.penalizer,
        max_iterations: o.max_iterations,
    };
    let count_algorithm = match algorithm {
        Algorithm::Clv => Some(o.count_model),
        Algorithm::BgNbd | Algorithm::ParetoNbd => Some(algorithm),
        _ => None,
    };
    // grouped input: a row stands for `count` customers
    let counts: Vec<f64> = customers.iter().map(|c| c.count).collect();
    let grouped = counts.iter().any(|&c| c != 1.0);
    let n_customers: f64 = counts.iter().sum();
    let mut extra = serde_json::Map::new();
    extra.insert("customers".into(), json!(n_customers as u64));
    extra.insert(
        "customers_with_repeats".into(),
        json!(customers
            .iter()
            .filter(|c| c.frequency > 0.0)
            .map(|c| c.count)
            .sum::<f64>() as u64),
    );
    if grouped {
        extra.insert("summary_rows".into(), json!(customers.len()));
    }
    let first_seen_at_end: f64 = customers
        .iter()
        .filter(|c| c.t == 0.0)
        .map(|c| c.count)
        .sum();
    if first_seen_at_end > 0.0 {
        // counted, scored, and left out of the count models' fit (their likelihood term is 1)
        extra.insert(
            "customers_first_seen_at_calibration_end".into(),
            json!(first_seen_at_end as u64),
        );
    }
    let count = match count_algorithm {
        Some(Algorithm::BgNbd) => {
            let (m, ll) = BgNbd::fit(customers, &fit_options, interrupt)?;
            check_clv_fit("bgnbd", &["r", "alpha", "a", "b"], &m.params(), ll)?;
            extra.insert("log_likelihood".into(), json!(ll));
            Some(CountModel::BgNbd(m))
        }
        Some(Algorithm::ParetoNbd) => {
            let (m, ll) = ParetoNbd::fit(customers, &fit_options, interrupt)?;
            check_clv_fit("pareto_nbd", &["r", "alpha", "s", "beta"], &m.params(), ll)?;
            extra.insert("log_likelihood".into(), json!(ll));
            Some(CountModel::ParetoNbd(m))
        }
        _ => None,
    };
    let spend = if matches!(algorithm, Algorithm::GammaGamma | Algorithm::Clv) {
        let fit = GammaGamma::fit(customers, &fit_options, interrupt)?;
        check_clv_fit(
            "gamma_gamma",
            &["p", "q", "gamma"],
            &fit.model.params(),
            fit.log_likelihood,
        )?;
        if fit.model.q <= 1.0 {
            return Err(EngineError::new(
                ErrorKind::FitFailed,
                format!(
                    "gamma_gamma fitted q = {:.4} ≤ 1, for which the mean spend is infinite",
                    fit.model.q
                ),
            )
            .with_hint("Add a penalty with options => '{\"penalizer\": 0.01}', or check the spend data for extreme values."));
        }
        let key = if count.is_some() {
            "spend_log_likelihood"
        } else {
            "log_likelihood"
        };
        extra.insert(key.into(), json!(fit.log_likelihood));
        extra.insert("spend_customers".into(), json!(fit.customers_used));
        extra.insert(
            "excluded_nonpositive_spend".into(),
            json!(fit.excluded_nonpositive),
        );
        Some(fit.model)
    } else {
        None
    };
    let model = ClvModel {
        count,
        spend,
        horizon: o.horizon,
        discount_rate: o.discount_rate,
        unit_days: o.unit_days,
    };
    let n_inputs = model.n_inputs();
    let predictions: Vec<f64> = customers
        .iter()
        .map(|c| model.value(&[c.frequency, c.recency, c.t, c.monetary_value][..n_inputs]))
        .collect();
    // expected purchases, P(alive) and values are ≥ 0 by construction: anything else is a
    // numerical breakdown of the fitted model, never a number to deploy
    if let Some(i) = predictions.iter().position(|p| !p.is_finite() || *p < 0.0) {
        return Err(EngineError::new(
            ErrorKind::FitFailed,
            format!(
                "the fitted {} model gives {} for row {} of the summary",
                algorithm.name(),
                predictions[i],
                i + 1
            ),
        ));
    }
    let mut dropped_null_target = 0;
    let mut evaluation_rows = Vec::new();
    let metrics = match target {
        None => None,
        Some((name, values)) => {
            let (mut actual, mut predicted) = (Vec::new(), Vec::new());
            for (i, (v, p)) in values.iter().zip(&predictions).enumerate() {
                match v {
                    Some(v) => {
                        evaluation_rows.push(i);
                        actual.push(*v);
                        predicted.push(*p);
                    }
                    None => dropped_null_target += 1,
                }
            }
            if actual.is_empty() {
                return Err(EngineError::insufficient_data(format!(
                    "the target column \"{name}\" is NULL in every row"
                )));
            }
            let totals = Totals::compute(&actual, &predicted);
            extra.insert("predicted_total".into(), json!(totals.predicted));
            extra.insert("actual_total".into(), json!(totals.actual));
            extra.insert("total_error_pct".into(), json!(totals.error_pct));
            Some(HoldoutMetrics::compute(&actual, &predicted))
        }
    };
    let (tiers, prediction_profile) = if grouped {
        (
            options.tiers.fit_counted(&predictions, &counts),
            BinProfile::of_counted(&predictions, &counts),
        )
    } else {
        (options.tiers.fit(&predictions), profile_of(&predictions))
    };
    let artifact = ModelArtifact::regression(
        algorithm,
        Task::Clv,
        target.map(|(name, _)| name.to_string()),
        features,
        Predictor::Clv(model),
        tiers,
    );
    artifact.validate()?;
    Ok(TrainOutcome {
        artifact,
        metrics,
        extra,
        trials: Vec::new(),
        n_train: n_customers as usize,
        n_test: 0,
        dropped_null_target,
        evaluation_rows,
        prediction_profile,
    })
}

fn profile_of(predictions: &[f64]) -> BinProfile {
    let values: Vec<Option<f64>> = predictions.iter().map(|p| Some(*p)).collect();
    BinProfile::of(&values)
}

pub fn metrics_object(m: &HoldoutMetrics) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    map.insert("rmse".into(), json!(m.rmse));
    map.insert("mae".into(), json!(m.mae));
    map.insert("r2".into(), json!(m.r2));
    map.insert("spearman".into(), json!(m.spearman));
    map.insert("gini".into(), json!(m.gini));
    map.insert("top_decile_capture".into(), json!(m.top_decile_capture));
    if let Some(c) = &m.classification {
        // a classifier: its own keys, and the value metrics that mean something for it
        map.remove("r2");
        map.remove("spearman");
        map.insert("auc".into(), json!(c.auc));
        map.insert("log_loss".into(), json!(c.log_loss));
        map.insert("accuracy".into(), json!(c.accuracy));
        map.insert("f1".into(), json!(c.f1));
        map.insert("positive_rate".into(), json!(c.positive_rate));
        map.insert("calibration".into(), json!(c.calibration));
    }
    map
}

impl TrainOutcome {
    /// The `metrics` jsonb stored with the model.
    pub fn metrics_json(&self, options: &TrainOptions) -> Value {
        let mut map = self
            .metrics
            .as_ref()
            .map(metrics_object)
            .unwrap_or_default();
        map.insert("n_train".into(), json!(self.n_train));
        map.insert("n_test".into(), json!(self.n_test));
        map.insert(
            "dropped_null_target".into(),
            json!(self.dropped_null_target),
        );
        map.insert("selection_metric".into(), json!(options.metric.key()));
        for (k, v) in &self.extra {
            map.insert(k.clone(), v.clone());
        }
        if self.trials.len() > 1 {
            let trials: Vec<Value> = self
                .trials
                .iter()
                .map(|t| {
                    let mut obj = match &t.outcome {
                        Ok(m) => metrics_object(m),
                        Err(e) => {
                            let mut o = serde_json::Map::new();
                            o.insert("error".into(), json!(e.message));
                            o
                        }
                    };
                    obj.insert("algorithm".into(), json!(t.algorithm.name()));
                    obj.insert(
                        "seconds".into(),
                        json!((t.seconds * 1000.0).round() / 1000.0),
                    );
                    Value::Object(obj)
                })
                .collect();
            map.insert("trials".into(), Value::Array(trials));
        }
        Value::Object(map)
    }
}

/// The `features` jsonb: the schema a scoring row must match.
pub fn features_json(features: &[FeatureSpec]) -> Value {
    Value::Array(
        features
            .iter()
            .map(|f| {
                let mut entry = json!({
                    "name": f.name,
                    "column": f.column(),
                    "type": f.sql_type,
                    "encoding": f.encoding.name(),
                    "impute": match (&f.encoding, f.impute) {
                        (Encoding::Indicator { .. }, _) => "category share",
                        (Encoding::TargetMean { .. }, _) => "overall mean",
                        (_, Some(_)) => "training value",
                        (_, None) => "refuse",
                    },
                    "impute_value": f.impute,
                });
                match &f.encoding {
                    Encoding::Indicator { category, .. } => {
                        entry["category"] = json!(category);
                    }
                    Encoding::TargetMean { categories, .. } => {
                        entry["categories"] = json!(categories.len());
                    }
                    Encoding::DaysBefore { as_of } => {
                        entry["as_of_epoch_days"] = json!(as_of);
                    }
                    _ => {}
                }
                entry
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::features::{RawTable, SqlType};
    use crate::engine::metrics::Metric;
    use crate::engine::stats::SplitMix64;
    use serde_json::json;

    /// spend = 5 + 3·visits + 10·is_member + noise; `noise_col` is pure noise.
    fn table(n: usize) -> RawTable {
        let mut t = RawTable::new(
            "spend",
            vec![
                ("visits".into(), SqlType::Integer),
                ("is_member".into(), SqlType::Boolean),
                ("noise_col".into(), SqlType::Double),
            ],
        )
        .unwrap();
        let mut rng = SplitMix64::new(5);
        for _ in 0..n {
            let visits = rng.below(20) as f64;
            let member = rng.below(2) as f64;
            let noise = rng.below(1000) as f64 / 1000.0 - 0.5;
            let other = rng.below(100) as f64;
            t.push_row(
                &[Some(visits), Some(member), Some(other)],
                Some(5.0 + 3.0 * visits + 10.0 * member + noise),
            )
            .unwrap();
        }
        t
    }

    #[test]
    fn split_is_seeded_disjoint_and_sized() {
        let (train, test) = holdout_split(100, 0.2, 1);
        assert_eq!((train.len(), test.len()), (80, 20));
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(holdout_split(100, 0.2, 1), (train, test));
        assert_ne!(holdout_split(100, 0.2, 2).1, holdout_split(100, 0.2, 1).1);
        assert_eq!(holdout_split(10, 0.01, 1).1.len(), 1);
    }

    #[test]
    fn linear_training_recovers_the_formula_and_reports_metrics() {
        let (specs, data) = table(500).into_dataset().unwrap();
        let options = TrainOptions::default();
        let out = train(
            specs,
            &data,
            Algorithm::Linear,
            Some("spend"),
            &options,
            &mut || {},
        )
        .unwrap();
        let Predictor::Linear(m) = &out.artifact.predictor else {
            panic!("not linear")
        };
        assert!((m.coefficients[0] - 3.0).abs() < 0.01, "{m:?}");
        assert!((m.coefficients[1] - 10.0).abs() < 0.1, "{m:?}");
        assert!(m.coefficients[2].abs() < 0.01, "{m:?}");
        assert!((m.intercept - 5.0).abs() < 0.1, "{m:?}");
        let metrics = out.metrics.clone().unwrap();
        assert!(metrics.r2.unwrap() > 0.99);
        assert!(metrics.rmse < 0.35);
        assert_eq!((out.n_train, out.n_test), (400, 100));
        let j = out.metrics_json(&options);
        for key in [
            "rmse",
            "mae",
            "r2",
            "spearman",
            "gini",
            "top_decile_capture",
        ] {
            assert!(j[key].is_number(), "{key} in {j}");
        }
    }

    #[test]
    fn auto_keeps_the_best_candidate_and_records_every_trial() {
        let (specs, data) = table(400).into_dataset().unwrap();
        let mut options = TrainOptions::parse(&json!({"n_trees": 10}), Algorithm::Auto).unwrap();
        options.metric = Metric::Rmse;
        let out = train(
            specs,
            &data,
            Algorithm::Auto,
            Some("spend"),
            &options,
            &mut || {},
        )
        .unwrap();
        // linear, ridge, random_forest, gbm
        assert_eq!(out.trials.len(), 4);
        let best = out
            .trials
            .iter()
            .map(|t| t.outcome.as_ref().unwrap().rmse)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(out.metrics.as_ref().unwrap().rmse, best);
        // the data are linear: a linear model wins
        assert!(matches!(
            out.artifact.algorithm,
            Algorithm::Linear | Algorithm::Ridge
        ));
        assert_eq!(
            out.metrics_json(&options)["trials"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }

    #[test]
    fn gbm_and_mlp_learn_a_nonlinear_target_better_than_a_line() {
        // y = x0² on x0 in [-3, 3]: a straight line explains nothing of it (r² ≈ 0 by symmetry)
        let mut raw = RawTable::new(
            "y",
            vec![
                ("x0".into(), SqlType::Double),
                ("x1".into(), SqlType::Double),
            ],
        )
        .unwrap();
        let mut rng = SplitMix64::new(5);
        for _ in 0..2000 {
            let x0 = rng.next_f64() * 6.0 - 3.0;
            let x1 = rng.next_f64();
            raw.push_row(&[Some(x0), Some(x1)], Some(x0 * x0)).unwrap();
        }
        let (specs, data) = raw.into_dataset().unwrap();
        let r2 = |algorithm: Algorithm| {
            let options = TrainOptions::parse(&json!({}), algorithm).unwrap();
            let out = train(
                specs.clone(),
                &data,
                algorithm,
                Some("y"),
                &options,
                &mut || {},
            )
            .unwrap();
            assert_eq!(out.artifact.algorithm, algorithm);
            out.metrics.unwrap().r2.unwrap()
        };
        let linear = r2(Algorithm::Linear);
        assert!(linear < 0.05, "linear r² {linear}");
        let gbm = r2(Algorithm::Gbm);
        assert!(gbm > 0.98, "gbm r² {gbm}");
        let mlp = r2(Algorithm::Mlp);
        assert!(mlp > 0.95, "mlp r² {mlp}");
    }

    #[test]
    fn one_vs_rest_learns_three_classes_with_probabilities_summing_to_one() {
        // class = which third of [0, 3) x0 falls in; x1 is noise
        let mut raw = RawTable::new(
            "y",
            vec![
                ("x0".into(), SqlType::Double),
                ("x1".into(), SqlType::Double),
            ],
        )
        .unwrap();
        let mut rng = SplitMix64::new(9);
        for _ in 0..900 {
            let x0 = rng.next_f64() * 3.0;
            raw.push_row(&[Some(x0), Some(rng.next_f64())], Some(x0.floor()))
                .unwrap();
        }
        let (specs, data) = raw.into_dataset().unwrap();
        let mut options = TrainOptions::parse(&json!({"n_trees": 20}), Algorithm::Gbm).unwrap();
        options.task = Some(Task::Classification);
        options.classes = vec!["low".into(), "mid".into(), "high".into()];
        let out = train(
            specs,
            &data,
            Algorithm::Gbm,
            Some("y"),
            &options,
            &mut || {},
        )
        .unwrap();
        let c = out
            .metrics
            .as_ref()
            .unwrap()
            .classification
            .clone()
            .unwrap();
        assert!(c.accuracy > 0.95, "accuracy {}", c.accuracy);
        let p = out.artifact.predictor.class_probabilities(&[2.5, 0.5]);
        assert_eq!(p.len(), 3);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(out.artifact.predicted_label(&[2.5, 0.5]), Some("high"));
        assert_eq!(out.artifact.predicted_label(&[0.2, 0.5]), Some("low"));
        // the stored model round-trips through the codec
        let back = ModelArtifact::decode(&out.artifact.encode().unwrap()).unwrap();
        assert_eq!(back.predicted_label(&[1.5, 0.5]), Some("mid"));
    }

    #[test]
    fn log1p_target_is_fitted_on_the_log_scale_and_reported_on_the_original() {
        // y = e^(x) − 1 exactly: on the log1p scale the target is linear in x, so a linear model
        // fits it perfectly and its predictions transformed back equal y
        let mut raw = RawTable::new("y", vec![("x".into(), SqlType::Double)]).unwrap();
        for i in 0..200 {
            let x = i as f64 / 40.0;
            raw.push_row(&[Some(x)], Some(x.exp_m1())).unwrap();
        }
        let (specs, data) = raw.into_dataset().unwrap();
        let options =
            TrainOptions::parse(&json!({"target_transform": "log1p"}), Algorithm::Linear).unwrap();
        let out = train(
            specs,
            &data,
            Algorithm::Linear,
            Some("y"),
            &options,
            &mut || {},
        )
        .unwrap();
        let m = out.metrics.unwrap();
        assert!(m.rmse < 1e-9, "rmse {}", m.rmse);
        assert!((out.artifact.predict(&[2.0]) - 2f64.exp_m1()).abs() < 1e-9);
        // a target at or below -1 has no log1p
        let mut raw = RawTable::new("y", vec![("x".into(), SqlType::Double)]).unwrap();
        for i in 0..20 {
            raw.push_row(&[Some(i as f64)], Some(-1.0 - i as f64))
                .unwrap();
        }
        let (specs, data) = raw.into_dataset().unwrap();
        let err = train(
            specs,
            &data,
            Algorithm::Linear,
            Some("y"),
            &options,
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn too_few_rows_is_refused() {
        let (specs, data) = table(9).into_dataset().unwrap();
        let err = train(
            specs,
            &data,
            Algorithm::Linear,
            None,
            &TrainOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        assert!(err.message.contains("9 usable rows"));
    }

    #[test]
    fn tiers_are_cut_on_the_training_population() {
        let (specs, data) = table(1000).into_dataset().unwrap();
        let out = train(
            specs,
            &data,
            Algorithm::Linear,
            None,
            &TrainOptions::default(),
            &mut || {},
        )
        .unwrap();
        let a = &out.artifact;
        let counts = |name: &str| {
            (0..data.n_rows)
                .filter(|&i| a.tiers.assign(a.predict(data.row(i))) == name)
                .count()
        };
        assert!((45..=55).contains(&counts("VIP")), "{}", counts("VIP"));
        assert!((480..=520).contains(&counts("low")), "{}", counts("low"));
    }
}
