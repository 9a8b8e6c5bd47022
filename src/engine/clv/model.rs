//! A stored CLV model: a purchase-count model, a spend model, or both (`clv`), with the horizon
//! and discounting that turn them into one value per customer.
//!
//! Inputs, in feature order: frequency, recency, t and (for spend models) monetary_value.

use serde::{Deserialize, Serialize};

use super::bgnbd::BgNbd;
use super::data::Customer;
use super::gamma_gamma::GammaGamma;
use super::mbgnbd::MbgNbd;
use super::optimize::FitOptions;
use super::pareto_nbd::{AliveMemo, ParetoNbd};
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::models::Algorithm;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum CountModel {
    BgNbd(BgNbd),
    ParetoNbd(ParetoNbd),
    /// Appended (stored models decode by variant index).
    MbgNbd(MbgNbd),
}

impl CountModel {
    /// The count models an option (`count_model`) chooses among.
    pub const ALGORITHMS: [Algorithm; 3] =
        [Algorithm::BgNbd, Algorithm::ParetoNbd, Algorithm::MbgNbd];

    /// The option choices, and how an error lists them.
    pub fn choices() -> (Vec<(&'static str, Algorithm)>, String) {
        let choices: Vec<(&'static str, Algorithm)> =
            Self::ALGORITHMS.iter().map(|a| (a.name(), *a)).collect();
        let quoted: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let listed = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => quoted.join(""),
        };
        (choices, listed)
    }

    /// Fits the count model `algorithm` names, checked to have converged to a valid optimum;
    /// with its log-likelihood. `None` for an algorithm that is no count model.
    pub fn fit(
        algorithm: Algorithm,
        customers: &[Customer],
        options: &FitOptions,
        interrupt: &mut dyn FnMut(),
    ) -> Result<Option<(CountModel, f64)>> {
        let (model, ll) = match algorithm {
            Algorithm::BgNbd => {
                let (m, ll) = BgNbd::fit(customers, options, interrupt)?;
                (CountModel::BgNbd(m), ll)
            }
            Algorithm::ParetoNbd => {
                let (m, ll) = ParetoNbd::fit(customers, options, interrupt)?;
                (CountModel::ParetoNbd(m), ll)
            }
            Algorithm::MbgNbd => {
                let (m, ll) = MbgNbd::fit(customers, options, interrupt)?;
                (CountModel::MbgNbd(m), ll)
            }
            _ => return Ok(None),
        };
        model.verdict(ll).map(|ll| Some((model, ll)))
    }

    /// The fitted model's log-likelihood `ll` if the fit is kept; otherwise the error saying
    /// why (a parameter run off to 0 or beyond 1e8), naming the limit model if there is one. A
    /// limit model is kept while its parameters are in that range: beyond it the likelihood is
    /// too flat and too noisy for the other parameters to mean anything (a 20,000-customer
    /// simulation ran on to s = 7e14 with r/α four times the truth).
    fn verdict(&self, ll: f64) -> Result<f64> {
        let named = self.named_params();
        let (names, values): (Vec<&str>, Vec<f64>) = named.iter().copied().unzip();
        check_fit(self.name(), &names, &values, ll).map_err(|e| match self.limit() {
            Some(limit) => e.with_detail(format!(
                "The likelihood keeps rising as parameters run off towards infinity: the data imply the limit model in which {limit}."
            )),
            None => e,
        })?;
        Ok(ll)
    }

    /// The limit model the fitted parameters stand for when they lie at a boundary of the
    /// parameter space — a gamma shape (r, s) or beta concentration (a + b) so large that no
    /// heterogeneity is left (coefficient of variation below 0.3 %) — in words; `None` for an
    /// interior fit. The likelihood of such data rises without end towards that limit, and the
    /// fit stops where it no longer improves.
    pub fn limit(&self) -> Option<String> {
        const HOMOGENEOUS: f64 = 1e5;
        let [(_, r), (_, alpha), (_, c), (_, d)] = self.named_params();
        let mut limits = Vec::new();
        // a limit with finite means: the shape and the scale grow together
        if r > HOMOGENEOUS && alpha > 1.0 {
            limits.push(format!(
                "every customer buys at the same rate while alive (r, alpha → ∞, r/alpha = {:.4} per time unit)",
                r / alpha
            ));
        }
        match self {
            CountModel::BgNbd(_) | CountModel::MbgNbd(_)
                if c > 1.0 && d > 1.0 && c + d > HOMOGENEOUS =>
            {
                limits.push(format!(
                    "every customer drops out after a purchase with the same probability (a, b → ∞, a/(a + b) = {:.4})",
                    c / (c + d)
                ))
            }
            CountModel::ParetoNbd(_) if c > HOMOGENEOUS && d > 1.0 => limits.push(format!(
                "every customer drops out at the same rate (s, beta → ∞, s/beta = {:.4} per time unit)",
                c / d
            )),
            _ => {}
        }
        (!limits.is_empty()).then(|| limits.join(", and "))
    }

    pub fn name(&self) -> &'static str {
        match self {
            CountModel::BgNbd(_) => "bgnbd",
            CountModel::ParetoNbd(_) => "pareto_nbd",
            CountModel::MbgNbd(_) => "mbgnbd",
        }
    }

    /// The parameters under the literature's names.
    pub fn named_params(&self) -> [(&'static str, f64); 4] {
        match self {
            CountModel::BgNbd(m) => [("r", m.r), ("alpha", m.alpha), ("a", m.a), ("b", m.b)],
            CountModel::ParetoNbd(m) => {
                [("r", m.r), ("alpha", m.alpha), ("s", m.s), ("beta", m.beta)]
            }
            CountModel::MbgNbd(m) => [("r", m.r), ("alpha", m.alpha), ("a", m.a), ("b", m.b)],
        }
    }

    /// The parameters as a jsonb object.
    pub fn params_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .named_params()
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        serde_json::Value::Object(map)
    }

    pub fn expected_purchases(&self, h: f64, x: f64, t_x: f64, t: f64) -> f64 {
        match self {
            CountModel::BgNbd(m) => m.expected_purchases(h, x, t_x, t),
            CountModel::ParetoNbd(m) => m.expected_purchases(h, x, t_x, t),
            CountModel::MbgNbd(m) => m.expected_purchases(h, x, t_x, t),
        }
    }

    pub fn expected_purchases_many(&self, hs: &[f64], x: f64, t_x: f64, t: f64, out: &mut [f64]) {
        match self {
            CountModel::BgNbd(m) => m.expected_purchases_many(hs, x, t_x, t, out),
            CountModel::ParetoNbd(m) => m.expected_purchases_many(hs, x, t_x, t, out),
            CountModel::MbgNbd(m) => m.expected_purchases_many(hs, x, t_x, t, out),
        }
    }

    /// [`CountModel::expected_purchases`] (the same bits), with what valuing many customers
    /// shares kept in `memo` (Pareto/NBD's dropout integrals; the other models have closed forms).
    pub fn expected_purchases_memo(
        &self,
        memo: Option<&mut AliveMemo>,
        h: f64,
        xs: [f64; 3],
    ) -> f64 {
        match (self, memo) {
            (CountModel::ParetoNbd(m), Some(memo)) => m.expected_purchases_memo(memo, h, xs),
            _ => self.expected_purchases(h, xs[0], xs[1], xs[2]),
        }
    }

    /// [`CountModel::expected_purchases_many`] with a memo, as [`CountModel::expected_purchases_memo`].
    pub fn expected_purchases_many_memo(
        &self,
        memo: Option<&mut AliveMemo>,
        hs: &[f64],
        xs: [f64; 3],
        out: &mut [f64],
    ) {
        match (self, memo) {
            (CountModel::ParetoNbd(m), Some(memo)) => {
                m.expected_purchases_many_memo(memo, hs, xs, out)
            }
            _ => self.expected_purchases_many(hs, xs[0], xs[1], xs[2], out),
        }
    }

    pub fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        match self {
            CountModel::BgNbd(m) => m.p_alive(x, t_x, t),
            CountModel::ParetoNbd(m) => m.p_alive(x, t_x, t),
            CountModel::MbgNbd(m) => m.p_alive(x, t_x, t),
        }
    }
}

/// Checks that a CLV fit converged to a finite optimum with every parameter in range; otherwise
/// a clear error suggesting the penalizer.
pub fn check_fit(model: &str, names: &[&str], values: &[f64], log_likelihood: f64) -> Result<()> {
    let out_of_range = |v: f64| !v.is_finite() || !(1e-8..=1e8).contains(&v);
    if values.iter().all(|&v| !out_of_range(v)) && log_likelihood.is_finite() {
        return Ok(());
    }
    let shown: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n} = {v:.4e}"))
        .collect();
    Err(EngineError::new(
        ErrorKind::FitFailed,
        format!(
            "{model} did not converge to a valid optimum: {} (log-likelihood {log_likelihood})",
            shown.join(", ")
        ),
    )
    .with_detail("A parameter ran off towards 0 or infinity: the data carry too little heterogeneity for this model (e.g. customers who all buy on the same schedule).")
    .with_hint("Add a penalty, e.g. options => '{\"penalizer\": 0.01}', or use more varied data."))
}

/// Length of an average month in days, the step at which CLV is discounted.
pub const MONTH_DAYS: f64 = 30.4375;
/// Longest horizon a CLV model is trained with, in days (100 years).
pub const MAX_HORIZON_DAYS: f64 = 1_200.0 * MONTH_DAYS;
/// Longest horizon a stored CLV model may have, in monthly steps (1,000 years: models trained
/// before the 100-year bound keep scoring exactly; a longer one is damaged, and would make
/// one row ask for unbounded memory and time).
pub const MAX_DISCOUNT_STEPS: usize = 12_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvModel {
    pub count: Option<CountModel>,
    pub spend: Option<GammaGamma>,
    /// Horizon of `customer_value(row)`, in the summary's time unit.
    pub horizon: f64,
    /// Yearly discount rate of `clv` (0.1 = 10 % a year).
    pub discount_rate: f64,
    /// Days in one time unit of the summary (7 for weeks).
    pub unit_days: f64,
}

/// What a scoring function asks of a CLV model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClvQuantity {
    ExpectedPurchases(f64),
    ProbabilityAlive,
    ExpectedSpend,
}

impl ClvModel {
    pub fn n_inputs(&self) -> usize {
        if self.spend.is_some() {
            4
        } else {
            3
        }
    }

    /// The model's value for `customer_value(row)`: discounted expected spend over the horizon
    /// for `clv`, expected purchases over the horizon for a count model, expected mean spend for
    /// a spend model.
    pub fn value(&self, input: &[f64]) -> f64 {
        // one row: no memo to fill and throw away
        self.value_with(input, None)
    }

    /// [`ClvModel::value`] (the same bits) for one of many customers, with what they share kept
    /// in `memo`.
    pub fn value_memo(&self, input: &[f64], memo: &mut AliveMemo) -> f64 {
        self.value_with(input, Some(memo))
    }

    fn value_with(&self, input: &[f64], memo: Option<&mut AliveMemo>) -> f64 {
        let xs = [input[0], input[1], input[2]];
        match (&self.count, &self.spend) {
            (Some(count), Some(spend)) => {
                let per_purchase = spend.expected_spend(xs[0], input[3]);
                self.discounted_purchases(count, xs, memo) * per_purchase
            }
            (Some(count), None) => count.expected_purchases_memo(memo, self.horizon, xs),
            (None, Some(spend)) => spend.expected_spend(xs[0], input[3]),
            (None, None) => f64::NAN,
        }
    }

    /// Σ over monthly steps of the purchases expected in the step, discounted to today.
    fn discounted_purchases(
        &self,
        count: &CountModel,
        xs: [f64; 3],
        memo: Option<&mut AliveMemo>,
    ) -> f64 {
        if self.discount_rate == 0.0 {
            return count.expected_purchases_memo(memo, self.horizon, xs);
        }
        // at most MAX_DISCOUNT_STEPS: `validate` refuses a longer horizon
        let step = MONTH_DAYS / self.unit_days;
        let steps = (self.horizon / step)
            .ceil()
            .clamp(1.0, MAX_DISCOUNT_STEPS as f64) as usize;
        let yearly = (1.0 + self.discount_rate).ln();
        let horizons: Vec<f64> = (1..=steps)
            .map(|k| (k as f64 * step).min(self.horizon))
            .collect();
        let mut expected = vec![0.0; steps];
        count.expected_purchases_many_memo(memo, &horizons, xs, &mut expected);
        let mut total = 0.0;
        let mut previous = 0.0;
        for (h, e) in horizons.iter().zip(&expected) {
            let years = h * self.unit_days / 365.25;
            total += (e - previous) * (-yearly * years).exp();
            previous = *e;
        }
        total
    }

    pub fn quantity(&self, quantity: ClvQuantity, input: &[f64], model: &str) -> Result<f64> {
        let (x, t_x, t) = (input[0], input[1], input[2]);
        let missing = |part: &str| {
            EngineError::invalid_parameter(format!("{model} has no {part}"))
                .with_hint("expected_purchases and p_alive need a bgnbd, mbgnbd, pareto_nbd or clv model; expected_spend a gamma_gamma or clv model.")
        };
        match quantity {
            ClvQuantity::ExpectedPurchases(h) => {
                if !h.is_finite() || h < 0.0 {
                    return Err(EngineError::invalid_parameter(format!(
                        "periods must be a finite number ≥ 0, got {h}"
                    )));
                }
                let count = self
                    .count
                    .as_ref()
                    .ok_or_else(|| missing("purchase-count model"))?;
                Ok(count.expected_purchases(h, x, t_x, t))
            }
            ClvQuantity::ProbabilityAlive => {
                let count = self
                    .count
                    .as_ref()
                    .ok_or_else(|| missing("purchase-count model"))?;
                Ok(count.p_alive(x, t_x, t))
            }
            ClvQuantity::ExpectedSpend => {
                let spend = self.spend.as_ref().ok_or_else(|| missing("spend model"))?;
                Ok(spend.expected_spend(x, input[3]))
            }
        }
    }

    pub fn validate(&self, n_features: usize) -> Result<()> {
        let params_ok = |v: &[f64]| v.iter().all(|p| p.is_finite() && *p > 0.0);
        let ok = (self.count.is_some() || self.spend.is_some())
            && n_features == self.n_inputs()
            && self.horizon.is_finite()
            && self.horizon >= 0.0
            && self.discount_rate.is_finite()
            && self.discount_rate > -1.0
            && self.unit_days.is_finite()
            && self.unit_days > 0.0
            && self.horizon * self.unit_days <= MAX_DISCOUNT_STEPS as f64 * MONTH_DAYS
            && self
                .count
                .is_none_or(|m| params_ok(&m.named_params().map(|(_, v)| v)))
            // training refuses q ≤ 1 (an infinite mean spend), so no stored model has it
            && self.spend.is_none_or(|m| params_ok(&m.params()) && m.q > 1.0);
        if ok {
            Ok(())
        } else {
            Err(EngineError::corrupted("CLV model parameters are invalid"))
        }
    }

    /// Parameters under the literature's names, for `model_params`.
    pub fn params(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Some(count) = &self.count {
            for (k, v) in count.named_params() {
                map.insert(k.into(), v.into());
            }
            map.insert("count_model".into(), count.name().into());
            if let Some(limit) = count.limit() {
                map.insert("limit".into(), limit.into());
            }
        }
        if let Some(m) = &self.spend {
            for (k, v) in [("p", m.p), ("q", m.q), ("gamma", m.gamma)] {
                map.insert(k.into(), v.into());
            }
        }
        if self.count.is_some() {
            map.insert("horizon".into(), self.horizon.into());
            map.insert("time_unit_days".into(), self.unit_days.into());
        }
        if self.count.is_some() && self.spend.is_some() {
            map.insert("discount_rate".into(), self.discount_rate.into());
        }
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clv(discount_rate: f64) -> ClvModel {
        ClvModel {
            count: Some(CountModel::BgNbd(BgNbd {
                r: 0.243,
                alpha: 4.414,
                a: 0.793,
                b: 2.426,
            })),
            spend: Some(GammaGamma {
                p: 6.25,
                q: 3.74,
                gamma: 15.44,
            }),
            horizon: 39.0,
            discount_rate,
            unit_days: 7.0,
        }
    }

    #[test]
    fn a_stored_horizon_beyond_a_millennium_or_an_infinite_mean_spend_is_invalid() {
        // e.g. a damaged model: 1e6 weeks would be 230,000 monthly steps for every scored row
        let mut m = clv(0.1);
        m.horizon = 1e6;
        assert!(m.validate(4).is_err());
        m.horizon = 50_000.0; // 958 years of weeks: still scored, exactly
        assert!(m.validate(4).is_ok());
        assert!(m.value(&[2.0, 30.43, 38.86, 25.0]).is_finite());
        // a Gamma-Gamma model with q ≤ 1 (infinite mean spend) is never valid
        let mut bad = clv(0.1);
        bad.spend = Some(GammaGamma {
            p: 6.25,
            q: 0.9,
            gamma: 15.44,
        });
        assert!(bad.validate(4).is_err());
    }

    #[test]
    fn undiscounted_clv_is_expected_purchases_times_expected_spend() {
        let m = clv(0.0);
        let input = [2.0, 30.43, 38.86, 25.0];
        let spend = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        }
        .expected_spend(2.0, 25.0);
        // E[Y(39)] = 1.226 (published); times the Gamma-Gamma conditional mean
        assert!((m.value(&input) - 1.2260 * spend).abs() < 0.001 * spend);
    }

    #[test]
    fn discounting_lowers_value_and_a_zero_rate_changes_nothing() {
        let input = [2.0, 30.43, 38.86, 25.0];
        let undiscounted = clv(0.0).value(&input);
        let discounted = clv(0.10).value(&input);
        assert!(discounted < undiscounted);
        // 39 weeks at 10 % a year: every purchase is discounted by at most (1.1)^(-0.75)
        assert!(discounted > undiscounted * 1.1f64.powf(-39.0 * 7.0 / 365.25));
        // monthly steps sum back to the whole horizon when the rate is tiny
        assert!((clv(1e-12).value(&input) - undiscounted).abs() < 1e-9);
    }

    #[test]
    fn quantities_need_the_right_model_parts() {
        let spend_only = ClvModel {
            count: None,
            ..clv(0.0)
        };
        let err = spend_only
            .quantity(
                ClvQuantity::ProbabilityAlive,
                &[1.0, 1.0, 2.0, 3.0],
                "model \"s\"",
            )
            .unwrap_err();
        assert_eq!(err.message, "model \"s\" has no purchase-count model");
        let m = clv(0.0);
        let p = m
            .quantity(ClvQuantity::ProbabilityAlive, &[0.0, 0.0, 5.0, 0.0], "m")
            .unwrap();
        assert_eq!(p, 1.0);
        assert!(m
            .quantity(
                ClvQuantity::ExpectedPurchases(-1.0),
                &[0.0, 0.0, 5.0, 0.0],
                "m"
            )
            .is_err());
    }

    /// 20,000 customers with T uniform in (1, 78] weeks, a geometric number of repeat purchases
    /// (half stop after each) spread uniformly over (0, T]: nobody drops out in the BG/NBD sense
    /// of a customer-specific probability — the BG/NBD optimum lies at a, b → ∞ (issue #13's
    /// case, where 0.2 crawled through 5,000 iterations).
    fn boundary_data() -> Vec<Customer> {
        let mut rng = crate::engine::stats::SplitMix64::new(1);
        (0..20_000)
            .map(|_| {
                let t = 1.0 + 77.0 * rng.next_f64();
                let mut x = 0.0;
                while rng.next_f64() < 0.5 {
                    x += 1.0;
                }
                let t_x = if x > 0.0 { t * rng.next_f64() } else { 0.0 };
                Customer::one(x, t_x, t, 0.0)
            })
            .collect()
    }

    /// A limit model is kept while its parameters are in range (the 1M-customer CDNOW
    /// resample's Pareto/NBD fit stops at β = 8.6e7) and refused with the limit named beyond it
    /// (the 10M one's at 1.7e8); a scale run off outside any limit model is refused too.
    #[test]
    fn limit_models_are_kept_in_range_and_named_beyond() {
        let model = |s: f64, beta: f64| {
            CountModel::ParetoNbd(ParetoNbd {
                r: 0.704,
                alpha: 12.58,
                s,
                beta,
            })
        };
        let (at_1m, at_10m) = (model(4.41e6, 8.65e7), model(8.62e6, 1.69e8));
        assert!(at_1m.limit().is_some() && at_10m.limit().is_some());
        assert_eq!(at_1m.verdict(-4.2e6).unwrap(), -4.2e6);
        let e = at_10m.verdict(-4.2e7).unwrap_err();
        assert_eq!(e.kind, ErrorKind::FitFailed);
        let detail = e.detail.unwrap();
        assert!(
            detail.contains("every customer drops out at the same rate"),
            "{detail}"
        );
        let runaway_scale = CountModel::ParetoNbd(ParetoNbd {
            r: 0.7,
            alpha: 2e8,
            s: 0.6,
            beta: 11.0,
        });
        assert!(runaway_scale.limit().is_none());
        let e = runaway_scale.verdict(-9.0e3).unwrap_err();
        assert_eq!(e.kind, ErrorKind::FitFailed);
        assert!(!e.detail.unwrap().contains("limit model"));
    }

    /// BG/NBD and MBG/NBD on [`boundary_data`] reach a verdict within 100 iterations (0.2
    /// crawled through 5,000): a fit converged in value whose parameters stand for the limit
    /// model — ten times further along the boundary gains less than 1e-7 of the
    /// log-likelihood — and names it, or an error whose detail names it.
    #[test]
    fn a_fit_on_the_boundary_stops_fast_and_names_the_limit_model() {
        let customers = boundary_data();
        let (data, _) =
            crate::engine::clv::data::CountData::for_count_model(&customers, "bgnbd").unwrap();
        let limit_text =
            "every customer drops out after a purchase with the same probability (a, b → ∞, a/(a + b) = ";
        for algorithm in [Algorithm::BgNbd, Algorithm::MbgNbd] {
            let mut iterations = 0;
            let fitted =
                CountModel::fit(algorithm, &customers, &FitOptions::default(), &mut || {
                    iterations += 1
                });
            assert!(iterations <= 100, "{algorithm:?}: {iterations} iterations");
            let (fitted, ll) = match fitted {
                Ok(fitted) => fitted.unwrap(),
                Err(e) => {
                    assert_eq!(e.kind, ErrorKind::FitFailed);
                    let detail = e.detail.unwrap();
                    assert!(detail.contains(limit_text), "{algorithm:?}: {detail}");
                    continue;
                }
            };
            let limit = fitted.limit().expect("a limit model");
            assert!(limit.starts_with(limit_text), "{limit}");
            let further = match fitted {
                CountModel::BgNbd(m) => BgNbd {
                    a: 10.0 * m.a,
                    b: 10.0 * m.b,
                    ..m
                }
                .log_likelihood(&data),
                CountModel::MbgNbd(m) => MbgNbd {
                    a: 10.0 * m.a,
                    b: 10.0 * m.b,
                    ..m
                }
                .log_likelihood(&data),
                CountModel::ParetoNbd(_) => unreachable!(),
            };
            assert!(
                further - ll < 1e-7 * ll.abs(),
                "{algorithm:?}: {} more",
                further - ll
            );
        }
    }

    #[test]
    fn an_interior_fit_has_no_limit() {
        let m = CountModel::BgNbd(BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        });
        assert_eq!(m.limit(), None);
        let m = CountModel::ParetoNbd(ParetoNbd {
            r: 2e5,
            alpha: 1e5,
            s: 0.6,
            beta: 11.7,
        });
        assert_eq!(
            m.limit().unwrap(),
            "every customer buys at the same rate while alive (r, alpha → ∞, r/alpha = 2.0000 per time unit)"
        );
    }
}
