//! Sequence encoders for purchase histories (issue #14): a customer's history up to the cut-off
//! as a sequence of periods, each with a few channels (purchases, spend), turned into a vector of
//! fixed width that a network head reads beside the static features.
//!
//! - [`gru::Gru`]: a gated recurrent unit read from the oldest period to the newest; the vector
//!   is its last hidden state.
//! - [`cnn::TemporalConvolution`]: a 1-D convolution over time with ReLU; the vector is the
//!   filters' mean over the history and their value at the newest window.
//!
//! Both keep what their forward pass computed in a trace and return exact gradients
//! (backpropagation through time for the GRU), accumulated into a gradient of the same shape as
//! the encoder, and optionally the gradient with respect to the sequence (for explanations).
//! Sequences are row-major: `steps × channels`.
//!
//! The loops are plain: the widths are small (a few channels, tens of hidden units), where
//! matrix libraries gain nothing and a row is scored without allocating beyond its trace.

pub mod cnn;
pub mod gru;
pub mod model;
pub mod network;
pub mod training;

/// `out += M v` for the row-major `M` with `v.len()` columns and `out.len()` rows.
#[inline]
fn add_product(m: &[f64], v: &[f64], out: &mut [f64]) {
    let cols = v.len();
    for (o, row) in out.iter_mut().zip(m.chunks_exact(cols)) {
        *o += row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
    }
}

/// `out += Mᵀ d` for the row-major `M` with `d.len()` rows and `out.len()` columns.
#[inline]
fn add_transposed_product(m: &[f64], d: &[f64], out: &mut [f64]) {
    let cols = out.len();
    for (row, &dk) in m.chunks_exact(cols).zip(d) {
        for (o, a) in out.iter_mut().zip(row) {
            *o += a * dk;
        }
    }
}

/// `M += d vᵀ` for the row-major `M` with `d.len()` rows and `v.len()` columns.
#[inline]
fn add_outer(m: &mut [f64], d: &[f64], v: &[f64]) {
    for (row, &dk) in m.chunks_exact_mut(v.len()).zip(d) {
        for (a, b) in row.iter_mut().zip(v) {
            *a += dk * b;
        }
    }
}

/// Uniform in (−bound, bound): the initialisation PyTorch gives recurrent and convolutional
/// layers (bound 1/√fan-in).
fn uniform_weights(n: usize, bound: f64, rng: &mut crate::engine::stats::SplitMix64) -> Vec<f64> {
    (0..n)
        .map(|_| bound * (2.0 * rng.next_f64() - 1.0))
        .collect()
}

#[cfg(test)]
pub(crate) mod gradient_check {
    use crate::engine::stats::SplitMix64;

    /// A scalar of an encoder's output for the checks: Σⱼ vⱼ outⱼ with fixed weights vⱼ, whose
    /// gradient with respect to the output is v.
    pub fn projection(width: usize, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..width).map(|_| 2.0 * rng.next_f64() - 1.0).collect()
    }

    /// Central difference of `loss` in the `k`-th of `values`, with the step `h`.
    pub fn central(
        values: &mut [f64],
        k: usize,
        h: f64,
        loss: &mut dyn FnMut(&[f64]) -> f64,
    ) -> f64 {
        let kept = values[k];
        values[k] = kept + h;
        let up = loss(values);
        values[k] = kept - h;
        let down = loss(values);
        values[k] = kept;
        (up - down) / (2.0 * h)
    }

    /// Asserts that `analytic` matches central differences of `loss` in every one of `values`
    /// (to 1e-6 relative, or 1e-8 absolute).
    pub fn assert_matches(
        what: &str,
        values: &mut [f64],
        analytic: &[f64],
        loss: &mut dyn FnMut(&[f64]) -> f64,
    ) {
        for (k, &want) in analytic.iter().enumerate() {
            let numeric = central(values, k, 1e-6, loss);
            // relative to the larger, with an absolute floor for gradients near 0: a central
            // difference of step 1e-6 carries ~1e-10 of rounding
            let scale = numeric.abs().max(want.abs());
            assert!(
                (numeric - want).abs() <= 1e-6 * scale + 1e-8,
                "{what}[{k}]: analytic {want} vs central difference {numeric}"
            );
        }
    }
}
