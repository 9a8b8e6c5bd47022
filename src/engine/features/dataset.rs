//! A complete numeric training set and the target encoding of its category columns.

use std::sync::Arc;

use super::super::error::{EngineError, ErrorKind, Result};
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
    /// The features rounded to `f32` in place of `x` (then empty), for a learner that reads
    /// nothing else: see [`Dataset::compact_to_f32`].
    pub compact: Option<Arc<F32Rows>>,
}

/// Row-major features rounded to `f32`, kept in the buffer of the `f64` matrix they were
/// converted from: the conversion runs in place, so it never holds both matrices.
#[derive(Debug)]
pub struct F32Rows {
    /// Pairs of `f32` values in each element; the last element's second half is unused when
    /// the count is odd.
    buffer: Vec<f64>,
    len: usize,
}

impl F32Rows {
    /// The values of `x` rounded to `f32`, in `x`'s memory (its second half released).
    fn from_f64_in_place(mut x: Vec<f64>) -> F32Rows {
        let len = x.len();
        let base = x.as_mut_ptr();
        for i in 0..len {
            // SAFETY: value i is read before f32 slot i (bytes 4i..4i+4) is written, and every
            // value still to be read (bytes 8j.., j > i) lies beyond it; the buffer is 8-byte
            // aligned, so every f32 slot is aligned.
            unsafe {
                let v = base.add(i).read();
                base.cast::<f32>().add(i).write(v as f32);
            }
        }
        x.truncate(len.div_ceil(2));
        x.shrink_to_fit();
        F32Rows { buffer: x, len }
    }

    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: the buffer holds at least `len` initialised f32 values (its f64 elements are
        // initialised and any bit pattern is an f32), aligned for f32, and lives as long as
        // `self`.
        unsafe { std::slice::from_raw_parts(self.buffer.as_ptr().cast::<f32>(), self.len) }
    }
}

impl AsRef<[f32]> for F32Rows {
    fn as_ref(&self) -> &[f32] {
        self.as_slice()
    }
}

impl Dataset {
    /// Row `i` of a dataset that is not compact ([`Dataset::row_values`] reads either).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Row `i` as numbers: in place, or from the `f32` rows of a compact dataset into `buffer`.
    pub fn row_values<'a>(&'a self, i: usize, buffer: &'a mut Vec<f64>) -> &'a [f64] {
        let Some(rows) = &self.compact else {
            return self.row(i);
        };
        let p = self.n_features;
        buffer.clear();
        buffer.extend(
            rows.as_slice()[i * p..(i + 1) * p]
                .iter()
                .map(|&v| f64::from(v)),
        );
        buffer
    }

    /// Rounds the features to `f32` in place, halving their memory, when every value is a
    /// finite `f32`; returns whether it did. Only for a learner that rounds its features to
    /// `f32` itself and routes rows so that the rounded value goes where the original does
    /// (gbm: see `models::gbm::f64_threshold`), so that nothing it learns or predicts changes.
    pub fn compact_to_f32(&mut self) -> bool {
        let limit = f64::from(f32::MAX);
        if self.compact.is_some() || self.x.iter().any(|v| v.is_nan() || v.abs() > limit) {
            return false;
        }
        let x = std::mem::take(&mut self.x);
        self.compact = Some(Arc::new(F32Rows::from_f64_in_place(x)));
        true
    }

    /// An internal error for an operation that reads the `f64` rows of a compact dataset.
    fn check_not_compact(&self, what: &str) -> Result<()> {
        match self.compact {
            None => Ok(()),
            Some(_) => Err(EngineError::new(
                ErrorKind::Internal,
                format!("{what} of a dataset compacted to f32"),
            )),
        }
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
        self.check_not_compact("keeping rows")?;
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
        self.check_not_compact("a subset")?;
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
            compact: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(values: Vec<f64>, n_features: usize) -> Dataset {
        Dataset {
            n_rows: values.len() / n_features,
            n_features,
            y: vec![0.0; values.len() / n_features],
            x: values,
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        }
    }

    #[test]
    fn compacting_rounds_every_value_to_f32_in_place() {
        let mut rng = crate::engine::stats::SplitMix64::new(5);
        // odd and even counts: the last f64 element holds one f32 or two
        for (n, p) in [(1, 1), (7, 3), (50, 4), (1001, 1)] {
            let values: Vec<f64> = (0..n * p)
                .map(|k| match k % 4 {
                    0 => rng.next_f64() * 1e6 - 5e5,
                    1 => f64::from_bits(rng.next_u64() >> 2) % 1e30,
                    2 => -0.0,
                    _ => 0.1 * k as f64,
                })
                .collect();
            let mut data = matrix(values.clone(), p);
            assert!(data.compact_to_f32());
            assert!(data.x.is_empty());
            let rows = data.compact.as_ref().unwrap().as_slice();
            let expected: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            assert_eq!(
                rows.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            let mut buffer = Vec::new();
            let last = data.n_rows - 1;
            let want: Vec<f64> = expected[last * p..].iter().map(|&v| f64::from(v)).collect();
            assert_eq!(data.row_values(last, &mut buffer), &want[..]);
        }
    }

    #[test]
    fn only_finite_f32_values_are_compacted_and_compact_rows_are_not_copied_out() {
        for outside in [f64::NAN, 1e39, -1e300] {
            let mut data = matrix(vec![1.0, outside, 3.0, 4.0], 2);
            assert!(!data.compact_to_f32());
            assert_eq!(data.x.len(), 4);
        }
        let mut data = matrix(vec![1.0, 2.0, 3.0, 4.0], 2);
        assert!(data.compact_to_f32());
        assert!(!data.compact_to_f32());
        let err = data.subset(&[0]).unwrap_err();
        assert_eq!(err.kind, crate::engine::error::ErrorKind::Internal);
        assert!(data.keep_rows(&[1]).is_err());
    }

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
            compact: None,
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
