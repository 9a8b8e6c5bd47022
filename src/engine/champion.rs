//! Champion/challenger: a retrained model (the challenger) replaces the serving one (the
//! champion) only if it is at least as good on the *same* rows — the challenger's holdout —
//! both scored there. Comparing each version's own holdout metric would compare different
//! customers (and different data days), which is how a worse model slips through.

use super::codec::ModelArtifact;
use super::error::{EngineError, Result};
use super::metrics::{HoldoutMetrics, Metric};
use super::options::DeployPolicy;

/// A metric for a message: six decimals, or scientific notation for tiny values.
pub fn format_metric(value: Option<f64>) -> String {
    match value {
        None => "null".into(),
        Some(v) if v == 0.0 || v.abs() >= 1e-3 => format!("{v:.6}"),
        Some(v) => format!("{v:.3e}"),
    }
}

/// The champion's metrics on the evaluation rows: `raw` holds, per evaluation row, the
/// champion's raw feature values in its feature order (`None` = SQL NULL); `actual` the
/// target. Fails (naming the row) if the champion cannot score a row.
pub fn score_champion(
    champion: &ModelArtifact,
    raw: &[Vec<Option<f64>>],
    actual: &[f64],
) -> Result<HoldoutMetrics> {
    if raw.is_empty() || raw.len() != actual.len() {
        return Err(EngineError::insufficient_data(
            "no evaluation rows to score the serving version on",
        ));
    }
    let mut x = Vec::with_capacity(champion.features.len());
    if let crate::engine::models::Predictor::OneVsRest(_) = &champion.predictor {
        let mut probabilities = Vec::with_capacity(raw.len());
        for (i, row) in raw.iter().enumerate() {
            champion.predict_raw(row, &mut x).map_err(|e| {
                EngineError::new(e.kind, format!("{} in evaluation row {}", e.message, i + 1))
            })?;
            probabilities.push(champion.predictor.class_probabilities(&x));
        }
        return Ok(HoldoutMetrics::compute_multiclass(actual, &probabilities));
    }
    let mut predicted = Vec::with_capacity(raw.len());
    for (i, row) in raw.iter().enumerate() {
        let p = champion.predict_raw(row, &mut x).map_err(|e| {
            EngineError::new(e.kind, format!("{} in evaluation row {}", e.message, i + 1))
        })?;
        if !p.is_finite() {
            return Err(EngineError::new(
                super::error::ErrorKind::NonFiniteValue,
                format!("it predicts {p} for evaluation row {}", i + 1),
            ));
        }
        predicted.push(p);
    }
    Ok(if champion.task == super::codec::Task::Classification {
        HoldoutMetrics::compute_classification(actual, &predicted)
    } else {
        HoldoutMetrics::compute(actual, &predicted)
    })
}

/// Whether the challenger is deployed, and why (a sentence for `training_runs.reason`).
/// `champion` is `None` when nothing is deployed; `Some(Err(why))` when the serving version
/// could not be scored on the evaluation rows (its columns changed, a NULL it cannot impute…).
pub fn decide(
    policy: DeployPolicy,
    metric: Metric,
    challenger: Option<&HoldoutMetrics>,
    champion: Option<(i32, std::result::Result<&HoldoutMetrics, &str>)>,
) -> (bool, String) {
    if challenger.is_none() && policy == DeployPolicy::Auto && matches!(champion, Some((_, Ok(_))))
    {
        return (
            true,
            "no target to compare on: the new fit replaces the serving version".into(),
        );
    }
    let scope = challenger
        .map(|c| format!("on the same {} rows", c.n))
        .unwrap_or_default();
    let champion = champion.map(|(version, m)| (version, m.map(|m| m.get(metric))));
    decide_values(
        policy,
        metric,
        challenger.and_then(|c| c.get(metric).map(|v| (v, c.n))),
        champion,
        &scope,
    )
}

/// Fewest holdout rows on which a new version may replace the serving one automatically.
pub const MIN_HOLDOUT_ROWS: usize = 30;

/// The deploy decision on metric values, shared by `retrain` (both versions scored on the same
/// rows) and `train` (each version's own holdout; `scope` says which).
pub fn decide_values(
    policy: DeployPolicy,
    metric: Metric,
    challenger: Option<(f64, usize)>,
    champion: Option<(i32, std::result::Result<Option<f64>, &str>)>,
    scope: &str,
) -> (bool, String) {
    match policy {
        DeployPolicy::Always => return (true, "deploy is \"always\"".into()),
        DeployPolicy::Never => return (false, "deploy is \"never\"".into()),
        DeployPolicy::Auto => {}
    }
    let Some((version, champion)) = champion else {
        return (true, "no version was deployed".into());
    };
    // a metric on a handful of rows is noise: it must not replace a serving version
    if let Some((_, rows)) = challenger.filter(|(_, rows)| *rows < MIN_HOLDOUT_ROWS) {
        return (
            false,
            format!(
                "its holdout has {rows} row(s), too few to judge it against the serving version {version} (at least {MIN_HOLDOUT_ROWS}); raise test_size, or deploy it with customer_value.deploy()"
            ),
        );
    }
    let challenger = challenger.map(|(value, _)| value);
    let old = match champion {
        Ok(value) => value,
        Err(why) => {
            return (
                true,
                format!("the serving version {version} could not be scored on today's data: {why}"),
            )
        }
    };
    let better = metric.at_least_as_good(challenger, old);
    let verdict = if better {
        "at least as good as"
    } else {
        "worse than"
    };
    (
        better,
        format!(
            "{} {} is {verdict} the serving version {version}'s {} {scope}",
            metric.key(),
            format_metric(challenger),
            format_metric(old),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::codec::Task;
    use crate::engine::error::ErrorKind;
    use crate::engine::features::{Encoding, FeatureSpec};
    use crate::engine::models::{Algorithm, LinearModel, Predictor};
    use crate::engine::tiers::TierSpec;

    fn linear(intercept: f64, coefficient: f64, impute: Option<f64>) -> ModelArtifact {
        ModelArtifact::new(
            Algorithm::Linear,
            Task::Regression,
            Some("y".into()),
            vec![FeatureSpec {
                name: "x".into(),
                sql_type: "double precision".into(),
                encoding: Encoding::Number,
                impute,
            }],
            Predictor::Linear(LinearModel {
                intercept,
                coefficients: vec![coefficient],
            }),
            TierSpec::default().fit(&[0.0, 1.0, 2.0, 3.0]),
        )
    }

    #[test]
    fn the_champion_is_scored_on_the_given_rows_with_its_own_imputation() {
        // y = 2x + 1 exactly; the NULL row is imputed with x = 3 → 7, actual 7
        let champion = linear(1.0, 2.0, Some(3.0));
        let raw = vec![vec![Some(0.0)], vec![Some(1.0)], vec![None]];
        let m = score_champion(&champion, &raw, &[1.0, 3.0, 7.0]).unwrap();
        assert_eq!(m.rmse, 0.0);
        assert_eq!(m.n, 3);
        // off by one everywhere: rmse 1 (hand computed)
        let m = score_champion(&champion, &raw, &[2.0, 4.0, 8.0]).unwrap();
        assert!((m.rmse - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_null_the_champion_cannot_impute_names_feature_and_row() {
        let champion = linear(1.0, 2.0, None);
        let err =
            score_champion(&champion, &[vec![Some(1.0)], vec![None]], &[3.0, 3.0]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NullValue);
        assert_eq!(err.message, "feature \"x\" is NULL in evaluation row 2");
    }

    fn metrics(rmse: f64) -> HoldoutMetrics {
        HoldoutMetrics {
            rmse,
            mae: rmse,
            r2: None,
            spearman: None,
            gini: None,
            top_decile_capture: None,
            decile_mape: None,
            total_error_pct: None,
            n: 50,
            classification: None,
        }
    }

    #[test]
    fn the_challenger_must_be_at_least_as_good_on_the_same_rows() {
        let (better, worse) = (metrics(9.0), metrics(11.0));
        let champion = metrics(10.0);
        let auto = DeployPolicy::Auto;
        let (deploy, why) = decide(auto, Metric::Rmse, Some(&better), Some((3, Ok(&champion))));
        assert!(deploy);
        assert_eq!(
            why,
            "rmse 9.000000 is at least as good as the serving version 3's 10.000000 on the same 50 rows"
        );
        let (deploy, why) = decide(auto, Metric::Rmse, Some(&worse), Some((3, Ok(&champion))));
        assert!(!deploy);
        assert!(
            why.contains("is worse than the serving version 3's"),
            "{why}"
        );
        // a tie keeps the fresher model
        assert!(
            decide(
                auto,
                Metric::Rmse,
                Some(&champion),
                Some((3, Ok(&champion)))
            )
            .0
        );
    }

    #[test]
    fn policies_and_missing_champions() {
        let m = metrics(11.0);
        let c = metrics(10.0);
        assert!(
            decide(
                DeployPolicy::Always,
                Metric::Rmse,
                Some(&m),
                Some((1, Ok(&c)))
            )
            .0
        );
        assert!(!decide(DeployPolicy::Never, Metric::Rmse, Some(&c), None).0);
        assert_eq!(
            decide(DeployPolicy::Auto, Metric::Rmse, Some(&m), None),
            (true, "no version was deployed".to_string())
        );
        let (deploy, why) = decide(
            DeployPolicy::Auto,
            Metric::Rmse,
            Some(&m),
            Some((2, Err("column \"x\" no longer exists"))),
        );
        assert!(deploy);
        assert_eq!(
            why,
            "the serving version 2 could not be scored on today's data: column \"x\" no longer exists"
        );
    }

    #[test]
    fn a_tiny_holdout_never_replaces_the_serving_version() {
        let mut tiny = metrics(1.0);
        tiny.n = 1;
        let champion = metrics(10.0);
        let (deploy, why) = decide(
            DeployPolicy::Auto,
            Metric::Rmse,
            Some(&tiny),
            Some((4, Ok(&champion))),
        );
        assert!(!deploy);
        assert!(
            why.starts_with("its holdout has 1 row(s), too few"),
            "{why}"
        );
        // the first version, or an explicit policy, is not held back
        assert!(decide(DeployPolicy::Auto, Metric::Rmse, Some(&tiny), None).0);
        assert!(
            decide(
                DeployPolicy::Always,
                Metric::Rmse,
                Some(&tiny),
                Some((4, Ok(&champion)))
            )
            .0
        );
    }
}
