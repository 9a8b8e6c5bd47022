//! The modified BG/NBD model (Batislam, Denizel & Filiztekin 2007, "Empirical validation and
//! comparison of models for customer base analysis", IJRM 24(3)): as BG/NBD, but a customer may
//! also drop out right at the first purchase, so a customer without repeat purchases is no
//! longer certainly alive (BG/NBD gives every one-time buyer P(alive) = 1).
//!
//! Per customer, with B the beta function:
//! L = Γ(r+x)αʳ/Γ(r) · [B(a, b+x+1)/B(a, b) · (α+T)^−(r+x) + B(a+1, b+x)/B(a, b) · (α+t_x)^−(r+x)].

use serde::{Deserialize, Serialize};

use super::data::{log_add_exp, CountData, Customer};
use super::optimize::{fit_count_params, FitOptions};
use super::special::{digamma, hyp2f1, hyp2f1_many, ln_gamma};
use crate::engine::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MbgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// The terms of one distinct x shared by every customer with it.
struct PerX {
    /// ln Γ(r+x) − ln Γ(r) + r ln α + ln Γ(a+b) + ln Γ(b+x+1) − ln Γ(b) − ln Γ(a+b+x+1).
    g: f64,
    /// ln a − ln(b+x): the dropped-out term's extra factor.
    ln_dropped: f64,
    dr: f64,
    da: f64,
    db: f64,
}

impl MbgNbd {
    pub fn params(&self) -> [f64; 4] {
        [self.r, self.alpha, self.a, self.b]
    }

    fn per_x(&self, x: f64) -> PerX {
        let MbgNbd { r, alpha, a, b } = *self;
        let psi_abx = digamma(a + b + x + 1.0);
        PerX {
            g: ln_gamma(r + x) - ln_gamma(r)
                + r * alpha.ln()
                + ln_gamma(a + b)
                + ln_gamma(b + x + 1.0)
                - ln_gamma(b)
                - ln_gamma(a + b + x + 1.0),
            ln_dropped: a.ln() - (b + x).ln(),
            dr: digamma(r + x) - digamma(r) + alpha.ln(),
            da: digamma(a + b) - psi_abx,
            db: digamma(a + b) + digamma(b + x + 1.0) - digamma(b) - psi_abx,
        }
    }

    /// Total log-likelihood of `data`.
    pub fn log_likelihood(&self, data: &CountData) -> f64 {
        self.log_likelihood_gradient(data).0
    }

    /// Log-likelihood and its gradient with respect to (r, α, a, b).
    pub fn log_likelihood_gradient(&self, data: &CountData) -> (f64, [f64; 4]) {
        let MbgNbd { r, alpha, a, b } = *self;
        let per_x: Vec<PerX> = data.distinct_x.iter().map(|&x| self.per_x(x)).collect();
        let at = |t: &f64| ((alpha + t).ln(), 1.0 / (alpha + t));
        let at_t: Vec<(f64, f64)> = data.distinct_t.iter().map(at).collect();
        let at_t_x: Vec<(f64, f64)> = data.distinct_t_x.iter().map(at).collect();
        let mut total = 0.0;
        let mut grad = [0.0; 4];
        for i in 0..data.x.len() {
            let (x, w) = (data.x[i], data.weight[i]);
            let px = &per_x[data.x_index[i]];
            let (ln_t, inv_t) = at_t[data.t_index[i]];
            let (ln_tx, inv_tx) = at_t_x[data.t_x_index[i]];
            let alive = -(r + x) * ln_t;
            let dropped = px.ln_dropped - (r + x) * ln_tx;
            let lse = log_add_exp(alive, dropped);
            let (w_alive, w_dropped) = ((alive - lse).exp(), (dropped - lse).exp());
            total += w * (px.g + lse);
            grad[0] += w * (px.dr - w_alive * ln_t - w_dropped * ln_tx);
            grad[1] += w * (r / alpha - (r + x) * (w_alive * inv_t + w_dropped * inv_tx));
            grad[2] += w * (px.da + w_dropped / a);
            grad[3] += w * (px.db - w_dropped / (b + x));
        }
        (total, grad)
    }

    /// Maximum-likelihood fit, penalised as [`super::optimize::fit_positive_params`] says.
    pub fn fit(
        customers: &[Customer],
        fit: &FitOptions,
        interrupt: &mut dyn FnMut(),
    ) -> Result<(MbgNbd, f64)> {
        let ll_gradient = |[r, alpha, a, b]: [f64; 4], data: &CountData| {
            MbgNbd { r, alpha, a, b }.log_likelihood_gradient(data)
        };
        let ([r, alpha, a, b], data) =
            fit_count_params("mbgnbd", customers, fit, &ll_gradient, interrupt)?;
        let model = MbgNbd { r, alpha, a, b };
        Ok((model, model.log_likelihood(&data)))
    }

    /// Probability that a customer with this history is still alive at T (also below 1 for a
    /// customer without repeat purchases).
    pub fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        let MbgNbd { r, alpha, a, b } = *self;
        let odds_dead = (a / (b + x)).ln() + (r + x) * ((alpha + t) / (alpha + t_x)).ln();
        1.0 / (1.0 + odds_dead.exp())
    }

    /// E[Y(h) | x, t_x, T] for several horizons at once (sharing P(alive) and the 2F1 series).
    pub fn expected_purchases_many(&self, hs: &[f64], x: f64, t_x: f64, t: f64, out: &mut [f64]) {
        let MbgNbd { r, alpha, a, b } = *self;
        let zs: Vec<f64> = hs
            .iter()
            .map(|h| h.max(0.0) / (alpha + t + h.max(0.0)))
            .collect();
        hyp2f1_many(r + x, b + x + 1.0, a + b + x, &zs, out);
        let head = (a + b + x) / (a - 1.0) * self.p_alive(x, t_x, t);
        for (o, h) in out.iter_mut().zip(hs) {
            *o = if *h <= 0.0 {
                0.0
            } else {
                head * (1.0 - ((alpha + t) / (alpha + t + h)).powf(r + x) * *o)
            };
        }
    }

    /// E[Y(h) | x, t_x, T]: expected repeat purchases in the next `h` time units.
    pub fn expected_purchases(&self, h: f64, x: f64, t_x: f64, t: f64) -> f64 {
        if h <= 0.0 {
            return 0.0;
        }
        let MbgNbd { r, alpha, a, b } = *self;
        let z = h / (alpha + t + h);
        let f = hyp2f1(r + x, b + x + 1.0, a + b + x, z);
        let head = (a + b + x) / (a - 1.0);
        let tail = 1.0 - ((alpha + t) / (alpha + t + h)).powf(r + x) * f;
        head * tail * self.p_alive(x, t_x, t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clv::bgnbd::tests::cdnow_sample;

    /// BTYDplus's estimate on the CDNOW sample, as recorded in lifetimes' test suite
    /// (`test_params_out_is_close_to_BTYDplus`): r = 0.525, α = 6.183, a = 0.891, b = 1.614.
    const BTYDPLUS: MbgNbd = MbgNbd {
        r: 0.525,
        alpha: 6.183,
        a: 0.891,
        b: 1.614,
    };

    #[test]
    fn reproduces_btydplus_on_the_cdnow_sample() {
        let (m, _) = MbgNbd::fit(&cdnow_sample(), &FitOptions::default(), &mut || {}).unwrap();
        assert_eq!(
            format!("{:.3} {:.3} {:.3} {:.3}", m.r, m.alpha, m.a, m.b),
            "0.525 6.183 0.891 1.614"
        );
    }

    /// lifetimes 0.11 `ModifiedBetaGeoFitter` at BTYDplus's parameters: the total
    /// log-likelihood of the CDNOW sample (its mean negative log-likelihood × 2,357).
    #[test]
    fn log_likelihood_matches_lifetimes() {
        let data = CountData::new(&cdnow_sample());
        let ll = BTYDPLUS.log_likelihood(&data);
        assert!((ll - -9582.132795287249).abs() < 1e-6, "{ll}");
    }

    /// lifetimes 0.11 `conditional_expected_number_of_purchases_up_to_time` and
    /// `conditional_probability_alive` at BTYDplus's parameters: (x, t_x, T, h, E, P(alive)).
    #[test]
    fn expectations_match_lifetimes() {
        let cases = [
            (2.0, 30.43, 38.86, 39.0, 1.2629606233, 0.7062022651),
            (0.0, 0.0, 38.86, 39.0, 0.1540127467, 0.3897350809),
            (1.0, 1.71, 38.86, 52.0, 0.2401319447, 0.1708364843),
            (7.0, 29.43, 38.86, 10.0, 0.9653715757, 0.6227238142),
        ];
        for (x, t_x, t, h, e, p) in cases {
            let got = BTYDPLUS.expected_purchases(h, x, t_x, t);
            assert!(
                (got - e).abs() < 1e-8,
                "E[Y({h}) | {x}, {t_x}, {t}] = {got}, want {e}"
            );
            let mut many = [0.0; 2];
            BTYDPLUS.expected_purchases_many(&[h, 0.0], x, t_x, t, &mut many);
            assert!((many[0] - e).abs() < 1e-8 && many[1] == 0.0);
            let got = BTYDPLUS.p_alive(x, t_x, t);
            assert!(
                (got - p).abs() < 1e-9,
                "P(alive | {x}, {t_x}, {t}) = {got}, want {p}"
            );
        }
    }

    /// A one-time buyer may have dropped out at the first purchase (BG/NBD: P(alive) = 1), and
    /// a customer first seen at the end (T = 0) has likelihood 1: b/(a+b) + a/(a+b).
    #[test]
    fn one_time_buyers_may_have_dropped_out() {
        assert!(BTYDPLUS.p_alive(0.0, 0.0, 20.0) < 1.0);
        let data = CountData::new(&[Customer::one(0.0, 0.0, 0.0, 0.0)]);
        assert!(BTYDPLUS.log_likelihood(&data).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = CountData::new(&cdnow_sample());
        let (_, grad) = BTYDPLUS.log_likelihood_gradient(&data);
        let p = BTYDPLUS.params();
        for k in 0..4 {
            let h = 1e-6 * p[k];
            let (mut up, mut down) = (p, p);
            up[k] += h;
            down[k] -= h;
            let ll = |q: [f64; 4]| {
                MbgNbd {
                    r: q[0],
                    alpha: q[1],
                    a: q[2],
                    b: q[3],
                }
                .log_likelihood(&data)
            };
            let numeric = (ll(up) - ll(down)) / (2.0 * h);
            assert!(
                (grad[k] - numeric).abs() < 1e-4 * numeric.abs().max(1.0),
                "parameter {k}: {} vs {numeric}",
                grad[k]
            );
        }
    }
}
