//! Training from a transaction log across time (`train_from_log`): examples are feature
//! snapshots at earlier cut-offs with the spend of the window that follows each as target, so
//! no example sees its own future. The holdout is a backtest on the most recent complete window;
//! the same window is scored by the classic CLV model and the naive "same as last window"
//! prediction, stored side by side. The stored model is then refitted with the cut-offs moved
//! forward, and its tiers are cut on the customers as of `as_of`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::engine::codec::{ModelArtifact, TargetTransform};
use crate::engine::drift::BinProfile;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{Dataset, FeatureSpec};
use crate::engine::metrics::HoldoutMetrics;
use crate::engine::models::explain::feature_means;
use crate::engine::models::Algorithm;
use crate::engine::models::ValueLoss;
use crate::engine::options::TrainOptions;
use crate::engine::purchases::attributes::Attributes;
use crate::engine::purchases::options::LogOptions;
use crate::engine::purchases::plan::Plan;
use crate::engine::purchases::snapshot::{Snapshot, FEATURES};
use crate::engine::purchases::{date_text, spend_in_window, PurchaseLog};
use crate::engine::segments::{RecencySource, RfmSegments, RfmValues};
use crate::engine::target::TargetKind;

use super::candidates::{self, Candidate};
use super::fit::fit;
use super::log_inputs::Histories;
use super::report::{metrics_object, profile_of};
use super::{artifact, log_inputs, search, Split, TrainOutcome};
use crate::engine::models::sequence::model::SequenceLayout;

/// The target column's name in the model (the spend over the horizon).
pub const LOG_TARGET: &str = "spend";

/// One training example: customer `i` of snapshot `snapshot`.
struct Example {
    snapshot: usize,
    i: usize,
    /// The spend observed in the target window (not extrapolated).
    window_spend: f64,
    /// The factor that extrapolates it to the horizon.
    scale: f64,
}

/// The snapshots at every cut-off of the plan, and the examples drawn from them.
struct Examples {
    snapshots: Vec<Snapshot>,
    rows: Vec<Example>,
    /// Cut-offs left out because the CLV models could not be fitted there, with why.
    skipped: Vec<(i32, String)>,
}

impl Examples {
    /// Snapshots at the holdout cut-off and every training cut-off. A training cut-off whose
    /// CLV models cannot be fitted (e.g. no repeat buyer yet) is skipped; the holdout's is not.
    fn build(
        log: &PurchaseLog,
        plan: &Plan,
        o: &LogOptions,
        interrupt: &mut dyn FnMut(),
    ) -> Result<Examples> {
        let mut cutoffs: Vec<i32> = plan
            .backtest_cutoffs
            .iter()
            .chain(&plan.training_cutoffs)
            .copied()
            .collect();
        cutoffs.sort_unstable();
        cutoffs.dedup();
        let mut out = Examples {
            snapshots: Vec::new(),
            rows: Vec::new(),
            skipped: Vec::new(),
        };
        for cutoff in cutoffs {
            interrupt();
            let snapshot = match Snapshot::at(log, cutoff, plan.horizon, o.count_model, interrupt) {
                Ok(s) => s,
                Err(e) if cutoff != plan.holdout_cutoff && e.kind != ErrorKind::Internal => {
                    out.skipped.push((cutoff, e.message));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let s = out.snapshots.len();
            for (i, &c) in snapshot.customers.iter().enumerate() {
                out.rows.push(Example {
                    snapshot: s,
                    i,
                    window_spend: spend_in_window(log.history(c), cutoff, plan.window),
                    scale: snapshot.scale(i, plan.window, plan.horizon),
                });
            }
            out.snapshots.push(snapshot);
        }
        Ok(out)
    }

    /// Rows whose cut-off is one of `cutoffs`.
    fn rows_at(&self, cutoffs: &[i32]) -> Vec<usize> {
        (0..self.rows.len())
            .filter(|&r| cutoffs.contains(&self.snapshots[self.rows[r].snapshot].cutoff))
            .collect()
    }

    fn snapshot_of(&self, cutoff: i32) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.cutoff == cutoff)
    }
}

/// Features left out, with why.
type LeftOut = Vec<(String, &'static str)>;

/// The features used: every one of [`FEATURES`] the options keep that varies over the examples
/// (a constant one, e.g. refunds in a log without any, teaches nothing) and is not a linear
/// combination of earlier ones (in a log younger than a year the spend of the last 365 days is
/// the total spend, its purchase days frequency + 1: a linear model could not be fitted); and
/// those left out, with why.
fn chosen_features(
    examples: &Examples,
    row_sets: &[&[usize]],
    options: &TrainOptions,
) -> Result<(Vec<usize>, LeftOut)> {
    if let Some(name) = options
        .features
        .iter()
        .flatten()
        .chain(&options.exclude)
        .find(|n| !FEATURES.contains(&n.as_str()))
    {
        return Err(EngineError::invalid_parameter(format!(
            "\"{name}\" is not a feature of train_from_log"
        ))
        .with_hint(format!("Its features are {}.", FEATURES.join(", "))));
    }
    let wanted = |name: &str| match &options.features {
        Some(list) => list.iter().any(|n| n == name),
        None => !options.exclude.iter().any(|n| n == name),
    };
    let value = |r: usize, j: usize| {
        let e = &examples.rows[r];
        examples.snapshots[e.snapshot].row(e.i)[j]
    };
    // each set of rows a model is fitted on must have the column's direction
    let mut bases: Vec<Basis> = row_sets.iter().map(|_| Basis::default()).collect();
    let (mut kept, mut left_out) = (Vec::new(), Vec::new());
    for (j, name) in FEATURES.iter().enumerate() {
        if !wanted(name) {
            continue;
        }
        let columns: Vec<Vec<Option<f64>>> = row_sets
            .iter()
            .map(|rows| rows.iter().map(|&r| value(r, j)).collect())
            .collect();
        let varies = |c: &Vec<Option<f64>>| {
            let mut present = c.iter().flatten();
            let first = present.next();
            first.is_some_and(|f| present.any(|v| v != f))
        };
        if !columns.iter().all(varies) {
            left_out.push((name.to_string(), "constant"));
        } else if !Basis::add_to_all(&mut bases, &columns) {
            left_out.push((name.to_string(), "a linear combination of other features"));
        } else {
            kept.push(j);
        }
    }
    if kept.is_empty() {
        return Err(EngineError::insufficient_data(
            "no feature of train_from_log varies over the training examples",
        ));
    }
    Ok((kept, left_out))
}

/// An orthonormal basis of the centred feature columns kept so far (modified Gram–Schmidt), to
/// recognise a column that adds no direction.
#[derive(Default)]
struct Basis {
    vectors: Vec<Vec<f64>>,
}

impl Basis {
    /// Adds each column to its basis if every one of them adds a direction; says whether.
    fn add_to_all(bases: &mut [Basis], columns: &[Vec<Option<f64>>]) -> bool {
        let residuals: Option<Vec<Vec<f64>>> = bases
            .iter()
            .zip(columns)
            .map(|(b, c)| b.residual(c))
            .collect();
        let Some(residuals) = residuals else {
            return false;
        };
        for (b, v) in bases.iter_mut().zip(residuals) {
            b.vectors.push(v);
        }
        true
    }

    /// The column's unit residual (NULL read as the column's mean) once the span of the
    /// columns already added and the constant is taken out; `None` when nothing is left.
    fn residual(&self, column: &[Option<f64>]) -> Option<Vec<f64>> {
        let present: Vec<f64> = column.iter().flatten().copied().collect();
        let mean = present.iter().sum::<f64>() / present.len().max(1) as f64;
        let mut v: Vec<f64> = column.iter().map(|x| x.unwrap_or(mean) - mean).collect();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let original = norm(&v);
        for b in &self.vectors {
            let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
        }
        let left = norm(&v);
        // a residual within rounding of the original length: no new direction
        if original == 0.0 || left <= 1e-9 * original {
            return None;
        }
        v.iter_mut().for_each(|x| *x /= left);
        Some(v)
    }
}

/// The examples as a training table: the chosen log features and the attributes, the target
/// extrapolated to the horizon.
fn dataset(
    examples: &Examples,
    kept: &[usize],
    attributes: &Attributes,
    history: Option<(Histories<'_>, usize)>,
) -> Result<(Vec<FeatureSpec>, Dataset)> {
    let rows = examples
        .rows
        .iter()
        .map(|e| (e.snapshot, e.i, e.window_spend * e.scale));
    log_inputs::training_table(&examples.snapshots, rows, kept, attributes, history)
}

/// `options` for fitting `algorithm` on `rows` (in cut-off order): for a sequence model, where
/// its history is among `features`, and that early stopping watches the rows of the latest
/// cut-off — the time-based validation window, never a random mix of periods. With a single
/// cut-off (a short log) there is no later window: a seeded random share of it is watched.
fn with_sequence(
    options: &TrainOptions,
    algorithm: Algorithm,
    features: &[FeatureSpec],
    examples: &Examples,
    rows: &[usize],
) -> Result<TrainOptions> {
    if !algorithm.reads_sequence() {
        return Ok(options.clone());
    }
    let cutoff = |r: usize| examples.snapshots[examples.rows[r].snapshot].cutoff;
    let latest = rows.iter().map(|&r| cutoff(r)).max();
    let latest_rows = rows.iter().filter(|&&r| Some(cutoff(r)) == latest).count();
    Ok(TrainOptions {
        sequence_layout: Some(SequenceLayout::of(features, algorithm.name())?),
        sequence_latest_rows: (latest_rows < rows.len()).then_some((rows.len(), latest_rows)),
        ..options.clone()
    })
}

/// The dataset with its target-encoded categories (attributes of many values) learnt from the
/// rows a fit trains on, never from the rows it is tested on.
fn encoded_on(
    data: &Dataset,
    features: &[FeatureSpec],
    training_rows: &[usize],
) -> (Dataset, Vec<FeatureSpec>) {
    let mut data = data.clone();
    let mut features = features.to_vec();
    if !data.pending_target_means.is_empty() {
        data.encode_target_means(&mut features, training_rows);
    }
    (data, features)
}

/// The backtest's figures for one prediction of the holdout window's spend.
fn holdout_metrics(actual: &[f64], predicted: &[f64]) -> Value {
    Value::Object(metrics_object(&HoldoutMetrics::compute(actual, predicted)))
}

/// Which examples each fit uses.
struct RowSets {
    /// The backtest's training rows (cut-offs whose windows end by the holdout cut-off).
    backtest: Vec<usize>,
    /// The holdout cut-off's rows.
    holdout: Vec<usize>,
    /// The stored model's training rows.
    training: Vec<usize>,
}

impl RowSets {
    fn of(examples: &Examples, plan: &Plan) -> Result<RowSets> {
        let backtest = examples.rows_at(&plan.backtest_cutoffs);
        if backtest.len() < super::MIN_TRAINING_ROWS {
            return Err(EngineError::insufficient_data(format!(
                "the backtest has {} training examples; it needs at least {}",
                backtest.len(),
                super::MIN_TRAINING_ROWS
            ))
            .with_detail(skipped_detail(examples)));
        }
        Ok(RowSets {
            backtest,
            holdout: examples.rows_at(&[plan.holdout_cutoff]),
            training: examples.rows_at(&plan.training_cutoffs),
        })
    }
}

/// The plan of cut-offs for `log` as of `as_of`, after checking what is asked can be trained.
fn plan_for(
    log: &PurchaseLog,
    as_of: i32,
    log_options: &LogOptions,
    algorithm: Algorithm,
    options: &TrainOptions,
) -> Result<Plan> {
    if algorithm.is_clv() {
        return Err(EngineError::invalid_parameter(format!(
            "train_from_log trains a machine-learning model on the log's features, not \"{}\"",
            algorithm.name()
        ))
        .with_hint("Fit a CLV model with customer_value.train on customer_value.rfm(...)."));
    }
    TargetKind::Value.check_metric(options)?;
    let first_day = log.first_day().ok_or_else(|| {
        EngineError::insufficient_data(format!(
            "the log has no purchase on or before as_of ({})",
            date_text(as_of)
        ))
    })?;
    Plan::new(first_day, as_of, log_options)
}

/// What the backtest chose: the algorithm and options, with the evidence.
struct Selected {
    algorithm: Algorithm,
    options: TrainOptions,
    trials: Vec<super::Trial>,
    search_report: Option<Value>,
    backtest: Backtest,
    /// The holdout rows as the backtest's model read them (for the importances).
    holdout: Dataset,
}

/// `auto`'s candidates for a log model (unless `candidates` is given), each an algorithm with
/// its settings: ridge; boosting as for a table; and boosting with the hurdle loss and shallow,
/// large-leaved trees, which on CDNOW's backtest windows ranked best (normalized Gini 0.657
/// against 0.600 for the table settings and 0.611 for BG/NBD × Gamma-Gamma). The backtest picks
/// among them for each log. Random forests are left out by default: on CDNOW they took 11× as
/// long as boosting for no better backtest.
fn log_auto_candidates(options: &TrainOptions) -> Vec<Candidate> {
    let plain = |algorithm| Candidate {
        algorithm,
        variant: None,
        options: options.clone(),
    };
    let mut candidates = vec![plain(Algorithm::Ridge), plain(Algorithm::Gbm)];
    // the hurdle fits ln(spend) itself: not on a transformed target
    if options.target_transform == TargetTransform::Identity {
        let mut hurdle = options.clone();
        hurdle.loss = ValueLoss::Hurdle;
        hurdle.gbm.max_depth = 3;
        hurdle.gbm.min_samples_leaf = 50;
        candidates.push(Candidate {
            algorithm: Algorithm::Gbm,
            variant: Some("loss hurdle, max_depth 3, min_samples_leaf 50"),
            options: hurdle,
        });
    }
    candidates
}

/// The backtest: every candidate learns from the earlier cut-offs and is tested on the holdout
/// window; the best is kept.
#[allow(clippy::too_many_arguments)]
fn select_on_backtest(
    log: &PurchaseLog,
    examples: &Examples,
    plan: &Plan,
    rows: &RowSets,
    data: &Dataset,
    features: &[FeatureSpec],
    algorithm: Algorithm,
    options: &TrainOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<Selected> {
    let kind = TargetKind::Value;
    let options = &with_sequence(options, algorithm, features, examples, &rows.backtest)?;
    let (data, _) = encoded_on(data, features, &rows.backtest);
    let split = Split::new(data, &rows.backtest, &rows.holdout, options)?;
    let searched = search::search(algorithm, &split, kind, options, interrupt)?;
    let chosen = searched
        .as_ref()
        .map_or(options, |(combo, _)| combo)
        .clone();
    let best = if algorithm == Algorithm::Auto && options.candidates == Algorithm::CANDIDATES {
        let list = log_auto_candidates(&chosen);
        candidates::best_of(list, true, &split, kind, &chosen, interrupt)?
    } else {
        candidates::best_candidate(algorithm, &split, kind, &chosen, interrupt)?
    };
    let backtest = Backtest::of(log, examples, plan, &rows.holdout, &split, &best.fit)?;
    Ok(Selected {
        algorithm: best.algorithm,
        options: best.options,
        trials: best.trials,
        search_report: searched.map(|(_, report)| report),
        backtest,
        holdout: split.test,
    })
}

/// The stored model: the chosen algorithm learnt from the cut-offs moved forward, its tiers
/// cut on the customers as of `as_of` (`scoring`); returns it with their predictions.
#[allow(clippy::too_many_arguments)]
fn refit(
    selected: &Selected,
    examples: &Examples,
    rows: &RowSets,
    data: &Dataset,
    features: &[FeatureSpec],
    attributes: &Attributes,
    (scoring, histories): (&Snapshot, Option<Histories<'_>>),
    interrupt: &mut dyn FnMut(),
) -> Result<(ModelArtifact, Vec<f64>)> {
    let (data, features) = encoded_on(data, features, &rows.training);
    let options = with_sequence(
        &selected.options,
        selected.algorithm,
        &features,
        examples,
        &rows.training,
    )?;
    let split = Split::new(data, &rows.training, &rows.holdout, &options)?;
    let fitted = fit(selected.algorithm, &split.train, &options, interrupt)?;
    let population = predict_snapshot(scoring, &features, attributes, histories, &split, &fitted)?;
    let artifact = artifact::build(
        selected.algorithm,
        fitted,
        features,
        Some(LOG_TARGET),
        TargetKind::Value,
        &selected.options,
        &population,
        feature_means(&split.train),
    )?;
    Ok((artifact, population))
}

/// A log model trained, with what the store keeps beside it.
#[derive(Debug)]
pub struct LogTrained {
    pub outcome: TrainOutcome,
    /// The features' distributions as of `as_of` (for drift).
    pub feature_profiles: Vec<(String, BinProfile)>,
    /// The serving model's metrics on the same backtest window (champion/challenger), or why it
    /// could not be scored there.
    pub champion: Option<std::result::Result<HoldoutMetrics, String>>,
}

/// Trains on `log` as of day `as_of`. `algorithm` and `options` are as for `train` (the
/// options' log keys already taken out into `log_options`). With a serving `champion` (a
/// retrain), it is scored on the same backtest window.
#[allow(clippy::too_many_arguments)]
pub fn train_from_log(
    log: &PurchaseLog,
    attributes: &Attributes,
    as_of: i32,
    log_options: &LogOptions,
    algorithm: Algorithm,
    options: &TrainOptions,
    champion: Option<&ModelArtifact>,
    interrupt: &mut dyn FnMut(),
) -> Result<LogTrained> {
    let plan = plan_for(log, as_of, log_options, algorithm, options)?;
    let examples = Examples::build(log, &plan, log_options, interrupt)?;
    let rows = RowSets::of(&examples, &plan)?;
    let (kept, left_out) = chosen_features(&examples, &[&rows.backtest, &rows.training], options)?;
    let histories = log_options.sequence.map(|s| Histories {
        log,
        period_days: s.period_days,
    });
    let history = histories.zip(log_options.sequence.map(|s| s.length));
    let (features, data) = dataset(&examples, &kept, attributes, history)?;
    let selected = select_on_backtest(
        log, &examples, &plan, &rows, &data, &features, algorithm, options, interrupt,
    )?;
    let champion = champion.map(|c| {
        let inputs = (attributes, histories);
        champion_on_holdout(c, &examples, inputs, &rows.holdout)
    });
    let scoring = Snapshot::at(log, as_of, plan.horizon, log_options.count_model, interrupt)?;
    let (mut artifact, population) = refit(
        &selected,
        &examples,
        &rows,
        &data,
        &features,
        attributes,
        (&scoring, histories),
        interrupt,
    )?;
    artifact.segments = Some(segments_of(&scoring)?);
    let mut extra = Map::new();
    let seed = selected.options.seed;
    let kind = TargetKind::Value;
    artifact::insert_importance(
        &mut extra,
        &artifact,
        &selected.holdout,
        kind,
        seed,
        interrupt,
    )?;
    if let Some(report) = &selected.search_report {
        extra.insert("search".into(), report.clone());
    }
    extra.insert("baselines".into(), selected.backtest.baselines.clone());
    extra.insert("backtest".into(), plan.to_json());
    let facts = log_facts(log, &examples, &left_out, as_of, &scoring, attributes);
    extra.insert("log".into(), facts);
    super::artifact::validate_trained(&artifact)?;
    let feature_profiles =
        log_inputs::feature_profiles(&scoring, &artifact.features, attributes, histories)?;
    let outcome = TrainOutcome {
        artifact,
        metrics: Some(selected.backtest.model.clone()),
        extra,
        trials: selected.trials,
        n_train: rows.training.len(),
        n_test: rows.holdout.len(),
        dropped_null_target: 0,
        evaluation_rows: Vec::new(),
        prediction_profile: profile_of(&population),
    };
    Ok(LogTrained {
        outcome,
        feature_profiles,
        champion,
    })
}

/// The serving model's metrics on the backtest window: its horizon predictions brought back to
/// the window like the challenger's, against the spend observed there.
fn champion_on_holdout(
    champion: &ModelArtifact,
    examples: &Examples,
    (attributes, histories): (&Attributes, Option<Histories<'_>>),
    holdout: &[usize],
) -> std::result::Result<HoldoutMetrics, String> {
    let mut input = log_inputs::champion_input(champion, attributes, histories)?;
    let (mut actual, mut predicted) = (Vec::new(), Vec::new());
    for &r in holdout {
        let e = &examples.rows[r];
        let x = input.row(&examples.snapshots[e.snapshot], e.i);
        actual.push(e.window_spend);
        predicted.push(champion.predict(x) / e.scale);
    }
    if let Some(p) = predicted.iter().find(|p| !p.is_finite()) {
        return Err(format!("it predicts {p} on the backtest window"));
    }
    Ok(HoldoutMetrics::compute(&actual, &predicted))
}

/// The backtest on the holdout window: the model's metrics, and the baselines'.
struct Backtest {
    model: HoldoutMetrics,
    baselines: Value,
}

impl Backtest {
    /// Everything is compared on the spend actually observed in the holdout window: the model's
    /// prediction is brought back from the horizon to the window by its example's factor.
    fn of(
        log: &PurchaseLog,
        examples: &Examples,
        plan: &Plan,
        holdout_rows: &[usize],
        split: &Split,
        fit: &super::fit::Fit,
    ) -> Result<Backtest> {
        let snapshot = examples.snapshot_of(plan.holdout_cutoff).ok_or_else(|| {
            EngineError::new(ErrorKind::Internal, "no snapshot at the holdout cut-off")
        })?;
        let mut actual = Vec::with_capacity(holdout_rows.len());
        let (mut model, mut classic, mut naive) = (Vec::new(), Vec::new(), Vec::new());
        for (k, &r) in holdout_rows.iter().enumerate() {
            let e = &examples.rows[r];
            actual.push(e.window_spend);
            let raw = fit.predictor.predict(split.test.row(k));
            model.push(split.back(fit.output(raw)) / e.scale);
            classic.push(snapshot.clv_spend(e.i, plan.window));
            let c = snapshot.customers[e.i];
            naive.push(spend_in_window(
                log.history(c),
                plan.holdout_cutoff - plan.window,
                plan.window,
            ));
        }
        let count_model = snapshot.clv.count.name();
        let mut baselines = Map::new();
        baselines.insert(
            format!("{count_model}_gamma_gamma"),
            holdout_metrics(&actual, &classic),
        );
        baselines.insert("last_window".into(), holdout_metrics(&actual, &naive));
        Ok(Backtest {
            model: HoldoutMetrics::compute(&actual, &model),
            baselines: Value::Object(baselines),
        })
    }
}

/// The RFM segment boundaries of the customers as of `as_of` (`scoring`), read from the feature
/// table's columns: days since the last purchase, repeat purchases, and the total spend (the
/// marketing M, which counts a one-time buyer's purchase too).
fn segments_of(scoring: &Snapshot) -> Result<RfmSegments> {
    const COLUMNS: [&str; 3] = ["days_since_last", "frequency", "total_spend"];
    let at = COLUMNS.map(|name| FEATURES.iter().position(|f| *f == name));
    let [Some(since), Some(frequency), Some(spend)] = at else {
        return Err(EngineError::new(
            ErrorKind::Internal,
            "a log feature of the RFM segments is missing",
        ));
    };
    let values: Vec<RfmValues> = (0..scoring.len())
        .map(|i| {
            let row = scoring.row(i);
            [since, frequency, spend].map(|j| row[j].unwrap_or(0.0))
        })
        .collect();
    RfmSegments::cut(
        RecencySource::SinceLast(COLUMNS[0].into()),
        COLUMNS[1].into(),
        COLUMNS[2].into(),
        &values,
        None,
    )
}

/// The model's predictions for every customer of `snapshot` (the scoring population as of
/// `as_of`), on the original scale: the tiers are cut on them.
fn predict_snapshot(
    snapshot: &Snapshot,
    features: &[FeatureSpec],
    attributes: &Attributes,
    histories: Option<Histories<'_>>,
    split: &Split,
    fitted: &super::fit::Fit,
) -> Result<Vec<f64>> {
    let mut input = log_inputs::own_input(features, attributes, histories)?;
    let mut out = Vec::with_capacity(snapshot.len());
    for i in 0..snapshot.len() {
        let x = input.row(snapshot, i);
        let p = split.back(fitted.output(fitted.predictor.predict(x)));
        if !p.is_finite() {
            return Err(EngineError::new(
                ErrorKind::NonFiniteValue,
                format!(
                    "the fitted model predicts {p} for customer {} as of {}",
                    snapshot.customers[i],
                    date_text(snapshot.cutoff)
                ),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// Facts about the log and the examples, stored in the metrics.
fn log_facts(
    log: &PurchaseLog,
    examples: &Examples,
    left_out: &[(String, &str)],
    as_of: i32,
    scoring: &Snapshot,
    attributes: &Attributes,
) -> Value {
    let (matched, unmatched) = attributes.coverage();
    let per_cutoff: BTreeMap<String, usize> = examples
        .snapshots
        .iter()
        .map(|s| (date_text(s.cutoff), s.len()))
        .collect();
    let skipped: Vec<Value> = examples
        .skipped
        .iter()
        .map(|(c, why)| json!({"cutoff": date_text(*c), "reason": why}))
        .collect();
    json!({
        "customers": log.n_customers(),
        "customer_days": log.n_days(),
        "repeat_buyers": log.repeat_buyers(as_of),
        "examples_per_cutoff": per_cutoff,
        "cutoffs_skipped": skipped,
        "features_left_out": left_out
            .iter()
            .map(|(name, why)| json!({"feature": name, "reason": why}))
            .collect::<Vec<_>>(),
        "count_model": scoring.clv.count.name(),
        "count_model_params": count_params(scoring),
        "spend_model": scoring.clv.spend.map(|m| json!({"p": m.p, "q": m.q, "gamma": m.gamma})),
        "spend_model_error": scoring.clv.spend_fit_error,
        "attributes": attributes.columns().iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
        "customers_with_attributes": matched,
        "attribute_rows_without_purchases": unmatched,
    })
}

fn count_params(snapshot: &Snapshot) -> Value {
    snapshot.clv.count.params_json()
}

fn skipped_detail(examples: &Examples) -> String {
    if examples.skipped.is_empty() {
        return "Every cut-off's customers were used.".into();
    }
    let reasons: Vec<String> = examples
        .skipped
        .iter()
        .map(|(c, why)| format!("{}: {why}", date_text(*c)))
        .collect();
    format!("Cut-offs left out: {}.", reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::models::Predictor;
    use crate::engine::purchases::PurchaseDay;
    use crate::engine::stats::SplitMix64;

    /// A BG/NBD-like population over 600 days: each customer starts in the first 60 days, buys
    /// at their own rate, may drop out after each purchase, and spends around their own mean.
    fn synthetic_log(n: usize, seed: u64) -> PurchaseLog {
        synthetic_population(n, seed).0
    }

    /// [`synthetic_log`], with each customer's purchase rate (a static trait).
    fn synthetic_population(n: usize, seed: u64) -> (PurchaseLog, Vec<f64>) {
        let mut rng = SplitMix64::new(seed);
        let mut log = PurchaseLog::default();
        let mut rates = Vec::with_capacity(n);
        for c in 0..n {
            let rate = 0.005 + 0.08 * rng.next_f64() * rng.next_f64();
            rates.push(rate);
            let dropout = 0.02 + 0.3 * rng.next_f64();
            let mean = 10.0 + 90.0 * rng.next_f64();
            let mut day = rng.below(60) as i32;
            loop {
                let amount = (mean * (0.5 + rng.next_f64())).round();
                let push = log.push(
                    &format!("c{c}"),
                    PurchaseDay {
                        day,
                        amount,
                        refund: 0.0,
                        lines: 1,
                    },
                );
                push.unwrap();
                if rng.next_f64() < dropout {
                    break;
                }
                // exponential gap, at least a day
                let gap = (-(1.0 - rng.next_f64()).ln() / rate).ceil().max(1.0) as i32;
                day += gap;
                if day >= 600 {
                    break;
                }
            }
        }
        (log, rates)
    }

    fn options(horizon: i32) -> LogOptions {
        LogOptions {
            horizon_days: horizon,
            ..LogOptions::default()
        }
    }

    /// The log up to and including `as_of` (what the glue reads).
    fn up_to_day(log: &PurchaseLog, as_of: i32, poison_after: Option<i32>) -> PurchaseLog {
        let mut out = PurchaseLog::default();
        for c in 0..log.n_customers() {
            for d in log.history(c).iter().filter(|d| d.day <= as_of) {
                let amount = match poison_after {
                    Some(p) if d.day > p => 1e7,
                    _ => d.amount,
                };
                out.push(log.key(c), PurchaseDay { amount, ..*d }).unwrap();
            }
        }
        out
    }

    #[test]
    fn backtest_examples_never_see_the_holdout_window() {
        let log = up_to_day(&synthetic_log(800, 3), 540, None);
        let plan = Plan::new(log.first_day().unwrap(), 540, &options(90)).unwrap();
        // poison everything after the holdout cut-off
        let poisoned = up_to_day(&log, 540, Some(plan.holdout_cutoff));
        let clean = Examples::build(&log, &plan, &options(90), &mut || {}).unwrap();
        let dirty = Examples::build(&poisoned, &plan, &options(90), &mut || {}).unwrap();
        let backtest = clean.rows_at(&plan.backtest_cutoffs);
        assert!(backtest.len() > 1000);
        assert_eq!(backtest, dirty.rows_at(&plan.backtest_cutoffs));
        for r in backtest {
            let (a, b) = (&clean.rows[r], &dirty.rows[r]);
            assert_eq!(a.window_spend, b.window_spend);
            assert_eq!(a.scale, b.scale);
            assert_eq!(
                clean.snapshots[a.snapshot].row(a.i),
                dirty.snapshots[b.snapshot].row(b.i)
            );
        }
        // the holdout's own features are the past too; only its targets see the window
        let holdout = clean.rows_at(&[plan.holdout_cutoff]);
        let (a, b) = (&clean.rows[holdout[0]], &dirty.rows[holdout[0]]);
        assert_eq!(
            clean.snapshots[a.snapshot].row(a.i),
            dirty.snapshots[b.snapshot].row(b.i)
        );
    }

    #[test]
    fn trains_backtests_and_reports_the_baselines() {
        let log = up_to_day(&synthetic_log(1500, 7), 540, None);
        let train_options = TrainOptions::parse(&json!({"n_trees": 60}), Algorithm::Gbm).unwrap();
        let trained = train_from_log(
            &log,
            &Attributes::none(),
            540,
            &options(90),
            Algorithm::Gbm,
            &train_options,
            None,
            &mut || {},
        )
        .unwrap();
        let out = &trained.outcome;
        let m = out.metrics.clone().unwrap();
        let gini = m.gini.unwrap();
        let extra = Value::Object(out.extra.clone());
        let classic = extra["baselines"]["bgnbd_gamma_gamma"]["gini"]
            .as_f64()
            .unwrap();
        let naive = extra["baselines"]["last_window"]["gini"].as_f64().unwrap();
        // a real ranking, at least as good as the naive one on data the CLV model was made for
        assert!(gini > 0.3, "gini {gini}");
        assert!(gini > naive - 0.02, "gini {gini}, naive {naive}");
        assert!(classic > 0.3, "classic {classic}");
        assert!(m.total_error_pct.unwrap().abs() < 40.0, "{m:?}");
        assert_eq!(extra["backtest"]["window_days"], 90);
        assert_eq!(
            out.artifact.features.len(),
            out.artifact.feature_means.len()
        );
        // refunds never happen here: a constant feature is left out, and says so
        let left_out = extra["log"]["features_left_out"].as_array().unwrap();
        assert!(left_out.contains(&json!({"feature": "refund_amount", "reason": "constant"})));
        assert!(out
            .artifact
            .features
            .iter()
            .all(|f| f.name != "refund_amount"));
        // a retrain scores the serving model on its own backtest window
        let retrained = train_from_log(
            &log,
            &Attributes::none(),
            540,
            &options(90),
            Algorithm::Linear,
            &TrainOptions::default(),
            Some(&out.artifact),
            &mut || {},
        )
        .unwrap();
        let champion = retrained.champion.unwrap().unwrap();
        assert_eq!(champion.n, retrained.outcome.n_test);
        assert!(champion.gini.unwrap() > 0.3);
        // a serving model that reads something else cannot be compared
        let mut foreign = out.artifact.clone();
        foreign.features[0].name = "age".into();
        let retrained = train_from_log(
            &log,
            &Attributes::none(),
            540,
            &options(90),
            Algorithm::Linear,
            &TrainOptions::default(),
            Some(&foreign),
            &mut || {},
        )
        .unwrap();
        assert!(retrained.champion.unwrap().unwrap_err().contains("\"age\""));
    }

    #[test]
    fn sequence_models_learn_from_the_history_by_period() {
        let log = up_to_day(&synthetic_log(1200, 7), 540, None);
        for algorithm in [Algorithm::Gru, Algorithm::Cnn] {
            let (log_options, rest) = LogOptions::split(&json!({
                "algorithm": algorithm.name(), "horizon_days": 90, "sequence_period": 14,
                "sequence_length": 12, "epochs": 30
            }))
            .unwrap();
            let train_options = log_options.training_options(&rest).unwrap();
            let trained = train_from_log(
                &log,
                &Attributes::none(),
                540,
                &log_options,
                algorithm,
                &train_options,
                None,
                &mut || {},
            )
            .unwrap();
            let out = &trained.outcome;
            let gini = out.metrics.as_ref().unwrap().gini.unwrap();
            assert!(gini > 0.3, "{} gini {gini}", algorithm.name());
            let features = &out.artifact.features;
            let names: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
            assert!(names.contains(&"sequence_purchases[12]"), "{names:?}");
            assert!(names.contains(&"sequence_spend[1]"), "{names:?}");
            let Predictor::Sequence(model) = &out.artifact.predictor else {
                panic!("{:?}", out.artifact.predictor)
            };
            assert_eq!(model.layout.steps, 12);
            assert_eq!(model.layout.channels.len(), 2);
            // the histories are profiled for drift like any feature
            assert_eq!(trained.feature_profiles.len(), features.len());
            // and it retrains against itself as champion, reading the histories again
            let retrained = train_from_log(
                &log,
                &Attributes::none(),
                540,
                &log_options,
                algorithm,
                &train_options,
                Some(&out.artifact),
                &mut || {},
            )
            .unwrap();
            let champion = retrained.champion.unwrap().unwrap();
            assert_eq!(champion.n, retrained.outcome.n_test);
            assert!(champion.gini.unwrap() > 0.3, "{champion:?}");
        }
    }

    #[test]
    fn bad_logs_are_refused_clearly() {
        // nobody buys twice: the CLV models cannot be fitted at the holdout cut-off
        let mut log = PurchaseLog::default();
        for c in 0..100 {
            log.push(
                &format!("c{c}"),
                PurchaseDay {
                    day: c * 3,
                    amount: 5.0,
                    refund: 0.0,
                    lines: 1,
                },
            )
            .unwrap();
        }
        let o = TrainOptions::default();
        let err = train_from_log(
            &log,
            &Attributes::none(),
            400,
            &options(30),
            Algorithm::Linear,
            &o,
            None,
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData, "{err:?}");
        assert!(err.message.contains("repeat"), "{}", err.message);
        // an empty log (as_of before any purchase)
        let err = train_from_log(
            &PurchaseLog::default(),
            &Attributes::none(),
            400,
            &options(30),
            Algorithm::Linear,
            &o,
            None,
            &mut || {},
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("no purchase on or before as_of (1971-02-05)"),
            "{}",
            err.message
        );
        // a CLV algorithm is not what this trains
        let err = train_from_log(
            &log,
            &Attributes::none(),
            400,
            &options(30),
            Algorithm::BgNbd,
            &o,
            None,
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
    }

    #[test]
    fn auto_tries_the_log_candidates_and_keeps_the_best_backtest() {
        let log = up_to_day(&synthetic_log(1000, 5), 540, None);
        let (o, rest) = LogOptions::split(&json!({"horizon_days": 90})).unwrap();
        let options = o.training_options(&rest).unwrap();
        let out = train_from_log(
            &log,
            &Attributes::none(),
            540,
            &o,
            Algorithm::Auto,
            &options,
            None,
            &mut || {},
        )
        .unwrap()
        .outcome;
        let trials: Vec<(Algorithm, Option<String>, f64)> = out
            .trials
            .iter()
            .map(|t| {
                (
                    t.algorithm,
                    t.variant.clone(),
                    t.outcome.as_ref().unwrap().gini.unwrap(),
                )
            })
            .collect();
        assert_eq!(trials.len(), 3, "{trials:?}");
        assert_eq!(trials[0].0, Algorithm::Ridge);
        assert!(trials[2].1.as_deref().unwrap().contains("hurdle"));
        // the kept model is the one with the best backtest Gini (on the extrapolated target)
        let best = trials.iter().map(|t| t.2).fold(f64::MIN, f64::max);
        let kept = trials.iter().find(|t| t.2 == best).unwrap();
        assert_eq!(out.artifact.algorithm, kept.0);
        let is_hurdle = matches!(
            out.artifact.predictor,
            crate::engine::models::Predictor::Hurdle(_)
        );
        assert_eq!(is_hurdle, kept.1.is_some());
    }

    /// A static trait of each customer (the rate they buy at, as a band and a score known at
    /// signup) joined as attributes: the stored model reads them (its prediction moves with
    /// them), the drift profiles carry them, and the backtest is no worse for them. (Here the
    /// log's own features already reveal most of the rate: the gain is small, 0.7987 against
    /// 0.7976.)
    #[test]
    fn static_attributes_are_learnt_from() {
        use crate::engine::features::{RawValue, SqlType};
        use crate::engine::purchases::attributes::AttributeReader;
        let (full, rates) = synthetic_population(1500, 7);
        let log = up_to_day(&full, 540, None);
        let columns = vec![
            ("loyalty".to_string(), SqlType::Text),
            ("signup_score".to_string(), SqlType::Double),
        ];
        let attributes = Attributes::new(columns, &log).unwrap();
        let mut reader = AttributeReader::new(attributes, &log, "id");
        for (c, r) in rates.iter().enumerate() {
            let band: &[u8] = match *r {
                r if r < 0.01 => b"rare",
                r if r < 0.03 => b"regular",
                _ => b"frequent",
            };
            let values = [RawValue::Text(band), RawValue::Number(100.0 * r)];
            reader.push(log.key(c), &values).unwrap();
        }
        let attributes = reader.finish();
        assert_eq!(attributes.coverage(), (1500, 0));
        let o = TrainOptions::parse(&json!({}), Algorithm::Ridge).unwrap();
        let train = |a: &Attributes| {
            train_from_log(
                &log,
                a,
                540,
                &options(90),
                Algorithm::Ridge,
                &o,
                None,
                &mut || {},
            )
            .unwrap()
        };
        let (with, without) = (train(&attributes), train(&Attributes::none()));
        let columns: Vec<&str> = with
            .outcome
            .artifact
            .features
            .iter()
            .map(|f| f.column())
            .collect();
        assert!(columns.contains(&"loyalty") && columns.contains(&"signup_score"));
        assert!(with
            .feature_profiles
            .iter()
            .any(|(n, _)| n.starts_with("loyalty")));
        let gini = |t: &LogTrained| t.outcome.metrics.as_ref().unwrap().gini.unwrap();
        assert!(
            gini(&with) > gini(&without) - 0.005,
            "{} vs {}",
            gini(&with),
            gini(&without)
        );
        let model = &with.outcome.artifact;
        let k = columns.iter().position(|c| *c == "signup_score").unwrap();
        let mut x = vec![0.0; model.features.len()];
        let low = model.predict(&x);
        x[k] = 5.0;
        assert!((model.predict(&x) - low).abs() > 1e-6);
    }
}
