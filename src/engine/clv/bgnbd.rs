//! The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way",
//! Marketing Science 24(2)): purchases follow a Poisson process with a gamma(r, α) distributed
//! rate; after each purchase a customer drops out with a beta(a, b) distributed probability.

use serde::{Deserialize, Serialize};

use super::data::{log_add_exp, CountData, Customer};
use super::optimize::{fit_count_params, FitOptions};
use super::special::{digamma, hyp2f1, hyp2f1_many, ln_gamma};
use crate::engine::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    pub fn params(&self) -> [f64; 4] {
        [self.r, self.alpha, self.a, self.b]
    }

    /// Total log-likelihood of `data` (equation 6 of the paper, in logs).
    pub fn log_likelihood(&self, data: &CountData) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let ln_alpha = alpha.ln();
        let ln_a = a.ln();
        // the expensive terms once per distinct value, then one log-sum-exp per customer
        let base = ln_gamma(a + b) - ln_gamma(b) - ln_gamma(r) + r * ln_alpha;
        let per_x: Vec<(f64, f64)> = data
            .distinct_x
            .iter()
            .map(|&x| {
                let g = ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x) + base;
                let ln_b_x = if x > 0.0 { (b + x - 1.0).ln() } else { 0.0 };
                (g, ln_b_x)
            })
            .collect();
        let ln_alpha_t: Vec<f64> = data.distinct_t.iter().map(|t| (alpha + t).ln()).collect();
        let ln_alpha_t_x: Vec<f64> = data.distinct_t_x.iter().map(|t| (alpha + t).ln()).collect();
        let mut total = 0.0;
        for i in 0..data.x.len() {
            let x = data.x[i];
            let (g, ln_b_x) = per_x[data.x_index[i]];
            let alive = -(r + x) * ln_alpha_t[data.t_index[i]];
            let ll = if x > 0.0 {
                let dropped = ln_a - ln_b_x - (r + x) * ln_alpha_t_x[data.t_x_index[i]];
                g + log_add_exp(alive, dropped)
            } else {
                g + alive
            };
            total += data.weight[i] * ll;
        }
        total
    }

    /// Log-likelihood and its gradient with respect to (r, α, a, b).
    pub fn log_likelihood_gradient(&self, data: &CountData) -> (f64, [f64; 4]) {
        let BgNbd { r, alpha, a, b } = *self;
        let ln_alpha = alpha.ln();
        let ln_a = a.ln();
        let (psi_r, psi_b, psi_ab) = (digamma(r), digamma(b), digamma(a + b));
        let base = ln_gamma(a + b) - ln_gamma(b) - ln_gamma(r) + r * ln_alpha;
        // per distinct x: value, ln(b + x − 1), and the gamma-term derivatives for r, a, b
        struct PerX {
            g: f64,
            ln_b_x: f64,
            dr: f64,
            da: f64,
            db: f64,
        }
        let per_x: Vec<PerX> = data
            .distinct_x
            .iter()
            .map(|&x| {
                let psi_abx = digamma(a + b + x);
                PerX {
                    g: ln_gamma(r + x) + ln_gamma(b + x) - ln_gamma(a + b + x) + base,
                    ln_b_x: if x > 0.0 { (b + x - 1.0).ln() } else { 0.0 },
                    dr: digamma(r + x) - psi_r + ln_alpha,
                    da: psi_ab - psi_abx,
                    db: psi_ab - psi_b + digamma(b + x) - psi_abx,
                }
            })
            .collect();
        let at_t: Vec<(f64, f64)> = data
            .distinct_t
            .iter()
            .map(|t| ((alpha + t).ln(), 1.0 / (alpha + t)))
            .collect();
        let at_t_x: Vec<(f64, f64)> = data
            .distinct_t_x
            .iter()
            .map(|t| ((alpha + t).ln(), 1.0 / (alpha + t)))
            .collect();
        let mut total = 0.0;
        let mut grad = [0.0; 4];
        for i in 0..data.x.len() {
            let x = data.x[i];
            let w = data.weight[i];
            let px = &per_x[data.x_index[i]];
            let (ln_t, inv_t) = at_t[data.t_index[i]];
            let alive = -(r + x) * ln_t;
            // derivatives of the log-sum-exp part: weights of its two terms
            let (lse, w_alive, w_dropped, ln_tx, inv_tx) = if x > 0.0 {
                let (ln_tx, inv_tx) = at_t_x[data.t_x_index[i]];
                let dropped = ln_a - px.ln_b_x - (r + x) * ln_tx;
                let lse = log_add_exp(alive, dropped);
                (
                    lse,
                    (alive - lse).exp(),
                    (dropped - lse).exp(),
                    ln_tx,
                    inv_tx,
                )
            } else {
                (alive, 1.0, 0.0, 0.0, 0.0)
            };
            total += w * (px.g + lse);
            grad[0] += w * (px.dr - w_alive * ln_t - w_dropped * ln_tx);
            grad[1] += w * (r / alpha - (r + x) * (w_alive * inv_t + w_dropped * inv_tx));
            grad[2] += w * (px.da + w_dropped / a);
            grad[3] += w
                * (px.db
                    - if x > 0.0 {
                        w_dropped / (b + x - 1.0)
                    } else {
                        0.0
                    });
        }
        (total, grad)
    }

    /// Maximum-likelihood fit. `penalizer` adds `penalizer · Σ params²` to the mean negative
    /// log-likelihood (as lifetimes does), which keeps a degenerate fit finite.
    pub fn fit(
        customers: &[Customer],
        fit: &FitOptions,
        interrupt: &mut dyn FnMut(),
    ) -> Result<(BgNbd, f64)> {
        let ll_gradient = |[r, alpha, a, b]: [f64; 4], data: &CountData| {
            BgNbd { r, alpha, a, b }.log_likelihood_gradient(data)
        };
        let ([r, alpha, a, b], data) =
            fit_count_params("bgnbd", customers, fit, &ll_gradient, interrupt)?;
        let model = BgNbd { r, alpha, a, b };
        Ok((model, model.log_likelihood(&data)))
    }

    /// Probability that a customer with this history is still alive at T.
    pub fn p_alive(&self, x: f64, t_x: f64, t: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let odds_dead = (a / (b + x - 1.0)).ln() + (r + x) * ((alpha + t) / (alpha + t_x)).ln();
        1.0 / (1.0 + odds_dead.exp())
    }

    /// E[Y(h) | x, t_x, T] for several horizons at once (sharing P(alive) and the 2F1 series).
    pub fn expected_purchases_many(&self, hs: &[f64], x: f64, t_x: f64, t: f64, out: &mut [f64]) {
        let BgNbd { r, alpha, a, b } = *self;
        let zs: Vec<f64> = hs
            .iter()
            .map(|h| h.max(0.0) / (alpha + t + h.max(0.0)))
            .collect();
        hyp2f1_many(r + x, b + x, a + b + x - 1.0, &zs, out);
        let head = (a + b + x - 1.0) / (a - 1.0) * self.p_alive(x, t_x, t);
        for (o, h) in out.iter_mut().zip(hs) {
            *o = if *h <= 0.0 {
                0.0
            } else {
                head * (1.0 - ((alpha + t) / (alpha + t + h)).powf(r + x) * *o)
            };
        }
    }

    /// E[Y(h) | x, t_x, T]: expected repeat purchases in the next `h` time units (equation 10).
    pub fn expected_purchases(&self, h: f64, x: f64, t_x: f64, t: f64) -> f64 {
        if h <= 0.0 {
            return 0.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let z = h / (alpha + t + h);
        let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let head = (a + b + x - 1.0) / (a - 1.0);
        let tail = 1.0 - ((alpha + t) / (alpha + t + h)).powf(r + x) * f;
        head * tail * self.p_alive(x, t_x, t)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::stats::SplitMix64;

    /// The 2,357-customer CDNOW sample summary (x, t_x, T), shipped for these tests.
    pub(crate) fn cdnow_sample() -> Vec<Customer> {
        let text =
            include_str!("../../../tests/data/cdnow_customers_summary_with_transactions.csv");
        text.lines()
            .skip(1)
            .map(|line| {
                let v: Vec<f64> = line.split(',').map(|f| f.parse().unwrap()).collect();
                Customer::one(v[1], v[2], v[3], v[4])
            })
            .collect()
    }

    /// Published values: r = 0.243, α = 4.414, a = 0.793, b = 2.426, LL = −9582.4
    /// (Fader, Hardie & Lee 2005, on this very sample).
    #[test]
    fn reproduces_the_published_cdnow_fit() {
        let (m, ll) = BgNbd::fit(&cdnow_sample(), &FitOptions::default(), &mut || {}).unwrap();
        assert_eq!(
            format!("{:.3} {:.3} {:.3} {:.3}", m.r, m.alpha, m.a, m.b),
            "0.243 4.414 0.793 2.426"
        );
        assert_eq!(format!("{ll:.1}"), "-9582.4");
    }

    /// Published conditional expectation: E[Y(39) | x = 2, t_x = 30.43, T = 38.86] = 1.226.
    #[test]
    fn reproduces_the_published_conditional_expectation() {
        let m = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        assert_eq!(
            format!("{:.3}", m.expected_purchases(39.0, 2.0, 30.43, 38.86)),
            "1.226"
        );
    }

    /// Closed form for a customer without repeat purchases, who cannot have dropped out
    /// (dropout follows a purchase): L = (α/(α+T))^r.
    #[test]
    fn likelihood_of_a_customer_without_repeats_has_its_closed_form() {
        let m = BgNbd {
            r: 0.7,
            alpha: 3.0,
            a: 1.3,
            b: 2.2,
        };
        let data = CountData::new(&[Customer::one(0.0, 0.0, 10.0, 0.0)]);
        let want = 0.7 * (3.0f64 / 13.0).ln();
        assert!((m.log_likelihood(&data) - want).abs() < 1e-12);
        assert_eq!(m.p_alive(0.0, 0.0, 10.0), 1.0);
    }

    pub(crate) fn gamma_for_tests(rng: &mut SplitMix64, shape: f64, rate: f64) -> f64 {
        // Marsaglia & Tsang (2000), with the shape < 1 boost
        let uniform =
            |rng: &mut SplitMix64| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 + 1e-300;
        if shape < 1.0 {
            let u = uniform(rng);
            return gamma_for_tests(rng, shape + 1.0, rate) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let normal = (-2.0 * uniform(rng).ln()).sqrt()
                * (2.0 * std::f64::consts::PI * uniform(rng)).cos();
            let v = (1.0 + c * normal).powi(3);
            if v <= 0.0 {
                continue;
            }
            if uniform(rng).ln() < 0.5 * normal * normal + d - d * v + d * v.ln() {
                return d * v / rate;
            }
        }
    }

    pub(crate) fn uniform(rng: &mut SplitMix64) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Simulates BG/NBD customers observed for T time units after their first purchase.
    fn simulate(truth: &BgNbd, n: usize, seed: u64) -> Vec<Customer> {
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .map(|_| {
                let t = 20.0 + 20.0 * uniform(&mut rng);
                let lambda = gamma_for_tests(&mut rng, truth.r, truth.alpha);
                let pa = gamma_for_tests(&mut rng, truth.a, 1.0);
                let p = pa / (pa + gamma_for_tests(&mut rng, truth.b, 1.0));
                let (mut x, mut t_x, mut now) = (0.0, 0.0, 0.0);
                loop {
                    now += -(1.0 - uniform(&mut rng)).ln() / lambda;
                    if now > t {
                        break;
                    }
                    x += 1.0;
                    t_x = now;
                    if uniform(&mut rng) < p {
                        break;
                    }
                }
                Customer::one(x, t_x, t, 0.0)
            })
            .collect()
    }

    #[test]
    fn recovers_parameters_from_100k_simulated_customers() {
        let truth = BgNbd {
            r: 0.5,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let customers = simulate(&truth, 100_000, 99);
        let (m, _) = BgNbd::fit(&customers, &FitOptions::default(), &mut || {}).unwrap();
        for (got, want) in m.params().iter().zip(truth.params()) {
            assert!(
                (got / want - 1.0).abs() < 0.1,
                "fitted {m:?}, truth {truth:?}"
            );
        }
    }

    /// The analytic gradient agrees with central finite differences.
    #[test]
    fn gradient_matches_finite_differences() {
        let data = CountData::new(&cdnow_sample());
        let m = BgNbd {
            r: 0.3,
            alpha: 5.0,
            a: 0.9,
            b: 2.0,
        };
        let (_, g) = m.log_likelihood_gradient(&data);
        for k in 0..4 {
            let h = 1e-6 * m.params()[k];
            let mut up = m.params();
            up[k] += h;
            let mut down = m.params();
            down[k] -= h;
            let ll = |p: [f64; 4]| {
                BgNbd {
                    r: p[0],
                    alpha: p[1],
                    a: p[2],
                    b: p[3],
                }
                .log_likelihood(&data)
            };
            let numeric = (ll(up) - ll(down)) / (2.0 * h);
            assert!(
                (g[k] - numeric).abs() < 1e-5 * (1.0 + numeric.abs()),
                "∂/∂p{k}: {} vs {numeric}",
                g[k]
            );
        }
        let (ll, _) = m.log_likelihood_gradient(&data);
        assert!((ll - m.log_likelihood(&data)).abs() < 1e-9);
    }

    #[test]
    fn all_zero_frequencies_are_refused() {
        let c = vec![Customer::one(0.0, 0.0, 5.0, 0.0); 20];
        let err = BgNbd::fit(&c, &FitOptions::default(), &mut || {}).unwrap_err();
        assert!(err.message.contains("every frequency is 0"));
    }

    /// The sample with identical summaries collapsed into one row and its count (grouped
    /// input, as a distributed RFM table is read).
    pub(crate) fn grouped(customers: &[Customer]) -> Vec<Customer> {
        let mut rows: Vec<Customer> = Vec::new();
        let mut sorted = customers.to_vec();
        let key = |c: &Customer| {
            (
                c.frequency.to_bits(),
                c.recency.to_bits(),
                c.t.to_bits(),
                c.monetary_value.to_bits(),
            )
        };
        sorted.sort_by_key(key);
        for c in sorted {
            match rows.last_mut() {
                Some(last) if key(last) == key(&c) => last.count += 1.0,
                _ => rows.push(c),
            }
        }
        rows
    }

    #[test]
    fn grouped_input_fits_the_same_model() {
        let sample = cdnow_sample();
        let grouped = grouped(&sample);
        assert!(
            grouped.len() < sample.len(),
            "the sample has duplicate summaries"
        );
        assert_eq!(
            grouped.iter().map(|c| c.count).sum::<f64>(),
            sample.len() as f64
        );
        let options = FitOptions::default();
        let (one, ll_one) = BgNbd::fit(&sample, &options, &mut || {}).unwrap();
        let (many, ll_many) = BgNbd::fit(&grouped, &options, &mut || {}).unwrap();
        for (a, b) in [
            (one.r, many.r),
            (one.alpha, many.alpha),
            (one.a, many.a),
            (one.b, many.b),
            (ll_one, ll_many),
        ] {
            assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{a} vs {b}");
        }
        let spend_one =
            crate::engine::clv::gamma_gamma::GammaGamma::fit(&sample, &options, &mut || {})
                .unwrap();
        let spend_many =
            crate::engine::clv::gamma_gamma::GammaGamma::fit(&grouped, &options, &mut || {})
                .unwrap();
        assert_eq!(spend_one.customers_used, spend_many.customers_used);
        let (p1, p2) = (spend_one.model.params(), spend_many.model.params());
        for k in 0..3 {
            assert!(
                (p1[k] - p2[k]).abs() <= 1e-7 * p1[k].abs(),
                "{p1:?} vs {p2:?}"
            );
        }
    }

    /// Customers first seen at the calibration end (t = 0, as create_rfm makes them) train and
    /// score: they leave the fit unchanged (likelihood term 1) and get a finite expectation.
    #[test]
    fn customers_first_seen_at_the_calibration_end_train_and_score() {
        let sample = cdnow_sample();
        let mut with_new = sample.clone();
        with_new.extend(std::iter::repeat_n(Customer::one(0.0, 0.0, 0.0, 0.0), 50));
        crate::engine::clv::data::validate(&with_new).unwrap();
        let options = FitOptions::default();
        let (without, _) = BgNbd::fit(&sample, &options, &mut || {}).unwrap();
        let (with, _) = BgNbd::fit(&with_new, &options, &mut || {}).unwrap();
        assert_eq!(without.params(), with.params());
        let e = with.expected_purchases(39.0, 0.0, 0.0, 0.0);
        assert!(e.is_finite() && e > 0.0, "{e}");
        assert_eq!(with.p_alive(0.0, 0.0, 0.0), 1.0);
        let (pnbd, _) =
            crate::engine::clv::pareto_nbd::ParetoNbd::fit(&with_new, &options, &mut || {})
                .unwrap();
        let e = pnbd.expected_purchases(39.0, 0.0, 0.0, 0.0);
        let alive = pnbd.p_alive(0.0, 0.0, 0.0);
        assert!(e.is_finite() && e > 0.0, "{e}");
        assert!((alive - 1.0).abs() < 1e-12, "{alive}");
    }
}
