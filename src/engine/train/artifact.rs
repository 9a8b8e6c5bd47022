//! The trained model as stored: the chosen fit with its feature specs, tiers, class labels and
//! what explanations need; and the feature importances reported with it.

use serde_json::{json, Map, Value};

use crate::engine::codec::{ModelArtifact, Task};
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{Dataset, FeatureSpec};
use crate::engine::metrics::ClassificationMetrics;
use crate::engine::models::importance::{
    gain_importance, mean_squared_error, permutation_importance,
};
use crate::engine::models::{Algorithm, Predictor};
use crate::engine::options::TrainOptions;
use crate::engine::target::TargetKind;
use crate::engine::tiers::{Tier, TierScheme, TierSpec};

use super::fit::Fit;

/// The model artifact of the chosen `fit`; tiers are cut on `population` (the predictions on
/// every training row); `feature_means` are the training rows' (`explain::feature_means`).
#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    algorithm: Algorithm,
    fit: Fit,
    features: Vec<FeatureSpec>,
    target: Option<&str>,
    kind: TargetKind,
    options: &TrainOptions,
    population: &[f64],
    feature_means: Vec<f64>,
) -> Result<ModelArtifact> {
    let task = if kind == TargetKind::Value {
        Task::Regression
    } else {
        Task::Classification
    };
    let tiers = tiers(kind, options, population);
    let mut artifact = ModelArtifact::new(
        algorithm,
        task,
        target.map(str::to_string),
        features,
        fit.predictor,
        tiers,
    );
    artifact.target_transform = options.target_transform;
    artifact.link = fit.link;
    artifact.classes = match kind {
        TargetKind::MultiClass => options.classes.clone(),
        TargetKind::Binary => {
            let (negative, positive) = options.class_labels.clone();
            vec![negative, positive]
        }
        TargetKind::Value => Vec::new(),
    };
    artifact.covers = fit.covers;
    artifact.gains = fit.gains;
    artifact.feature_means = feature_means;
    Ok(artifact)
}

/// A binary classifier's tier is its predicted class (probability ≥ 0.5), unless tiers were
/// given; other models' tiers are cut on the training population.
fn tiers(kind: TargetKind, options: &TrainOptions, population: &[f64]) -> TierScheme {
    if kind != TargetKind::Binary || options.tiers != TierSpec::default() {
        return options.tiers.fit(population);
    }
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
}

/// Adds `feature_importance` and `importance_loss` to the metrics: how much the loss on the
/// holdout grows when a feature's values are shuffled (any model), and for boosted trees the
/// share of the split gains.
pub(super) fn insert_importance(
    extra: &mut Map<String, Value>,
    artifact: &ModelArtifact,
    test: &Dataset,
    kind: TargetKind,
    seed: u64,
    interrupt: &mut dyn FnMut(),
) -> Result<()> {
    let sample: Vec<usize> = (0..test.n_rows.min(20_000)).collect();
    let holdout = test.subset(&sample)?;
    let predict = |x: &[f64]| match kind {
        TargetKind::MultiClass => artifact
            .predictor
            .predicted_class(x)
            .map_or(f64::NAN, |k| k as f64),
        _ => artifact.predict(x),
    };
    let loss = |y: &[f64], p: &[f64]| match kind {
        // the error rate: a multi-class model's loss on predicted classes
        TargetKind::MultiClass => {
            y.iter().zip(p).filter(|(a, b)| a != b).count() as f64 / y.len().max(1) as f64
        }
        TargetKind::Binary => ClassificationMetrics::compute(y, p).log_loss,
        TargetKind::Value => mean_squared_error(y, p),
    };
    let permutation = permutation_importance(&predict, &holdout, &loss, 3, seed, interrupt)?;
    let gains = match &artifact.predictor {
        Predictor::Trees(t) if !artifact.gains.is_empty() => {
            Some(gain_importance(t, &artifact.gains)?)
        }
        _ => None,
    };
    let total_gain: f64 = gains.iter().flatten().sum();
    let mut importance = Vec::new();
    for (j, spec) in artifact.features.iter().enumerate() {
        let mut entry = Map::new();
        entry.insert("feature".into(), json!(spec.name));
        entry.insert("permutation".into(), json!(permutation[j]));
        if let Some(g) = &gains {
            let share = if total_gain > 0.0 {
                g[j] / total_gain
            } else {
                0.0
            };
            entry.insert("gain".into(), json!(share));
        }
        importance.push(Value::Object(entry));
    }
    extra.insert("feature_importance".into(), Value::Array(importance));
    let loss_name = match kind {
        TargetKind::MultiClass => "error_rate",
        TargetKind::Binary => "log_loss",
        TargetKind::Value => "mse",
    };
    extra.insert("importance_loss".into(), json!(loss_name));
    Ok(())
}

/// Checks a freshly trained model as a stored one is checked. At training time a failure is
/// the data's doing, not damage: finite values so large that a sum, mean or quantile overflows
/// (e.g. 1.7e308 in every row) give a model with non-finite parameters.
pub(super) fn validate_trained(artifact: &ModelArtifact) -> Result<()> {
    artifact.validate().map_err(|e| match e.kind {
        ErrorKind::DataCorrupted => EngineError::new(
            ErrorKind::NonFiniteValue,
            format!("the trained model is not usable: {}", e.message),
        )
        .with_hint("Values this large overflow: scale the target and features down, or leave out rows with extreme values."),
        _ => e,
    })
}
