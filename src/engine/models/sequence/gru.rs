//! A gated recurrent unit (Cho et al. 2014), read from the oldest period to the newest from
//! h₀ = 0; its last hidden state encodes the sequence. Per step, with x the period's channels
//! and h the previous state:
//!
//!   z = σ(W_z x + U_z h + b_z)            (update gate)
//!   r = σ(W_r x + U_r h + b_r)            (reset gate)
//!   n = tanh(W_n x + U_n (r ⊙ h) + b_n)   (candidate)
//!   h' = (1 − z) ⊙ n + z ⊙ h
//!
//! the reset gate applied before U_n, as in the original paper (cuDNN and PyTorch apply it
//! after; both are GRUs, this one has the simpler gradient).

use serde::{Deserialize, Serialize};

use super::{add_outer, add_product, add_transposed_product, uniform_weights};
use crate::engine::stats::{sigmoid, SplitMix64};

/// The weights of a GRU layer. Gate blocks are stacked in the order z, r, n: `w` has
/// 3·hidden rows of `inputs`, `u` 3·hidden rows of `hidden`, `b` 3·hidden entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gru {
    pub inputs: usize,
    pub hidden: usize,
    pub w: Vec<f64>,
    pub u: Vec<f64>,
    pub b: Vec<f64>,
}

/// What a forward pass computed, kept for the backward pass: the states h₀ … h_T and each
/// step's gates z, r and candidate n (steps × hidden).
#[derive(Debug, Clone, Default)]
pub struct GruTrace {
    h: Vec<f64>,
    z: Vec<f64>,
    r: Vec<f64>,
    n: Vec<f64>,
}

impl Gru {
    /// A layer with PyTorch's initialisation: every weight and bias uniform in ±1/√hidden.
    pub fn new(inputs: usize, hidden: usize, rng: &mut SplitMix64) -> Gru {
        let bound = 1.0 / (hidden as f64).sqrt();
        Gru {
            inputs,
            hidden,
            w: uniform_weights(3 * hidden * inputs, bound, rng),
            u: uniform_weights(3 * hidden * hidden, bound, rng),
            b: uniform_weights(3 * hidden, bound, rng),
        }
    }

    /// A layer of the same shape with every weight 0 (a gradient accumulator).
    pub fn zeros_like(&self) -> Gru {
        Gru {
            inputs: self.inputs,
            hidden: self.hidden,
            w: vec![0.0; self.w.len()],
            u: vec![0.0; self.u.len()],
            b: vec![0.0; self.b.len()],
        }
    }

    /// The weights as slices (w, u, b), for an optimiser.
    pub fn parameters_mut(&mut self) -> [&mut [f64]; 3] {
        [&mut self.w, &mut self.u, &mut self.b]
    }

    /// Width of the encoding: the hidden state.
    pub fn width(&self) -> usize {
        self.hidden
    }

    /// Reads `sequence` (steps × inputs) and returns the last hidden state, recording the pass
    /// in `trace`.
    pub fn forward<'t>(&self, sequence: &[f64], trace: &'t mut GruTrace) -> &'t [f64] {
        let (i, h) = (self.inputs, self.hidden);
        let steps = sequence.len() / i;
        trace.h.clear();
        trace.h.resize((steps + 1) * h, 0.0);
        for gate in [&mut trace.z, &mut trace.r, &mut trace.n] {
            gate.clear();
            gate.resize(steps * h, 0.0);
        }
        let mut pre = vec![0.0; 3 * h];
        let mut reset_state = vec![0.0; h];
        for (t, x) in sequence.chunks_exact(i).enumerate() {
            let (past, future) = trace.h.split_at_mut((t + 1) * h);
            let previous = &past[t * h..];
            pre.copy_from_slice(&self.b);
            add_product(&self.w, x, &mut pre);
            add_product(&self.u[..2 * h * h], previous, &mut pre[..2 * h]);
            let (z, r, n) = (
                &mut trace.z[t * h..(t + 1) * h],
                &mut trace.r[t * h..(t + 1) * h],
                &mut trace.n[t * h..(t + 1) * h],
            );
            for k in 0..h {
                z[k] = sigmoid(pre[k]);
                r[k] = sigmoid(pre[h + k]);
                reset_state[k] = r[k] * previous[k];
            }
            add_product(&self.u[2 * h * h..], &reset_state, &mut pre[2 * h..]);
            let next = &mut future[..h];
            for k in 0..h {
                n[k] = pre[2 * h + k].tanh();
                next[k] = (1.0 - z[k]) * n[k] + z[k] * previous[k];
            }
        }
        &trace.h[steps * h..]
    }

    /// Backpropagation through time of the pass in `trace` over `sequence`, given the gradient
    /// `d_last` of the loss with respect to the last hidden state: adds the gradient with
    /// respect to every weight to `grads`, and with respect to the sequence to `d_sequence`
    /// when given (steps × inputs, added to).
    pub fn backward(
        &self,
        sequence: &[f64],
        trace: &GruTrace,
        d_last: &[f64],
        grads: &mut Gru,
        mut d_sequence: Option<&mut [f64]>,
    ) {
        let (i, h) = (self.inputs, self.hidden);
        let steps = sequence.len() / i;
        let mut d_state = d_last.to_vec();
        let mut d_pre = vec![0.0; 3 * h];
        let mut reset_state = vec![0.0; h];
        let mut d_reset_state = vec![0.0; h];
        for t in (0..steps).rev() {
            let x = &sequence[t * i..(t + 1) * i];
            let previous = &trace.h[t * h..(t + 1) * h];
            let (z, r, n) = (
                &trace.z[t * h..(t + 1) * h],
                &trace.r[t * h..(t + 1) * h],
                &trace.n[t * h..(t + 1) * h],
            );
            for k in 0..h {
                // h' = (1 − z) n + z h
                d_pre[k] = d_state[k] * (previous[k] - n[k]) * z[k] * (1.0 - z[k]);
                d_pre[2 * h + k] = d_state[k] * (1.0 - z[k]) * (1.0 - n[k] * n[k]);
                reset_state[k] = r[k] * previous[k];
            }
            d_reset_state.fill(0.0);
            add_transposed_product(&self.u[2 * h * h..], &d_pre[2 * h..], &mut d_reset_state);
            for k in 0..h {
                d_pre[h + k] = d_reset_state[k] * previous[k] * r[k] * (1.0 - r[k]);
            }
            add_outer(&mut grads.w, &d_pre, x);
            add_outer(&mut grads.u[..2 * h * h], &d_pre[..2 * h], previous);
            add_outer(&mut grads.u[2 * h * h..], &d_pre[2 * h..], &reset_state);
            for (g, d) in grads.b.iter_mut().zip(&d_pre) {
                *g += d;
            }
            if let Some(d_sequence) = d_sequence.as_deref_mut() {
                add_transposed_product(&self.w, &d_pre, &mut d_sequence[t * i..(t + 1) * i]);
            }
            // the gradient reaching h: through the update gate's mix, the reset gate's product
            // and both gates' recurrent weights
            for k in 0..h {
                d_state[k] = d_state[k] * z[k] + d_reset_state[k] * r[k];
            }
            add_transposed_product(&self.u[..2 * h * h], &d_pre[..2 * h], &mut d_state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradient_check::{assert_matches, projection};
    use super::*;

    fn sequence(steps: usize, inputs: usize, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..steps * inputs)
            .map(|_| 2.0 * rng.next_f64() - 1.0)
            .collect()
    }

    /// One unit, one input, two steps, worked by hand: with W = (0.5, −0.3, 0.8),
    /// U = (0.2, 0.4, −0.6), b = (0.1, 0, −0.1) and x = (1, −2):
    /// step 1 from h = 0: z = σ(0.6) = 0.645656, n = tanh(0.7) = 0.604368,
    /// h₁ = (1 − z) n = 0.214154; step 2: z = σ(−0.9 + 0.2 h₁) = 0.297931,
    /// r = σ(0.6 + 0.4 h₁) = 0.665001, n = tanh(−1.7 − 0.6 r h₁) = −0.945278,
    /// h₂ = (1 − z) n + z h₁ = −0.599847 (evaluated in Python's math module).
    #[test]
    fn matches_a_step_worked_by_hand() {
        let gru = Gru {
            inputs: 1,
            hidden: 1,
            w: vec![0.5, -0.3, 0.8],
            u: vec![0.2, 0.4, -0.6],
            b: vec![0.1, 0.0, -0.1],
        };
        let mut trace = GruTrace::default();
        let h1 = gru.forward(&[1.0], &mut trace)[0];
        assert!((h1 - 0.214154).abs() < 1e-6, "{h1}");
        let h2 = gru.forward(&[1.0, -2.0], &mut trace)[0];
        assert!((h2 - -0.599847).abs() < 1e-6, "{h2}");
    }

    /// An update gate held shut (z = 1) keeps h₀ = 0 whatever the sequence.
    #[test]
    fn a_closed_update_gate_keeps_the_state() {
        let mut gru = Gru::new(2, 3, &mut SplitMix64::new(1));
        gru.b[..3].fill(60.0);
        let mut trace = GruTrace::default();
        let last = gru.forward(&sequence(20, 2, 2), &mut trace);
        assert!(last.iter().all(|v| v.abs() < 1e-20), "{last:?}");
    }

    /// Backpropagation through time equals central differences, in every weight and every
    /// sequence value.
    #[test]
    fn gradients_match_central_differences() {
        let (inputs, hidden, steps) = (2, 4, 7);
        let gru = Gru::new(inputs, hidden, &mut SplitMix64::new(3));
        let seq = sequence(steps, inputs, 4);
        let v = projection(hidden, 5);
        let loss_of = |g: &Gru, s: &[f64]| -> f64 {
            let mut trace = GruTrace::default();
            let last = g.forward(s, &mut trace);
            last.iter().zip(&v).map(|(a, b)| a * b).sum()
        };
        let mut trace = GruTrace::default();
        gru.forward(&seq, &mut trace);
        let mut grads = gru.zeros_like();
        let mut d_seq = vec![0.0; seq.len()];
        gru.backward(&seq, &trace, &v, &mut grads, Some(&mut d_seq));

        let mut probe = gru.clone();
        let mut w = gru.w.clone();
        assert_matches("w", &mut w, &grads.w, &mut |w| {
            probe.w.copy_from_slice(w);
            loss_of(&probe, &seq)
        });
        let mut probe = gru.clone();
        let mut u = gru.u.clone();
        assert_matches("u", &mut u, &grads.u, &mut |u| {
            probe.u.copy_from_slice(u);
            loss_of(&probe, &seq)
        });
        let mut probe = gru.clone();
        let mut b = gru.b.clone();
        assert_matches("b", &mut b, &grads.b, &mut |b| {
            probe.b.copy_from_slice(b);
            loss_of(&probe, &seq)
        });
        let mut s = seq.clone();
        assert_matches("sequence", &mut s, &d_seq, &mut |s| loss_of(&gru, s));
    }

    /// Gradients of several sequences add up in one accumulator.
    #[test]
    fn gradients_accumulate() {
        let gru = Gru::new(2, 3, &mut SplitMix64::new(6));
        let v = projection(3, 7);
        let (a, b) = (sequence(5, 2, 8), sequence(9, 2, 9));
        let mut trace = GruTrace::default();
        let (mut both, mut each) = (gru.zeros_like(), [gru.zeros_like(), gru.zeros_like()]);
        for (s, alone) in [&a, &b].into_iter().zip(&mut each) {
            gru.forward(s, &mut trace);
            gru.backward(s, &trace, &v, &mut both, None);
            gru.backward(s, &trace, &v, alone, None);
        }
        for k in 0..both.w.len() {
            let sum = each[0].w[k] + each[1].w[k];
            assert!((both.w[k] - sum).abs() <= 1e-15 * (1.0 + sum.abs()));
        }
    }
}
