//! Hyperparameter search: k-fold cross-validation on the training split only (the holdout stays
//! untouched for the final, honest metrics); the best combination is then fitted as usual.

use serde_json::{json, Value};
use std::time::Instant;

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::metrics::Metric;
use crate::engine::models::Algorithm;
use crate::engine::options::TrainOptions;
use crate::engine::stats::SplitMix64;
use crate::engine::target::TargetKind;

use super::fit::{evaluate_fit, fit, with_target_settings};
use super::Split;

/// With `options->'search'`: the best combination's options and the search report.
pub(super) fn search(
    algorithm: Algorithm,
    split: &Split,
    kind: TargetKind,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Option<(TrainOptions, Value)>> {
    let Some(search) = &options.search else {
        return Ok(None);
    };
    if algorithm == Algorithm::Auto {
        return Err(EngineError::invalid_parameter(
            "option \"search\" needs a concrete algorithm, not auto",
        ));
    }
    let metric = options.metric;
    let k = search.folds.min(split.train.n_rows);
    let mut order: Vec<usize> = (0..split.train.n_rows).collect();
    SplitMix64::new(options.seed ^ 0xF01D).shuffle(&mut order);
    let mut best: Option<(usize, Option<f64>)> = None;
    let mut trials_json = Vec::new();
    for (ci, (params, combo)) in search.combinations.iter().enumerate() {
        let combo = with_target_settings(combo, options);
        let started = Instant::now();
        let folds = Folds { order: &order, k };
        let scores = cross_validate(algorithm, split, &folds, &combo, metric, kind, interrupt)?;
        let defined: Vec<f64> = scores.iter().flatten().copied().collect();
        let mean = (defined.len() == scores.len() && !defined.is_empty())
            .then(|| defined.iter().sum::<f64>() / defined.len() as f64);
        let sd = mean.map(|m| {
            (defined.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / defined.len().max(1) as f64)
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
    let (ci, _) =
        best.ok_or_else(|| EngineError::new(ErrorKind::Internal, "a search without combinations"))?;
    let (params, combo) = &search.combinations[ci];
    let report = json!({
        "method": search.method,
        "folds": k,
        "metric": metric.key(),
        "best": params,
        "trials": trials_json,
    });
    let chosen = TrainOptions {
        metric: options.metric,
        metric_given: options.metric_given,
        ..with_target_settings(combo, options)
    };
    Ok(Some((chosen, report)))
}

/// The training rows in a shuffled `order`, row `i` of it in fold `i % k`.
struct Folds<'a> {
    order: &'a [usize],
    k: usize,
}

/// `metric` of `combo` on each fold of the training rows.
fn cross_validate(
    algorithm: Algorithm,
    split: &Split,
    folds: &Folds<'_>,
    combo: &TrainOptions,
    metric: Metric,
    kind: TargetKind,
    interrupt: &mut dyn FnMut(),
) -> Result<Vec<Option<f64>>> {
    let back = |p: f64| split.back(p);
    let mut scores = Vec::with_capacity(folds.k);
    for fold in 0..folds.k {
        interrupt();
        let (mut fit_rows, mut val_rows) = (Vec::new(), Vec::new());
        for (i, &row) in folds.order.iter().enumerate() {
            if i % folds.k == fold {
                val_rows.push(row);
            } else {
                fit_rows.push(row);
            }
        }
        let fit_set = split.train.subset(&fit_rows)?;
        let val_set = split.train.subset(&val_rows)?;
        let fitted = fit(algorithm, &fit_set, combo, interrupt)?;
        // the training rows' targets are on the fitted (transformed) scale
        let actual: Vec<f64> = val_set.y.iter().map(|y| back(*y)).collect();
        let m = evaluate_fit(&fitted, &val_set, &actual, kind, &back)?;
        scores.push(m.get(metric));
    }
    Ok(scores)
}
