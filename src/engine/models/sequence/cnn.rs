//! A 1-D temporal convolution: `filters` filters, each spanning `width` consecutive periods of
//! every channel, slid over the history one period at a time ("valid" positions only), with a
//! ReLU. The encoding is each filter's mean over all positions (the history's overall pattern)
//! followed by its value at the newest position (the recent pattern, which matters most for what
//! a customer does next): 2 · filters values.

use serde::{Deserialize, Serialize};

use super::uniform_weights;
use crate::engine::stats::SplitMix64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemporalConvolution {
    pub channels: usize,
    pub filters: usize,
    /// Periods a filter spans.
    pub width: usize,
    /// `filters` rows of `width × channels` (period within the window, then channel): the
    /// layout of a window of the row-major sequence, so a window is a contiguous slice.
    pub w: Vec<f64>,
    pub b: Vec<f64>,
}

/// What a forward pass computed: each position's filter outputs after the ReLU (positions ×
/// filters) and the encoding.
#[derive(Debug, Clone, Default)]
pub struct ConvolutionTrace {
    outputs: Vec<f64>,
    encoding: Vec<f64>,
}

impl TemporalConvolution {
    /// A layer with PyTorch's initialisation: uniform in ±1/√(width · channels).
    pub fn new(
        channels: usize,
        filters: usize,
        width: usize,
        rng: &mut SplitMix64,
    ) -> TemporalConvolution {
        let bound = 1.0 / ((width * channels) as f64).sqrt();
        TemporalConvolution {
            channels,
            filters,
            width,
            w: uniform_weights(filters * width * channels, bound, rng),
            b: uniform_weights(filters, bound, rng),
        }
    }

    /// A layer of the same shape with every weight 0 (a gradient accumulator).
    pub fn zeros_like(&self) -> TemporalConvolution {
        TemporalConvolution {
            w: vec![0.0; self.w.len()],
            b: vec![0.0; self.b.len()],
            ..*self
        }
    }

    /// The weights as slices (w, b), for an optimiser.
    pub fn parameters_mut(&mut self) -> [&mut [f64]; 2] {
        [&mut self.w, &mut self.b]
    }

    /// Width of the encoding.
    pub fn width_of_encoding(&self) -> usize {
        2 * self.filters
    }

    /// Positions a sequence of `steps` periods offers (none if shorter than a filter).
    fn positions(&self, steps: usize) -> usize {
        (steps + 1).saturating_sub(self.width)
    }

    /// Encodes `sequence` (steps × channels), recording the pass in `trace`. A sequence shorter
    /// than a filter has no position and encodes as zeros (callers pad to a fixed length of at
    /// least `width`).
    pub fn forward<'t>(&self, sequence: &[f64], trace: &'t mut ConvolutionTrace) -> &'t [f64] {
        let (c, f) = (self.channels, self.filters);
        let positions = self.positions(sequence.len() / c);
        let span = self.width * c;
        trace.outputs.clear();
        trace.encoding.clear();
        trace.encoding.resize(2 * f, 0.0);
        for p in 0..positions {
            let window = &sequence[p * c..p * c + span];
            for (filter, bias) in self.w.chunks_exact(span).zip(&self.b) {
                let a = bias + filter.iter().zip(window).map(|(w, x)| w * x).sum::<f64>();
                trace.outputs.push(a.max(0.0));
            }
        }
        if positions > 0 {
            for row in trace.outputs.chunks_exact(f) {
                for (m, o) in trace.encoding[..f].iter_mut().zip(row) {
                    *m += o;
                }
            }
            for m in &mut trace.encoding[..f] {
                *m /= positions as f64;
            }
            let newest = &trace.outputs[(positions - 1) * f..];
            trace.encoding[f..].copy_from_slice(newest);
        }
        &trace.encoding
    }

    /// The gradient of the pass in `trace` over `sequence`, given the gradient `d_encoding` of
    /// the loss with respect to the encoding: added to `grads`, and to `d_sequence` (steps ×
    /// channels) when given.
    pub fn backward(
        &self,
        sequence: &[f64],
        trace: &ConvolutionTrace,
        d_encoding: &[f64],
        grads: &mut TemporalConvolution,
        mut d_sequence: Option<&mut [f64]>,
    ) {
        let (c, f) = (self.channels, self.filters);
        let positions = self.positions(sequence.len() / c);
        let span = self.width * c;
        for p in 0..positions {
            let window = &sequence[p * c..p * c + span];
            for k in 0..f {
                if trace.outputs[p * f + k] <= 0.0 {
                    continue; // the ReLU let nothing through
                }
                let mut d = d_encoding[k] / positions as f64;
                if p + 1 == positions {
                    d += d_encoding[f + k];
                }
                let rows = k * span..(k + 1) * span;
                for (g, x) in grads.w[rows.clone()].iter_mut().zip(window) {
                    *g += d * x;
                }
                grads.b[k] += d;
                if let Some(d_sequence) = d_sequence.as_deref_mut() {
                    let d_window = &mut d_sequence[p * c..p * c + span];
                    for (dx, w) in d_window.iter_mut().zip(&self.w[rows]) {
                        *dx += d * w;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradient_check::{assert_matches, projection};
    use super::*;

    /// One filter of width 2 over one channel, worked by hand: w = (1, −1), b = 0.5 over
    /// x = (3, 1, 2, 4): positions give 0.5 + 3 − 1 = 2.5, 0.5 + 1 − 2 = −0.5 → 0, and
    /// 0.5 + 2 − 4 = −1.5 → 0; the mean is 2.5/3 and the newest 0.
    #[test]
    fn matches_a_filter_worked_by_hand() {
        let conv = TemporalConvolution {
            channels: 1,
            filters: 1,
            width: 2,
            w: vec![1.0, -1.0],
            b: vec![0.5],
        };
        let mut trace = ConvolutionTrace::default();
        let encoding = conv.forward(&[3.0, 1.0, 2.0, 4.0], &mut trace);
        assert_eq!(encoding, &[2.5 / 3.0, 0.0]);
    }

    #[test]
    fn a_sequence_shorter_than_a_filter_encodes_as_zeros() {
        let conv = TemporalConvolution::new(2, 3, 4, &mut SplitMix64::new(1));
        let mut trace = ConvolutionTrace::default();
        assert_eq!(conv.forward(&[1.0; 6], &mut trace), &[0.0; 6]);
        let mut grads = conv.zeros_like();
        conv.backward(&[1.0; 6], &trace, &[1.0; 6], &mut grads, None);
        assert!(grads.w.iter().chain(&grads.b).all(|g| *g == 0.0));
    }

    /// The analytic gradient equals central differences in every weight and sequence value
    /// (values kept away from the ReLU's kink, where the derivative is not defined).
    #[test]
    fn gradients_match_central_differences() {
        let (channels, filters, width, steps) = (2, 3, 3, 8);
        let conv = TemporalConvolution::new(channels, filters, width, &mut SplitMix64::new(2));
        let mut rng = SplitMix64::new(3);
        let seq: Vec<f64> = (0..steps * channels)
            .map(|_| 2.0 * rng.next_f64() - 1.0)
            .collect();
        let v = projection(2 * filters, 4);
        let loss_of = |l: &TemporalConvolution, s: &[f64]| -> f64 {
            let mut trace = ConvolutionTrace::default();
            let e = l.forward(s, &mut trace);
            e.iter().zip(&v).map(|(a, b)| a * b).sum()
        };
        let mut trace = ConvolutionTrace::default();
        conv.forward(&seq, &mut trace);
        let near_kink = trace.outputs.iter().any(|o| *o > 0.0 && *o < 1e-4);
        assert!(
            !near_kink,
            "pick another seed: an output sits on the ReLU's kink"
        );
        let mut grads = conv.zeros_like();
        let mut d_seq = vec![0.0; seq.len()];
        conv.backward(&seq, &trace, &v, &mut grads, Some(&mut d_seq));
        let mut probe = conv.clone();
        let mut w = conv.w.clone();
        assert_matches("w", &mut w, &grads.w, &mut |w| {
            probe.w.copy_from_slice(w);
            loss_of(&probe, &seq)
        });
        let mut probe = conv.clone();
        let mut b = conv.b.clone();
        assert_matches("b", &mut b, &grads.b, &mut |b| {
            probe.b.copy_from_slice(b);
            loss_of(&probe, &seq)
        });
        let mut s = seq.clone();
        assert_matches("sequence", &mut s, &d_seq, &mut |s| loss_of(&conv, s));
    }
}
