//! Holdout metrics for value models. Besides the usual error measures, the ranking measures a
//! marketer cares about (Google's ZILN paper, 2019): Spearman rank correlation, normalized Gini
//! and the share of value captured by the top decile of predictions.
//!
//! Ties in the predictions are handled explicitly: customers with equal predictions are treated
//! as one block whose actual value is spread evenly, so a model that predicts the same value for
//! everyone scores a Gini of 0 whatever the row order.

use serde::{Deserialize, Serialize};

use super::stats::{average_ranks, pearson};

/// Metrics on a holdout. Ranking metrics are `None` where undefined (e.g. all actual values
/// equal, or all zero); the classification metrics are `None` for a value model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutMetrics {
    pub rmse: f64,
    pub mae: f64,
    pub r2: Option<f64>,
    pub spearman: Option<f64>,
    pub gini: Option<f64>,
    pub top_decile_capture: Option<f64>,
    /// Mean over 10 equal-count prediction deciles of |mean predicted − mean actual| / mean
    /// actual (the ZILN paper's decile MAPE); deciles whose actual mean is 0 are left out.
    pub decile_mape: Option<f64>,
    /// (Σ predicted − Σ actual) / Σ actual, in percent; `None` when the actual total is 0.
    pub total_error_pct: Option<f64>,
    pub n: usize,
    pub classification: Option<ClassificationMetrics>,
}

/// Metrics of a binary classifier's probabilities `p` against 0/1 labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    /// Area under the ROC curve (Mann–Whitney, ties counted half); `None` with one class only.
    pub auc: Option<f64>,
    /// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 − 1e-15].
    pub log_loss: f64,
    /// Share of rows classified right at the 0.5 cut.
    pub accuracy: f64,
    /// F1 of the positive class at the 0.5 cut (`None` without predicted or actual positives).
    pub f1: Option<f64>,
    /// Share of positive labels.
    pub positive_rate: f64,
    /// By decile of predicted probability (lowest first): rows, mean predicted, observed rate.
    pub calibration: Vec<CalibrationBucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBucket {
    pub bucket: usize,
    pub n: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

impl ClassificationMetrics {
    pub fn compute(labels: &[f64], p: &[f64]) -> ClassificationMetrics {
        let n = labels.len().max(1) as f64;
        let positives = labels.iter().filter(|y| **y == 1.0).count();
        let negatives = labels.len() - positives;
        let auc = (positives > 0 && negatives > 0).then(|| {
            let ranks = average_ranks(p);
            let rank_sum: f64 = labels
                .iter()
                .zip(&ranks)
                .filter(|(y, _)| **y == 1.0)
                .map(|(_, r)| r)
                .sum();
            let np = positives as f64;
            (rank_sum - np * (np + 1.0) / 2.0) / (np * negatives as f64)
        });
        let log_loss = -labels
            .iter()
            .zip(p)
            .map(|(y, p)| {
                let p = p.clamp(1e-15, 1.0 - 1e-15);
                y * p.ln() + (1.0 - y) * (1.0 - p).ln()
            })
            .sum::<f64>()
            / n;
        let (mut tp, mut fp, mut fneg, mut right) = (0usize, 0usize, 0usize, 0usize);
        for (y, p) in labels.iter().zip(p) {
            let predicted = *p >= 0.5;
            let actual = *y == 1.0;
            right += usize::from(predicted == actual);
            match (predicted, actual) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fneg += 1,
                _ => {}
            }
        }
        let f1 = (2 * tp + fp + fneg > 0).then(|| 2.0 * tp as f64 / (2 * tp + fp + fneg) as f64);
        let f1 = f1.filter(|_| tp + fp > 0 || tp + fneg > 0);
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
        let buckets = 10.min(labels.len());
        let (base, extra) = (labels.len() / buckets.max(1), labels.len() % buckets.max(1));
        let mut calibration = Vec::with_capacity(buckets);
        let mut start = 0;
        for b in 0..buckets {
            let size = base + usize::from(b < extra);
            let members = &order[start..start + size];
            start += size;
            let m = size.max(1) as f64;
            calibration.push(CalibrationBucket {
                bucket: b + 1,
                n: size,
                mean_predicted: members.iter().map(|&i| p[i]).sum::<f64>() / m,
                observed_rate: members.iter().map(|&i| labels[i]).sum::<f64>() / m,
            });
        }
        ClassificationMetrics {
            auc,
            log_loss,
            accuracy: right as f64 / n,
            f1,
            positive_rate: positives as f64 / n,
            calibration,
        }
    }
}

impl HoldoutMetrics {
    pub fn compute(actual: &[f64], predicted: &[f64]) -> HoldoutMetrics {
        debug_assert_eq!(actual.len(), predicted.len());
        let n = actual.len();
        let nf = n as f64;
        let mut sse = 0.0;
        let mut sae = 0.0;
        for i in 0..n {
            let e = predicted[i] - actual[i];
            sse += e * e;
            sae += e.abs();
        }
        let mean = actual.iter().sum::<f64>() / nf;
        let sst: f64 = actual.iter().map(|a| (a - mean) * (a - mean)).sum();
        HoldoutMetrics {
            rmse: (sse / nf).sqrt(),
            mae: sae / nf,
            r2: (sst > 0.0).then(|| 1.0 - sse / sst),
            spearman: spearman(actual, predicted),
            gini: normalized_gini(actual, predicted),
            top_decile_capture: top_share_capture(actual, predicted, 0.1),
            decile_mape: decile_mape(actual, predicted),
            total_error_pct: Totals::compute(actual, predicted).error_pct,
            n,
            classification: None,
        }
    }

    /// Metrics of a multi-class classifier: `labels` are class indices, `probabilities` one
    /// vector per row. `accuracy` of the most likely class, `log_loss` of the true class's
    /// probability, `f1` the macro average over classes, `rmse` the root multi-class Brier score,
    /// `mae` the mean of 1 − the true class's probability.
    pub fn compute_multiclass(labels: &[f64], probabilities: &[Vec<f64>]) -> HoldoutMetrics {
        let n = labels.len();
        let k = probabilities.first().map_or(0, Vec::len);
        let (mut brier, mut miss, mut log_loss, mut right) = (0.0, 0.0, 0.0, 0usize);
        let (mut tp, mut fp, mut fneg) = (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
        for (y, p) in labels.iter().zip(probabilities) {
            let truth = *y as usize;
            let predicted = (0..p.len())
                .reduce(|b, c| if p[c] > p[b] { c } else { b })
                .unwrap_or(0);
            for (c, pc) in p.iter().enumerate() {
                let target = f64::from(u8::from(c == truth));
                brier += (pc - target) * (pc - target);
            }
            let p_true = p.get(truth).copied().unwrap_or(0.0);
            miss += 1.0 - p_true;
            log_loss -= p_true.clamp(1e-15, 1.0).ln();
            if predicted == truth {
                right += 1;
                if let Some(t) = tp.get_mut(truth) {
                    *t += 1;
                }
            } else {
                if let Some(f) = fp.get_mut(predicted) {
                    *f += 1;
                }
                if let Some(f) = fneg.get_mut(truth) {
                    *f += 1;
                }
            }
        }
        let nf = n.max(1) as f64;
        let f1s: Vec<f64> = (0..k)
            .filter(|&c| tp[c] + fp[c] + fneg[c] > 0)
            .map(|c| 2.0 * tp[c] as f64 / (2 * tp[c] + fp[c] + fneg[c]) as f64)
            .collect();
        HoldoutMetrics {
            rmse: (brier / nf).sqrt(),
            mae: miss / nf,
            r2: None,
            spearman: None,
            gini: None,
            top_decile_capture: None,
            decile_mape: None,
            total_error_pct: None,
            n,
            classification: Some(ClassificationMetrics {
                auc: None,
                log_loss: log_loss / nf,
                accuracy: right as f64 / nf,
                f1: (!f1s.is_empty()).then(|| f1s.iter().sum::<f64>() / f1s.len() as f64),
                positive_rate: f64::NAN,
                calibration: Vec::new(),
            }),
        }
    }

    /// Metrics of a binary classifier: its probabilities against the 0/1 labels (the value
    /// metrics are computed too: rmse is the root Brier score).
    pub fn compute_classification(labels: &[f64], probabilities: &[f64]) -> HoldoutMetrics {
        let mut m = HoldoutMetrics::compute(labels, probabilities);
        m.classification = Some(ClassificationMetrics::compute(labels, probabilities));
        m
    }

    /// The value of a metric by its name; `None` for an undefined value.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Rmse => Some(self.rmse),
            Metric::Mae => Some(self.mae),
            Metric::R2 => self.r2,
            Metric::Spearman => self.spearman,
            Metric::Gini => self.gini,
            Metric::TopDecileCapture => self.top_decile_capture,
            Metric::DecileMape => self.decile_mape,
            Metric::Auc => self.classification.as_ref().and_then(|c| c.auc),
            Metric::LogLoss => self.classification.as_ref().map(|c| c.log_loss),
            Metric::Accuracy => self.classification.as_ref().map(|c| c.accuracy),
            Metric::F1 => self.classification.as_ref().and_then(|c| c.f1),
        }
    }
}

/// One bucket of a lift table: customers ranked by prediction, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct LiftBucket {
    pub bucket: usize,
    pub customers: usize,
    pub mean_predicted: f64,
    pub mean_actual: f64,
    /// Share of the total actual value held by this bucket (`None` if the total is 0).
    pub share_of_actual: Option<f64>,
    pub cumulative_share_of_actual: Option<f64>,
}

/// Splits customers into `buckets` groups by descending prediction (sizes differ by at most one,
/// larger first, like SQL's ntile) and summarises each. Customers with equal predictions cannot
/// be told apart, so each of them counts with the mean actual value of their tie group: the
/// result does not depend on row order (the same rule as the Gini and top-decile metrics).
pub fn lift(actual: &[f64], predicted: &[f64], buckets: usize) -> Vec<LiftBucket> {
    let n = actual.len();
    let buckets = buckets.clamp(1, n.max(1));
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| predicted[b].total_cmp(&predicted[a]));
    let mut smoothed = vec![0.0; n];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && predicted[order[end]] == predicted[order[start]] {
            end += 1;
        }
        let mean = order[start..end].iter().map(|&i| actual[i]).sum::<f64>() / (end - start) as f64;
        for &i in &order[start..end] {
            smoothed[i] = mean;
        }
        start = end;
    }
    let actual = &smoothed[..];
    let total: f64 = actual.iter().sum();
    let (base, extra) = (n / buckets, n % buckets);
    let mut out = Vec::with_capacity(buckets);
    let mut start = 0;
    let mut cumulative = 0.0;
    for b in 0..buckets {
        let size = base + usize::from(b < extra);
        let members = &order[start..start + size];
        start += size;
        let sum_actual: f64 = members.iter().map(|&i| actual[i]).sum();
        let sum_predicted: f64 = members.iter().map(|&i| predicted[i]).sum();
        cumulative += sum_actual;
        let per = |v: f64| if size > 0 { v / size as f64 } else { f64::NAN };
        out.push(LiftBucket {
            bucket: b + 1,
            customers: size,
            mean_predicted: per(sum_predicted),
            mean_actual: per(sum_actual),
            share_of_actual: (total != 0.0).then(|| sum_actual / total),
            cumulative_share_of_actual: (total != 0.0).then(|| cumulative / total),
        });
    }
    out
}

/// Totals of a whole relation: what a marketer checks first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    pub predicted: f64,
    pub actual: f64,
    /// (predicted − actual) / actual, in percent; `None` when the actual total is 0.
    pub error_pct: Option<f64>,
}

impl Totals {
    pub fn compute(actual: &[f64], predicted: &[f64]) -> Totals {
        let actual_total: f64 = actual.iter().sum();
        let predicted_total: f64 = predicted.iter().sum();
        Totals {
            predicted: predicted_total,
            actual: actual_total,
            error_pct: (actual_total != 0.0)
                .then(|| 100.0 * (predicted_total - actual_total) / actual_total),
        }
    }
}

/// A metric that can rank models (for `auto` and the deploy decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    Rmse,
    Mae,
    R2,
    Spearman,
    Gini,
    TopDecileCapture,
    DecileMape,
    Auc,
    LogLoss,
    Accuracy,
    F1,
}

impl Metric {
    pub const ALL: [Metric; 11] = [
        Metric::Rmse,
        Metric::Mae,
        Metric::R2,
        Metric::Spearman,
        Metric::Gini,
        Metric::TopDecileCapture,
        Metric::DecileMape,
        Metric::Auc,
        Metric::LogLoss,
        Metric::Accuracy,
        Metric::F1,
    ];

    /// The metric's jsonb key.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
            Metric::Spearman => "spearman",
            Metric::Gini => "gini",
            Metric::TopDecileCapture => "top_decile_capture",
            Metric::DecileMape => "decile_mape",
            Metric::Auc => "auc",
            Metric::LogLoss => "log_loss",
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
        }
    }

    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    pub fn lower_is_better(self) -> bool {
        matches!(
            self,
            Metric::Rmse | Metric::Mae | Metric::LogLoss | Metric::DecileMape
        )
    }

    /// Whether `candidate` is at least as good as `incumbent`. An undefined value loses to a
    /// defined one.
    pub fn at_least_as_good(self, candidate: Option<f64>, incumbent: Option<f64>) -> bool {
        match (candidate, incumbent) {
            (Some(c), Some(i)) => {
                if self.lower_is_better() {
                    c <= i
                } else {
                    c >= i
                }
            }
            (Some(_), None) | (None, None) => true,
            (None, Some(_)) => false,
        }
    }
}

/// Spearman rank correlation: Pearson correlation of average ranks.
pub fn spearman(actual: &[f64], predicted: &[f64]) -> Option<f64> {
    pearson(&average_ranks(actual), &average_ranks(predicted))
}

/// Blocks of equal score, best first: (number of customers, their total actual value).
fn blocks_by_score_desc(actual: &[f64], score: &[f64]) -> Vec<(usize, f64)> {
    let mut order: Vec<usize> = (0..actual.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut blocks: Vec<(usize, f64)> = Vec::new();
    let mut last: Option<f64> = None;
    for i in order {
        match (last, blocks.last_mut()) {
            (Some(s), Some(block)) if s == score[i] => {
                block.0 += 1;
                block.1 += actual[i];
            }
            _ => blocks.push((1, actual[i])),
        }
        last = Some(score[i]);
    }
    blocks
}

/// Unnormalized Gini of `actual` ordered by `score`, descending (the Kaggle definition:
/// mean of the cumulative share of value minus (n + 1) / 2n).
fn gini(actual: &[f64], score: &[f64]) -> Option<f64> {
    let n = actual.len() as f64;
    let total: f64 = actual.iter().sum();
    if actual.is_empty() || total == 0.0 {
        return None;
    }
    let mut cumulative = 0.0;
    let mut sum_of_cumulatives = 0.0;
    for (m, s) in blocks_by_score_desc(actual, score) {
        let m = m as f64;
        // inside a tie block the value is spread evenly: cumulatives C + S/m, C + 2S/m, …, C + S
        sum_of_cumulatives += m * cumulative + s * (m + 1.0) / 2.0;
        cumulative += s;
    }
    Some((sum_of_cumulatives / total - (n + 1.0) / 2.0) / n)
}

/// Normalized Gini: the model's Gini divided by the Gini of a perfect ordering. 1 is a perfect
/// ranking, 0 a random one, negative worse than random.
pub fn normalized_gini(actual: &[f64], predicted: &[f64]) -> Option<f64> {
    let perfect = gini(actual, actual)?;
    if perfect == 0.0 {
        return None;
    }
    Some(gini(actual, predicted)? / perfect)
}

/// Decile MAPE (Wang, Liu & Miao 2019, "A Deep Probabilistic Model for Customer Lifetime Value
/// Prediction"): customers sorted by prediction into 10 groups of equal count (the first
/// n mod 10 groups one larger), and the mean over groups of |mean predicted − mean actual| /
/// |mean actual|. A group whose actual mean is 0 has no relative error and is left out; `None`
/// with fewer than 10 customers or no group left.
pub fn decile_mape(actual: &[f64], predicted: &[f64]) -> Option<f64> {
    let n = actual.len();
    if n < 10 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| predicted[a].total_cmp(&predicted[b]).then(a.cmp(&b)));
    // customers predicted alike cannot be told apart: a tie cut by a decile boundary counts
    // in both deciles at its mean, so the figure does not depend on the rows' order
    let mut tied_actual = vec![0.0; n];
    let mut k = 0;
    while k < n {
        let tie = order[k..].partition_point(|&i| predicted[i] == predicted[order[k]]);
        let mean = order[k..k + tie].iter().map(|&i| actual[i]).sum::<f64>() / tie as f64;
        tied_actual[k..k + tie].fill(mean);
        k += tie;
    }
    let (size, larger) = (n / 10, n % 10);
    let mut start = 0;
    let mut errors = Vec::with_capacity(10);
    for group in 0..10 {
        let len = size + usize::from(group < larger);
        let members = &order[start..start + len];
        let mean_actual = tied_actual[start..start + len].iter().sum::<f64>() / len as f64;
        start += len;
        let mean_predicted = members.iter().map(|&i| predicted[i]).sum::<f64>() / len as f64;
        if mean_actual != 0.0 {
            errors.push((mean_predicted - mean_actual).abs() / mean_actual.abs());
        }
    }
    (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64)
}

/// Share of the total actual value held by the top `share` of customers by prediction.
pub fn top_share_capture(actual: &[f64], predicted: &[f64], share: f64) -> Option<f64> {
    let total: f64 = actual.iter().sum();
    if actual.is_empty() || total == 0.0 {
        return None;
    }
    let mut room = share * actual.len() as f64;
    let mut captured = 0.0;
    for (m, s) in blocks_by_score_desc(actual, predicted) {
        if room <= 0.0 {
            break;
        }
        let take = (m as f64).min(room);
        captured += s * take / m as f64;
        room -= take;
    }
    Some(captured / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_metrics_match_scikit_learn_documented_examples() {
        // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75 (scikit-learn user guide)
        let m = ClassificationMetrics::compute(&[0.0, 0.0, 1.0, 1.0], &[0.1, 0.4, 0.35, 0.8]);
        assert!((m.auc.unwrap() - 0.75).abs() < 1e-12);
        // log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]])
        // = 0.21616 (scikit-learn docstring); positive class "spam"
        let m = ClassificationMetrics::compute(&[1.0, 0.0, 0.0, 1.0], &[0.9, 0.1, 0.2, 0.65]);
        assert!((m.log_loss - 0.216_162_7).abs() < 1e-6, "{}", m.log_loss);
        assert_eq!(m.accuracy, 1.0);
        assert_eq!(m.f1, Some(1.0));
        // by hand: predictions ≥ 0.5 are [1, 1, 0, 0] against [1, 0, 0, 1]: tp 1, fp 1, fn 1
        let m = ClassificationMetrics::compute(&[1.0, 0.0, 0.0, 1.0], &[0.9, 0.6, 0.2, 0.4]);
        assert_eq!(m.accuracy, 0.5);
        assert!((m.f1.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(m.positive_rate, 0.5);
        // ties: a constant prediction has AUC 0.5
        let m = ClassificationMetrics::compute(&[1.0, 0.0, 0.0, 1.0], &[0.3; 4]);
        assert_eq!(m.auc, Some(0.5));
        assert_eq!(
            ClassificationMetrics::compute(&[1.0, 1.0], &[0.3, 0.4]).auc,
            None
        );
    }

    #[test]
    fn multiclass_metrics_by_hand() {
        // 3 rows, 3 classes; predicted classes 0, 1, 1 against truths 0, 1, 2
        let p = vec![
            vec![0.7, 0.2, 0.1],
            vec![0.1, 0.8, 0.1],
            vec![0.2, 0.5, 0.3],
        ];
        let m = HoldoutMetrics::compute_multiclass(&[0.0, 1.0, 2.0], &p);
        let c = m.classification.unwrap();
        assert!((c.accuracy - 2.0 / 3.0).abs() < 1e-12);
        // −(ln 0.7 + ln 0.8 + ln 0.3) / 3
        let expected = -(0.7f64.ln() + 0.8f64.ln() + 0.3f64.ln()) / 3.0;
        assert!((c.log_loss - expected).abs() < 1e-12);
        // per class F1: class 0: tp 1 → 1; class 1: tp 1, fp 1 → 2/3; class 2: fn 1 → 0
        assert!((c.f1.unwrap() - (1.0 + 2.0 / 3.0 + 0.0) / 3.0).abs() < 1e-12);
        assert_eq!(c.auc, None);
        // mean of 1 − p_true: (0.3 + 0.2 + 0.7) / 3
        assert!((m.mae - 0.4).abs() < 1e-12);
    }

    #[test]
    fn calibration_buckets_cover_every_row_lowest_first() {
        let labels: Vec<f64> = (0..100).map(|i| f64::from(i % 4 == 0)).collect();
        let p: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let m = ClassificationMetrics::compute(&labels, &p);
        assert_eq!(m.calibration.len(), 10);
        assert_eq!(m.calibration.iter().map(|b| b.n).sum::<usize>(), 100);
        assert!((m.calibration[0].mean_predicted - 0.045).abs() < 1e-12);
        // rows 0..9: labels at 0, 4, 8 → 3 of 10
        assert!((m.calibration[0].observed_rate - 0.3).abs() < 1e-12);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn error_metrics_by_hand() {
        // errors: +1, -1, +2, 0 → SSE 6, SAE 4; mean actual 2.5, SST = 2.25+.25+.25+2.25 = 5
        let actual = [1.0, 2.0, 3.0, 4.0];
        let predicted = [2.0, 1.0, 5.0, 4.0];
        let m = HoldoutMetrics::compute(&actual, &predicted);
        assert!(close(m.rmse, (6.0f64 / 4.0).sqrt()));
        assert!(close(m.mae, 1.0));
        assert!(close(m.r2.unwrap(), 1.0 - 6.0 / 5.0));
        assert_eq!(m.n, 4);
    }

    #[test]
    fn gini_by_hand() {
        let actual = [1.0, 2.0, 3.0, 4.0];
        // perfect ordering: cumulative sums 4, 7, 9, 10 → (30/10 − 2.5)/4 = 0.125
        assert!(close(gini(&actual, &actual).unwrap(), 0.125));
        assert!(close(normalized_gini(&actual, &actual).unwrap(), 1.0));
        // reversed ordering: cumulative sums 1, 3, 6, 10 → (20/10 − 2.5)/4 = −0.125
        assert!(close(
            normalized_gini(&actual, &[4.0, 3.0, 2.0, 1.0]).unwrap(),
            -1.0
        ));
        // order 2, 3, 4, 1: cumulative sums 2, 5, 9, 10 → (26/10 − 2.5)/4 = 0.025 → 0.2
        assert!(close(
            normalized_gini(&actual, &[1.0, 4.0, 3.0, 2.0]).unwrap(),
            0.2
        ));
    }

    #[test]
    fn gini_of_a_constant_prediction_is_zero_whatever_the_row_order() {
        let actual = [5.0, 0.0, 1.0, 9.0, 3.0];
        assert!(close(normalized_gini(&actual, &[2.0; 5]).unwrap(), 0.0));
        let reordered = [9.0, 5.0, 3.0, 1.0, 0.0];
        assert!(close(normalized_gini(&reordered, &[2.0; 5]).unwrap(), 0.0));
    }

    #[test]
    fn gini_is_undefined_without_value_or_spread() {
        assert_eq!(normalized_gini(&[0.0, 0.0], &[1.0, 2.0]), None);
        assert_eq!(normalized_gini(&[3.0, 3.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn top_decile_capture_by_hand() {
        // 20 customers, actual = 1..=20, perfect predictions: top 2 hold 19 + 20 of 210
        let actual: Vec<f64> = (1..=20).map(f64::from).collect();
        let c = top_share_capture(&actual, &actual, 0.1).unwrap();
        assert!(close(c, 39.0 / 210.0));
        // constant predictions capture exactly 10%
        let c = top_share_capture(&actual, &[1.0; 20], 0.1).unwrap();
        assert!(close(c, 0.1));
        // 15 customers: the top 1.5 = the best one and half of the second
        let actual: Vec<f64> = (1..=15).map(f64::from).collect();
        let c = top_share_capture(&actual, &actual, 0.1).unwrap();
        assert!(close(c, (15.0 + 7.0) / 120.0));
    }

    #[test]
    fn lift_splits_like_ntile_and_shares_sum_to_one() {
        let actual: Vec<f64> = (1..=11).map(f64::from).collect();
        let predicted = actual.clone();
        let rows = lift(&actual, &predicted, 3);
        // ntile(3) over 11 rows: 4, 4, 3
        assert_eq!(
            rows.iter().map(|r| r.customers).collect::<Vec<_>>(),
            vec![4, 4, 3]
        );
        assert_eq!(rows[0].mean_actual, (11.0 + 10.0 + 9.0 + 8.0) / 4.0);
        assert_eq!(rows[2].mean_predicted, 2.0);
        let shares: f64 = rows.iter().map(|r| r.share_of_actual.unwrap()).sum();
        assert!(close(shares, 1.0));
        assert!(close(rows[2].cumulative_share_of_actual.unwrap(), 1.0));
        assert_eq!(lift(&[1.0], &[1.0], 10).len(), 1);
        // tied predictions share their group's mean actual, whatever the row order
        let a = lift(&[10.0, 0.0, 4.0, 2.0], &[1.0, 1.0, 1.0, 0.0], 2);
        let b = lift(&[0.0, 4.0, 10.0, 2.0], &[1.0, 1.0, 1.0, 0.0], 2);
        assert_eq!(a, b);
        assert!(close(a[0].mean_actual, 14.0 / 3.0));
    }

    #[test]
    fn totals_by_hand() {
        let t = Totals::compute(&[10.0, 30.0], &[15.0, 35.0]);
        assert_eq!((t.predicted, t.actual), (50.0, 40.0));
        assert!(close(t.error_pct.unwrap(), 25.0));
        assert_eq!(Totals::compute(&[0.0], &[1.0]).error_pct, None);
    }

    #[test]
    fn spearman_by_hand() {
        // scipy.stats.spearmanr([1,2,3,4,5], [5,6,7,8,7]) = 0.8207826816681233
        let s = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((s - 0.820_782_681_668_123_3).abs() < 1e-12);
    }

    #[test]
    fn metric_comparison_respects_direction() {
        assert!(Metric::Rmse.at_least_as_good(Some(1.0), Some(1.0)));
        assert!(Metric::Rmse.at_least_as_good(Some(0.5), Some(1.0)));
        assert!(!Metric::Rmse.at_least_as_good(Some(1.5), Some(1.0)));
        assert!(Metric::Gini.at_least_as_good(Some(0.6), Some(0.5)));
        assert!(!Metric::Gini.at_least_as_good(None, Some(0.5)));
        assert_eq!(
            Metric::from_key("top_decile_capture"),
            Some(Metric::TopDecileCapture)
        );
        assert_eq!(Metric::from_key("precision"), None);
    }

    #[test]
    fn decile_mape_does_not_depend_on_the_order_of_tied_predictions() {
        // 25 customers predicted 1 (a tie over deciles 1, 2 and half of 3), actuals 0 … 24
        // (mean 12); 75 predicted exactly (2 … 76)
        let mut predicted = vec![1.0; 25];
        predicted.extend((2..77).map(f64::from));
        let mut actual: Vec<f64> = (0..25).map(f64::from).collect();
        actual.extend((2..77).map(f64::from));
        // deciles 1, 2: actual 12 (the tie's mean), predicted 1; decile 3: five tied (12 each)
        // and 2 … 6, actual (60 + 20) / 10 = 8, predicted (5 + 20) / 10 = 2.5; the rest exact
        let expected = (2.0 * (11.0 / 12.0) + 5.5 / 8.0) / 10.0;
        let forward = decile_mape(&actual, &predicted).unwrap();
        assert!(
            (forward - expected).abs() < 1e-12,
            "{forward} vs {expected}"
        );
        actual[..25].reverse();
        assert_eq!(decile_mape(&actual, &predicted).unwrap(), forward);
    }

    #[test]
    fn decile_mape_by_hand() {
        // one customer per decile: the mean of |p − a| / a over the ten customers
        let actual = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let predicted = [2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 5.0];
        // two ties, each decile holding its tie's mean actual: customers 0 and 1 (predicted 2,
        // mean actual 1.5: |2 − 1.5| / 1.5 = 1/3 twice), customers 4 and 9 (predicted 5, mean
        // actual 7.5: 1/3 twice); the rest 0
        let expected = (4.0 / 3.0) / 10.0;
        assert!((decile_mape(&actual, &predicted).unwrap() - expected).abs() < 1e-12);
        // 20 customers, two per decile in prediction order: decile k holds the customers
        // predicted 2k and 2k + 1 (actual 0 and 4k + 2, mean 2k + 1, predicted mean 2k + 0.5)
        let predicted: Vec<f64> = (0..20).map(f64::from).collect();
        let actual: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 0.0 } else { 2.0 * f64::from(i) })
            .collect();
        let expected = (0..10)
            .map(|k| 0.5 / (2.0 * f64::from(k) + 1.0))
            .sum::<f64>()
            / 10.0;
        assert!((decile_mape(&actual, &predicted).unwrap() - expected).abs() < 1e-12);
        // a decile with no actual value is left out; fewer than ten customers have none
        let (mut actual, mut predicted) = ([1.0; 10], [1.0; 10]);
        (actual[0], predicted[0]) = (0.0, 0.5);
        assert_eq!(decile_mape(&actual, &predicted), Some(0.0));
        assert_eq!(decile_mape(&[1.0; 9], &[1.0; 9]), None);
        // the totals' error
        let m = HoldoutMetrics::compute(&[1.0, 3.0], &[2.0, 4.0]);
        assert_eq!(m.total_error_pct, Some(50.0));
        assert_eq!(Metric::from_key("decile_mape"), Some(Metric::DecileMape));
        assert!(Metric::DecileMape.lower_is_better());
    }
}
