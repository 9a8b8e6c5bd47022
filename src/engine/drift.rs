//! Drift: how far today's data has moved from what a model saw at training, as the population
//! stability index (PSI) per feature and for the predictions.
//!
//! At training, each feature's non-NULL values are cut at their deciles (repeated cut points
//! merged, so a feature with few distinct values gets one bin per value) and the share of rows
//! in each bin — plus the share of NULLs as a bin of its own — is stored with the model. Today's
//! values are counted into the same bins and
//! `PSI = Σ (today − training) · ln(today / training)` over the bins, shares floored at 1e-4 so an
//! empty bin gives a large but finite index. Usual reading: < 0.1 stable, 0.1–0.25 moderate
//! shift, > 0.25 major shift.

use serde::{Deserialize, Serialize};

use super::stats::{quantile_sorted, quantile_sorted_counted};

/// Shares are floored here before the logarithm (an empty bin would be infinite).
pub const SHARE_FLOOR: f64 = 1e-4;
pub const STABLE_BELOW: f64 = 0.1;
pub const MAJOR_ABOVE: f64 = 0.25;

/// One distribution as seen at training: bins are `(-∞, e0], (e0, e1], …, (e_last, ∞)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinProfile {
    pub edges: Vec<f64>,
    /// Share of non-NULL rows in each bin (`edges.len() + 1` bins), as a share of all rows.
    pub shares: Vec<f64>,
    pub null_share: f64,
    pub rows: usize,
}

fn bin_of(edges: &[f64], v: f64) -> usize {
    // first edge ≥ v; values above every edge fall in the last bin
    edges.partition_point(|e| *e < v)
}

impl BinProfile {
    /// The profile of `values` (NULL as `None`) cut at the deciles of the non-NULL values.
    pub fn of(values: &[Option<f64>]) -> BinProfile {
        Self::of_values(values.iter().copied(), values.len())
    }

    /// [`BinProfile::of`] for `values` with NaN as NULL (no copy of them as options).
    pub fn of_nan(values: &[f64]) -> BinProfile {
        Self::of_values(
            values.iter().map(|&v| (!v.is_nan()).then_some(v)),
            values.len(),
        )
    }

    /// [`BinProfile::of_nan`] for a caller that already holds the non-NaN values of `values`
    /// sorted ascending (`sorted_present`): no second copy or sort of them.
    pub fn of_nan_sorted(values: &[f64], sorted_present: &[f64]) -> BinProfile {
        Self::of_sorted(
            sorted_present,
            values.iter().map(|&v| (!v.is_nan()).then_some(v)),
            values.len(),
        )
    }

    /// [`BinProfile::of`] for the `len` values `values` yields.
    fn of_values(values: impl Iterator<Item = Option<f64>> + Clone, len: usize) -> BinProfile {
        let mut present: Vec<f64> = values.clone().flatten().collect();
        present.sort_unstable_by(f64::total_cmp);
        Self::of_sorted(&present, values, len)
    }

    /// The profile of the `len` values `values` yields, whose non-NULL values sorted ascending
    /// are `present`.
    fn of_sorted(
        present: &[f64],
        values: impl Iterator<Item = Option<f64>>,
        len: usize,
    ) -> BinProfile {
        let edges = if present.is_empty() {
            Vec::new()
        } else {
            decile_edges(|q| quantile_sorted(present, q))
        };
        let mut profile = BinProfile {
            edges,
            shares: Vec::new(),
            null_share: 0.0,
            rows: 0,
        };
        let (shares, null_share) = profile.count(values);
        profile.shares = shares;
        profile.null_share = null_share;
        profile.rows = len;
        profile
    }

    /// [`BinProfile::of`] for values that each stand for `counts[i]` rows (grouped input, no
    /// NULLs): the profile of the expanded values.
    pub fn of_counted(values: &[f64], counts: &[f64]) -> BinProfile {
        let mut sorted: Vec<(f64, f64)> =
            values.iter().copied().zip(counts.iter().copied()).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let edges = if sorted.is_empty() {
            Vec::new()
        } else {
            decile_edges(|q| quantile_sorted_counted(&sorted, q))
        };
        let mut bins = vec![0.0; edges.len() + 1];
        for &(v, c) in &sorted {
            bins[bin_of(&edges, v)] += c;
        }
        let n: f64 = counts.iter().sum();
        BinProfile {
            shares: bins.iter().map(|b| b / n.max(1.0)).collect(),
            edges,
            null_share: 0.0,
            rows: n as usize,
        }
    }

    /// Shares of `values` in this profile's bins, and the NULL share.
    pub fn count(&self, values: impl Iterator<Item = Option<f64>>) -> (Vec<f64>, f64) {
        let mut counts = vec![0usize; self.edges.len() + 1];
        let (mut nulls, mut n) = (0usize, 0usize);
        for v in values {
            n += 1;
            match v {
                Some(v) => counts[bin_of(&self.edges, v)] += 1,
                None => nulls += 1,
            }
        }
        let n = n.max(1) as f64;
        (
            counts.iter().map(|&c| c as f64 / n).collect(),
            nulls as f64 / n,
        )
    }

    /// PSI of today's shares (from [`BinProfile::count`]) against this profile.
    pub fn psi(&self, shares: &[f64], null_share: f64) -> f64 {
        let term = |expected: f64, actual: f64| {
            let (e, a) = (expected.max(SHARE_FLOOR), actual.max(SHARE_FLOOR));
            (a - e) * (a / e).ln()
        };
        let bins: f64 = self
            .shares
            .iter()
            .zip(shares)
            .map(|(e, a)| term(*e, *a))
            .sum();
        // the NULL bin counts only where NULLs occur (two zero shares add nothing)
        let nulls = if self.null_share > 0.0 || null_share > 0.0 {
            term(self.null_share, null_share)
        } else {
            0.0
        };
        bins + nulls
    }
}

/// The distinct deciles of a distribution (ties collapse: fewer bins, never empty ones).
fn decile_edges(quantile: impl Fn(f64) -> f64) -> Vec<f64> {
    let mut edges: Vec<f64> = Vec::new();
    for k in 1..10 {
        let e = quantile(k as f64 / 10.0);
        if edges.last().is_none_or(|last| e > *last) {
            edges.push(e);
        }
    }
    edges
}

/// The conventional reading of a PSI value.
pub fn level(psi: f64) -> &'static str {
    if psi < STABLE_BELOW {
        "stable"
    } else if psi <= MAJOR_ABOVE {
        "moderate"
    } else {
        "major"
    }
}

/// Everything a model keeps for drift: each feature's profile (in feature order) and the
/// predictions' profile on the training population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingProfile {
    pub features: Vec<(String, BinProfile)>,
    pub prediction: BinProfile,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_matches_the_hand_computed_two_bin_example() {
        // training 50/50, today 60/40: 0.1·ln(1.2) + (−0.1)·ln(0.8) = 0.0405465 (by hand:
        // 0.1 × 0.1823216 + 0.1 × 0.2231436)
        let profile = BinProfile {
            edges: vec![0.5],
            shares: vec![0.5, 0.5],
            null_share: 0.0,
            rows: 100,
        };
        let psi = profile.psi(&[0.6, 0.4], 0.0);
        assert!((psi - 0.040_546_5).abs() < 1e-7, "{psi}");
        assert_eq!(level(psi), "stable");
    }

    #[test]
    fn the_same_data_has_zero_psi_and_a_shifted_one_a_large_one() {
        let values: Vec<Option<f64>> = (0..1000).map(|i| Some(i as f64)).collect();
        let profile = BinProfile::of(&values);
        assert_eq!(profile.edges.len(), 9);
        for s in &profile.shares {
            assert!((s - 0.1).abs() < 0.002, "{s}");
        }
        let (shares, nulls) = profile.count(values.iter().copied());
        assert!(profile.psi(&shares, nulls).abs() < 1e-12);
        // everyone moves above the top decile: 90 % of the mass leaves its bins
        let shifted: Vec<Option<f64>> = (0..1000).map(|i| Some(2000.0 + i as f64)).collect();
        let (shares, nulls) = profile.count(shifted.into_iter());
        let psi = profile.psi(&shares, nulls);
        assert!(psi > 1.0, "{psi}");
        assert_eq!(level(psi), "major");
    }

    #[test]
    fn nulls_are_a_bin_and_few_distinct_values_get_one_bin_each() {
        let values: Vec<Option<f64>> = (0..100)
            .map(|i| {
                if i % 10 == 0 {
                    None
                } else {
                    Some((i % 3) as f64)
                }
            })
            .collect();
        let profile = BinProfile::of(&values);
        // values 0, 1, 2: the deciles are 0 … 1 … 2, so one bin per value and an empty bin
        // above the largest value (where a new, larger value would land)
        assert_eq!(profile.edges, vec![0.0, 1.0, 2.0]);
        assert_eq!(profile.shares[3], 0.0);
        assert!((profile.null_share - 0.1).abs() < 1e-12);
        let total: f64 = profile.shares.iter().sum::<f64>() + profile.null_share;
        assert!((total - 1.0).abs() < 1e-12);
        // today no NULLs at all but the same mix otherwise: only the NULL bin moves.
        // Shares 0.9 → 1.0 scaled: each non-null bin grows by 1/0.9.
        let today: Vec<Option<f64>> = values.iter().flatten().map(|v| Some(*v)).collect();
        let (shares, nulls) = profile.count(today.into_iter());
        let expected: f64 = profile
            .shares
            .iter()
            .zip(&shares)
            .map(|(e, a)| {
                let (e, a) = (e.max(SHARE_FLOOR), a.max(SHARE_FLOOR));
                (a - e) * (a / e).ln()
            })
            .sum::<f64>()
            + (SHARE_FLOOR - 0.1) * (SHARE_FLOOR / 0.1).ln();
        assert!((profile.psi(&shares, nulls) - expected).abs() < 1e-12);
    }

    #[test]
    fn values_on_an_edge_fall_in_the_lower_bin() {
        assert_eq!(bin_of(&[1.0, 2.0], 1.0), 0);
        assert_eq!(bin_of(&[1.0, 2.0], 1.5), 1);
        assert_eq!(bin_of(&[1.0, 2.0], 2.0), 1);
        assert_eq!(bin_of(&[1.0, 2.0], 9.0), 2);
        assert_eq!(bin_of(&[1.0, 2.0], -9.0), 0);
    }
}
