//! Global feature importances: split gain (boosted trees, which record it), mean |SHAP| (any
//! tree ensemble with covers), and permutation importance (any model, by prediction alone).

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::Dataset;
use crate::engine::stats::SplitMix64;

use super::explain::TreeExplainer;
use super::forest::{TreeEnsemble, LEAF};

/// Total loss reduction of the splits on each feature (XGBoost's `total_gain`), from
/// [`super::gbm::GbmFit::split_gains`]. Cheap and training-set based: it favours features with
/// many distinct values, so prefer [`shap_importance`] or [`permutation_importance`] for
/// decisions.
pub fn gain_importance(ensemble: &TreeEnsemble, split_gains: &[f64]) -> Result<Vec<f64>> {
    if split_gains.len() != ensemble.nodes.len() {
        return Err(EngineError::new(
            ErrorKind::Internal,
            format!(
                "{} split gains for {} tree nodes",
                split_gains.len(),
                ensemble.nodes.len()
            ),
        ));
    }
    let mut total = vec![0.0; ensemble.n_features as usize];
    for (node, gain) in ensemble.nodes.iter().zip(split_gains) {
        if node.feature != LEAF {
            if let Some(t) = total.get_mut(node.feature as usize) {
                *t += gain;
            }
        }
    }
    Ok(total)
}

/// Mean absolute TreeSHAP contribution of each feature over `data`'s rows, in the units of the
/// prediction. `interrupt` runs every 1024 rows.
pub fn shap_importance(
    explainer: &TreeExplainer<'_>,
    data: &Dataset,
    interrupt: &mut dyn FnMut(),
) -> Result<Vec<f64>> {
    let mut total = vec![0.0; data.n_features];
    let mut phi = vec![0.0; data.n_features];
    for i in 0..data.n_rows {
        if i % 1024 == 0 {
            interrupt();
        }
        explainer.contributions_into(data.row(i), &mut phi)?;
        for (t, p) in total.iter_mut().zip(&phi) {
            *t += p.abs();
        }
    }
    let n = data.n_rows.max(1) as f64;
    total.iter_mut().for_each(|t| *t /= n);
    Ok(total)
}

/// Permutation importance (Breiman 2001; scikit-learn's `permutation_importance`): how much
/// `loss(actual, predicted)` (lower is better, e.g. MSE or log loss) grows when one feature's
/// column is shuffled, averaged over `repeats` seeded shuffles. Model-agnostic and measured on
/// held-out data when `data` is a holdout. `interrupt` runs before each shuffle.
pub fn permutation_importance(
    predict: &dyn Fn(&[f64]) -> f64,
    data: &Dataset,
    loss: &dyn Fn(&[f64], &[f64]) -> f64,
    repeats: usize,
    seed: u64,
    interrupt: &mut dyn FnMut(),
) -> Result<Vec<f64>> {
    if data.n_rows == 0 || repeats == 0 {
        return Err(EngineError::insufficient_data(
            "permutation importance needs at least one row and one repeat",
        ));
    }
    let predictions: Vec<f64> = (0..data.n_rows).map(|i| predict(data.row(i))).collect();
    let base = loss(&data.y, &predictions);
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..data.n_rows).collect();
    let mut row = vec![0.0; data.n_features];
    let mut permuted = vec![0.0; data.n_rows];
    let mut importance = vec![0.0; data.n_features];
    for (j, imp) in importance.iter_mut().enumerate() {
        for _ in 0..repeats {
            interrupt();
            rng.shuffle(&mut order);
            for (i, p) in permuted.iter_mut().enumerate() {
                row.copy_from_slice(data.row(i));
                row[j] = data.row(order[i])[j];
                *p = predict(&row);
            }
            *imp += loss(&data.y, &permuted) - base;
        }
        *imp /= repeats as f64;
    }
    if importance.iter().any(|v| !v.is_finite()) {
        return Err(EngineError::new(
            ErrorKind::NonFiniteValue,
            "permutation importance is not finite: the loss gave a non-finite value",
        ));
    }
    Ok(importance)
}

/// Mean squared error, a `loss` for [`permutation_importance`].
pub fn mean_squared_error(actual: &[f64], predicted: &[f64]) -> f64 {
    let n = actual.len().max(1) as f64;
    actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| (a - p) * (a - p))
        .sum::<f64>()
        / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::models::forest::Node;

    #[test]
    fn gain_importance_sums_split_gains_per_feature() {
        let leaf = Node::leaf(0.0);
        let e = TreeEnsemble {
            n_features: 3,
            roots: vec![0, 3],
            nodes: vec![
                Node::split(2, 1, 2, 0.5),
                leaf,
                leaf,
                Node::split(2, 4, 5, 0.1),
                leaf,
                Node::split(0, 6, 7, 0.1),
                leaf,
                leaf,
            ],
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        let gains = [4.0, 0.0, 0.0, 1.5, 0.0, 2.0, 0.0, 0.0];
        assert_eq!(gain_importance(&e, &gains).unwrap(), vec![2.0, 0.0, 5.5]);
        assert!(gain_importance(&e, &gains[..3]).is_err());
    }

    #[test]
    fn shap_importance_of_a_stump_is_the_mean_distance_to_the_baseline() {
        // x0 <= 0.5 → 0 | 10, covers 3 / 1: E = 2.5. Only x0 matters, so |φ0| = |f(x) − 2.5|:
        // rows (0.1, 0.7, 0.9) give 2.5, 7.5, 7.5 → mean 17.5 / 3; x1 gets 0.
        let leaf = Node::leaf;
        let e = TreeEnsemble {
            n_features: 2,
            roots: vec![0],
            nodes: vec![Node::split(0, 1, 2, 0.5), leaf(0.0), leaf(10.0)],
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        let explainer = TreeExplainer::new(&e, &[4.0, 3.0, 1.0]).unwrap();
        let data = Dataset {
            n_rows: 3,
            n_features: 2,
            x: vec![0.1, 5.0, 0.7, 1.0, 0.9, 2.0],
            y: vec![0.0; 3],
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        };
        let imp = shap_importance(&explainer, &data, &mut || {}).unwrap();
        assert!((imp[0] - 17.5 / 3.0).abs() < 1e-12, "{imp:?}");
        assert_eq!(imp[1], 0.0);
    }

    #[test]
    fn permutation_importance_matches_its_expectation() {
        // y = 2·x0 exactly; x1 is ignored by the model. Shuffling x1 changes nothing (0);
        // shuffling x0 gives E[(2x0_i − 2x0_π(i))²] = 4 · 2 · Var(x0) (π uniform: the mean
        // over all pairs i, j of (a_i − a_j)² is twice the population variance).
        let n = 2_000;
        let mut rng = SplitMix64::new(1);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let b = rng.below(10) as f64;
            x.extend_from_slice(&[a, b]);
            y.push(2.0 * a);
        }
        let data = Dataset {
            n_rows: n,
            n_features: 2,
            x,
            y,
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        };
        let mean = (0..n).map(|i| data.row(i)[0]).sum::<f64>() / n as f64;
        let var = (0..n).map(|i| (data.row(i)[0] - mean).powi(2)).sum::<f64>() / n as f64;
        let mut calls = 0;
        let imp = permutation_importance(
            &|r: &[f64]| 2.0 * r[0],
            &data,
            &mean_squared_error,
            20,
            3,
            &mut || calls += 1,
        )
        .unwrap();
        assert_eq!(calls, 40);
        assert_eq!(imp[1], 0.0);
        assert!(
            (imp[0] / (8.0 * var) - 1.0).abs() < 0.03,
            "{} vs {}",
            imp[0],
            8.0 * var
        );
    }
}
