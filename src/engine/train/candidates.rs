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

/// One candidate: an algorithm with the options it is fitted with, and the name of its
/// settings when they are not the caller's own (`variant`, shown in its trial).
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub algorithm: Algorithm,
    pub variant: Option<&'static str>,
    pub options: TrainOptions,
}

/// The kept candidate, its options and holdout metrics, and every trial.
pub(super) struct Best {
    pub algorithm: Algorithm,
    pub options: TrainOptions,
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

/// `algorithm` itself, or the best of `auto`'s candidates, all with `options`.
pub(super) fn best_candidate(
    algorithm: Algorithm,
    split: &Split,
    kind: TargetKind,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Best> {
    let list = candidates(algorithm, kind, options)
        .into_iter()
        .map(|a| Candidate {
            algorithm: a,
            variant: None,
            options: options.clone(),
        })
        .collect();
    let tolerate_errors = algorithm == Algorithm::Auto;
    best_of(list, tolerate_errors, split, kind, options, interrupt)
}

/// Fits each candidate on the training rows (within `options.time_budget`, checked between
/// candidates) and keeps the best on the holdout by `options.metric`: strictly better
/// replaces, so ties keep the earlier (simpler) one. With `tolerate_errors` (a choice among
/// several), a candidate that fails is a trial with its error, not the call's failure.
pub(super) fn best_of(
    list: Vec<Candidate>,
    tolerate_errors: bool,
    split: &Split,
    kind: TargetKind,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Best> {
    let all_started = Instant::now();
    let metric = options.metric;
    let back = |p: f64| split.back(p);
    let mut trials = Vec::new();
    let mut best: Option<(Candidate, Fit, HoldoutMetrics)> = None;
    let mut first_error: Option<EngineError> = None;
    for candidate in list {
        interrupt();
        if let Some(budget) = options.time_budget {
            // the first always runs
            if !trials.is_empty() && all_started.elapsed().as_secs_f64() > budget {
                trials.push(skipped(&candidate, budget));
                continue;
            }
        }
        let started = Instant::now();
        let fitted = fit(
            candidate.algorithm,
            &split.train,
            &candidate.options,
            interrupt,
        )
        .and_then(|fitted| {
            let metrics = evaluate_fit(&fitted, &split.test, &split.test.y, kind, &back)?;
            Ok((fitted, metrics))
        });
        let trial = |outcome| Trial {
            algorithm: candidate.algorithm,
            variant: candidate.variant.map(str::to_string),
            outcome,
            seconds: started.elapsed().as_secs_f64(),
        };
        match fitted {
            Ok((fitted, metrics)) => {
                trials.push(trial(Ok(metrics.clone())));
                let better = best.as_ref().is_none_or(|(_, _, incumbent)| {
                    !metric.at_least_as_good(incumbent.get(metric), metrics.get(metric))
                });
                if better {
                    best = Some((candidate, fitted, metrics));
                }
            }
            Err(e) if tolerate_errors && e.kind != ErrorKind::Internal => {
                trials.push(trial(Err(e.clone())));
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    let Some((candidate, fit, metrics)) = best else {
        return Err(first_error.unwrap_or_else(|| {
            EngineError::new(ErrorKind::Internal, "no candidate algorithm to train")
        }));
    };
    Ok(Best {
        algorithm: candidate.algorithm,
        options: candidate.options,
        fit,
        metrics,
        trials,
    })
}

fn skipped(candidate: &Candidate, budget: f64) -> Trial {
    Trial {
        algorithm: candidate.algorithm,
        variant: candidate.variant.map(str::to_string),
        outcome: Err(EngineError::new(
            ErrorKind::InsufficientData,
            format!("skipped: the time_budget of {budget} s was spent"),
        )),
        seconds: 0.0,
    }
}
