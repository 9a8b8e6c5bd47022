//! Each customer's features at a cut-off, from the history up to and including that day only:
//! RFM, recent windows, inter-purchase times, trend, refunds, tenure, and the outputs of the
//! CLV models (count model × Gamma-Gamma) fitted at that cut-off.

use crate::engine::clv::data::Customer;
use crate::engine::clv::gamma_gamma::GammaGamma;
use crate::engine::clv::model::{check_fit, CountModel};
use crate::engine::clv::optimize::FitOptions;
use crate::engine::error::{EngineError, Result};
use crate::engine::memory::try_with_capacity;
use crate::engine::models::Algorithm;

use super::{date_text, up_to, PurchaseDay, PurchaseLog};

/// The recent windows whose spend and purchase days are features, in days.
const RECENT_WINDOWS: [i32; 4] = [30, 90, 180, 365];

/// The features, in the order of [`Snapshot::row`]. Names are the feature table's columns.
/// None is an exact linear combination of others (a linear model could not be fitted): the
/// purchase days are frequency + 1, the age at the last purchase is tenure − days since last.
pub const FEATURES: [&str; 26] = [
    "frequency",
    "tenure_days",
    "days_since_last",
    "transactions",
    "total_spend",
    "mean_purchase_value",
    "monetary_value",
    "max_purchase_value",
    "spend_30d",
    "spend_90d",
    "spend_180d",
    "spend_365d",
    "purchases_30d",
    "purchases_90d",
    "purchases_180d",
    "purchases_365d",
    "mean_gap_days",
    "sd_gap_days",
    "last_gap_days",
    "spend_trend",
    "refund_amount",
    "refund_days",
    "clv_p_alive",
    "clv_expected_purchases",
    "clv_expected_spend",
    "clv_expected_value",
];

/// Weeks: the CLV models are fitted in weeks, as in the literature (the fit does not depend on
/// the unit, the parameters α and β do).
const UNIT_DAYS: f64 = 7.0;

/// The CLV models fitted on the customers' summaries at one cut-off.
#[derive(Debug, Clone)]
pub struct ClvAtCutoff {
    pub count: CountModel,
    /// `None` when Gamma-Gamma cannot be fitted (too few repeat buyers with a positive mean,
    /// or a tail so heavy the mean spend is infinite, q ≤ 1): each customer's own mean purchase
    /// value stands in for its expected spend, and `spend_fit_error` says why.
    pub spend: Option<GammaGamma>,
    pub spend_fit_error: Option<String>,
}

impl ClvAtCutoff {
    /// Fits the count model and Gamma-Gamma on `customers`' summaries at `cutoff`.
    pub fn fit(
        count_model: Algorithm,
        customers: &[Customer],
        cutoff: i32,
        interrupt: &mut dyn FnMut(),
    ) -> Result<ClvAtCutoff> {
        let options = FitOptions::default();
        let count = fit_count_model(count_model, customers, &options, interrupt).map_err(|e| {
            EngineError::new(
                e.kind,
                format!("at the cut-off {}, {}", date_text(cutoff), e.message),
            )
        })?;
        let (spend, spend_fit_error) = match GammaGamma::fit(customers, &options, interrupt)
            .and_then(|fit| {
                let m = fit.model;
                check_fit(
                    "gamma_gamma",
                    &["p", "q", "gamma"],
                    &m.params(),
                    fit.log_likelihood,
                )?;
                if m.q <= 1.0 {
                    return Err(EngineError::insufficient_data(format!(
                        "gamma_gamma's q = {:.3} ≤ 1: the mean spend is infinite",
                        m.q
                    )));
                }
                Ok(m)
            }) {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e.message)),
        };
        Ok(ClvAtCutoff {
            count,
            spend,
            spend_fit_error,
        })
    }

    /// Expected purchase days in the next `days`.
    pub fn expected_purchases(&self, c: &Customer, days: f64) -> f64 {
        self.count
            .expected_purchases(days / UNIT_DAYS, c.frequency, c.recency, c.t)
    }

    /// Expected value of a future purchase: Gamma-Gamma's, or the customer's own mean.
    pub fn expected_spend(&self, c: &Customer, own_mean: f64) -> f64 {
        match &self.spend {
            Some(m) => m.expected_spend(c.frequency, c.monetary_value),
            None => own_mean.max(0.0),
        }
    }
}

fn fit_count_model(
    algorithm: Algorithm,
    customers: &[Customer],
    options: &FitOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<CountModel> {
    match CountModel::fit(algorithm, customers, options, interrupt)? {
        Some((model, _)) => Ok(model),
        None => Err(EngineError::invalid_parameter(format!(
            "{} is not a purchase-count model",
            algorithm.name()
        ))),
    }
}

/// The features of every customer with history at one cut-off.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub cutoff: i32,
    /// The customers (indices into the log) with a purchase on or before the cut-off.
    pub customers: Vec<usize>,
    /// Their CLV summaries in weeks (frequency, recency, T, mean repeat spend).
    pub summaries: Vec<Customer>,
    /// Their mean purchase-day value (the stand-in for Gamma-Gamma, see [`ClvAtCutoff`]).
    own_means: Vec<f64>,
    /// Row-major: one row of [`FEATURES`] per customer.
    values: Vec<Option<f64>>,
    pub clv: ClvAtCutoff,
}

impl Snapshot {
    /// The snapshot at `cutoff`; `horizon_days` is the horizon of the CLV features.
    pub fn at(
        log: &PurchaseLog,
        cutoff: i32,
        horizon_days: i32,
        count_model: Algorithm,
        interrupt: &mut dyn FnMut(),
    ) -> Result<Snapshot> {
        let mut customers = Vec::new();
        let mut summaries = Vec::new();
        let mut own_means = Vec::new();
        for c in 0..log.n_customers() {
            let history = up_to(log.history(c), cutoff);
            if history.is_empty() {
                continue;
            }
            customers.push(c);
            summaries.push(summary(history, cutoff));
            own_means.push(history.iter().map(|d| d.amount).sum::<f64>() / history.len() as f64);
        }
        if customers.is_empty() {
            return Err(EngineError::insufficient_data(format!(
                "no customer has a purchase on or before {}",
                date_text(cutoff)
            )));
        }
        interrupt();
        let clv = ClvAtCutoff::fit(count_model, &summaries, cutoff, interrupt)?;
        let mut values = try_with_capacity(customers.len() * FEATURES.len(), "the features")?;
        for (i, &c) in customers.iter().enumerate() {
            let history = up_to(log.history(c), cutoff);
            let mut row = history_features(history, cutoff);
            let s = &summaries[i];
            let purchases = clv.expected_purchases(s, f64::from(horizon_days));
            let spend = clv.expected_spend(s, own_means[i]);
            row.extend([
                Some(clv.count.p_alive(s.frequency, s.recency, s.t)),
                Some(purchases),
                Some(spend),
                Some(purchases * spend),
            ]);
            values.extend(row);
        }
        Ok(Snapshot {
            cutoff,
            customers,
            summaries,
            own_means,
            values,
            clv,
        })
    }

    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// Customer `i`'s features (the `i`-th customer of the snapshot), in [`FEATURES`] order.
    pub fn row(&self, i: usize) -> &[Option<f64>] {
        &self.values[i * FEATURES.len()..(i + 1) * FEATURES.len()]
    }

    /// The factor from a `window`-day spend to a `horizon`-day one for customer `i`: the count
    /// model's expected purchases over the horizon over those over the window (1 when they are
    /// equal). The target of a shortened window is multiplied by it: the customer's own
    /// expected-purchase curve, fitted at this cut-off, extrapolates it.
    pub fn scale(&self, i: usize, window: i32, horizon: i32) -> f64 {
        if window >= horizon {
            return 1.0;
        }
        let s = &self.summaries[i];
        let over_window = self.clv.expected_purchases(s, f64::from(window));
        let over_horizon = self.clv.expected_purchases(s, f64::from(horizon));
        if over_window > 1e-12 && over_horizon.is_finite() {
            over_horizon / over_window
        } else {
            f64::from(horizon) / f64::from(window)
        }
    }

    /// The classic prediction of customer `i`'s spend over the next `days`: expected purchases
    /// × expected spend per purchase (BG/NBD or Pareto/NBD × Gamma-Gamma).
    pub fn clv_spend(&self, i: usize, days: i32) -> f64 {
        let s = &self.summaries[i];
        self.clv.expected_purchases(s, f64::from(days))
            * self.clv.expected_spend(s, self.own_means[i])
    }
}

/// The CLV summary of a history at `cutoff`, in weeks: repeat purchase days, age at the last
/// purchase, age at the cut-off, mean repeat purchase value.
fn summary(history: &[PurchaseDay], cutoff: i32) -> Customer {
    let first = history[0];
    let last = history[history.len() - 1];
    let frequency = (history.len() - 1) as f64;
    let repeat_spend: f64 = history[1..].iter().map(|d| d.amount).sum();
    Customer::one(
        frequency,
        f64::from(last.day - first.day) / UNIT_DAYS,
        f64::from(cutoff - first.day) / UNIT_DAYS,
        if frequency > 0.0 {
            repeat_spend / frequency
        } else {
            0.0
        },
    )
}

/// The change of spend from the previous 90 days to the last 90, relative: from −1 (all spend
/// in the previous period) through 0 (as much in both, or none) to 1 (all in the last).
fn trend(last: f64, previous: f64) -> f64 {
    let both = last.abs() + previous.abs();
    if both > 0.0 {
        (last - previous) / both
    } else {
        0.0
    }
}

/// The features that come from the history itself (all but the CLV models' four).
fn history_features(history: &[PurchaseDay], cutoff: i32) -> Vec<Option<f64>> {
    let n = history.len();
    let first = history[0];
    let last = history[n - 1];
    let total: f64 = history.iter().map(|d| d.amount).sum();
    let since = |days: i32| &history[history.partition_point(|d| d.day <= cutoff - days)..];
    let spend = |days: &[PurchaseDay]| days.iter().map(|d| d.amount).sum::<f64>();
    let gaps: Vec<f64> = history
        .windows(2)
        .map(|w| f64::from(w[1].day - w[0].day))
        .collect();
    let mean_gap = (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64);
    let sd_gap = mean_gap.filter(|_| gaps.len() > 1).map(|m| {
        (gaps.iter().map(|g| (g - m) * (g - m)).sum::<f64>() / (gaps.len() - 1) as f64).sqrt()
    });
    let last_90 = spend(since(90));
    let previous_90 = spend(since(180)) - last_90;
    let mut row = vec![
        Some((n - 1) as f64),
        Some(f64::from(cutoff - first.day)),
        Some(f64::from(cutoff - last.day)),
        Some(history.iter().map(|d| f64::from(d.lines)).sum()),
        Some(total),
        Some(total / n as f64),
        Some(if n > 1 {
            (total - first.amount) / (n - 1) as f64
        } else {
            0.0
        }),
        Some(history.iter().map(|d| d.amount).fold(f64::MIN, f64::max)),
    ];
    row.extend(RECENT_WINDOWS.map(|w| Some(spend(since(w)))));
    row.extend(RECENT_WINDOWS.map(|w| Some(since(w).len() as f64)));
    row.extend([
        mean_gap,
        sd_gap,
        gaps.last().copied(),
        Some(trend(last_90, previous_90)),
        Some(history.iter().map(|d| d.refund).sum()),
        Some(history.iter().filter(|d| d.refund > 0.0).count() as f64),
    ]);
    row
}

#[cfg(test)]
mod tests {
    use super::super::day;
    use super::*;

    /// A log of `n` customers, each buying every `gap` days from day `start` to day 400 for
    /// `amount`, the gaps and amounts varying by customer (so the CLV models have
    /// heterogeneity to fit).
    pub(crate) fn regular_log(n: usize) -> PurchaseLog {
        let mut log = PurchaseLog::default();
        for c in 0..n {
            let gap = 5 + (c * 7919) % 60;
            let stop = 60 + (c * 104_729) % 340;
            let amount = 5.0 + (c % 13) as f64 * 4.0;
            let start = (c % 50) as i32;
            let mut d = start;
            while d <= stop as i32 {
                log.push(&format!("c{c}"), day(d, amount)).unwrap();
                d += gap as i32;
            }
        }
        log
    }

    #[test]
    fn features_by_hand() {
        // purchases on days 10 (20), 40 (10, a 5 refund), 100 (30); cut-off at day 120
        let history = [
            day(10, 20.0),
            PurchaseDay {
                refund: 5.0,
                lines: 3,
                ..day(40, 10.0)
            },
            day(100, 30.0),
            day(130, 99.0),
        ];
        let row = history_features(up_to(&history, 120), 120);
        let by_name = |name: &str| row[FEATURES.iter().position(|f| *f == name).unwrap()];
        assert_eq!(by_name("frequency"), Some(2.0));
        assert_eq!(by_name("tenure_days"), Some(110.0));
        assert_eq!(by_name("days_since_last"), Some(20.0));
        assert_eq!(by_name("transactions"), Some(5.0));
        assert_eq!(by_name("total_spend"), Some(60.0));
        assert_eq!(by_name("mean_purchase_value"), Some(20.0));
        assert_eq!(by_name("monetary_value"), Some(20.0));
        assert_eq!(by_name("max_purchase_value"), Some(30.0));
        // days > 120 − 30 = 90: day 100; > 30: days 40 and 100; all three within 180 and 365
        assert_eq!(by_name("spend_30d"), Some(30.0));
        assert_eq!(by_name("spend_90d"), Some(40.0));
        assert_eq!(by_name("purchases_180d"), Some(3.0));
        // gaps 30 and 60
        assert_eq!(by_name("mean_gap_days"), Some(45.0));
        assert!((by_name("sd_gap_days").unwrap() - 450f64.sqrt()).abs() < 1e-12);
        assert_eq!(by_name("last_gap_days"), Some(60.0));
        // last 90 days: 40; the 90 before: 20
        assert_eq!(by_name("spend_trend"), Some(20.0 / 60.0));
        assert_eq!(by_name("refund_amount"), Some(5.0));
        assert_eq!(by_name("refund_days"), Some(1.0));
        assert_eq!(row.len(), FEATURES.len() - 4);
        // one purchase: no gaps
        let row = history_features(&history[..1], 10);
        assert_eq!(
            row[FEATURES.iter().position(|f| *f == "mean_gap_days").unwrap()],
            None
        );
    }

    #[test]
    fn a_snapshot_sees_nothing_after_its_cutoff() {
        let log = regular_log(300);
        let s = Snapshot::at(&log, 200, 365, Algorithm::BgNbd, &mut || {}).unwrap();
        // poison the future: every purchase after day 200 becomes huge
        let mut poisoned = PurchaseLog::default();
        for c in 0..log.n_customers() {
            for d in log.history(c) {
                let amount = if d.day > 200 { 1e9 } else { d.amount };
                poisoned
                    .push(log.key(c), PurchaseDay { amount, ..*d })
                    .unwrap();
            }
        }
        let p = Snapshot::at(&poisoned, 200, 365, Algorithm::BgNbd, &mut || {}).unwrap();
        assert_eq!(s.customers, p.customers);
        assert_eq!(s.values, p.values);
        // customers who first buy after the cut-off are not in it
        assert!(s.len() < 300 || (0..300).all(|c| log.history(c)[0].day <= 200));
        let p_alive = FEATURES.iter().position(|f| *f == "clv_p_alive").unwrap();
        assert!((0..s.len()).all(|i| (0.0..=1.0).contains(&s.row(i)[p_alive].unwrap())));
    }

    #[test]
    fn the_scale_follows_the_count_models_curve() {
        let log = regular_log(300);
        let s = Snapshot::at(&log, 200, 365, Algorithm::BgNbd, &mut || {}).unwrap();
        for i in 0..s.len() {
            assert_eq!(s.scale(i, 365, 365), 1.0);
            let r = s.scale(i, 90, 365);
            // a concave expected-purchase curve: more than 1×, at most 365/90×
            assert!(r > 1.0 && r <= 365.0 / 90.0 + 1e-9, "{r}");
            let c = &s.summaries[i];
            let want = s.clv.expected_purchases(c, 365.0) / s.clv.expected_purchases(c, 90.0);
            assert!((r - want).abs() < 1e-12);
        }
    }
}
