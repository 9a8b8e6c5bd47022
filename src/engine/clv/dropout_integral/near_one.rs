//! D(u) where z is close to 1, through y = (m+u)/(M−m), small there. With t = (m+τ)/(M−m),
//!
//!   D(u) = (M−m)^(1−P−B) G(y),   G(y) = ∫_y^∞ t^−B (1+t)^−P dt = G(y₁) + ∫_y^y₁ t^−B (1+t)^−P dt
//!
//! for a fixed y₁: G(y₁) once per x (by the series in z at z = 1/(1+y₁), or the continued
//! fraction); the finite part by expanding (1+t)^−P = Σ b_k t^k, b_k = (−1)^k (P)_k/k!, and
//! integrating term by term: ∫ t^(k−B) dt = t^ε/ε with ε = ε_k = k+1−B. The antiderivatives at
//! y₁ sum to a number per x; at y they are y^(1−B) Q₀(y), Q₀ = Σ b_k y^k/ε_k. The derivatives in
//! P (d b_k/dP = b_k Ψ_k, Ψ_k = ψ(P+k) − ψ(P)) and in B (d(t^ε/ε)/dB = −t^ε (ln t/ε − 1/ε²))
//! are series of the same kind, Q₁ = Σ b_k Ψ_k y^k/ε_k and Q₂ = Σ b_k y^k/ε_k², summed
//! alongside:
//!
//!   G(y) = [G(y₁) + y₁^(1−B) Q₀(y₁)] − y^(1−B) Q₀(y),
//!   ∂G/∂P = […] − y^(1−B) Q₁(y),   ∂G/∂B = […] + y^(1−B) (ln y Q₀(y) − Q₂(y)).
//!
//! The one k with ε nearest 0, where t^ε/ε at y₁ and at y would cancel each other's digits, is
//! left out of the Q and integrated apart in closed form. y₁ = min(1/3, 1/P): up to 1/3 the
//! series in z takes the rest, and P·y ≤ 1 keeps the alternating series' terms within e² of its
//! sum (they add up to at most ((1+y)/(1−y))^P times it).

use super::{Dropout, DropoutIntegral, SERIES_TOLERANCE};

/// The largest y₁: z = 3/4, where the series in z takes over.
const LARGEST_LIMIT: f64 = 1.0 / 3.0;
/// At most this many stored terms (they shrink at least like P y₁ ≤ 1 per term, and faster as
/// 1/ε grows: far fewer are used).
const MAX_TERMS: usize = 4_000;

/// The expansion of D in y for one set of exponents and scales (see the module's comment).
#[derive(Debug, Clone)]
pub(super) struct NearOne {
    /// y₁ and ln y₁.
    limit: f64,
    ln_limit: f64,
    /// ln(M − m).
    ln_gap: f64,
    /// For k = 0, 1, …: b_k/ε_k, b_k Ψ_k/ε_k and b_k/ε_k², times y₁^k — the terms of Q₀, Q₁
    /// and Q₂ at y = q y₁, times q^k; zero for the term integrated apart.
    terms: Vec<[f64; 3]>,
    /// The term integrated apart: its k, b_k y₁^k, Ψ_k and ε_k.
    apart: usize,
    apart_coefficients: [f64; 3],
    /// G(y₁) + y₁^(1−B) Q₀(y₁) and its derivatives in P and in B (the parts fixed by y₁), divided
    /// by G(y₁) = e^fixed_scale.
    fixed: [f64; 3],
    fixed_scale: f64,
}

impl NearOne {
    /// The expansion for `integral`, if an age with m + u as small as `smallest_small_shifted`
    /// needs it.
    pub(super) fn new(integral: &DropoutIntegral, smallest_small_shifted: f64) -> Option<NearOne> {
        let (p, b, gap) = (
            integral.large_exponent,
            integral.small_exponent,
            integral.gap,
        );
        let limit = LARGEST_LIMIT.min(1.0 / p);
        if gap.is_nan() || gap <= 0.0 || smallest_small_shifted > gap * limit {
            return None;
        }
        let apart = (b - 1.0).round().max(0.0) as usize;
        let (terms, apart_coefficients) = near_terms(p, b, limit, apart)?;
        let (ln_limit, ln_gap) = (limit.ln(), gap.ln());
        // G(y₁) = (M−m)^(P+B−1) D at the age where (m+u)/(M−m) = y₁; z = 1/(1+y₁) there
        let large_shifted = gap * (1.0 + limit);
        let tail = integral.at_shifted(large_shifted, large_shifted.ln(), gap * limit);
        let fixed_scale = tail.ln() + (p + b - 1.0) * ln_gap;
        let mut near = NearOne {
            limit,
            ln_limit,
            ln_gap,
            terms,
            apart,
            apart_coefficients,
            fixed: [0.0; 3],
            fixed_scale,
        };
        let [q0, q1, q2] = near.sum(1.0);
        let at_limit = ((1.0 - b) * ln_limit - fixed_scale).exp(); // y₁^(1−B)/G(y₁)
        near.fixed = [
            1.0 + at_limit * q0,
            tail.gradient[0] + ln_gap + at_limit * q1,
            tail.gradient[1] + ln_gap - at_limit * (ln_limit * q0 - q2),
        ];
        Some(near)
    }

    /// y₁: the expansion serves the ages with y up to it.
    pub(super) fn limit(&self) -> f64 {
        self.limit
    }

    /// D and the gradient of ln D in (P, B, M, m) at the age where ln(M+u) is
    /// `ln_large_shifted` and m + u is `small_shifted` (y at most y₁).
    pub(super) fn at(
        &self,
        integral: &DropoutIntegral,
        ln_large_shifted: f64,
        small_shifted: f64,
    ) -> Dropout {
        let (p, b, gap) = (
            integral.large_exponent,
            integral.small_exponent,
            integral.gap,
        );
        let y = small_shifted / gap;
        let ln_y = small_shifted.ln() - self.ln_gap;
        let [q0, q1, q2] = self.sum(y / self.limit);
        // G, ∂G/∂P and ∂G/∂B, all times e^−scale
        let power = (1.0 - b) * ln_y; // ln y^(1−B)
        let scale = self.fixed_scale.max(power);
        let (fixed, at_y) = ((self.fixed_scale - scale).exp(), (power - scale).exp());
        let [coefficient, psi, epsilon] = self.apart_coefficients;
        let offset = scale + self.apart as f64 * self.ln_limit; // y₁^k is in the coefficient
        let (apart, apart_b) = apart_integrals(epsilon, ln_y, self.ln_limit, offset);
        let g = fixed * self.fixed[0] - at_y * q0 + coefficient * apart;
        let g_p = fixed * self.fixed[1] - at_y * q1 + coefficient * psi * apart;
        let g_b = fixed * self.fixed[2] + at_y * (ln_y * q0 - q2) + coefficient * apart_b;
        let per_g = 1.0 / g;
        // y^(1−B) (1+y)^−P / G: the integrand at the lower limit, for the derivatives in M, m
        let ln_one_plus_y = ln_large_shifted - self.ln_gap;
        let boundary = (power - scale - p * ln_one_plus_y).exp() * per_g;
        let c = p + b - 1.0;
        Dropout {
            exponent: -c * self.ln_gap + scale,
            mantissa: g,
            gradient: [
                -self.ln_gap + g_p * per_g,
                -self.ln_gap + g_b * per_g,
                (boundary - c) / gap,
                (c - boundary * (1.0 + y) / y) / gap,
            ],
        }
    }

    /// Q₀, Q₁ and Q₂ at y = q·y₁ (0 ≤ q ≤ 1): Σ termₖ qᵏ, stopped when the rest no longer
    /// matters.
    fn sum(&self, q: f64) -> [f64; 3] {
        let mut sums = [0.0; 3];
        let mut power = 1.0;
        let mut largest = 0.0f64;
        for (k, term) in self.terms.iter().enumerate() {
            let mut size = 0.0f64;
            for i in 0..3 {
                sums[i] += term[i] * power;
                size = size.max(term[i].abs());
            }
            size *= power;
            largest = largest.max(size);
            // past the term integrated apart, the terms only shrink
            if k > self.apart && k % 4 == 3 && size <= SERIES_TOLERANCE * largest {
                break;
            }
            power *= q;
        }
        sums
    }
}

/// The stored terms of [`NearOne`] for exponents P (`p`) and B (`b`) at y₁ (`limit`), with the
/// coefficients of the term k = `apart` (b_k y₁^k, Ψ_k, ε_k); None if they do not shrink in
/// [`MAX_TERMS`].
fn near_terms(p: f64, b: f64, limit: f64, apart: usize) -> Option<(Vec<[f64; 3]>, [f64; 3])> {
    let mut terms: Vec<[f64; 3]> = Vec::with_capacity(32);
    let mut c = 1.0; // b_k y₁^k
    let mut psi = 0.0; // Ψ_k = Σ_{j<k} 1/(P+j)
    let mut largest = 0.0f64;
    let mut apart_coefficients = [0.0; 3];
    for k in 0..MAX_TERMS {
        let epsilon = k as f64 + 1.0 - b;
        if k == apart {
            apart_coefficients = [c, psi, epsilon];
            terms.push([0.0; 3]);
        } else {
            let term = [c / epsilon, c * psi / epsilon, c / (epsilon * epsilon)];
            let size = term.iter().fold(0.0f64, |s, t| s.max(t.abs()));
            largest = largest.max(size);
            terms.push(term);
            // |b_k y₁^k| never grows (P y₁ ≤ 1), and past the term apart neither does 1/|ε|
            if k > apart && size <= SERIES_TOLERANCE * largest {
                return Some((terms, apart_coefficients));
            }
        }
        psi += 1.0 / (p + k as f64);
        c *= -(p + k as f64) / (k as f64 + 1.0) * limit;
    }
    None
}

/// ∫_y^y₁ t^(ε−1) dt and −∫_y^y₁ ln t · t^(ε−1) dt (its derivative in B), times e^−offset, from
/// ln y, ln y₁ and ε. Where εL (L = ln(y₁/y)) is small the closed forms t^ε/ε would cancel: there
/// they are written y^ε L φ₁(εL) and −y^ε (L ln y φ₁(εL) + L² φ₂(εL)), φ₁(w) = (eʷ − 1)/w and
/// φ₂(w) = ∫₀¹ s e^(ws) ds, summed as series.
fn apart_integrals(epsilon: f64, ln_y: f64, ln_limit: f64, offset: f64) -> (f64, f64) {
    let span = ln_limit - ln_y;
    let w = epsilon * span;
    let low = (epsilon * ln_y - offset).exp(); // y^ε e^−offset
    if w.abs() < 1.0 {
        // φ₁ = Σ wⁿ/(n+1)!, φ₂ = Σ wⁿ/(n! (n+2)): 20 terms reach 1/20! < 1e-18
        let (mut phi1, mut phi2, mut term) = (0.0, 0.0, 1.0);
        for n in 0..20 {
            let n = n as f64;
            phi1 += term / (n + 1.0);
            phi2 += term / (n + 2.0);
            term *= w / (n + 1.0);
        }
        let integral = low * span * phi1;
        (integral, -(ln_y * integral + low * span * span * phi2))
    } else {
        let high = (epsilon * ln_limit - offset).exp(); // y₁^ε e^−offset
        let antiderivative_b = |t: f64, ln_t: f64| t * (ln_t / epsilon - 1.0 / (epsilon * epsilon));
        (
            (high - low) / epsilon,
            -(antiderivative_b(high, ln_limit) - antiderivative_b(low, ln_y)),
        )
    }
}
