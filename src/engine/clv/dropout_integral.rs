//! The integral at the heart of the Pareto/NBD likelihood, with its derivatives.
//!
//! A customer with x repeat purchases, the last at age t_x, who dies at τ in (t_x, T] adds
//! ∫ (α+τ)^−(r+x) (β+τ)^−(s+1) dτ over that interval to the likelihood (up to factors in closed
//! form; Fader & Hardie's A₀ is r+s+x times it). Name the larger of α and β M, with the exponent P
//! of its factor, and the smaller m, with exponent B. The integral is D(t_x) − D(T) for
//!
//!   D(u) = ∫_u^∞ (M+τ)^−P (m+τ)^−B dτ = (M+u)^−a Σₙ (B)ₙ/n! · zⁿ/(a+n),
//!   a = P + B − 1 = r+s+x,   z = (M−m)/(M+u) in [0, 1),
//!
//! the series being ₂F₁(a, B; a+1; z)/a (substitute t = (M+u)/(M+τ) and expand (1 − zt)^−B).
//! Differentiated term by term, the same series give the exact derivatives: in P through a
//! (Σ −1/(a+n)²), in B through a and (B)ₙ (Σ (ψ(B+n) − ψ(B))/(a+n)), in M and m through z and
//! M+u (the series of d/dz). They share their coefficients and are summed together.
//!
//! The terms shrink like zⁿ, too slowly near z = 1 (an age u small next to M − m, as when one of
//! α, β runs off towards a boundary of the parameter space). Beyond z = [`SERIES_LIMIT`]:
//! - for y = (m+u)/(M−m) up to min(1/3, 1/P), a series in powers of y ([`near_one`]);
//! - otherwise (P > 3, or a B so large that the series in z stops short of 3/4), the continued
//!   fraction of the incomplete beta function: D(u) = (M−m)^−a B_z(a, 1−B), which converges
//!   fast there (in under 100 steps), with its derivatives in a and B carried along
//!   ([`fraction`]).
//!
//! All three are checked against mpmath in the tests of `pareto_nbd`.

mod fraction;
mod near_one;

use fraction::incomplete_beta_fraction;
use near_one::NearOne;

/// The largest z at which D is summed as a series in z.
const SERIES_LIMIT: f64 = 0.75;
/// A series is summed until its terms fall below this, relative to its sum …
const SERIES_TOLERANCE: f64 = 1e-17;
/// … and shrink by at least this factor per term (which bounds the rest of the sum by 9 terms).
const SHRINKING: f64 = 0.9;
/// At most this many stored terms; for a larger B the series is kept to a smaller z.
const MAX_SERIES_TERMS: usize = 4_000;
/// Stored terms above this would risk overflow: the series is kept to a smaller z.
const LARGEST_TERM: f64 = 1e250;

/// D(u) as mantissa · e^exponent — the exponent holds the powers that would overflow, the
/// mantissa (a series sum or a fraction) is of moderate size; the split spares a logarithm per
/// age when D is combined with other exponentials — with the gradient of ln D with respect to
/// (P, B, M, m).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dropout {
    pub exponent: f64,
    pub mantissa: f64,
    pub gradient: [f64; 4],
}

impl Dropout {
    /// ln D(u).
    pub fn ln(&self) -> f64 {
        self.exponent + self.mantissa.ln()
    }
}

/// D(u) for one set of exponents and scales, ready to be evaluated at many ages u: the series'
/// coefficients, the costly part, are computed once.
#[derive(Debug, Clone)]
pub struct DropoutIntegral {
    large_exponent: f64,
    small_exponent: f64,
    /// a = P + B − 1.
    a: f64,
    large_scale: f64,
    small_scale: f64,
    /// M − m.
    gap: f64,
    /// The z at which `terms` are evaluated: ages with a larger z go to `near_one` or to the
    /// continued fraction.
    series_z: f64,
    /// For n = 0, 1, …: cₙ/(a+n), −cₙ/(a+n)², cₙ(ψ(B+n) − ψ(B))/(a+n) and cₙ(B+n)/(a+n+1), with
    /// cₙ = (B)ₙ/n! · series_zⁿ — at z = q · series_z, times qⁿ, the n-th terms of the series
    /// S = Σ (B)ₙ/n! zⁿ/(a+n) (D = (M+u)^−a S) and of its derivatives in a, in B at fixed a,
    /// and in z.
    terms: Vec<[f64; 4]>,
    /// From this term on, every stored term is at most [`SHRINKING`] times the one before.
    shrinking_from: usize,
    /// The expansion in y for the ages where z is close to 1, when some age needs it.
    near_one: Option<NearOne>,
}

impl DropoutIntegral {
    /// D for the factors (M+τ)^−P (m+τ)^−B, M ≥ m > 0, P, B > 0, to be evaluated at ages of at
    /// least `youngest` (the largest z).
    pub fn new(
        large_exponent: f64,
        small_exponent: f64,
        large_scale: f64,
        small_scale: f64,
        youngest: f64,
    ) -> DropoutIntegral {
        let a = large_exponent + small_exponent - 1.0;
        let gap = large_scale - small_scale;
        let (series_z, terms, shrinking_from) =
            series_for(small_exponent, a, gap / (large_scale + youngest));
        let mut integral = DropoutIntegral {
            large_exponent,
            small_exponent,
            a,
            large_scale,
            small_scale,
            gap,
            series_z,
            terms,
            shrinking_from,
            near_one: None,
        };
        integral.near_one = NearOne::new(&integral, small_scale + youngest);
        integral
    }

    /// D(u) and the gradient of ln D in (P, B, M, m), for an age u ≥ 0; `ln_shifted` is
    /// ln(M + u), which callers have at hand.
    pub fn at(&self, u: f64, ln_shifted: f64) -> Dropout {
        self.at_shifted(self.large_scale + u, ln_shifted, self.small_scale + u)
    }

    /// D at the age where M + u is `large_shifted` (whose log is `ln_large_shifted`) and m + u
    /// is `small_shifted`.
    fn at_shifted(&self, large_shifted: f64, ln_large_shifted: f64, small_shifted: f64) -> Dropout {
        let inverse = 1.0 / large_shifted;
        let z = self.gap * inverse;
        if z <= self.series_z {
            let q = if z > 0.0 { z / self.series_z } else { 0.0 };
            let ratio_small = small_shifted * inverse;
            return self.by_series_sums(
                ln_large_shifted,
                inverse,
                ratio_small,
                &self.sum_series(q),
            );
        }
        match &self.near_one {
            Some(near) if small_shifted <= self.gap * near.limit() => {
                near.at(self, ln_large_shifted, small_shifted)
            }
            _ => self.with_fraction(large_shifted, ln_large_shifted, small_shifted),
        }
    }

    /// The four series at z = q · series_z (0 ≤ q ≤ 1): Σ termₙ qⁿ, stopped when the rest no
    /// longer matters.
    fn sum_series(&self, q: f64) -> [f64; 4] {
        let mut sums = [0.0; 4];
        let mut power = 1.0;
        for (n, term) in self.terms.iter().enumerate() {
            for k in 0..4 {
                sums[k] += term[k] * power;
            }
            // checked every fourth term: the test costs as much as a term
            if n % 4 == 3 && n >= self.shrinking_from {
                let limit = SERIES_TOLERANCE * sums[0];
                if term[0] * power <= limit && term[2] * power <= limit && term[3] * power <= limit
                {
                    break;
                }
            }
            power *= q;
        }
        sums
    }

    /// D(u) and its gradient from the series sums at u, given ln(M + u), 1/(M + u) and
    /// (m + u)/(M + u) = 1 − z.
    fn by_series_sums(
        &self,
        ln_shifted: f64,
        inverse: f64,
        ratio_small: f64,
        sums: &[f64; 4],
    ) -> Dropout {
        let per_sum = 1.0 / sums[0];
        let d_a = -ln_shifted + sums[1] * per_sum;
        let d_z = sums[3] * per_sum;
        Dropout {
            exponent: -self.a * ln_shifted,
            mantissa: sums[0],
            gradient: [
                d_a,
                d_a + sums[2] * per_sum,
                (-self.a + ratio_small * d_z) * inverse,
                -d_z * inverse,
            ],
        }
    }

    /// D(u) from the continued fraction of the incomplete beta function, which the series do not
    /// reach: D(u) = (M−m)^−a B_z(a, 1−B) (substitute t = (M−m)/(M+τ)), given M + u
    /// (`large_shifted`, with its log) and m + u (`small_shifted`). Not a number if the fraction
    /// does not settle (parameters out of all proportion), which the optimiser rejects.
    fn with_fraction(
        &self,
        large_shifted: f64,
        ln_large_shifted: f64,
        small_shifted: f64,
    ) -> Dropout {
        let (a, b) = (self.a, 1.0 - self.small_exponent);
        let z = self.gap / large_shifted;
        let ratio_small = small_shifted / large_shifted; // 1 − z
        let ln_ratio_small = small_shifted.ln() - ln_large_shifted;
        let Some([h, h_by_a, h_by_b]) = incomplete_beta_fraction(a, b, z) else {
            return Dropout {
                exponent: f64::NAN,
                mantissa: f64::NAN,
                gradient: [f64::NAN; 4],
            };
        };
        // ln D = −a ln(M+u) + b ln(1−z) − ln a + ln h, and ∂ln B_z/∂z = a/(h z (1−z))
        let d_p = -ln_large_shifted - 1.0 / a + h_by_a;
        let per_gap = a / self.gap;
        Dropout {
            exponent: -a * ln_large_shifted + b * ln_ratio_small,
            mantissa: h / a,
            gradient: [
                d_p,
                d_p - ln_ratio_small - h_by_b,
                per_gap * (1.0 / h - 1.0),
                per_gap * (1.0 - 1.0 / (h * ratio_small)),
            ],
        }
    }
}

/// The z up to which [`DropoutIntegral`] sums its series (`largest_z` if it can), the stored terms
/// and the index from which they shrink.
fn series_for(b: f64, a: f64, largest_z: f64) -> (f64, Vec<[f64; 4]>, usize) {
    let mut z = largest_z.clamp(0.0, SERIES_LIMIT);
    // a large B makes the terms grow before they shrink: a smaller z keeps them few; z = 0 (one
    // term) always works, after at most ~1,100 halvings, unless a or B is not a number
    for _ in 0..1_200 {
        if let Some((terms, shrinking_from)) = series_terms(b, a, z) {
            return (z, terms, shrinking_from);
        }
        z /= 2.0;
    }
    (0.0, vec![[f64::NAN; 4]], 0)
}

/// The stored series terms of [`DropoutIntegral`] at `z` for the exponent B (`b`) and a, and
/// the index from which they shrink; None when they would be too many or too large.
fn series_terms(b: f64, a: f64, z: f64) -> Option<(Vec<[f64; 4]>, usize)> {
    let mut terms: Vec<[f64; 4]> = Vec::with_capacity(64);
    let mut c = 1.0; // (B)ₙ/n! zⁿ
    let mut harmonic = 0.0; // ψ(B+n) − ψ(B) = Σ_{k<n} 1/(B+k)
    let mut sum = 0.0;
    let mut shrinking_from = 0;
    for n in 0..MAX_SERIES_TERMS {
        let n = n as f64;
        let first = c / (a + n);
        let term = [
            first,
            -first / (a + n),
            first * harmonic,
            c * (b + n) / (a + n + 1.0),
        ];
        sum += first;
        if let Some(previous) = terms.last() {
            if (0..4).any(|k| term[k].abs() > SHRINKING * previous[k].abs()) {
                shrinking_from = terms.len() + 1;
            }
        }
        terms.push(term);
        let negligible = term.iter().all(|t| t.abs() <= SERIES_TOLERANCE * sum);
        if terms.len() > shrinking_from && negligible {
            return Some((terms, shrinking_from));
        }
        if c.is_nan() || c >= LARGEST_TERM {
            return None;
        }
        harmonic += 1.0 / (b + n);
        c *= (b + n) / (n + 1.0) * z;
    }
    None
}
