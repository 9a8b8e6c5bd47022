//! Fitting one algorithm on a training set: value models, binary classifiers, and multi-class
//! classifiers as one binary model per class; and scoring a fit on an evaluation set.

use crate::engine::codec::{Link, Task};
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::Dataset;
use crate::engine::metrics::HoldoutMetrics;
use crate::engine::models::explain::node_covers;
use crate::engine::models::forest::fit_random_forest;
use crate::engine::models::gbm::fit_gbm;
use crate::engine::models::hurdle::HurdleModel;
use crate::engine::models::mlp::{fit_mlp, Objective};
use crate::engine::models::sequence::model::{SequenceModel, Validation};
use crate::engine::models::sequence::training::SequenceOptions;
use crate::engine::models::ziln::ZilnModel;
use crate::engine::models::{Algorithm, ClassModel, LinearModel, Loss, Predictor, ValueLoss};
use crate::engine::options::TrainOptions;
use crate::engine::stats::sigmoid;
use crate::engine::target::{cannot_classify, TargetKind};

/// A fitted predictor with what explanations and importances need from training.
pub(super) struct Fit {
    pub predictor: Predictor,
    pub covers: Vec<f64>,
    pub gains: Vec<f64>,
    pub link: Link,
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
    pub fn output(&self, raw: f64) -> f64 {
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
                options.penalty.alpha,
            )?))
        }),
        Algorithm::Gbm => {
            let fitted = fit_gbm(train, Loss::LogLoss, &options.gbm, interrupt)?;
            Ok(Fit {
                predictor: Predictor::Trees(fitted.ensemble),
                covers: fitted.hessian_covers,
                gains: fitted.split_gains,
                link: Link::Logistic,
            })
        }
        Algorithm::Mlp => {
            let (model, _report) = fit_mlp(train, Loss::LogLoss, &options.mlp, interrupt)?;
            Ok(Fit::from(Predictor::Mlp(model)))
        }
        Algorithm::Gru | Algorithm::Cnn => {
            fit_sequence(train, options, Objective::LogLoss, interrupt)
        }
        // a forest of regression trees on 0/1 labels averages them into a probability
        Algorithm::RandomForest => fit(algorithm, train, options, interrupt),
        other => Err(cannot_classify(other)),
    }
}

/// The two-part model ([`HurdleModel`]): `algorithm` learns P(buy) from every row and ln(spend)
/// from the buyers; σ² is measured on a fifth of the buyers the spend model did not see, then
/// the spend model is refitted on all of them.
fn fit_hurdle(
    algorithm: Algorithm,
    train: &Dataset,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Fit> {
    if let Some(y) = train.y.iter().find(|y| **y < 0.0) {
        return Err(EngineError::invalid_parameter(format!(
            "loss \"hurdle\" needs a target of 0 or more (spend); the target holds {y}"
        )));
    }
    let buyers: Vec<usize> = (0..train.n_rows).filter(|&i| train.y[i] > 0.0).collect();
    if buyers.len() < 10 || buyers.len() == train.n_rows {
        return Err(EngineError::insufficient_data(format!(
            "loss \"hurdle\" needs both rows with a target of 0 and at least 10 above 0; the training rows have {} above 0 of {}",
            buyers.len(),
            train.n_rows
        )));
    }
    let mut bought = train.clone();
    for y in &mut bought.y {
        *y = f64::from(u8::from(*y > 0.0));
    }
    let buy = fit_classifier(algorithm, &bought, options, interrupt)?;
    let mut log_spend = train.subset(&buyers)?;
    for y in &mut log_spend.y {
        *y = y.ln();
    }
    let part_options = TrainOptions {
        loss: ValueLoss::SquaredError,
        ..options.clone()
    };
    let log_variance = held_out_variance(algorithm, &log_spend, &part_options, interrupt)?;
    let spend = fit(algorithm, &log_spend, &part_options, interrupt)?;
    let range = log_spend
        .y
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(*y), hi.max(*y))
        });
    Ok(Fit::from(Predictor::Hurdle(HurdleModel {
        buy: Box::new(buy.predictor),
        buy_logistic: buy.link == Link::Logistic,
        log_spend: Box::new(spend.predictor),
        log_variance,
        log_spend_range: range,
    })))
}

/// The variance of `data`'s target around `algorithm`'s predictions on a fifth of its rows
/// that the model was not fitted on (in-sample residuals of boosted trees or a network are
/// too small, and would bias exp(μ + σ²/2) down).
fn held_out_variance(
    algorithm: Algorithm,
    data: &Dataset,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<f64> {
    let (fit_rows, check_rows) = super::holdout_split(data.n_rows, 0.2, options.seed ^ 0x4855);
    let check = data.subset(&check_rows)?;
    let fitted = fit(algorithm, &data.subset(&fit_rows)?, options, interrupt)?;
    let squares: f64 = (0..check.n_rows)
        .map(|i| {
            let e = check.y[i] - fitted.output(fitted.predictor.predict(check.row(i)));
            e * e
        })
        .sum();
    Ok(squares / check.n_rows as f64)
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

/// Whether [`fit`] trains `algorithm` as one boosting fit on the training rows themselves,
/// which reads nothing of them but their features rounded to `f32` and routes a rounded value
/// where the original goes: the rows may then be compacted (`Dataset::compact_to_f32`). Not
/// one-vs-rest or hurdle fits, which take copies and subsets of the rows.
pub(super) fn boosts_on_f32_only(algorithm: Algorithm, options: &TrainOptions) -> bool {
    let one_vs_rest = options.task == Some(Task::Classification) && options.classes.len() > 2;
    algorithm == Algorithm::Gbm && !one_vs_rest && options.loss != ValueLoss::Hurdle
}

pub(super) fn fit(
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
    let two_parts = [
        Algorithm::Gbm,
        Algorithm::Mlp,
        Algorithm::Gru,
        Algorithm::Cnn,
    ];
    if options.loss == ValueLoss::Hurdle && two_parts.contains(&algorithm) {
        return fit_hurdle(algorithm, train, options, interrupt);
    }
    if options.loss == ValueLoss::Ziln && algorithm == Algorithm::Mlp {
        let model = ZilnModel::fit(train, &options.mlp, interrupt)?;
        return Ok(Fit::from(Predictor::Ziln(model)));
    }
    if algorithm.reads_sequence() {
        let objective = match options.loss {
            ValueLoss::Ziln => Objective::ZeroInflatedLognormal,
            _ => Objective::SquaredError,
        };
        return fit_sequence(train, options, objective, interrupt);
    }
    let linear = |m: Result<LinearModel>| m.map(|m| Fit::from(Predictor::Linear(m)));
    match algorithm {
        Algorithm::Linear => linear(LinearModel::fit_ols(train)),
        Algorithm::Ridge => linear(LinearModel::fit_ridge(train, options.penalty.alpha)),
        Algorithm::Lasso => linear(LinearModel::fit_lasso(train, options.penalty.alpha)),
        Algorithm::ElasticNet => linear(LinearModel::fit_elastic_net(
            train,
            options.penalty.alpha,
            options.penalty.l1_ratio,
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
            let fitted = fit_gbm(train, Loss::SquaredError, &options.gbm, interrupt)?;
            Ok(Fit {
                predictor: Predictor::Trees(fitted.ensemble),
                covers: fitted.hessian_covers,
                gains: fitted.split_gains,
                link: Link::Identity,
            })
        }
        Algorithm::Mlp => {
            let (model, _report) = fit_mlp(train, Loss::SquaredError, &options.mlp, interrupt)?;
            Ok(Fit::from(Predictor::Mlp(model)))
        }
        other => Err(EngineError::new(
            ErrorKind::Internal,
            format!("{} is not a regression algorithm", other.name()),
        )),
    }
}

/// A GRU or CNN over the history the options' layout names, trained on `objective`.
fn fit_sequence(
    train: &Dataset,
    options: &TrainOptions,
    objective: Objective,
    interrupt: &mut dyn FnMut(),
) -> Result<Fit> {
    let layout = options.sequence_layout.as_ref().ok_or_else(|| {
        EngineError::new(ErrorKind::Internal, "a sequence model without its layout")
    })?;
    // the latest cut-off's rows end the rows they were counted for; a subset of them (a fold,
    // the buyers of a hurdle) has no such end
    let validation = match options.sequence_latest_rows {
        Some((rows, latest)) if rows == train.n_rows => Validation::Latest(latest),
        _ => Validation::Random(options.sequence_validation),
    };
    // the training's threads (customer_value.training_threads, set by the glue)
    let network_options = SequenceOptions {
        threads: options.gbm.threads.max(1),
        ..options.sequence.clone()
    };
    let (model, _report) = SequenceModel::fit(
        train,
        layout,
        objective,
        &network_options,
        validation,
        interrupt,
    )?;
    Ok(Fit::from(Predictor::Sequence(model)))
}

pub(super) fn predict_all(predictor: &Predictor, data: &Dataset) -> Result<Vec<f64>> {
    let predictions: Vec<f64> = (0..data.n_rows)
        .map(|i| predictor.predict(data.row(i)))
        .collect();
    check_predictions(predictions)
}

/// `predictions` of training rows, or an error naming the first that is not finite.
pub(super) fn check_predictions(predictions: Vec<f64>) -> Result<Vec<f64>> {
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

/// Metrics of `fitted` on the rows of `set`, whose actual targets (on the original scale) are
/// `actual`; `back` undoes the target transform.
pub(super) fn evaluate_fit(
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
pub(super) fn with_target_settings(combo: &TrainOptions, options: &TrainOptions) -> TrainOptions {
    TrainOptions {
        task: options.task,
        class_labels: options.class_labels.clone(),
        classes: options.classes.clone(),
        search: None,
        ..combo.clone()
    }
}
