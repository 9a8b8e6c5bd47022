//! A complete numeric training set and the target encoding of its category columns.

use super::super::error::Result;
use super::super::memory::try_with_capacity;
use super::{Encoding, FeatureSpec, TARGET_MEAN_SMOOTHING};

/// A complete numeric training set: row-major features and the target.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub n_rows: usize,
    pub n_features: usize,
    /// Row-major: row i is `x[i * n_features .. (i + 1) * n_features]`.
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Rows skipped because their target was NULL.
    pub dropped_null_target: usize,
    /// Columns that still hold category codes (NaN: NULL or unseen) and await target encoding.
    pub pending_target_means: Vec<usize>,
}

impl Dataset {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Replaces the category codes of the pending target-encoded columns with each category's
    /// smoothed mean target over `training_rows` (never the holdout, whose metrics would
    /// otherwise see their own targets), and records the means in the feature specs.
    pub fn encode_target_means(&mut self, specs: &mut [FeatureSpec], training_rows: &[usize]) {
        let p = self.n_features;
        for &j in &self.pending_target_means {
            let Some(FeatureSpec {
                encoding:
                    Encoding::TargetMean {
                        categories,
                        means,
                        fallback,
                    },
                ..
            }) = specs.get_mut(j)
            else {
                continue;
            };
            let k = categories.len();
            let (mut sums, mut counts) = (vec![0.0; k], vec![0usize; k]);
            let mut overall = 0.0;
            for &i in training_rows {
                let (code, y) = (self.x[i * p + j], self.y[i]);
                overall += y;
                if code.is_finite() && code >= 1.0 && (code as usize) <= k {
                    sums[code as usize - 1] += y;
                    counts[code as usize - 1] += 1;
                }
            }
            let overall = overall / training_rows.len().max(1) as f64;
            *means = sums
                .iter()
                .zip(&counts)
                .map(|(s, c)| {
                    (s + TARGET_MEAN_SMOOTHING * overall) / (*c as f64 + TARGET_MEAN_SMOOTHING)
                })
                .collect();
            *fallback = overall;
            for i in 0..self.n_rows {
                let code = self.x[i * p + j];
                self.x[i * p + j] = if code.is_finite() && code >= 1.0 && (code as usize) <= k {
                    means[code as usize - 1]
                } else {
                    overall
                };
            }
        }
        self.pending_target_means.clear();
    }

    /// The rows at `indices`, in that order (53200 when there is no memory for the copy).
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        let p = self.n_features;
        let mut x = try_with_capacity(
            indices.len().saturating_mul(p),
            "a copy of the training rows",
        )?;
        let mut y = try_with_capacity(indices.len(), "a copy of the training targets")?;
        for &i in indices {
            x.extend_from_slice(self.row(i));
            y.push(self.y[i]);
        }
        Ok(Dataset {
            n_rows: indices.len(),
            n_features: p,
            x,
            y,
            dropped_null_target: 0,
            pending_target_means: self.pending_target_means.clone(),
        })
    }
}
