//! The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves
//! for customer base analysis", J. Marketing Research 42(4)): a customer's transaction values are
//! gamma(p, ν) with ν ~ gamma(q, γ) across customers. Fitted on customers with repeat purchases
//! and a positive mean repeat spend; the others are given the population mean.

use serde::{Deserialize, Serialize};

use super::data::Customer;
use super::optimize::{minimize_smooth, FitOptions};
use super::special::{digamma, ln_gamma};
use crate::engine::error::{EngineError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// What the fit used: customers with x > 0 and a positive mean spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendFit {
    pub model: GammaGamma,
    pub log_likelihood: f64,
    pub customers_used: usize,
    /// Repeat customers left out because their mean repeat spend is ≤ 0 (refunds, free items).
    pub excluded_nonpositive: usize,
}

impl GammaGamma {
    fn from_log(v: &[f64]) -> GammaGamma {
        GammaGamma {
            p: v[0].exp(),
            q: v[1].exp(),
            gamma: v[2].exp(),
        }
    }

    pub fn params(&self) -> [f64; 3] {
        [self.p, self.q, self.gamma]
    }

    /// ln f(z̄ | p, q, γ, x) for one customer with x repeat purchases of mean value z̄.
    pub fn ln_density(&self, x: f64, mean: f64) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let px = p * x;
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
            + q * gamma.ln()
            + (px - 1.0) * mean.ln()
            + px * x.ln()
            - (px + q) * (gamma + mean * x).ln()
    }

    /// Maximum-likelihood fit on the customers with repeat purchases and a positive mean repeat
    /// spend. `penalizer` adds `penalizer · Σ params²` to the mean negative log-likelihood.
    pub fn fit(
        customers: &[Customer],
        fit: &FitOptions,
        interrupt: &mut dyn FnMut(),
    ) -> Result<SpendFit> {
        let data = SpendData::new(customers)?;
        let n = data.n;
        // minimise over log-parameters θ = ln p, with ∂/∂θₖ = pₖ ∂/∂pₖ
        let mut objective = |v: &[f64], gradient: &mut [f64]| {
            let m = GammaGamma::from_log(v);
            let (value, g) = data.log_likelihood_gradient(&m);
            let params = m.params();
            for k in 0..3 {
                gradient[k] = params[k] * (-g[k] / n + 2.0 * fit.penalizer * params[k]);
            }
            -value / n + fit.penalizer * params.iter().map(|p| p * p).sum::<f64>()
        };
        let start = [0.0, 1f64.ln(), data.mean_spend.max(1e-6).ln()];
        let best = minimize_smooth(
            "gamma_gamma",
            &mut objective,
            &start,
            &fit.settings(),
            interrupt,
        )?;
        let model = GammaGamma::from_log(&best.x);
        Ok(SpendFit {
            model,
            log_likelihood: data.log_likelihood_gradient(&model).0,
            customers_used: data.customers_used,
            excluded_nonpositive: data.excluded_nonpositive,
        })
    }

    /// Population mean transaction value, E[Z] = pγ/(q − 1); infinite when q ≤ 1.
    pub fn population_mean(&self) -> f64 {
        if self.q <= 1.0 {
            f64::INFINITY
        } else {
            self.p * self.gamma / (self.q - 1.0)
        }
    }

    /// E[Z | x, z̄]: expected value of the customer's future transactions. Customers without
    /// repeat purchases, or with a mean repeat spend ≤ 0, get the population mean.
    pub fn expected_spend(&self, x: f64, mean: f64) -> f64 {
        if x <= 0.0 || mean.is_nan() || mean <= 0.0 {
            return self.population_mean();
        }
        let GammaGamma { p, q, gamma } = *self;
        p * (gamma + mean * x) / (p * x + q - 1.0)
    }
}

/// The customers a fit uses, laid out for a cheap log-likelihood: per customer only
/// (px − 1) ln z̄ − (px + q) ln(γ + z̄ x) is left to compute; the gamma-function terms are computed
/// once per distinct x (a few dozen), ln z̄ and ln x once for the whole fit.
struct SpendData {
    /// The distinct repeat-purchase counts x, ascending.
    distinct_x: Vec<f64>,
    /// ln x of each `distinct_x`.
    ln_x: Vec<f64>,
    /// Per used summary row: (index of its x in `distinct_x`, x, z̄, ln z̄, how many customers
    /// share it).
    rows: Vec<(usize, f64, f64, f64, f64)>,
    /// Customers used (weighted), which the log-likelihood is averaged over.
    n: f64,
    /// Their mean spend, from which the fit starts.
    mean_spend: f64,
    customers_used: usize,
    excluded_nonpositive: usize,
}

impl SpendData {
    /// Keeps the customers with repeat purchases and a positive, finite mean repeat spend;
    /// refuses fewer than two.
    fn new(customers: &[Customer]) -> Result<SpendData> {
        let repeaters: Vec<&Customer> = customers.iter().filter(|c| c.frequency > 0.0).collect();
        // (x, mean spend, how many customers share them)
        let used: Vec<(f64, f64, f64)> = repeaters
            .iter()
            .filter(|c| c.monetary_value > 0.0 && c.monetary_value.is_finite())
            .map(|c| (c.frequency, c.monetary_value, c.count))
            .collect();
        let n_repeaters = repeaters.iter().map(|c| c.count).sum::<f64>() as usize;
        let n = used.iter().map(|(_, _, w)| w).sum::<f64>();
        let n_used = n as usize;
        if n_used < 2 {
            return Err(EngineError::insufficient_data(format!(
                "gamma_gamma needs customers with repeat purchases and a positive mean repeat spend; found {n_used}"
            ))
            .with_detail(format!(
                "{n_repeaters} customers have repeat purchases, {} of them with a mean repeat spend ≤ 0.",
                n_repeaters - n_used
            )));
        }
        let mean_spend = used.iter().map(|(_, m, w)| m * w).sum::<f64>() / n;
        let mut distinct_x: Vec<f64> = used.iter().map(|(x, _, _)| *x).collect();
        distinct_x.sort_by(f64::total_cmp);
        distinct_x.dedup();
        let rows: Vec<(usize, f64, f64, f64, f64)> = used
            .iter()
            .map(|&(x, z, w)| (distinct_x.partition_point(|d| *d < x), x, z, z.ln(), w))
            .collect();
        let ln_x: Vec<f64> = distinct_x.iter().map(|x| x.ln()).collect();
        Ok(SpendData {
            distinct_x,
            ln_x,
            rows,
            n,
            mean_spend,
            customers_used: n_used,
            excluded_nonpositive: n_repeaters - n_used,
        })
    }

    /// The log-likelihood of `m` and its gradient with respect to (p, q, γ).
    fn log_likelihood_gradient(&self, m: &GammaGamma) -> (f64, [f64; 3]) {
        let GammaGamma { p, q, gamma } = *m;
        let (ln_gamma_scale, psi_q) = (gamma.ln(), digamma(q));
        // per distinct x: (the terms of the log-likelihood that depend on x only, and their
        // derivatives by p and by q)
        let per_x: Vec<(f64, f64, f64)> = self
            .distinct_x
            .iter()
            .zip(&self.ln_x)
            .map(|(&x, &lx)| {
                let px = p * x;
                let (psi_pxq, psi_px) = (digamma(px + q), digamma(px));
                (
                    ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * ln_gamma_scale + px * lx,
                    x * (psi_pxq - psi_px + lx),
                    psi_pxq - psi_q + ln_gamma_scale,
                )
            })
            .collect();
        let mut total = 0.0;
        let mut g = [0.0; 3];
        for &(i, x, z, ln_z, w) in &self.rows {
            let px = p * x;
            let (value, dp, dq) = per_x[i];
            let ln_scale = (gamma + z * x).ln();
            total += w * (value + (px - 1.0) * ln_z - (px + q) * ln_scale);
            g[0] += w * (dp + x * ln_z - x * ln_scale);
            g[1] += w * (dq - ln_scale);
            g[2] += w * (q / gamma - (px + q) / (gamma + z * x));
        }
        (total, g)
    }
}

#[cfg(test)]
mod tests {
    use super::super::bgnbd::tests::cdnow_sample;
    use super::*;

    /// Published: p = 6.25, q = 3.74, γ = 15.44 on the 946 repeat customers of the sample. The
    /// shipped summary rounds z̄ to cents, which moves γ to 15.448: scipy (Nelder–Mead + BFGS on
    /// the same file) finds p = 6.24880, q = 3.74459, γ = 15.44774, LL = −4055.92324.
    #[test]
    fn reproduces_the_published_cdnow_fit() {
        let fit = GammaGamma::fit(&cdnow_sample(), &FitOptions::default(), &mut || {}).unwrap();
        let m = fit.model;
        assert_eq!(format!("{:.2} {:.2}", m.p, m.q), "6.25 3.74");
        assert!((m.gamma - 15.44).abs() < 0.01, "{m:?}");
        for (got, scipy) in m.params().iter().zip([6.24880, 3.74459, 15.44774]) {
            assert!((got - scipy).abs() < 2e-4, "{m:?}");
        }
        assert!(
            (fit.log_likelihood - -4_055.923_24).abs() < 1e-4,
            "{}",
            fit.log_likelihood
        );
        assert_eq!(fit.customers_used, 946);
        assert_eq!(fit.excluded_nonpositive, 0);
    }

    /// The conditional expectation is a weighted mean of the population mean and the customer's
    /// own mean (equation 5 of the paper), and tends to the customer's mean as x grows.
    #[test]
    fn expected_spend_weights_population_and_customer_means() {
        let m = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let (x, z) = (4.0, 30.0);
        let w = (m.q - 1.0) / (m.p * x + m.q - 1.0);
        let want = w * m.population_mean() + (1.0 - w) * z;
        assert!((m.expected_spend(x, z) - want).abs() < 1e-12);
        assert!((m.expected_spend(1e7, z) - z).abs() < 1e-3);
        assert_eq!(m.expected_spend(0.0, 0.0), m.population_mean());
        assert_eq!(m.expected_spend(2.0, -5.0), m.population_mean());
    }

    /// The density integrates to 1 over z̄ (numerically, x = 3).
    #[test]
    fn density_integrates_to_one() {
        let m = GammaGamma {
            p: 2.5,
            q: 3.0,
            gamma: 10.0,
        };
        let (mut total, step) = (0.0, 0.01);
        let mut z = step / 2.0;
        while z < 2_000.0 {
            total += m.ln_density(3.0, z).exp() * step;
            z += step;
        }
        assert!((total - 1.0).abs() < 1e-4, "{total}");
    }

    #[test]
    fn nonpositive_spend_is_excluded_and_reported() {
        let mut customers = cdnow_sample();
        let repeater = customers.iter().position(|c| c.frequency > 0.0).unwrap();
        customers[repeater].monetary_value = -4.0;
        let fit = GammaGamma::fit(&customers, &FitOptions::default(), &mut || {}).unwrap();
        assert_eq!((fit.customers_used, fit.excluded_nonpositive), (945, 1));
        let none: Vec<Customer> = customers
            .iter()
            .map(|c| Customer {
                monetary_value: 0.0,
                ..*c
            })
            .collect();
        let err = GammaGamma::fit(&none, &FitOptions::default(), &mut || {}).unwrap_err();
        assert!(err.message.contains("found 0"), "{}", err.message);
    }
}
