//! The continued fraction of the incomplete beta function B_x(a, b) = ∫₀ˣ t^(a−1) (1−t)^(b−1) dt,
//! with its derivatives in a and b:
//!
//!   B_x(a, b) = xᵃ (1−x)ᵇ / a · 1/(1+ d₁/(1+ d₂/(1+ …))),
//!   d₂ₘ₊₁ = −(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),   d₂ₘ = m(b−m) x / ((a+2m−1)(a+2m))
//!
//! (Abramowitz & Stegun 26.5.8), evaluated by the modified Lentz method as Numerical Recipes'
//! betacf does (§6.4), which converges fast for x below about (a+1)/(a+b+2). The fraction is a
//! product of factors that tend to 1; the derivatives of their logarithms are carried along
//! (forward mode) and summed.

/// More steps than any fraction of [`super::DropoutIntegral`] needs (below 100 in its range).
const MAX_STEPS: usize = 2_000;
/// The fraction has settled when a step changes it by less than this (relative).
const TOLERANCE: f64 = 1e-16;
/// Lentz's guard against a vanishing denominator.
const TINY: f64 = 1e-300;

/// A number with its derivatives in a and b.
#[derive(Debug, Clone, Copy)]
struct Dual {
    value: f64,
    by_a: f64,
    by_b: f64,
}

/// The fraction's value h and ∂ln h/∂a, ∂ln h/∂b, for a > 0, a + b > 0 and 0 < x < 1; None if it
/// does not settle in [`MAX_STEPS`] or a denominator vanishes (parameters out of all proportion).
pub(super) fn incomplete_beta_fraction(a: f64, b: f64, x: f64) -> Option<[f64; 3]> {
    // h = d₀ · Π (dₖ cₖ), with c₀ = 1 and d₀ = 1/(1 + d₁)
    let first = odd_coefficient(0, a, b, x);
    let denominator = 1.0 + first.value;
    if denominator.is_nan() || denominator.abs() <= TINY {
        return None;
    }
    let mut d = Dual {
        value: 1.0 / denominator,
        by_a: -first.by_a / (denominator * denominator),
        by_b: -first.by_b / (denominator * denominator),
    };
    let mut c = Dual {
        value: 1.0,
        by_a: 0.0,
        by_b: 0.0,
    };
    let mut h = d.value;
    let mut ln_by = [d.by_a / d.value, d.by_b / d.value];
    for step in 2..MAX_STEPS {
        let m = step / 2;
        let coefficient = if step % 2 == 0 {
            even_coefficient(m, a, b, x)
        } else {
            odd_coefficient(m, a, b, x)
        };
        let (factor, ln_factor_by) = lentz_step(coefficient, &mut c, &mut d)?;
        h *= factor;
        ln_by[0] += ln_factor_by[0];
        ln_by[1] += ln_factor_by[1];
        if !(h.is_finite() && ln_by[0].is_finite() && ln_by[1].is_finite()) {
            return None;
        }
        let settled = (factor - 1.0).abs() <= TOLERANCE
            && ln_factor_by[0].abs() <= TOLERANCE * (1.0 + ln_by[0].abs())
            && ln_factor_by[1].abs() <= TOLERANCE * (1.0 + ln_by[1].abs());
        if settled {
            return Some([h, ln_by[0], ln_by[1]]);
        }
    }
    None
}

/// One step of Lentz's method with the coefficient dₖ: d ← 1/(1 + dₖ d), c ← 1 + dₖ/c. Returns
/// the factor d c by which the fraction changes and the derivatives of its logarithm.
fn lentz_step(coefficient: Dual, c: &mut Dual, d: &mut Dual) -> Option<(f64, [f64; 2])> {
    let denominator = 1.0 + coefficient.value * d.value;
    let per_c = 1.0 / c.value;
    let next_c = 1.0 + coefficient.value * per_c;
    let vanishing = |v: f64| v.is_nan() || v.abs() <= TINY;
    if vanishing(denominator) || vanishing(next_c) {
        return None;
    }
    let per_denominator = 1.0 / denominator;
    // derivatives of the denominator and of the new c
    let denominator_by = [
        coefficient.by_a * d.value + coefficient.value * d.by_a,
        coefficient.by_b * d.value + coefficient.value * d.by_b,
    ];
    let c_by = [
        (coefficient.by_a - coefficient.value * c.by_a * per_c) * per_c,
        (coefficient.by_b - coefficient.value * c.by_b * per_c) * per_c,
    ];
    let squared = per_denominator * per_denominator;
    *d = Dual {
        value: per_denominator,
        by_a: -denominator_by[0] * squared,
        by_b: -denominator_by[1] * squared,
    };
    *c = Dual {
        value: next_c,
        by_a: c_by[0],
        by_b: c_by[1],
    };
    let per_next_c = 1.0 / next_c;
    let ln_by = [
        -denominator_by[0] * per_denominator + c_by[0] * per_next_c,
        -denominator_by[1] * per_denominator + c_by[1] * per_next_c,
    ];
    Some((per_denominator * next_c, ln_by))
}

/// d₂ₘ₊₁ = −(a+m)(a+b+m) x / ((a+2m)(a+2m+1)) and its derivatives.
fn odd_coefficient(m: usize, a: f64, b: f64, x: f64) -> Dual {
    let m = m as f64;
    let value = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
    Dual {
        value,
        by_a: value
            * (1.0 / (a + m) + 1.0 / (a + b + m) - 1.0 / (a + 2.0 * m) - 1.0 / (a + 2.0 * m + 1.0)),
        by_b: value / (a + b + m),
    }
}

/// d₂ₘ = m(b−m) x / ((a+2m−1)(a+2m)) and its derivatives.
fn even_coefficient(m: usize, a: f64, b: f64, x: f64) -> Dual {
    let m = m as f64;
    let per = x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
    let value = m * (b - m) * per;
    Dual {
        value,
        by_a: -value * (1.0 / (a + 2.0 * m - 1.0) + 1.0 / (a + 2.0 * m)),
        by_b: m * per,
    }
}
