//! A transaction log as the models learn from it: each customer's purchase days up to `as_of`,
//! in day order, with the day's net amount, its refunds and its line count. From it come the
//! per-customer features at any cut-off ([`snapshot`]), the targets that follow a cut-off, and
//! the plan of cut-offs a leak-free training uses ([`plan`]).
//!
//! Days are whole days since 1970-01-01 (the glue collapses line items to customer-days, as the
//! CLV literature does: one purchase per customer per calendar day, amounts summed).

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::memory::try_grow;

pub mod attributes;
pub mod options;
pub mod plan;
pub mod sequence;
pub mod snapshot;

/// One day of a customer's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurchaseDay {
    /// Days since 1970-01-01.
    pub day: i32,
    /// Net amount of the day's lines (refunds subtracted).
    pub amount: f64,
    /// Sum of the day's negative lines, as a positive number (0 without refunds).
    pub refund: f64,
    /// Line items (rows of the log) that day.
    pub lines: u32,
}

/// Every customer's purchase days, in one flat array (customer `i` owns
/// `days[offsets[i]..offsets[i + 1]]`).
#[derive(Debug, Clone, Default)]
pub struct PurchaseLog {
    keys: Vec<String>,
    offsets: Vec<usize>,
    days: Vec<PurchaseDay>,
}

impl PurchaseLog {
    /// Appends one customer-day. Rows arrive grouped by customer and, within a customer, in
    /// day order (the glue's query sorts them); `key` is the customer key as text.
    pub fn push(&mut self, key: &str, day: PurchaseDay) -> Result<()> {
        if !day.amount.is_finite() || !day.refund.is_finite() {
            return Err(EngineError::new(
                ErrorKind::NonFiniteValue,
                format!(
                    "customer {key} has an amount of {} on {}",
                    day.amount,
                    date_text(day.day)
                ),
            ));
        }
        let same_customer = self.keys.last().is_some_and(|k| k == key);
        if same_customer {
            let last = self.days.last().map_or(i32::MIN, |d| d.day);
            if day.day <= last {
                // the glue's query sorts each customer's days; equal or earlier days mean two
                // customers share the key text
                return Err(EngineError::new(
                    ErrorKind::CardinalityViolation,
                    format!("two customers of the log have the same key \"{key}\""),
                ));
            }
        } else {
            try_grow(&mut self.keys, "the customer keys")?;
            self.keys.push(key.to_string());
            self.offsets.push(self.days.len());
        }
        try_grow(&mut self.days, "the purchase log")?;
        self.days.push(day);
        Ok(())
    }

    /// The key of the customer pushed last.
    pub fn last_key(&self) -> Option<&str> {
        self.keys.last().map(String::as_str)
    }

    pub fn n_customers(&self) -> usize {
        self.keys.len()
    }

    /// Customer-days held.
    pub fn n_days(&self) -> usize {
        self.days.len()
    }

    pub fn key(&self, customer: usize) -> &str {
        &self.keys[customer]
    }

    /// Customer `customer`'s days, in order.
    pub fn history(&self, customer: usize) -> &[PurchaseDay] {
        let end = self
            .offsets
            .get(customer + 1)
            .copied()
            .unwrap_or(self.days.len());
        &self.days[self.offsets[customer]..end]
    }

    /// The first day anyone bought on.
    pub fn first_day(&self) -> Option<i32> {
        (0..self.n_customers())
            .filter_map(|c| self.history(c).first().map(|d| d.day))
            .min()
    }

    /// Customers with at least two purchase days up to and including `cutoff`.
    pub fn repeat_buyers(&self, cutoff: i32) -> usize {
        (0..self.n_customers())
            .filter(|&c| {
                self.history(c)
                    .iter()
                    .take_while(|d| d.day <= cutoff)
                    .count()
                    > 1
            })
            .count()
    }
}

/// The days of `history` up to and including `cutoff`.
pub fn up_to(history: &[PurchaseDay], cutoff: i32) -> &[PurchaseDay] {
    &history[..history.partition_point(|d| d.day <= cutoff)]
}

/// Net spend in the window (`after`, `after + days`], refunds included, never below 0 (a window
/// whose refunds exceed its purchases earned nothing, it did not cost the customer's value).
pub fn spend_in_window(history: &[PurchaseDay], after: i32, days: i32) -> f64 {
    let start = history.partition_point(|d| d.day <= after);
    let end = history.partition_point(|d| d.day <= after + days);
    history[start..end]
        .iter()
        .map(|d| d.amount)
        .sum::<f64>()
        .max(0.0)
}

/// A day number as an ISO date (proleptic Gregorian; Hinnant's civil-from-days).
pub fn date_text(day: i32) -> String {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
pub(crate) fn day(n: i32, amount: f64) -> PurchaseDay {
    PurchaseDay {
        day: n,
        amount,
        refund: 0.0,
        lines: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_the_calendar() {
        // reference: PostgreSQL, SELECT '1970-01-01'::date + n
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(9_861), "1996-12-31");
        assert_eq!(date_text(10_134), "1997-09-30");
        assert_eq!(date_text(11_016), "2000-02-29");
        assert_eq!(date_text(-1), "1969-12-31");
    }

    #[test]
    fn the_log_keeps_customers_apart_and_in_order() {
        let mut log = PurchaseLog::default();
        log.push("a", day(1, 10.0)).unwrap();
        log.push("a", day(5, 20.0)).unwrap();
        log.push("b", day(3, 7.0)).unwrap();
        assert_eq!(log.n_customers(), 2);
        assert_eq!(log.history(0).len(), 2);
        assert_eq!(log.history(1)[0].amount, 7.0);
        assert_eq!(log.first_day(), Some(1));
        assert_eq!(log.repeat_buyers(4), 0);
        assert_eq!(log.repeat_buyers(5), 1);
        assert_eq!(up_to(log.history(0), 4).len(), 1);
        // (1, 5]: the day-5 purchase only
        assert_eq!(spend_in_window(log.history(0), 1, 4), 20.0);
        assert_eq!(spend_in_window(log.history(0), 5, 10), 0.0);
        let err = log.push("b", day(3, 1.0)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::CardinalityViolation);
        let err = log.push("c", day(3, f64::NAN)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NonFiniteValue);
    }

    #[test]
    fn refunds_can_bring_a_window_to_zero_not_below() {
        let h = [day(1, 10.0), day(2, -30.0)];
        assert_eq!(spend_in_window(&h, 0, 5), 0.0);
    }
}
