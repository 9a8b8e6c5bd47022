//! Valuing many customers of one Pareto/NBD model. P(alive) needs the dropout integral D of the
//! customer's x at two ages, t_x and T; preparing D's series is the costly part (the ψ of every
//! term), and on a large summary a few thousand (x, age) pairs stand for a million customers.
//! The memo keeps D's preparation per x and ln D per (x, age), computed exactly as
//! [`ParetoNbd::p_alive`] computes them one customer at a time, so both give the same bits.

use std::collections::HashMap;

use super::ParetoNbd;
use crate::engine::clv::dropout_integral::DropoutIntegral;

/// Distinct x values whose prepared integral is kept (a summary with fractional frequencies may
/// have one per customer; an integral keeps up to thousands of terms).
const MAX_INTEGRALS: usize = 256;
/// (x, age) pairs whose ln D is kept (about 13 MB at most).
const MAX_AGES: usize = 1 << 18;

/// What valuing customers of one model shares; starts afresh for another model or when full.
#[derive(Debug, Default)]
pub struct AliveMemo {
    /// The parameters the memo holds values for, as bits.
    params: [u64; 4],
    integrals: HashMap<u64, DropoutIntegral>,
    ln_dropout: HashMap<(u64, u64), f64>,
}

impl AliveMemo {
    /// ln D(u) of `model` for the customers with `x` purchases.
    pub(super) fn ln_dropout(&mut self, model: &ParetoNbd, x: f64, u: f64) -> f64 {
        let params = model.params().map(f64::to_bits);
        if params != self.params {
            self.integrals.clear();
            self.ln_dropout.clear();
            self.params = params;
        }
        let key = (x.to_bits(), u.to_bits());
        if let Some(&known) = self.ln_dropout.get(&key) {
            return known;
        }
        if self.ln_dropout.len() >= MAX_AGES {
            self.ln_dropout.clear();
        }
        if self.integrals.len() >= MAX_INTEGRALS && !self.integrals.contains_key(&key.0) {
            self.integrals.clear();
        }
        let integral = self
            .integrals
            .entry(key.0)
            .or_insert_with(|| model.valuation_integral(x));
        let ln_d = model.ln_dropout_at(integral, u);
        self.ln_dropout.insert(key, ln_d);
        ln_d
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::bgnbd::tests::cdnow_sample;
    use super::*;

    /// Parameters inside the space (the published CDNOW fit) and at its s, β → ∞ boundary
    /// (a 1M-customer fit's), where D is taken from the continued fraction.
    const MODELS: [ParetoNbd; 2] = [
        ParetoNbd {
            r: 0.553,
            alpha: 10.578,
            s: 0.606,
            beta: 11.669,
        },
        ParetoNbd {
            r: 0.704,
            alpha: 12.588,
            s: 1.07e7,
            beta: 2.10e8,
        },
    ];

    #[test]
    fn memo_gives_the_bits_of_one_customer_at_a_time() {
        let customers = cdnow_sample();
        let mut memo = AliveMemo::default();
        for model in MODELS {
            for c in &customers {
                let alone = model.p_alive(c.frequency, c.recency, c.t);
                let memo_value = model.p_alive_memo(&mut memo, c.frequency, c.recency, c.t);
                assert_eq!(alone.to_bits(), memo_value.to_bits(), "{model:?} {c:?}");
            }
        }
    }

    #[test]
    fn memo_starts_afresh_for_another_model() {
        let mut memo = AliveMemo::default();
        let [a, b] = MODELS;
        let first = a.p_alive_memo(&mut memo, 2.0, 30.0, 38.0);
        let other = b.p_alive_memo(&mut memo, 2.0, 30.0, 38.0);
        assert_eq!(other, b.p_alive(2.0, 30.0, 38.0));
        assert_ne!(first, other);
        assert_eq!(memo.integrals.len(), 1);
    }

    #[test]
    fn memo_stays_bounded() {
        let mut memo = AliveMemo::default();
        let model = MODELS[0];
        for k in 0..(MAX_INTEGRALS + 10) {
            let x = 1.0 + k as f64 / 7.0;
            let got = model.p_alive_memo(&mut memo, x, 10.0, 20.0);
            assert_eq!(got, model.p_alive(x, 10.0, 20.0));
        }
        assert!(memo.integrals.len() <= MAX_INTEGRALS);
        assert!(memo.ln_dropout.len() <= MAX_AGES);
    }
}
