//! A customer's history as a sequence of periods, for the models that read one (`gru`, `cnn`):
//! the `length` periods of `period_days` days that end on the cut-off, oldest first, each with
//! the purchase days in it and the net spend of it, both log-scaled (ln(1 + x): a customer of
//! 40 purchases is not read as 40 times one of one). Nothing after the cut-off is read; periods
//! before the customer's first purchase (or the log's) are 0, which is what they were.
//!
//! In the feature table of `create_log_features` the two channels are the `float8[]` columns
//! [`CHANNELS`]; a log model reads them as array features of `length` positions.

use super::{up_to, PurchaseDay};

/// The feature table's array columns: purchase days by period, and spend by period.
pub const CHANNELS: [&str; 2] = ["sequence_purchases", "sequence_spend"];

/// Most periods a history may have.
pub const MAX_PERIODS: usize = 520;

/// The periods of a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceShape {
    pub period_days: i32,
    pub length: usize,
}

impl SequenceShape {
    /// The history of `history` up to `cutoff`: channel `c`'s periods, oldest first, in
    /// `out[c]` (each `length` long).
    pub fn fill(&self, history: &[PurchaseDay], cutoff: i32, out: [&mut [f64]; 2]) {
        let [purchases, spend] = out;
        purchases.fill(0.0);
        spend.fill(0.0);
        let span = i64::from(self.period_days) * self.length as i64;
        for d in up_to(history, cutoff).iter().rev() {
            let back = i64::from(cutoff) - i64::from(d.day);
            if back >= span {
                break;
            }
            let t = self.length - 1 - (back / i64::from(self.period_days)) as usize;
            purchases[t] += 1.0;
            spend[t] += d.amount;
        }
        purchases.iter_mut().for_each(|v| *v = v.ln_1p());
        // a period whose refunds exceed its purchases earned nothing (as the target windows)
        spend.iter_mut().for_each(|v| *v = v.max(0.0).ln_1p());
    }

    /// Both channels of `history` up to `cutoff`, as two vectors.
    pub fn values(&self, history: &[PurchaseDay], cutoff: i32) -> [Vec<f64>; 2] {
        let mut purchases = vec![0.0; self.length];
        let mut spend = vec![0.0; self.length];
        self.fill(history, cutoff, [&mut purchases, &mut spend]);
        [purchases, spend]
    }
}

#[cfg(test)]
mod tests {
    use super::super::day;
    use super::*;

    #[test]
    fn periods_end_on_the_cutoff_oldest_first_and_ignore_the_future() {
        let shape = SequenceShape {
            period_days: 7,
            length: 3,
        };
        // cut-off day 100: periods (79, 86], (86, 93], (93, 100]
        let history = [
            day(70, 5.0),  // before the first period
            day(80, 10.0), // period 0
            day(86, 2.0),  // period 0 (its last day)
            day(87, 3.0),  // period 1
            day(100, 1.0), // period 2 (the cut-off day)
            day(101, 50.0),
        ];
        let [purchases, spend] = shape.values(&history, 100);
        let ln = |x: f64| x.ln_1p();
        assert_eq!(purchases, vec![ln(2.0), ln(1.0), ln(1.0)]);
        assert_eq!(spend, vec![ln(12.0), ln(3.0), ln(1.0)]);
    }

    #[test]
    fn a_history_shorter_than_the_sequence_is_zero_before_it_and_refunds_floor_at_zero() {
        let shape = SequenceShape {
            period_days: 1,
            length: 4,
        };
        let history = [day(9, -4.0), day(10, 6.0)];
        let [purchases, spend] = shape.values(&history, 10);
        assert_eq!(purchases, vec![0.0, 0.0, 2f64.ln(), 2f64.ln()]);
        assert_eq!(spend, vec![0.0, 0.0, 0.0, 7f64.ln()]);
    }
}
