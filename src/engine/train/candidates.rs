//! Choosing among candidates: `auto` fits each candidate algorithm (within the time budget) on
//! the training rows and keeps the best on the holdout; a concrete algorithm is the one
//! candidate.

use std::time::Instant;

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::metrics::HoldoutMetrics;
use crate::engine::models::Algorithm;
use crate::engine::options::TrainOptions;
use crate::engine::target::TargetKind;

use super::fit::{evaluate_fit, fit, Fit};
use super::{Split, Trial};

/// The kept candidate, its holdout metrics, and every trial.
pub(super) struct Best {
    pub algorithm: Algorithm,
    pub fit: Fit,
    pub metrics: HoldoutMetrics,
    pub trials: Vec<Trial>,
}

/// The algorithms to try: the one given, or `auto`'s candidates (the classifiers' list for a
/// classification target unless candidates were given).
fn candidates(algorithm: Algorithm, kind: TargetKind, options: &TrainOptions) -> Vec<Algorithm> {
    if algorithm != Algorithm::Auto {
        vec![algorithm]
    } else if kind != TargetKind::Value && options.candidates == Algorithm::CANDIDATES {
        Algorithm::CLASSIFIER_CANDIDATES.to_vec()
    } else {
        options.candidates.clone()
    }
}

pub(super) fn best_candidate(
    algorithm: Algorithm,
    split: &Split,
    kind: TargetKind,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Best> {
    let all_started = Instant::now();
    let metric = options.metric;
    let back = |p: f64| split.back(p);
    let mut trials = Vec::new();
    let mut best: Option<(Algorithm, Fit, HoldoutMetrics)> = None;
    let mut first_error: Option<EngineError> = None;
    for candidate in candidates(algorithm, kind, options) {
        interrupt();
        if let Some(budget) = options.time_budget {
            // the budget is checked between candidates: the first always runs
            if !trials.is_empty() && all_started.elapsed().as_secs_f64() > budget {
                trials.push(skipped(candidate, budget));
                continue;
            }
        }
        let started = Instant::now();
        let fitted = fit(candidate, &split.train, options, interrupt).and_then(|fitted| {
            let metrics = evaluate_fit(&fitted, &split.test, &split.test.y, kind, &back)?;
            Ok((fitted, metrics))
        });
        let seconds = started.elapsed().as_secs_f64();
        match fitted {
            Ok((fitted, metrics)) => {
                trials.push(Trial {
                    algorithm: candidate,
                    variant: None,
                    outcome: Ok(metrics.clone()),
                    seconds,
                });
                let better = match &best {
                    None => true,
                    // strictly better replaces; ties keep the earlier (simpler) candidate
                    Some((_, _, incumbent)) => {
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
                    variant: None,
                    outcome: Err(e.clone()),
                    seconds,
                });
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    let Some((algorithm, fit, metrics)) = best else {
        return Err(first_error.unwrap_or_else(|| {
            EngineError::new(ErrorKind::Internal, "no candidate algorithm to train")
        }));
    };
    Ok(Best {
        algorithm,
        fit,
        metrics,
        trials,
    })
}

fn skipped(algorithm: Algorithm, budget: f64) -> Trial {
    Trial {
        algorithm,
        variant: None,
        outcome: Err(EngineError::new(
            ErrorKind::InsufficientData,
            format!("skipped: the time_budget of {budget} s was spent"),
        )),
        seconds: 0.0,
    }
}
