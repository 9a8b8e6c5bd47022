//! The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): purchases follow a Poisson
//! process with a gamma(r, α) rate while alive; lifetimes are exponential with a gamma(s, β)
//! rate. Likelihood and expressions as in Fader & Hardie, "A Note on Deriving the Pareto/NBD
//! Model and Related Expressions" (2005).

use serde::{Deserialize, Serialize};

use super::data::{log_add_exp, CountData, Customer};
use super::optimize::{minimize_smooth, FitOptions};
use super::special::{hyp2f1, ln_gamma};
use crate::engine::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbd {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
}

/// ln(1 − eˣ) for x ≤ 0.
fn ln_1m_exp(x: f64) -> f64 {
    if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

impl ParetoNbd {
    fn from_log(p: &[f64]) -> ParetoNbd {
        ParetoNbd {
            r: p[0].exp(),
            alpha: p[1].exp(),
            s: p[2].exp(),
            beta: p[3].exp(),
        }
    }

    pub fn params(&self) -> [f64; 4] {
        [self.r, self.alpha, self.s, self.beta]
    }

    /// ln ₂F₁(…; z(age)) − (r+s+x) ln(max(α,β) + age): one of the two terms of A₀.
    fn a0_term(&self, x: f64, age: f64) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let rsx = r + s + x;
        let (hi, other_b) = if alpha >= beta {
            (alpha, s + 1.0)
        } else {
            (beta, r + x)
        };
        let delta = (alpha - beta).abs();
        hyp2f1(rsx, other_b, rsx + 1.0, delta / (hi + age)).ln() - rsx * (hi + age).ln()
    }

    /// ln A₀ from its two terms, or −∞ if t_x = T.
    fn ln_a0_from(at_last: f64, at_end: f64) -> f64 {
        if at_end >= at_last {
            return f64::NEG_INFINITY;
        }
        at_last + ln_1m_exp(at_end - at_last)
    }

    /// ln A₀ of the note (the probability mass of dying between t_x and T), or −∞ if t_x = T.
    fn ln_a0(&self, x: f64, t_x: f64, t: f64) -> f64 {
        ParetoNbd::ln_a0_from(self.a0_term(x, t_x), self.a0_term(x, t))
    }

    pub fn log_likelihood(&self, data: &CountData) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let base = -ln_gamma(r) + r * alpha.ln() + s * beta.ln();
        // per distinct x: the gamma terms and ln(s / (r+s+x))
        let per_x: Vec<(f64, f64)> = data
            .distinct_x
            .iter()
            .map(|&x| (ln_gamma(r + x) + base, (s / (r + s + x)).ln()))
            .collect();
        // the 2F1 terms once per distinct (x, age) pair, the "alive" term once per (x, T)
        let at_last: Vec<f64> = data
            .x_t_x_pairs
            .iter()
            .map(|&(x, t_x)| self.a0_term(x, t_x))
            .collect();
        let at_end: Vec<(f64, f64)> = data
            .x_t_pairs
            .iter()
            .map(|&(x, t)| {
                (
                    self.a0_term(x, t),
                    -(r + x) * (alpha + t).ln() - s * (beta + t).ln(),
                )
            })
            .collect();
        let mut total = 0.0;
        for i in 0..data.x.len() {
            let (g, ln_s_share) = per_x[data.x_index[i]];
            let (end, alive) = at_end[data.x_t_index[i]];
            let died = ln_s_share + ParetoNbd::ln_a0_from(at_last[data.x_t_x_index[i]], end);
            total += data.weight[i] * (g + log_add_exp(alive, died));
        }
        total
    }

    pub fn fit(
        customers: &[Customer],
        fit: &FitOptions,
        interrupt: &mut dyn FnMut(),
    ) -> Result<(ParetoNbd, f64)> {
        let (data, mean_t) = CountData::for_count_model(customers, "pareto_nbd")?;
        let n = data.n_customers;
        let value = |p: &[f64]| {
            let m = ParetoNbd::from_log(p);
            -m.log_likelihood(&data) / n
                + fit.penalizer * m.params().iter().map(|v| v * v).sum::<f64>()
        };
        // BFGS with central-difference gradients in log-parameters (the 2F1 terms have no cheap
        // analytic derivatives); ~3× fewer likelihood evaluations than Nelder–Mead here.
        let mut objective = |theta: &[f64], gradient: &mut [f64]| {
            const H: f64 = 1e-5;
            let mut probe = theta.to_vec();
            for k in 0..theta.len() {
                probe[k] = theta[k] + H;
                let up = value(&probe);
                probe[k] = theta[k] - H;
                let down = value(&probe);
                probe[k] = theta[k];
                gradient[k] = (up - down) / (2.0 * H);
            }
            value(theta)
        };
        let scale = (mean_t / 4.0).max(1e-3).ln();
        let start = [0.0, scale, 0.0, scale];
        let best = minimize_smooth(
            "pareto_nbd",
            &mut objective,
            &start,
            &fit.settings(),
            interrupt,
        )?;
        let model = ParetoNbd::from_log(&best.x);
        Ok((model, model.log_likelihood(&data)))
    }

    /// P(alive at T | x, t_x, T).
    pub fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        let ParetoNbd { r, alpha, s, beta } = *self;
        let ln_ratio = (s / (r + s + x)).ln()
            + (r + x) * (alpha + t).ln()
            + s * (beta + t).ln()
            + self.ln_a0(x, t_x, t);
        1.0 / (1.0 + ln_ratio.exp())
    }

    /// E[Y(h) | x, t_x, T] for several horizons at once (P(alive), the costly part, once).
    pub fn expected_purchases_many(&self, hs: &[f64], x: f64, t_x: f64, t: f64, out: &mut [f64]) {
        let alive = self.p_alive(x, t_x, t);
        for (o, h) in out.iter_mut().zip(hs) {
            *o = self.expected_if_alive(*h, x, t) * alive;
        }
    }

    /// E[Y(h) | alive at T, x, T].
    fn expected_if_alive(&self, h: f64, x: f64, t: f64) -> f64 {
        if h <= 0.0 {
            return 0.0;
        }
        let ParetoNbd { r, alpha, s, beta } = *self;
        let horizon_term = if (s - 1.0).abs() < 1e-9 {
            (beta + t) * ((beta + t + h) / (beta + t)).ln()
        } else {
            (beta + t) / (s - 1.0) * (1.0 - ((beta + t) / (beta + t + h)).powf(s - 1.0))
        };
        (r + x) / (alpha + t) * horizon_term
    }

    /// E[Y(h) | x, t_x, T]: expected purchases in the next `h` time units.
    pub fn expected_purchases(&self, h: f64, x: f64, t_x: f64, t: f64) -> f64 {
        self.expected_if_alive(h, x, t) * self.p_alive(x, t_x, t)
    }
}

#[cfg(test)]
mod tests {
    use super::super::bgnbd::tests::{cdnow_sample, uniform};
    use super::*;
    use crate::engine::stats::SplitMix64;

    /// Published: r = 0.553, α = 10.578, s = 0.606, β = 11.669, LL = −9595.0 on the sample.
    /// β comes out 11.668: the likelihood is flat there, and mpmath at 30 digits (values below)
    /// confirms that our β is the better maximum — the published last digit reflects the original
    /// optimiser's tolerance. Everything else matches to the printed precision.
    #[test]
    fn reproduces_the_published_cdnow_fit() {
        let sample = cdnow_sample();
        let (m, ll) = ParetoNbd::fit(&sample, &FitOptions::default(), &mut || {}).unwrap();
        assert_eq!(
            format!("{:.3} {:.3} {:.3}", m.r, m.alpha, m.s),
            "0.553 10.578 0.606"
        );
        assert!((m.beta - 11.669).abs() <= 0.0011, "{m:?}");
        assert_eq!(format!("{ll:.1}"), "-9595.0");
        // mpmath (hyp2f1/gamma at 30 digits) log-likelihoods of the sample:
        let data = CountData::new(&sample);
        let published = ParetoNbd {
            r: 0.553,
            alpha: 10.578,
            s: 0.606,
            beta: 11.669,
        };
        assert!((published.log_likelihood(&data) - -9_594.974_010_040_98).abs() < 1e-6);
        let ours = ParetoNbd {
            r: 0.553_275_566_435_282_4,
            alpha: 10.577_612_642_339_846,
            s: 0.606_213_498_635_956_5,
            beta: 11.667_907_599_927_64,
        };
        assert!((ours.log_likelihood(&data) - -9_594.973_929_826_86).abs() < 1e-6);
        assert!(ll >= published.log_likelihood(&data));
    }

    /// Closed form without repeat purchases and t_x = 0 (Schmittlein et al.): with α = β the
    /// likelihood is (α/(α+T))^r (β/(β+T))^s + s/(r+s) · α^(r+s) · (1/α^(r+s) − 1/(α+T)^(r+s)).
    #[test]
    fn likelihood_has_its_closed_form_when_alpha_equals_beta() {
        let m = ParetoNbd {
            r: 0.8,
            alpha: 6.0,
            s: 1.3,
            beta: 6.0,
        };
        let data = CountData::new(&[Customer::one(0.0, 0.0, 12.0, 0.0)]);
        let (r, a, s, t) = (0.8f64, 6.0f64, 1.3f64, 12.0f64);
        let want = ((a / (a + t)).powf(r) * (a / (a + t)).powf(s)
            + s / (r + s) * a.powf(r + s) * (a.powf(-(r + s)) - (a + t).powf(-(r + s))))
        .ln();
        assert!(
            (m.log_likelihood(&data) - want).abs() < 1e-12,
            "{} vs {want}",
            m.log_likelihood(&data)
        );
    }

    /// Both branches of A₀ (α ≥ β and α < β) must agree as α crosses β.
    #[test]
    fn a0_is_continuous_across_alpha_equals_beta() {
        let below = ParetoNbd {
            r: 0.6,
            alpha: 9.999_999,
            s: 0.7,
            beta: 10.0,
        };
        let above = ParetoNbd {
            r: 0.6,
            alpha: 10.000_001,
            s: 0.7,
            beta: 10.0,
        };
        let (x, t_x, t) = (3.0, 20.0, 35.0);
        assert!((below.ln_a0(x, t_x, t) - above.ln_a0(x, t_x, t)).abs() < 1e-5);
    }

    #[test]
    fn recovers_parameters_from_100k_simulated_customers() {
        let truth = ParetoNbd {
            r: 0.6,
            alpha: 8.0,
            s: 0.8,
            beta: 12.0,
        };
        let mut rng = SplitMix64::new(17);
        let gamma = |rng: &mut SplitMix64, shape: f64, rate: f64| {
            // sum of exponentials is not enough for fractional shapes: use the inverse-rate trick
            // of the BG/NBD tests through a Marsaglia–Tsang sampler
            super::super::bgnbd::tests::gamma_for_tests(rng, shape, rate)
        };
        let customers: Vec<Customer> = (0..100_000)
            .map(|_| {
                let t = 20.0 + 20.0 * uniform(&mut rng);
                let lambda = gamma(&mut rng, truth.r, truth.alpha);
                let mu = gamma(&mut rng, truth.s, truth.beta);
                let death = -(1.0 - uniform(&mut rng)).ln() / mu;
                let end = death.min(t);
                let (mut x, mut t_x, mut now) = (0.0, 0.0, 0.0);
                loop {
                    now += -(1.0 - uniform(&mut rng)).ln() / lambda;
                    if now > end {
                        break;
                    }
                    x += 1.0;
                    t_x = now;
                }
                Customer::one(x, t_x, t, 0.0)
            })
            .collect();
        let (m, _) = ParetoNbd::fit(&customers, &FitOptions::default(), &mut || {}).unwrap();
        for (got, want) in m.params().iter().zip(truth.params()) {
            assert!(
                (got / want - 1.0).abs() < 0.15,
                "fitted {m:?}, truth {truth:?}"
            );
        }
    }
}
