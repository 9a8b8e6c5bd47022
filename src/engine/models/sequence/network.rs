//! A sequence network: an encoder ([`Encoder`]) reads the customer's history, its encoding is
//! joined by the static features, and one ReLU hidden layer leads to the outputs of an
//! [`Objective`] (the mlp's: squared error, log loss or the zero-inflated lognormal), whose loss
//! is the mlp's too — so a sequence model and an mlp on the same target compare one to one.

use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use super::cnn::{ConvolutionTrace, TemporalConvolution};
use super::gru::{Gru, GruTrace};
use super::{add_outer, add_product, add_transposed_product, uniform_weights};
use crate::engine::models::mlp::{row_loss, Objective};
use crate::engine::stats::SplitMix64;

/// What reads the sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Encoder {
    Gru(Gru),
    Cnn(TemporalConvolution),
}

impl Encoder {
    fn width(&self) -> usize {
        match self {
            Encoder::Gru(g) => g.width(),
            Encoder::Cnn(c) => c.width_of_encoding(),
        }
    }

    fn zeros_like(&self) -> Encoder {
        match self {
            Encoder::Gru(g) => Encoder::Gru(g.zeros_like()),
            Encoder::Cnn(c) => Encoder::Cnn(c.zeros_like()),
        }
    }

    fn parameters_mut(&mut self) -> Vec<&mut [f64]> {
        match self {
            Encoder::Gru(g) => g.parameters_mut().into(),
            Encoder::Cnn(c) => c.parameters_mut().into(),
        }
    }
}

/// The encoder's part of a forward pass.
#[derive(Debug, Clone)]
enum EncoderTrace {
    Gru(GruTrace),
    Cnn(ConvolutionTrace),
}

/// What one example's forward pass computed, for its backward pass.
#[derive(Debug, Clone)]
pub struct Trace {
    encoder: EncoderTrace,
    /// The encoding followed by the static features: the hidden layer's input.
    joined: Vec<f64>,
    /// The hidden layer after the ReLU.
    hidden: Vec<f64>,
    outputs: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceNetwork {
    pub encoder: Encoder,
    pub static_inputs: usize,
    /// `hidden` rows of (encoding width + static inputs), and the hidden layer's biases.
    pub w1: Vec<f64>,
    pub b1: Vec<f64>,
    /// `outputs` rows of `hidden`, and the output biases.
    pub w2: Vec<f64>,
    pub b2: Vec<f64>,
}

impl SequenceNetwork {
    /// A network for `objective`, with PyTorch's initialisation of every layer.
    pub fn new(
        encoder: Encoder,
        static_inputs: usize,
        hidden: usize,
        objective: Objective,
        rng: &mut SplitMix64,
    ) -> SequenceNetwork {
        let joined = encoder.width() + static_inputs;
        let outputs = objective.output().width();
        let (bound1, bound2) = (1.0 / (joined as f64).sqrt(), 1.0 / (hidden as f64).sqrt());
        SequenceNetwork {
            encoder,
            static_inputs,
            w1: uniform_weights(hidden * joined, bound1, rng),
            b1: uniform_weights(hidden, bound1, rng),
            w2: uniform_weights(outputs * hidden, bound2, rng),
            b2: uniform_weights(outputs, bound2, rng),
        }
    }

    /// A network of the same shape with every weight 0 (a gradient accumulator).
    pub fn zeros_like(&self) -> SequenceNetwork {
        SequenceNetwork {
            encoder: self.encoder.zeros_like(),
            static_inputs: self.static_inputs,
            w1: vec![0.0; self.w1.len()],
            b1: vec![0.0; self.b1.len()],
            w2: vec![0.0; self.w2.len()],
            b2: vec![0.0; self.b2.len()],
        }
    }

    /// Every weight, as slices in a fixed order (for an optimiser).
    pub fn parameters_mut(&mut self) -> Vec<&mut [f64]> {
        let mut all = self.encoder.parameters_mut();
        all.extend([
            &mut self.w1[..],
            &mut self.b1[..],
            &mut self.w2[..],
            &mut self.b2[..],
        ]);
        all
    }

    /// Weights plus biases.
    pub fn n_parameters(&self) -> usize {
        let encoder = match &self.encoder {
            Encoder::Gru(g) => g.w.len() + g.u.len() + g.b.len(),
            Encoder::Cnn(c) => c.w.len() + c.b.len(),
        };
        encoder + self.w1.len() + self.b1.len() + self.w2.len() + self.b2.len()
    }

    /// Checks that every weight has the length a pass over `steps` periods of `channels`
    /// channels, with `statics` static inputs and `outputs` outputs, indexes, and is finite:
    /// else why not (a model decoded from bytes).
    pub fn validate(
        &self,
        (steps, channels): (usize, usize),
        statics: usize,
        outputs: usize,
    ) -> std::result::Result<(), String> {
        let encoder_ok = match &self.encoder {
            Encoder::Gru(g) => {
                g.inputs == channels
                    && g.hidden > 0
                    && g.w.len() == 3 * g.hidden * g.inputs
                    && g.u.len() == 3 * g.hidden * g.hidden
                    && g.b.len() == 3 * g.hidden
            }
            Encoder::Cnn(c) => {
                c.channels == channels
                    && c.filters > 0
                    && (1..=steps).contains(&c.width)
                    && c.w.len() == c.filters * c.width * c.channels
                    && c.b.len() == c.filters
            }
        };
        if !encoder_ok {
            return Err("its encoder does not match its inputs".into());
        }
        let (hidden, joined) = (self.b1.len(), self.encoder.width() + statics);
        if self.static_inputs != statics
            || hidden == 0
            || self.w1.len() != hidden * joined
            || self.b2.len() != outputs
            || self.w2.len() != outputs * hidden
        {
            return Err("its layers do not fit together".into());
        }
        let encoder: Vec<&Vec<f64>> = match &self.encoder {
            Encoder::Gru(g) => vec![&g.w, &g.u, &g.b],
            Encoder::Cnn(c) => vec![&c.w, &c.b],
        };
        let mut weights = encoder
            .into_iter()
            .chain([&self.w1, &self.b1, &self.w2, &self.b2]);
        if weights.any(|p| p.iter().any(|v| !v.is_finite())) {
            return Err("a weight is not a finite number".into());
        }
        Ok(())
    }

    /// An empty trace for this network's passes.
    pub fn trace(&self) -> Trace {
        Trace {
            encoder: match self.encoder {
                Encoder::Gru(_) => EncoderTrace::Gru(GruTrace::default()),
                Encoder::Cnn(_) => EncoderTrace::Cnn(ConvolutionTrace::default()),
            },
            joined: Vec::new(),
            hidden: vec![0.0; self.b1.len()],
            outputs: vec![0.0; self.b2.len()],
        }
    }

    /// The outputs for one example: its `sequence` (steps × channels) and `statics`.
    pub fn forward<'t>(
        &self,
        sequence: &[f64],
        statics: &[f64],
        trace: &'t mut Trace,
    ) -> &'t [f64] {
        let encoding = match (&self.encoder, &mut trace.encoder) {
            (Encoder::Gru(g), EncoderTrace::Gru(t)) => g.forward(sequence, t),
            (Encoder::Cnn(c), EncoderTrace::Cnn(t)) => c.forward(sequence, t),
            _ => unreachable!("a trace is made by its network (SequenceNetwork::trace)"),
        };
        trace.joined.clear();
        trace.joined.extend_from_slice(encoding);
        trace.joined.extend_from_slice(statics);
        trace.hidden.copy_from_slice(&self.b1);
        add_product(&self.w1, &trace.joined, &mut trace.hidden);
        for v in &mut trace.hidden {
            *v = v.max(0.0);
        }
        trace.outputs.copy_from_slice(&self.b2);
        add_product(&self.w2, &trace.hidden, &mut trace.outputs);
        &trace.outputs
    }

    /// One example's loss under `objective` for the target `y` (as the mlp's loss reads it),
    /// with its gradient added to `grads` — forward and backward in one.
    pub fn loss_and_gradient(
        &self,
        objective: Objective,
        (sequence, statics, y): (&[f64], &[f64], f64),
        trace: &mut Trace,
        grads: &mut SequenceNetwork,
    ) -> f64 {
        let outputs = self.forward(sequence, statics, trace);
        let (loss, d_outputs) = row_loss(objective, ArrayView1::from(outputs), y);
        self.backward(sequence, trace, &d_outputs[..self.b2.len()], grads, None);
        loss
    }

    /// The gradient of the pass in `trace`, given the gradient of the loss with respect to the
    /// outputs: added to `grads`, and with respect to the inputs (sequence, statics) to
    /// `d_inputs` if given (for explanations).
    pub fn backward(
        &self,
        sequence: &[f64],
        trace: &Trace,
        d_outputs: &[f64],
        grads: &mut SequenceNetwork,
        d_inputs: Option<(&mut [f64], &mut [f64])>,
    ) {
        add_outer(&mut grads.w2, d_outputs, &trace.hidden);
        for (g, d) in grads.b2.iter_mut().zip(d_outputs) {
            *g += d;
        }
        let mut d_hidden = vec![0.0; trace.hidden.len()];
        add_transposed_product(&self.w2, d_outputs, &mut d_hidden);
        for (d, h) in d_hidden.iter_mut().zip(&trace.hidden) {
            if *h <= 0.0 {
                *d = 0.0; // the ReLU let nothing through
            }
        }
        add_outer(&mut grads.w1, &d_hidden, &trace.joined);
        for (g, d) in grads.b1.iter_mut().zip(&d_hidden) {
            *g += d;
        }
        let mut d_joined = vec![0.0; trace.joined.len()];
        add_transposed_product(&self.w1, &d_hidden, &mut d_joined);
        let (d_encoding, d_static) = d_joined.split_at(self.encoder.width());
        let d_sequence = match d_inputs {
            Some((d_sequence, d_statics)) => {
                for (d, g) in d_statics.iter_mut().zip(d_static) {
                    *d += g;
                }
                Some(d_sequence)
            }
            None => None,
        };
        match (&self.encoder, &trace.encoder, &mut grads.encoder) {
            (Encoder::Gru(g), EncoderTrace::Gru(t), Encoder::Gru(gg)) => {
                g.backward(sequence, t, d_encoding, gg, d_sequence)
            }
            (Encoder::Cnn(c), EncoderTrace::Cnn(t), Encoder::Cnn(cg)) => {
                c.backward(sequence, t, d_encoding, cg, d_sequence)
            }
            _ => unreachable!("a trace and a gradient are made by their network"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradient_check::assert_matches;
    use super::*;

    fn example(steps: usize, channels: usize, statics: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = SplitMix64::new(seed);
        let mut values =
            |n: usize| -> Vec<f64> { (0..n).map(|_| 2.0 * rng.next_f64() - 1.0).collect() };
        (values(steps * channels), values(statics))
    }

    fn networks(objective: Objective) -> [SequenceNetwork; 2] {
        let mut rng = SplitMix64::new(11);
        let gru = Encoder::Gru(Gru::new(2, 5, &mut rng));
        let cnn = Encoder::Cnn(TemporalConvolution::new(2, 3, 3, &mut rng));
        [
            SequenceNetwork::new(gru, 3, 6, objective, &mut rng),
            SequenceNetwork::new(cnn, 3, 6, objective, &mut rng),
        ]
    }

    /// The whole network's gradient — head, hidden layer, encoder — equals central differences
    /// of the mlp's losses: squared error, log loss and the zero-inflated lognormal.
    #[test]
    fn gradients_match_central_differences_for_every_objective() {
        let (sequence, statics) = example(8, 2, 3, 12);
        let cases = [
            (Objective::SquaredError, 0.7),
            (Objective::LogLoss, 1.0),
            (Objective::ZeroInflatedLognormal, 0.4),
            (Objective::ZeroInflatedLognormal, f64::NEG_INFINITY),
        ];
        for (objective, y) in cases {
            for net in networks(objective) {
                let mut trace = net.trace();
                let mut grads = net.zeros_like();
                let example = (&sequence[..], &statics[..], y);
                net.loss_and_gradient(objective, example, &mut trace, &mut grads);
                let mut probe = net.clone();
                let mut grads_probe = grads.clone();
                let analytic: Vec<Vec<f64>> = grads_probe
                    .parameters_mut()
                    .into_iter()
                    .map(|p| p.to_vec())
                    .collect();
                for (part, want) in analytic.iter().enumerate() {
                    let mut values = probe.parameters_mut()[part].to_vec();
                    let what = format!("{objective:?} {:?} part {part}", y);
                    assert_matches(&what, &mut values, want, &mut |v| {
                        let mut p = net.clone();
                        p.parameters_mut()[part].copy_from_slice(v);
                        let mut t = p.trace();
                        let mut scratch = p.zeros_like();
                        p.loss_and_gradient(objective, example, &mut t, &mut scratch)
                    });
                }
            }
        }
    }
}
