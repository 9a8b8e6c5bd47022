//! RFM segments for marketing dashboards (`customer_value.rfm_segment(row)`): each customer gets
//! a recency, a frequency and a monetary score from 1 to 5 — the quintile of the training
//! population they fall in — and a named segment from the recency score and the mean of the
//! frequency and monetary scores, on the grid marketing teams use (champions, loyal, at risk,
//! hibernating, …; docs/segments.md shows it).
//!
//! The quintile boundaries are cut once, when the model is trained, and stored with it (as the
//! tiers are), so a customer's segment moves only when the customer does — not when the rest of
//! the table changes — and every dashboard reading the model agrees.
//!
//! Scores: a customer whose value equals a boundary falls below it, so equal values always get
//! equal scores. With many one-time buyers (frequency 0 for more than a fifth of customers)
//! the frequency scores are therefore not equal fifths: every one-time buyer scores 1.

use serde::{Deserialize, Serialize};

use super::error::{EngineError, ErrorKind, Result};
use super::stats::{quantile_sorted, quantile_sorted_counted};

/// Where a row's recency — the time since the customer's last purchase — comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RecencySource {
    /// A column holding it (a log model's `days_since_last`).
    SinceLast(String),
    /// An RFM summary's age columns: `t` (now) minus `recency` (at the last purchase), in the
    /// summary's time unit.
    AgeMinusRecency { t: String, recency: String },
}

/// The recency, frequency and monetary boundaries of a training population.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmSegments {
    pub recency: RecencySource,
    /// The column counting repeat purchases.
    pub frequency: String,
    /// The column of the mean purchase value.
    pub monetary: String,
    /// Quintile boundaries (20, 40, 60 and 80 %) of the time since the last purchase, the
    /// frequency and the monetary value over the training population, each ascending.
    pub cuts: [[f64; 4]; 3],
}

/// One customer's recency, frequency and monetary values, as the scores read them: the time
/// since the last purchase, repeat purchases, mean purchase value.
pub type RfmValues = [f64; 3];

/// The named segments, best first. The grid (recency score × mean of the frequency and monetary
/// scores) is the one of `segment`; docs/segments.md shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Champions,
    Loyal,
    PotentialLoyalist,
    New,
    Promising,
    NeedAttention,
    AboutToSleep,
    CannotLose,
    AtRisk,
    Hibernating,
}

impl Segment {
    pub const ALL: [Segment; 10] = [
        Segment::Champions,
        Segment::Loyal,
        Segment::PotentialLoyalist,
        Segment::New,
        Segment::Promising,
        Segment::NeedAttention,
        Segment::AboutToSleep,
        Segment::CannotLose,
        Segment::AtRisk,
        Segment::Hibernating,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::PotentialLoyalist => "potential_loyalist",
            Segment::New => "new",
            Segment::Promising => "promising",
            Segment::NeedAttention => "need_attention",
            Segment::AboutToSleep => "about_to_sleep",
            Segment::CannotLose => "cannot_lose",
            Segment::AtRisk => "at_risk",
            Segment::Hibernating => "hibernating",
        }
    }

    /// The segment of recency score `r` and frequency-monetary score `fm` (each 1 … 5).
    pub fn of(r: u8, fm: u8) -> Segment {
        match (r, fm) {
            (5, 4..) => Segment::Champions,
            (3..=4, 4..) => Segment::Loyal,
            (4..=5, 2..=3) => Segment::PotentialLoyalist,
            (5, _) => Segment::New,
            (4, _) => Segment::Promising,
            (3, 3) => Segment::NeedAttention,
            (3, _) => Segment::AboutToSleep,
            (..=2, 5..) => Segment::CannotLose,
            (..=2, 3..=4) => Segment::AtRisk,
            _ => Segment::Hibernating,
        }
    }
}

/// A customer's three scores, each 1 … 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmScores {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

impl RfmScores {
    /// The frequency-monetary score: the mean of the two, halves rounded up.
    pub fn frequency_monetary(self) -> u8 {
        (self.frequency + self.monetary).div_ceil(2)
    }

    pub fn segment(self) -> Segment {
        Segment::of(self.recency, self.frequency_monetary())
    }

    /// The usual three-digit code, e.g. "535".
    pub fn code(self) -> String {
        format!("{}{}{}", self.recency, self.frequency, self.monetary)
    }
}

const QUINTILES: [f64; 4] = [0.2, 0.4, 0.6, 0.8];

impl RfmSegments {
    /// Cuts the boundaries on the training population `values`, where row `i` stands for
    /// `counts[i]` customers when counts are given (a grouped summary).
    pub fn cut(
        recency: RecencySource,
        frequency: String,
        monetary: String,
        values: &[RfmValues],
        counts: Option<&[f64]>,
    ) -> Result<RfmSegments> {
        if values.is_empty() {
            return Err(EngineError::insufficient_data(
                "RFM segments need at least one customer",
            ));
        }
        let mut cuts = [[0.0; 4]; 3];
        for (k, boundaries) in cuts.iter_mut().enumerate() {
            let column: Vec<f64> = values.iter().map(|v| v[k]).collect();
            *boundaries = quintile_boundaries(&column, counts);
        }
        let segments = RfmSegments {
            recency,
            frequency,
            monetary,
            cuts,
        };
        segments.validate().map_err(|e| {
            EngineError::new(
                ErrorKind::NonFiniteValue,
                format!("RFM segments cannot be cut: {}", e.message),
            )
        })?;
        Ok(segments)
    }

    /// The columns a scored row must have, in the order [`RfmSegments::values`] reads them.
    pub fn columns(&self) -> Vec<&str> {
        let mut columns = match &self.recency {
            RecencySource::SinceLast(column) => vec![column.as_str()],
            RecencySource::AgeMinusRecency { t, recency } => vec![t.as_str(), recency.as_str()],
        };
        columns.push(&self.frequency);
        columns.push(&self.monetary);
        columns
    }

    /// The recency, frequency and monetary values of a row read as [`RfmSegments::columns`].
    pub fn values(&self, read: &[f64]) -> Result<RfmValues> {
        let values = match (&self.recency, read) {
            (RecencySource::SinceLast(_), &[since, f, m]) => [since, f, m],
            (RecencySource::AgeMinusRecency { .. }, &[t, recency, f, m]) => [t - recency, f, m],
            _ => {
                return Err(EngineError::new(
                    ErrorKind::Internal,
                    format!("RFM segments read {} values", read.len()),
                ))
            }
        };
        Ok(values)
    }

    /// The scores of `values`: recency 5 for the most recent fifth, frequency and monetary 5
    /// for the highest fifth.
    pub fn scores(&self, values: RfmValues) -> RfmScores {
        let [since, frequency, monetary] = values;
        let [r, f, m] = &self.cuts;
        let above = |cuts: &[f64; 4], v: f64| 1 + cuts.iter().filter(|&&c| v > c).count() as u8;
        RfmScores {
            recency: 6 - above(r, since),
            frequency: above(f, frequency),
            monetary: above(m, monetary),
        }
    }

    pub fn validate(&self) -> Result<()> {
        for cuts in &self.cuts {
            if !cuts.iter().all(|c| c.is_finite()) || cuts.windows(2).any(|w| w[0] > w[1]) {
                return Err(EngineError::corrupted(format!(
                    "RFM segment boundaries {cuts:?} are not finite and ascending"
                )));
            }
        }
        if self.columns().iter().any(|c| c.is_empty()) {
            return Err(EngineError::corrupted("an RFM segment column has no name"));
        }
        Ok(())
    }

    /// For `model_params`: the columns and the boundaries.
    pub fn params(&self) -> serde_json::Value {
        let recency = match &self.recency {
            RecencySource::SinceLast(column) => serde_json::json!(column),
            RecencySource::AgeMinusRecency { t, recency } => {
                serde_json::json!(format!("{t} - {recency}"))
            }
        };
        serde_json::json!({
            "recency": recency,
            "frequency": self.frequency,
            "monetary": self.monetary,
            "quintiles": QUINTILES,
            "recency_cuts": self.cuts[0],
            "frequency_cuts": self.cuts[1],
            "monetary_cuts": self.cuts[2],
        })
    }
}

fn quintile_boundaries(values: &[f64], counts: Option<&[f64]>) -> [f64; 4] {
    match counts {
        None => {
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            QUINTILES.map(|q| quantile_sorted(&sorted, q))
        }
        Some(counts) => {
            let mut sorted: Vec<(f64, f64)> =
                values.iter().copied().zip(counts.iter().copied()).collect();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            QUINTILES.map(|q| quantile_sorted_counted(&sorted, q))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since_last(values: &[RfmValues]) -> RfmSegments {
        RfmSegments::cut(
            RecencySource::SinceLast("days_since_last".into()),
            "frequency".into(),
            "monetary_value".into(),
            values,
            None,
        )
        .unwrap()
    }

    /// The grid, cell by cell, as the marketing segment map writes it (R score first, then the
    /// frequency-monetary score): 5 4-5 champions, 3-4 4-5 loyal, 4-5 2-3 potential loyalist,
    /// 5 1 new, 4 1 promising, 3 3 need attention, 3 1-2 about to sleep, 1-2 5 cannot lose,
    /// 1-2 3-4 at risk, 1-2 1-2 hibernating.
    #[test]
    fn every_cell_of_the_grid_has_its_segment() {
        let grid = [
            "hibernating hibernating at_risk at_risk cannot_lose",
            "hibernating hibernating at_risk at_risk cannot_lose",
            "about_to_sleep about_to_sleep need_attention loyal loyal",
            "promising potential_loyalist potential_loyalist loyal loyal",
            "new potential_loyalist potential_loyalist champions champions",
        ];
        for (r, row) in grid.iter().enumerate() {
            for (fm, name) in row.split(' ').enumerate() {
                assert_eq!(
                    Segment::of(r as u8 + 1, fm as u8 + 1).name(),
                    name,
                    "{r} {fm}"
                );
            }
        }
        let named: std::collections::BTreeSet<&str> =
            grid.iter().flat_map(|row| row.split(' ')).collect();
        assert_eq!(named.len(), Segment::ALL.len());
    }

    #[test]
    fn scores_are_quintiles_of_the_training_population() {
        // 1 … 100 days since the last purchase, frequency and monetary likewise
        let values: Vec<RfmValues> = (1..=100).map(|i| [i as f64; 3]).collect();
        let s = since_last(&values);
        // boundaries by linear interpolation at 20 … 80 % of 99 steps
        assert_eq!(s.cuts[0], [20.8, 40.6, 60.4, 80.2]);
        let score = |v: f64| s.scores([v, v, v]);
        assert_eq!(
            score(1.0),
            RfmScores {
                recency: 5,
                frequency: 1,
                monetary: 1
            }
        );
        assert_eq!(score(100.0).code(), "155");
        assert_eq!(score(50.0).code(), "333");
        // a value on a boundary falls below it
        assert_eq!(score(20.8).code(), "511");
        assert_eq!(score(20.81).code(), "422");
    }

    #[test]
    fn equal_values_get_equal_scores() {
        // 70 % one-time buyers (frequency 0): every one of them scores 1
        let values: Vec<RfmValues> = (0..100)
            .map(|i| [i as f64, if i < 70 { 0.0 } else { (i - 69) as f64 }, 10.0])
            .collect();
        let s = since_last(&values);
        assert_eq!(s.cuts[1][..3], [0.0, 0.0, 0.0]);
        assert_eq!(s.scores([5.0, 0.0, 10.0]).frequency, 1);
        assert_eq!(s.scores([5.0, 1.0, 10.0]).frequency, 4);
        // every monetary value equal: all score 1
        assert_eq!(s.scores([5.0, 0.0, 10.0]).monetary, 1);
    }

    #[test]
    fn an_rfm_summary_reads_recency_as_t_minus_recency() {
        let s = RfmSegments::cut(
            RecencySource::AgeMinusRecency {
                t: "t".into(),
                recency: "recency".into(),
            },
            "frequency".into(),
            "monetary_value".into(),
            &[[1.0, 0.0, 0.0], [30.0, 3.0, 40.0]],
            Some(&[3.0, 2.0]),
        )
        .unwrap();
        assert_eq!(s.columns(), ["t", "recency", "frequency", "monetary_value"]);
        // t 38, recency 36: two weeks since the last purchase
        assert_eq!(
            s.values(&[38.0, 36.0, 3.0, 40.0]).unwrap(),
            [2.0, 3.0, 40.0]
        );
        // grouped: 3 customers at 1 week, 2 at 30 → the 60 % boundary is the third value
        assert!((s.cuts[0][2] - 12.6).abs() < 1e-12, "{:?}", s.cuts[0]);
    }

    #[test]
    fn frequency_monetary_rounds_halves_up() {
        let fm = |f, m| {
            RfmScores {
                recency: 1,
                frequency: f,
                monetary: m,
            }
            .frequency_monetary()
        };
        assert_eq!(
            [fm(1, 1), fm(1, 2), fm(4, 5), fm(3, 4), fm(5, 5)],
            [1, 2, 5, 4, 5]
        );
    }

    #[test]
    fn damaged_boundaries_are_refused() {
        let mut s = since_last(&[[1.0, 2.0, 3.0]]);
        s.cuts[2] = [1.0, 3.0, 2.0, 4.0];
        assert_eq!(s.validate().unwrap_err().kind, ErrorKind::DataCorrupted);
        s.cuts[2] = [1.0, f64::NAN, 2.0, 4.0];
        assert_eq!(s.validate().unwrap_err().kind, ErrorKind::DataCorrupted);
    }
}
