//! One customer's purchase periods, accumulated transaction by transaction: the state of the
//! aggregate behind `customer_value.rfm()` (`customer_value.rfm_periods`). Postgres groups the
//! log by customer once (one hash aggregation, no join or sort) and feeds each transaction's
//! period start, amount and side of the calibration cut-off; the summary comes out of `finish`.
//!
//! Transactions arrive in any order, and — under parallel aggregation — in several partial
//! states that are merged (`merge`) after crossing process boundaries as bytes (`to_bytes`,
//! `from_bytes`). What is kept is what the summary needs: the distinct period starts of each side
//! (compacted as they grow), the total, the first period and its amount, the last period, and
//! the number of calibration transactions.

use crate::engine::error::{EngineError, ErrorKind, Result};

/// A sum of amounts with Neumaier's compensation: the rounding of each addition is carried, so
/// the result is the correctly rounded sum of the amounts whatever their order (74.02, not
/// 74.02000000000001; serial and parallel plans agree).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    fn of(value: f64) -> Sum {
        Sum {
            sum: value,
            compensation: 0.0,
        }
    }

    fn add(&mut self, value: f64) {
        let t = self.sum + value;
        self.compensation += if self.sum.abs() >= value.abs() {
            (self.sum - t) + value
        } else {
            (value - t) + self.sum
        };
        self.sum = t;
    }

    fn merge(&mut self, other: Sum) {
        self.add(other.sum);
        self.add(other.compensation);
    }

    fn value(self) -> f64 {
        self.sum + self.compensation
    }
}

/// The purchase periods of one side of the cut-off (calibration or holdout).
#[derive(Debug, Clone, Default, PartialEq)]
struct Side {
    /// Period starts seen (microseconds); duplicates are removed when the vector grows.
    starts: Vec<i64>,
    /// Sum of the amounts.
    total: Sum,
    /// The earliest period start and the sum of the amounts in it.
    first: Option<(i64, Sum)>,
    /// The latest period start.
    last: i64,
}

impl Side {
    fn add(&mut self, period: i64, amount: f64) {
        if self.starts.len() == self.starts.capacity() && self.starts.len() >= 16 {
            // a customer buying in the same periods again and again stays small
            self.starts.sort_unstable();
            self.starts.dedup();
        }
        self.starts.push(period);
        self.total.add(amount);
        self.last = match self.first {
            Some(_) => self.last.max(period),
            None => period,
        };
        self.first = match self.first {
            Some((p, mut sum)) if p == period => {
                sum.add(amount);
                Some((p, sum))
            }
            Some((p, sum)) if p < period => Some((p, sum)),
            _ => Some((period, Sum::of(amount))),
        };
    }

    fn merge(&mut self, other: Side) {
        let Some((other_first, other_sum)) = other.first else {
            return;
        };
        self.first = match self.first {
            None => Some((other_first, other_sum)),
            Some((p, mut sum)) if p == other_first => {
                sum.merge(other_sum);
                Some((p, sum))
            }
            Some((p, sum)) if p < other_first => Some((p, sum)),
            Some(_) => Some((other_first, other_sum)),
        };
        self.last = if self.starts.is_empty() {
            other.last
        } else {
            self.last.max(other.last)
        };
        self.starts.extend(other.starts);
        self.total.merge(other.total);
    }

    fn distinct_periods(&self) -> usize {
        // most customers buy a few times: sort a copy on the stack, not on the heap
        let mut small = [0i64; 32];
        let mut large = Vec::new();
        let starts = match self.starts.len() {
            0 | 1 => return self.starts.len(),
            n if n <= small.len() => {
                small[..n].copy_from_slice(&self.starts);
                &mut small[..n]
            }
            _ => {
                large.extend_from_slice(&self.starts);
                &mut large[..]
            }
        };
        starts.sort_unstable();
        1 + starts.windows(2).filter(|w| w[0] != w[1]).count()
    }
}

/// The purchase periods of one customer on both sides of the calibration cut-off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PurchasePeriods {
    calibration: Side,
    holdout: Side,
    /// Transactions in the calibration.
    transactions: u64,
    /// The calibration end (microseconds, the same clock as the period starts).
    calibration_end: i64,
}

/// What `rfm()` reports of one customer, before the unit conversions done in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodSummary {
    /// Distinct calibration purchase periods (0: the customer bought only in the holdout).
    pub purchases: u64,
    /// Seconds from the first to the last calibration purchase period.
    pub recency_seconds: f64,
    /// Seconds from the first calibration purchase period to the calibration end.
    pub t_seconds: f64,
    /// Calibration spend, and the part of it in the first purchase period.
    pub total_spend: f64,
    pub first_amount: f64,
    /// Calibration transactions.
    pub transactions: u64,
    /// Distinct holdout purchase periods and holdout spend.
    pub holdout_purchases: u64,
    pub holdout_spend: f64,
}

impl PeriodSummary {
    /// The summary as the array `rfm_periods` returns (the order `rfm()`'s query reads).
    pub fn to_array(&self) -> [f64; 8] {
        [
            self.purchases as f64,
            self.recency_seconds,
            self.t_seconds,
            self.total_spend,
            self.first_amount,
            self.transactions as f64,
            self.holdout_purchases as f64,
            self.holdout_spend,
        ]
    }
}

/// Seconds between two microsecond instants, exact as Postgres' extract(epoch FROM b - a) then
/// float8: the difference is an integer, divided once. Infinite bounds give infinite seconds.
fn seconds_between(from: i64, to: i64) -> f64 {
    if from == i64::MIN || to == i64::MAX {
        return f64::INFINITY;
    }
    if from == i64::MAX || to == i64::MIN {
        return f64::NEG_INFINITY;
    }
    (i128::from(to) - i128::from(from)) as f64 / 1e6
}

const MAGIC: &[u8; 4] = b"CVpp";

impl PurchasePeriods {
    pub fn new(calibration_end: i64) -> Self {
        PurchasePeriods {
            calibration_end,
            ..Default::default()
        }
    }

    /// One transaction: its period's start, its amount, and whether it is in the calibration.
    pub fn add(&mut self, period: i64, amount: f64, calibration: bool) {
        if calibration {
            self.calibration.add(period, amount);
            self.transactions += 1;
        } else {
            self.holdout.add(period, amount);
        }
    }

    /// Takes in another partial state of the same customer.
    pub fn merge(&mut self, other: PurchasePeriods) {
        self.calibration.merge(other.calibration);
        self.holdout.merge(other.holdout);
        self.transactions += other.transactions;
        if self.calibration_end == 0 {
            self.calibration_end = other.calibration_end;
        }
    }

    pub fn finish(&self) -> PeriodSummary {
        let c = &self.calibration;
        let (first, first_amount) = c.first.unwrap_or_default();
        let purchases = c.distinct_periods() as u64;
        let (recency_seconds, t_seconds) = if purchases == 0 {
            (0.0, 0.0)
        } else {
            (
                seconds_between(first, c.last),
                seconds_between(first, self.calibration_end),
            )
        };
        PeriodSummary {
            purchases,
            recency_seconds,
            t_seconds,
            total_spend: c.total.value(),
            first_amount: first_amount.value(),
            transactions: self.transactions,
            holdout_purchases: self.holdout.distinct_periods() as u64,
            holdout_spend: self.holdout.total.value(),
        }
    }

    /// The state as bytes, for a parallel worker to hand it to the leader.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 8 * self.starts());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.transactions.to_le_bytes());
        out.extend_from_slice(&self.calibration_end.to_le_bytes());
        for side in [&self.calibration, &self.holdout] {
            let (first, first_sum) = side.first.unwrap_or_default();
            out.push(u8::from(side.first.is_some()));
            out.extend_from_slice(&first.to_le_bytes());
            for value in [first_sum.sum, first_sum.compensation] {
                out.extend_from_slice(&value.to_le_bytes());
            }
            out.extend_from_slice(&side.last.to_le_bytes());
            for value in [side.total.sum, side.total.compensation] {
                out.extend_from_slice(&value.to_le_bytes());
            }
            out.extend_from_slice(&(side.starts.len() as u64).to_le_bytes());
            for start in &side.starts {
                out.extend_from_slice(&start.to_le_bytes());
            }
        }
        out
    }

    /// Reads what `to_bytes` wrote; anything else is refused (XX001), never misread.
    pub fn from_bytes(bytes: &[u8]) -> Result<PurchasePeriods> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(4)? != MAGIC {
            return Err(corrupted("it does not start with the state's magic"));
        }
        let mut state = PurchasePeriods {
            transactions: reader.u64()?,
            calibration_end: reader.i64()?,
            ..Default::default()
        };
        for side in [&mut state.calibration, &mut state.holdout] {
            let has_first = reader.take(1)?[0] == 1;
            let first = (reader.i64()?, reader.sum()?);
            side.first = has_first.then_some(first);
            side.last = reader.i64()?;
            side.total = reader.sum()?;
            let n = reader.u64()?;
            if n > (bytes.len() / 8) as u64 {
                return Err(corrupted("its period count exceeds its length"));
            }
            side.starts = (0..n).map(|_| reader.i64()).collect::<Result<_>>()?;
        }
        if reader.at != bytes.len() {
            return Err(corrupted("it has trailing bytes"));
        }
        Ok(state)
    }

    fn starts(&self) -> usize {
        self.calibration.starts.len() + self.holdout.starts.len()
    }
}

fn corrupted(why: &str) -> EngineError {
    EngineError::new(
        ErrorKind::DataCorrupted,
        format!("a partial RFM aggregate state cannot be read: {why}"),
    )
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| corrupted("it ends early"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn eight(&mut self) -> Result<[u8; 8]> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.eight()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.eight()?))
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.eight()?))
    }

    fn sum(&mut self) -> Result<Sum> {
        Ok(Sum {
            sum: self.f64()?,
            compensation: self.f64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    /// A customer of the CDNOW kind: (day, amount, calibration).
    fn customer(transactions: &[(i64, f64, bool)], calibration_end_day: i64) -> PurchasePeriods {
        let mut p = PurchasePeriods::new(calibration_end_day * DAY);
        for &(day, amount, calibration) in transactions {
            p.add(day * DAY, amount, calibration);
        }
        p
    }

    #[test]
    fn summary_by_hand() {
        // days 10 (two transactions, 5 + 7), 3, 24, 24 in calibration; 40 and 41 in the holdout
        let tx = [
            (10, 5.0, true),
            (3, 2.5, true),
            (24, 1.0, true),
            (10, 7.0, true),
            (24, 4.0, true),
            (40, 3.0, false),
            (41, 6.0, false),
        ];
        let s = customer(&tx, 31).finish();
        assert_eq!(s.purchases, 3);
        assert_eq!(s.recency_seconds, 21.0 * 86_400.0);
        assert_eq!(s.t_seconds, 28.0 * 86_400.0);
        assert_eq!((s.total_spend, s.first_amount), (19.5, 2.5));
        assert_eq!(s.transactions, 5);
        assert_eq!((s.holdout_purchases, s.holdout_spend), (2, 9.0));
    }

    #[test]
    fn first_period_amount_sums_every_transaction_of_that_period() {
        let s = customer(&[(5, 1.0, true), (2, 3.0, true), (2, 4.0, true)], 9).finish();
        assert_eq!((s.purchases, s.first_amount, s.total_spend), (2, 7.0, 8.0));
    }

    #[test]
    fn spend_is_the_correctly_rounded_sum_in_any_order() {
        // the CDNOW customer of the golden test clv: 29.33 + 29.73 + 14.96 is 74.02 exactly in
        // decimal; a plain float sum in this order gives 74.02000000000001
        let amounts = [29.33, 29.73, 14.96];
        assert_ne!(amounts.iter().sum::<f64>(), 74.02);
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let tx: Vec<_> = order
                .iter()
                .map(|&i| (i as i64, amounts[i], true))
                .collect();
            assert_eq!(customer(&tx, 9).finish().total_spend, 74.02);
        }
        // 1e16 + 1 − 1e16 is 1, not 0
        let s = customer(&[(0, 1e16, true), (1, 1.0, true), (2, -1e16, true)], 9).finish();
        assert_eq!(s.total_spend, 1.0);
    }

    #[test]
    fn holdout_only_customer_has_no_purchases() {
        let s = customer(&[(40, 3.0, false)], 31).finish();
        assert_eq!(
            (s.purchases, s.transactions, s.holdout_purchases),
            (0, 0, 1)
        );
    }

    #[test]
    fn many_transactions_in_few_periods_stay_compact() {
        let mut p = PurchasePeriods::new(100 * DAY);
        for i in 0..100_000 {
            p.add((i % 7) * DAY, 1.0, true);
        }
        assert!(
            p.calibration.starts.len() < 64,
            "{}",
            p.calibration.starts.len()
        );
        let s = p.finish();
        assert_eq!(
            (s.purchases, s.transactions, s.total_spend),
            (7, 100_000, 100_000.0)
        );
    }

    #[test]
    fn split_and_merged_equals_whole_in_any_split() {
        // a deterministic pseudo-random log of one customer
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let tx: Vec<(i64, f64, bool)> = (0..500)
            .map(|_| {
                let day = (next() % 60) as i64;
                (day, (next() % 100) as f64 / 4.0, day < 45)
            })
            .collect();
        let whole = customer(&tx, 45).finish();
        for split in [0, 1, 17, 250, 499, 500] {
            let mut left = customer(&tx[..split], 45);
            let right = customer(&tx[split..], 45);
            left.merge(PurchasePeriods::from_bytes(&right.to_bytes()).unwrap());
            assert_eq!(left.finish(), whole, "split at {split}");
        }
    }

    #[test]
    fn bytes_round_trip_and_damage_is_refused() {
        let p = customer(&[(3, 1.5, true), (9, 2.0, false)], 5);
        let bytes = p.to_bytes();
        assert_eq!(PurchasePeriods::from_bytes(&bytes).unwrap(), p);
        for cut in [0, 3, 10, bytes.len() - 1] {
            let err = PurchasePeriods::from_bytes(&bytes[..cut]).unwrap_err();
            assert_eq!(err.kind, ErrorKind::DataCorrupted);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(PurchasePeriods::from_bytes(&longer).is_err());
        let mut huge = bytes;
        let count_at = 4 + 8 + 8 + 1 + 8 + 16 + 8 + 16;
        huge[count_at..count_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(PurchasePeriods::from_bytes(&huge).is_err());
    }

    #[test]
    fn infinite_bounds_give_infinite_times() {
        let mut p = PurchasePeriods::new(i64::MAX);
        p.add(0, 1.0, true);
        assert_eq!(p.finish().t_seconds, f64::INFINITY);
        assert_eq!(seconds_between(i64::MIN, 0), f64::INFINITY);
    }
}
