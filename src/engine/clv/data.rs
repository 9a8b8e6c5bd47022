//! The RFM summary the CLV models are fitted on, validated and compressed.

use crate::engine::error::{EngineError, ErrorKind, Result};

/// One customer's calibration summary (the literature's x, t_x, T and mean repeat spend).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Customer {
    pub frequency: f64,
    pub recency: f64,
    pub t: f64,
    pub monetary_value: f64,
    /// How many customers share this summary: 1 for one row per customer, more for grouped
    /// input (each distinct summary once, with its count) — the likelihoods weight by it.
    pub count: f64,
}

impl Customer {
    /// One customer's summary.
    pub fn one(frequency: f64, recency: f64, t: f64, monetary_value: f64) -> Customer {
        Customer {
            frequency,
            recency,
            t,
            monetary_value,
            count: 1.0,
        }
    }

    /// A summary row as read: `values` holds frequency, recency, t, monetary value (spend
    /// models only) and the count, named by `columns` for errors; row `row` of the source.
    pub fn from_row(values: &[Option<f64>], columns: &[&str], row: usize) -> Result<Customer> {
        if !(4..=5).contains(&values.len()) || values.len() != columns.len() {
            return Err(EngineError::new(
                ErrorKind::Internal,
                format!("an RFM row of {} values", values.len()),
            ));
        }
        let mut read = Vec::with_capacity(values.len());
        for (v, column) in values.iter().zip(columns) {
            match v {
                None => {
                    return Err(EngineError::new(
                        ErrorKind::NullValue,
                        format!("RFM column \"{column}\" is NULL in row {row} of the source"),
                    ))
                }
                Some(v) if !v.is_finite() => {
                    return Err(EngineError::new(
                        ErrorKind::NonFiniteValue,
                        format!("RFM column \"{column}\" holds {v} in row {row} of the source"),
                    ))
                }
                Some(v) => read.push(*v),
            }
        }
        let spend = if read.len() > 4 { read[3] } else { 0.0 };
        Ok(Customer {
            count: read[read.len() - 1],
            ..Customer::one(read[0], read[1], read[2], spend)
        })
    }
}

/// The relations one customer's summary obeys (what is wrong, or None): used to validate a
/// summary before a fit and each row before it is scored.
pub fn summary_problem(frequency: f64, recency: f64, t: f64) -> Option<String> {
    if !frequency.is_finite() || frequency < 0.0 || frequency.fract() != 0.0 {
        return Some(format!(
            "frequency must be a whole number ≥ 0, got {frequency}"
        ));
    }
    if !t.is_finite() || t < 0.0 || (t == 0.0 && frequency > 0.0) {
        return Some(format!(
            "t must be positive (or 0 with frequency 0), got {t}"
        ));
    }
    if !recency.is_finite() || recency < 0.0 || recency > t * (1.0 + 1e-9) + 1e-9 {
        return Some(format!(
            "recency must be between 0 and t = {t}, got {recency}"
        ));
    }
    if frequency > 0.0 && recency <= 0.0 {
        return Some(format!(
            "a customer with {frequency} repeat purchases must have recency > 0"
        ));
    }
    None
}

/// Checks the relations every RFM summary obeys; the error names the row and the value.
pub fn validate(customers: &[Customer]) -> Result<()> {
    if customers.is_empty() {
        return Err(EngineError::insufficient_data(
            "the RFM summary has no customers",
        ));
    }
    for (i, c) in customers.iter().enumerate() {
        let row = i + 1;
        let bad = |what: String| {
            Err(EngineError::new(ErrorKind::InvalidParameter, format!("row {row} of the RFM summary: {what}"))
                .with_hint("frequency counts repeat purchases (≥ 0), recency is the age at the last purchase (0 ≤ recency ≤ t), t the age at the end of calibration (≥ 0); customer_value.rfm() builds such a summary."))
        };
        if !c.count.is_finite() || c.count < 1.0 || c.count.fract() != 0.0 {
            return bad(format!(
                "the customer count must be a whole number ≥ 1, got {}",
                c.count
            ));
        }
        // t = 0: first purchase at the calibration end (frequency 0); such a customer's
        // likelihood term is 1, so the count models leave it out of the fit and still score it
        if let Some(problem) = summary_problem(c.frequency, c.recency, c.t) {
            return bad(problem);
        }
    }
    Ok(())
}

/// Identical (frequency, recency, t) customers collapsed into one weighted entry, with indices
/// into the distinct values of x, t_x, T and of the (x, t_x) and (x, T) pairs. RFM summaries are
/// day-based, so these sets are small: the models evaluate their expensive terms (logarithms,
/// 2F1) once per distinct value per likelihood evaluation, and per customer only combine them.
#[derive(Debug, Clone)]
pub struct CountData {
    pub x: Vec<f64>,
    pub t_x: Vec<f64>,
    pub t: Vec<f64>,
    pub weight: Vec<f64>,
    pub n_customers: f64,
    pub distinct_x: Vec<f64>,
    pub x_index: Vec<usize>,
    pub distinct_t_x: Vec<f64>,
    pub t_x_index: Vec<usize>,
    pub distinct_t: Vec<f64>,
    pub t_index: Vec<usize>,
    /// Distinct (x, t_x) pairs and each entry's index into them.
    pub x_t_x_pairs: Vec<(f64, f64)>,
    pub x_t_x_index: Vec<usize>,
    /// Distinct (x, T) pairs and each entry's index into them.
    pub x_t_pairs: Vec<(f64, f64)>,
    pub x_t_index: Vec<usize>,
}

fn distinct_index(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    number_distinct(values, f64::total_cmp)
}

fn distinct_pair_index(a: &[f64], b: &[f64]) -> (Vec<(f64, f64)>, Vec<usize>) {
    let pairs: Vec<(f64, f64)> = a.iter().copied().zip(b.iter().copied()).collect();
    number_distinct(&pairs, |p, q| p.0.total_cmp(&q.0).then(p.1.total_cmp(&q.1)))
}

/// The distinct keys in `order`, and each key's position among them: one sort of (key,
/// position) pairs and one numbering pass (a binary search per key took a second at 1M
/// customers).
fn number_distinct<K: Copy + PartialEq>(
    keys: &[K],
    order: impl Fn(&K, &K) -> std::cmp::Ordering,
) -> (Vec<K>, Vec<usize>) {
    let mut sorted: Vec<(K, usize)> = keys.iter().copied().zip(0..).collect();
    sorted.sort_unstable_by(|a, b| order(&a.0, &b.0));
    let mut distinct: Vec<K> = Vec::new();
    let mut index = vec![0; keys.len()];
    for (key, position) in sorted {
        if distinct.last() != Some(&key) {
            distinct.push(key);
        }
        index[position] = distinct.len() - 1;
    }
    (distinct, index)
}

impl CountData {
    pub fn new(customers: &[Customer]) -> CountData {
        let mut keyed: Vec<((u64, u64, u64), f64)> = customers
            .iter()
            .map(|c| {
                let key = (c.frequency.to_bits(), c.recency.to_bits(), c.t.to_bits());
                (key, c.count)
            })
            .collect();
        keyed.sort_unstable_by_key(|(key, _)| *key);
        let (mut x, mut t_x, mut t, mut weight) = (vec![], vec![], vec![], vec![]);
        let mut last: Option<(u64, u64, u64)> = None;
        for (key, count) in keyed {
            if last == Some(key) {
                if let Some(w) = weight.last_mut() {
                    *w += count;
                }
                continue;
            }
            last = Some(key);
            x.push(f64::from_bits(key.0));
            t_x.push(f64::from_bits(key.1));
            t.push(f64::from_bits(key.2));
            weight.push(count);
        }
        let (distinct_x, x_index) = distinct_index(&x);
        let (distinct_t_x, t_x_index) = distinct_index(&t_x);
        let (distinct_t, t_index) = distinct_index(&t);
        let (x_t_x_pairs, x_t_x_index) = distinct_pair_index(&x, &t_x);
        let (x_t_pairs, x_t_index) = distinct_pair_index(&x, &t);
        CountData {
            x,
            t_x,
            t,
            weight,
            n_customers: customers.iter().map(|c| c.count).sum(),
            distinct_x,
            x_index,
            distinct_t_x,
            t_x_index,
            distinct_t,
            t_index,
            x_t_x_pairs,
            x_t_x_index,
            x_t_pairs,
            x_t_index,
        }
    }

    /// The data a count model is fitted on, with the mean T (a scale for starting values).
    /// Without any repeat purchase the likelihood has no maximum: that is refused.
    pub fn for_count_model(customers: &[Customer], model: &str) -> Result<(CountData, f64)> {
        // customers first seen at the calibration end (t = 0) have likelihood 1 whatever the
        // parameters: they carry no information, and are left out
        let informative: Vec<Customer> = customers.iter().filter(|c| c.t > 0.0).copied().collect();
        let data = CountData::new(&informative);
        if data.repeaters() == 0.0 {
            return Err(EngineError::insufficient_data(format!(
                "{model} needs customers with repeat purchases, but every frequency is 0"
            )));
        }
        let mean_t = data
            .t
            .iter()
            .zip(&data.weight)
            .map(|(t, w)| t * w)
            .sum::<f64>()
            / data.n_customers;
        Ok((data, mean_t))
    }

    pub fn repeaters(&self) -> f64 {
        self.x
            .iter()
            .zip(&self.weight)
            .filter(|(x, _)| **x > 0.0)
            .map(|(_, w)| w)
            .sum()
    }
}

/// ln(eᵃ + eᵇ) without overflow.
#[inline]
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(frequency: f64, recency: f64, t: f64) -> Customer {
        Customer::one(frequency, recency, t, 0.0)
    }

    #[test]
    fn duplicates_are_weighted_and_x_indexed() {
        let d = CountData::new(&[
            c(0.0, 0.0, 5.0),
            c(2.0, 3.0, 5.0),
            c(0.0, 0.0, 5.0),
            c(2.0, 1.0, 4.0),
        ]);
        assert_eq!(d.x.len(), 3);
        assert_eq!(d.weight.iter().sum::<f64>(), 4.0);
        assert_eq!(d.distinct_x, vec![0.0, 2.0]);
        for (i, x) in d.x.iter().enumerate() {
            assert_eq!(d.distinct_x[d.x_index[i]], *x);
            assert_eq!(d.distinct_t_x[d.t_x_index[i]], d.t_x[i]);
            assert_eq!(d.distinct_t[d.t_index[i]], d.t[i]);
            assert_eq!(d.x_t_x_pairs[d.x_t_x_index[i]], (*x, d.t_x[i]));
            assert_eq!(d.x_t_pairs[d.x_t_index[i]], (*x, d.t[i]));
        }
        assert_eq!(d.repeaters(), 2.0);
    }

    #[test]
    fn impossible_summaries_are_refused_with_the_row() {
        let err = validate(&[c(1.0, 2.0, 3.0), c(1.0, 5.0, 3.0)]).unwrap_err();
        assert!(
            err.message.starts_with("row 2 of the RFM summary: recency"),
            "{}",
            err.message
        );
        assert!(validate(&[c(-1.0, 0.0, 3.0)]).is_err());
        assert!(validate(&[c(1.5, 1.0, 3.0)]).is_err());
        assert!(validate(&[c(1.0, 0.0, 3.0)]).is_err());
        assert!(validate(&[c(1.0, 0.0, 0.0)]).is_err());
        assert!(validate(&[c(0.0, 0.0, -1.0)]).is_err());
        // first purchase at the calibration end: valid
        assert!(validate(&[c(0.0, 0.0, 0.0)]).is_ok());
        assert!(validate(&[]).is_err());
        assert!(validate(&[c(0.0, 0.0, 3.0), c(3.0, 2.5, 3.0)]).is_ok());
    }

    #[test]
    fn log_add_exp_is_stable() {
        assert!((log_add_exp(1000.0, 1000.0) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(log_add_exp(f64::NEG_INFINITY, -3.0), -3.0);
    }
}
