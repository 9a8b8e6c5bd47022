//! Fitting a CLV model (`bgnbd`, `mbgnbd`, `pareto_nbd`, `gamma_gamma` or `clv`) on an RFM summary, and
//! evaluating it against a target over time (not on a row holdout).

use serde_json::{json, Map, Value};

use crate::engine::clv::data::{self as clv_data, Customer};
use crate::engine::clv::gamma_gamma::GammaGamma;
use crate::engine::clv::model::{check_fit, ClvModel, CountModel};
use crate::engine::clv::optimize::FitOptions;
use crate::engine::clv::pareto_nbd::AliveMemo;
use crate::engine::codec::{ModelArtifact, Task};
use crate::engine::drift::BinProfile;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::FeatureSpec;
use crate::engine::metrics::{HoldoutMetrics, Totals};
use crate::engine::models::{Algorithm, Predictor};
use crate::engine::options::TrainOptions;
use crate::engine::segments::{RecencySource, RfmSegments, RfmValues};
use crate::engine::target::TargetKind;

use super::report::profile_of;
use super::TrainOutcome;

/// The RFM segment boundaries of an RFM summary read with its monetary value (`features` are
/// frequency, recency, t and monetary_value, under the names the summary gives them); `None`
/// for a count model, which does not read the monetary value.
fn summary_segments(
    features: &[FeatureSpec],
    customers: &[Customer],
    counts: Option<&[f64]>,
) -> Result<Option<RfmSegments>> {
    let [frequency, recency, t, monetary] = features else {
        return Ok(None);
    };
    let values: Vec<RfmValues> = customers
        .iter()
        .map(|c| [c.t - c.recency, c.frequency, c.monetary_value])
        .collect();
    let recency = RecencySource::AgeMinusRecency {
        t: t.name.clone(),
        recency: recency.name.clone(),
    };
    let (frequency, monetary) = (frequency.name.clone(), monetary.name.clone());
    RfmSegments::cut(recency, frequency, monetary, &values, counts).map(Some)
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
    // grouped input: a row stands for `count` customers
    let counts: Vec<f64> = customers.iter().map(|c| c.count).collect();
    let grouped = counts.iter().any(|&c| c != 1.0);
    let n_customers: f64 = counts.iter().sum();
    let mut extra = summary_facts(customers, grouped);
    let model = fit_clv_model(algorithm, options, customers, &mut extra, interrupt)?;
    let predictions = predict_summary(&model, customers, algorithm)?;
    let evaluation = match target {
        None => None,
        Some((name, values)) => Some(evaluate(name, values, &predictions, &mut extra)?),
    };
    let (tiers, prediction_profile) = if grouped {
        (
            options.tiers.fit_counted(&predictions, &counts),
            BinProfile::of_counted(&predictions, &counts),
        )
    } else {
        (options.tiers.fit(&predictions), profile_of(&predictions))
    };
    let segments = summary_segments(&features, customers, grouped.then_some(&counts[..]))?;
    let mut artifact = ModelArtifact::new(
        algorithm,
        Task::Clv,
        target.map(|(name, _)| name.to_string()),
        features,
        Predictor::Clv(model),
        tiers,
    );
    artifact.segments = segments;
    super::artifact::validate_trained(&artifact)?;
    let (metrics, evaluation_rows, dropped_null_target) = match evaluation {
        Some(e) => (Some(e.metrics), e.rows, e.dropped_null_target),
        None => (None, Vec::new(), 0),
    };
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

/// The CLV model of `algorithm`: its count model, its spend model or both (`clv`), fitted in
/// that order, with the valuation options. The fits' facts go to `extra`.
fn fit_clv_model(
    algorithm: Algorithm,
    options: &TrainOptions,
    customers: &[Customer],
    extra: &mut Map<String, Value>,
    interrupt: &mut dyn FnMut(),
) -> Result<ClvModel> {
    let o = &options.clv;
    let fit_options = FitOptions {
        penalizer: o.penalizer,
        max_iterations: o.max_iterations,
        // the training's threads (customer_value.training_threads, set by the glue)
        threads: options.gbm.threads.max(1),
    };
    let count = fit_count_model(
        algorithm,
        options,
        customers,
        &fit_options,
        extra,
        interrupt,
    )?;
    let spend = if matches!(algorithm, Algorithm::GammaGamma | Algorithm::Clv) {
        Some(fit_spend_model(
            customers,
            &fit_options,
            count.is_some(),
            extra,
            interrupt,
        )?)
    } else {
        None
    };
    Ok(ClvModel {
        count,
        spend,
        horizon: o.horizon,
        discount_rate: o.discount_rate,
        unit_days: o.unit_days,
    })
}

/// Facts about the summary stored in the metrics: customers, repeat buyers, summary rows of a
/// grouped read, and customers first seen at the calibration end.
fn summary_facts(customers: &[Customer], grouped: bool) -> Map<String, Value> {
    let counted = |keep: &dyn Fn(&Customer) -> bool| -> f64 {
        customers.iter().filter(|c| keep(c)).map(|c| c.count).sum()
    };
    let mut extra = Map::new();
    extra.insert("customers".into(), json!(counted(&|_| true) as u64));
    extra.insert(
        "customers_with_repeats".into(),
        json!(counted(&|c| c.frequency > 0.0) as u64),
    );
    if grouped {
        extra.insert("summary_rows".into(), json!(customers.len()));
    }
    let first_seen_at_end = counted(&|c| c.t == 0.0);
    if first_seen_at_end > 0.0 {
        // counted, scored, and left out of the count models' fit (their likelihood term is 1)
        extra.insert(
            "customers_first_seen_at_calibration_end".into(),
            json!(first_seen_at_end as u64),
        );
    }
    extra
}

/// The purchase-count model of `algorithm` (for `clv`, the `count_model` option), if it has one.
fn fit_count_model(
    algorithm: Algorithm,
    options: &TrainOptions,
    customers: &[Customer],
    fit_options: &FitOptions,
    extra: &mut Map<String, Value>,
    interrupt: &mut dyn FnMut(),
) -> Result<Option<CountModel>> {
    let count_algorithm = match algorithm {
        Algorithm::Clv => options.clv.count_model,
        _ => algorithm,
    };
    let Some((model, ll)) = CountModel::fit(count_algorithm, customers, fit_options, interrupt)?
    else {
        return Ok(None);
    };
    extra.insert("log_likelihood".into(), json!(ll));
    if let Some(limit) = model.limit() {
        extra.insert("limit".into(), json!(limit));
    }
    Ok(Some(model))
}

/// The Gamma-Gamma spend model (mean spend finite: q > 1).
fn fit_spend_model(
    customers: &[Customer],
    fit_options: &FitOptions,
    with_count_model: bool,
    extra: &mut Map<String, Value>,
    interrupt: &mut dyn FnMut(),
) -> Result<GammaGamma> {
    let fit = GammaGamma::fit(customers, fit_options, interrupt)?;
    check_fit(
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
    let key = if with_count_model {
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
    Ok(fit.model)
}

/// Each summary row's value. Expected purchases, P(alive) and values are ≥ 0 by construction:
/// anything else is a numerical breakdown of the fitted model, never a number to deploy.
fn predict_summary(
    model: &ClvModel,
    customers: &[Customer],
    algorithm: Algorithm,
) -> Result<Vec<f64>> {
    let n_inputs = model.n_inputs();
    // customers share their (x, t_x) and (x, T) pairs: Pareto/NBD's integrals once per pair
    let mut memo = AliveMemo::default();
    let predictions: Vec<f64> = customers
        .iter()
        .map(|c| {
            let input = [c.frequency, c.recency, c.t, c.monetary_value];
            model.value_memo(&input[..n_inputs], &mut memo)
        })
        .collect();
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
    Ok(predictions)
}

/// A CLV model's metrics against its target.
struct Evaluation {
    metrics: HoldoutMetrics,
    /// The rows with a target (the others are counted in `dropped_null_target`).
    rows: Vec<usize>,
    dropped_null_target: usize,
}

/// Compares the predictions with the target `name` on every row where it is not NULL, and
/// records the predicted and actual totals.
fn evaluate(
    name: &str,
    values: &[Option<f64>],
    predictions: &[f64],
    extra: &mut Map<String, Value>,
) -> Result<Evaluation> {
    let (mut rows, mut actual, mut predicted) = (Vec::new(), Vec::new(), Vec::new());
    let mut dropped_null_target = 0;
    for (i, (v, p)) in values.iter().zip(predictions).enumerate() {
        match v {
            Some(v) => {
                rows.push(i);
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
    Ok(Evaluation {
        metrics: HoldoutMetrics::compute(&actual, &predicted),
        rows,
        dropped_null_target,
    })
}
