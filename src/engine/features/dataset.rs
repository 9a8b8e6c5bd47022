//! A complete numeric training set and the target encoding of its category columns.

use super::super::error::Result;
use super::super::memory::{try_filled, try_with_capacity};
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

    /// Keeps only the rows at `indices`, in that order: what [`Dataset::subset`] returns, in
    /// this dataset's memory (rows moved within the matrix, not copied out of it; a row
    /// repeated in `indices` is copied as `subset` would).
    pub fn keep_rows(&mut self, indices: &[usize]) -> Result<()> {
        let (n, p) = (self.n_rows, self.n_features);
        // row k of the result is row `source[k]`; the rows not kept fill the tail, so that
        // `source` is a permutation and the moves are its cycles
        let mut source = try_with_capacity::<usize>(n, "the order of the training rows")?;
        let mut used = try_filled(n, false, "the order of the training rows")?;
        for &i in indices {
            if used[i] {
                *self = self.subset(indices)?;
                return Ok(());
            }
            used[i] = true;
            source.push(i);
        }
        source.extend((0..n).filter(|&i| !used[i]));
        let mut done = used;
        done.iter_mut().for_each(|d| *d = false);
        let mut row = vec![0.0; p];
        for start in 0..n {
            if done[start] || source[start] == start {
                continue;
            }
            row.copy_from_slice(self.row(start));
            let y = self.y[start];
            let mut k = start;
            while source[k] != start {
                let from = source[k];
                self.x.copy_within(from * p..(from + 1) * p, k * p);
                self.y[k] = self.y[from];
                done[k] = true;
                k = from;
            }
            self.x[k * p..(k + 1) * p].copy_from_slice(&row);
            self.y[k] = y;
            done[k] = true;
        }
        self.n_rows = indices.len();
        self.x.truncate(indices.len() * p);
        self.x.shrink_to_fit();
        self.y.truncate(indices.len());
        self.y.shrink_to_fit();
        self.dropped_null_target = 0;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_rows_is_the_subset_in_place() {
        let (n, p) = (50, 3);
        let data = Dataset {
            n_rows: n,
            n_features: p,
            x: (0..n * p).map(|v| v as f64).collect(),
            y: (0..n).map(|v| -(v as f64)).collect(),
            dropped_null_target: 4,
            pending_target_means: vec![1],
        };
        let mut order: Vec<usize> = (0..n).collect();
        crate::engine::stats::SplitMix64::new(3).shuffle(&mut order);
        for rows in [
            &order[..35],
            &order[..],
            &order[..1],
            &[7, 3, 49][..],
            &[][..],
        ] {
            let expected = data.subset(rows).unwrap();
            let mut kept = data.clone();
            kept.keep_rows(rows).unwrap();
            assert_eq!(
                (kept.n_rows, &kept.x, &kept.y, kept.dropped_null_target),
                (expected.n_rows, &expected.x, &expected.y, 0)
            );
            assert_eq!(kept.pending_target_means, expected.pending_target_means);
        }
    }
}
