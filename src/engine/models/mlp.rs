//! Multilayer perceptron: a regressor (identity output, squared error), a binary classifier
//! (sigmoid output, log loss) and a zero-inflated lognormal model of spend (three outputs, the
//! ZILN likelihood of Wang, Liu & Miao 2019), trained with mini-batch Adam and early stopping.
//!
//! Training runs on `ndarray` matrix products because that is where the time goes (a mini-batch
//! is three small GEMMs forward and five backward). The fitted network is then copied into
//! **our own** serde struct, [`MlpModel`]: plain `Vec<f64>` weights, read by a loop over slices.
//! Scoring therefore never touches ndarray, stored bytes do not depend on ndarray's serde layout,
//! and a future ndarray upgrade cannot break an old model.
//!
//! Inputs are standardised with the training means and standard deviations (stored in the
//! model, so scoring applies exactly the same transform); the regression target is standardised
//! for training, so one learning rate suits targets in cents or in millions, and transformed
//! back on output.
//!
//! Cancellation: `interrupt` is called on the calling thread before every mini-batch and before
//! every validation pass. In Postgres it may unwind; no state here needs cleaning up, and nothing
//! wraps it in `catch_unwind`.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Zip};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::Dataset;
use crate::engine::memory;
use crate::engine::options::values::{integer, number, option_error};
use crate::engine::stats::{sigmoid, SplitMix64};

use super::Loss;

/// Widest layer a model may have. Scoring keeps activations in two fixed stack arrays of this
/// size (8 KiB together) so predicting a row never allocates; it also bounds what a corrupted
/// model can make us do.
pub const MAX_WIDTH: usize = 512;
/// Most hidden layers a model may have (deeper plain MLPs do not train well on tabular data).
pub const MAX_HIDDEN_LAYERS: usize = 8;
/// Upper bound of the `epochs` option, so a typo cannot keep a backend busy for days.
pub const MAX_EPOCHS: usize = 10_000;
/// Fewest rows the network is fitted on after the validation rows are set aside.
pub const MIN_FIT_ROWS: usize = 10;
/// A validation loss must beat the best so far by this fraction to reset the patience counter
/// (scikit-learn uses an absolute `tol`; a relative one works for any target scale). Any
/// improvement, however small, still becomes the restored "best" weights.
pub(crate) const MIN_RELATIVE_IMPROVEMENT: f64 = 1e-4;

pub(crate) const ADAM_BETA1: f64 = 0.9;
pub(crate) const ADAM_BETA2: f64 = 0.999;
pub(crate) const ADAM_EPSILON: f64 = 1e-8;

/// The output unit's activation, stored in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputActivation {
    /// `target_mean + target_scale · z` (regression).
    Identity,
    /// `1 / (1 + e^-z)`, a probability (binary classification); target mean/scale are unused.
    Sigmoid,
    /// Three outputs `(z₀, z₁, z₂)` of the zero-inflated lognormal (appended: stored models
    /// decode by index): P(buy) = σ(z₀), and a buyer's ln(spend) is normal with mean
    /// `target_mean + target_scale · z₁` and standard deviation
    /// `target_scale · softplus(z₂)` (within [`SIGMA_FLOOR`], [`SIGMA_CEILING`]); the prediction is
    /// P(buy) · exp(μ + σ²/2).
    ZeroInflatedLognormal,
}

impl ZilnParts {
    /// The parts from the output layer `z` of a network whose buyers' ln(spend) was
    /// standardised by `(mean, scale)`.
    #[inline]
    pub(crate) fn of(z: &[f64; MAX_OUTPUTS], (mean, scale): (f64, f64)) -> ZilnParts {
        ZilnParts {
            buy_probability: sigmoid(z[0]),
            log_mean: mean + scale * z[1],
            log_sd: scale * softplus(z[2]).clamp(SIGMA_FLOOR, SIGMA_CEILING),
        }
    }
}

impl OutputActivation {
    /// The prediction from the output layer `z` of a network whose target was standardised by
    /// `target` (mean, scale): the value, a probability, or the zero-inflated lognormal mean.
    #[inline]
    pub(crate) fn prediction(self, z: &[f64; MAX_OUTPUTS], target: (f64, f64)) -> f64 {
        match self {
            OutputActivation::Identity => target.0 + target.1 * z[0],
            OutputActivation::Sigmoid => sigmoid(z[0]),
            OutputActivation::ZeroInflatedLognormal => {
                let parts = ZilnParts::of(z, target);
                let log_sd = parts.log_sd;
                parts.buy_probability * (parts.log_mean + log_sd * log_sd / 2.0).exp()
            }
        }
    }

    /// The gradient of [`OutputActivation::prediction`] with respect to `z` (for explanations
    /// along a path of inputs).
    pub(crate) fn prediction_gradient(
        self,
        z: &[f64; MAX_OUTPUTS],
        target: (f64, f64),
    ) -> [f64; MAX_OUTPUTS] {
        match self {
            OutputActivation::Identity => [target.1, 0.0, 0.0],
            OutputActivation::Sigmoid => {
                let p = sigmoid(z[0]);
                [p * (1.0 - p), 0.0, 0.0]
            }
            OutputActivation::ZeroInflatedLognormal => {
                let prediction = self.prediction(z, target);
                let parts = ZilnParts::of(z, target);
                let sd = softplus(z[2]);
                // σ is clamped: outside the clamp it does not move with z₂
                let d_sd = if sd > SIGMA_FLOOR && sd < SIGMA_CEILING {
                    target.1 * sigmoid(z[2])
                } else {
                    0.0
                };
                [
                    prediction * (1.0 - parts.buy_probability),
                    prediction * target.1,
                    prediction * parts.log_sd * d_sd,
                ]
            }
        }
    }

    /// Units of the output layer.
    pub fn width(self) -> usize {
        match self {
            OutputActivation::Identity | OutputActivation::Sigmoid => 1,
            OutputActivation::ZeroInflatedLognormal => 3,
        }
    }
}

/// Most outputs a network has (the zero-inflated lognormal's three).
pub(crate) const MAX_OUTPUTS: usize = 3;

/// Smallest standardised σ of the zero-inflated lognormal (as Keras' reference implementation
/// floors its softplus): keeps the likelihood finite when one buyer's spend is fitted exactly.
pub const SIGMA_FLOOR: f64 = 1e-3;
/// Largest standardised σ: 1, the spread of ln(spend) over all training buyers (see
/// [`MlpModel::ziln_parts`]).
pub const SIGMA_CEILING: f64 = 1.0;

/// The three parts of a zero-inflated lognormal prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZilnParts {
    pub buy_probability: f64,
    /// μ: the mean of a buyer's ln(spend).
    pub log_mean: f64,
    /// σ: the standard deviation of a buyer's ln(spend).
    pub log_sd: f64,
}

/// What the network is trained to minimise: the output layer and its loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// One identity output, squared error on the standardised target.
    SquaredError,
    /// One logit, binary log loss.
    LogLoss,
    /// Three outputs, the negative zero-inflated lognormal log-likelihood of a target ≥ 0.
    ZeroInflatedLognormal,
}

impl From<Loss> for Objective {
    fn from(loss: Loss) -> Objective {
        match loss {
            Loss::SquaredError => Objective::SquaredError,
            Loss::LogLoss => Objective::LogLoss,
        }
    }
}

impl Objective {
    pub(crate) fn output(self) -> OutputActivation {
        match self {
            Objective::SquaredError => OutputActivation::Identity,
            Objective::LogLoss => OutputActivation::Sigmoid,
            Objective::ZeroInflatedLognormal => OutputActivation::ZeroInflatedLognormal,
        }
    }
}

/// Hyperparameters, named like the keys of the `options` jsonb.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpOptions {
    /// Width of each hidden layer, input side first. Empty = a linear model on the inputs.
    pub hidden_layers: Vec<usize>,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Most passes over the training rows; early stopping usually ends sooner.
    pub epochs: usize,
    /// Rows per mini-batch (capped at the number of training rows).
    pub batch_size: usize,
    /// Share of the training rows held out to decide early stopping; 0 disables early
    /// stopping (every epoch runs and the last weights are kept).
    pub validation_fraction: f64,
    /// Epochs without a significant validation improvement before training stops.
    pub patience: usize,
    /// Seeds the validation split, the weight initialisation and the mini-batch shuffles.
    pub seed: u64,
    /// L2 penalty on the weights (not the biases): `0.5 · l2 · Σw²` is added to each
    /// mini-batch's mean loss.
    pub l2: f64,
}

impl Default for MlpOptions {
    /// The seed project's network: Dense 64 → 32 → 1, Adam at 0.001, batches of 128.
    fn default() -> Self {
        MlpOptions {
            hidden_layers: vec![64, 32],
            learning_rate: 0.001,
            epochs: 50,
            batch_size: 128,
            validation_fraction: 0.1,
            patience: 5,
            seed: 42,
            l2: 0.0,
        }
    }
}

impl MlpOptions {
    /// The option keys of the MLP.
    pub const KEYS: &'static [&'static str] = &[
        "hidden_layers",
        "learning_rate",
        "epochs",
        "batch_size",
        "validation_fraction",
        "patience",
        "l2",
    ];

    /// Reads the [`MlpOptions::KEYS`] from an options object, each checked and named when
    /// wrong; `seed` seeds the weights and mini-batches.
    pub fn from_options(map: &Map<String, Value>, seed: u64) -> Result<MlpOptions> {
        let mut o = MlpOptions {
            seed,
            ..MlpOptions::default()
        };
        if let Some(v) = map.get("hidden_layers") {
            let widths: Option<Vec<usize>> = v
                .as_array()
                .map(|a| a.iter().map(|w| w.as_u64().map(|w| w as usize)).collect())
                .and_then(|w: Option<Vec<usize>>| w);
            o.hidden_layers = widths.ok_or_else(|| {
                option_error(
                    "hidden_layers",
                    "an array of layer widths, e.g. [64, 32]",
                    v,
                )
            })?;
        }
        if let Some(r) = number(map, "learning_rate", 1e-9, 1.0, "a number from 1e-9 to 1")? {
            o.learning_rate = r;
        }
        if let Some(n) = integer(map, "epochs", 1, 10_000)? {
            o.epochs = n as usize;
        }
        if let Some(n) = integer(map, "batch_size", 1, 1_000_000)? {
            o.batch_size = n as usize;
        }
        if let Some(f) = number(
            map,
            "validation_fraction",
            0.0,
            0.5,
            "a number from 0 to 0.5",
        )? {
            o.validation_fraction = f;
        }
        if let Some(n) = integer(map, "patience", 1, 10_000)? {
            o.patience = n as usize;
        }
        if let Some(l2) = number(map, "l2", 0.0, 1e6, "a non-negative number")? {
            o.l2 = l2;
        }
        o.validate()?;
        Ok(o)
    }

    /// Checks every option, naming the key at fault, so a bad value is refused before any work.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(EngineError::invalid_parameter(msg));
        if self.hidden_layers.len() > MAX_HIDDEN_LAYERS {
            return bad(format!(
                "hidden_layers has {} layers, at most {MAX_HIDDEN_LAYERS} are allowed",
                self.hidden_layers.len()
            ));
        }
        if let Some(w) = self
            .hidden_layers
            .iter()
            .find(|&&w| w == 0 || w > MAX_WIDTH)
        {
            return bad(format!(
                "hidden_layers holds a layer of width {w}, widths must be between 1 and {MAX_WIDTH}"
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning_rate must be a positive number, got {}",
                self.learning_rate
            ));
        }
        if self.epochs == 0 || self.epochs > MAX_EPOCHS {
            return bad(format!(
                "epochs must be between 1 and {MAX_EPOCHS}, got {}",
                self.epochs
            ));
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if !(0.0..=0.5).contains(&self.validation_fraction) {
            return bad(format!(
                "validation_fraction must be between 0 and 0.5, got {}",
                self.validation_fraction
            ));
        }
        if self.patience == 0 {
            return bad("patience must be at least 1".into());
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad(format!(
                "l2 must be zero or a positive number, got {}",
                self.l2
            ));
        }
        Ok(())
    }
}

/// One fully connected layer. `weights[i * n_out + j]` connects input `i` to output `j`
/// (row-major `n_in × n_out`, the layout of `x · W`), so scoring adds one contiguous row of
/// weights per input — a loop the compiler vectorises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseLayer {
    pub n_in: u32,
    pub n_out: u32,
    pub weights: Vec<f64>,
    pub bias: Vec<f64>,
}

/// A fitted network in the stored representation. Hidden layers use ReLU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpModel {
    pub layers: Vec<DenseLayer>,
    /// Per feature: the network sees `(x - input_mean) / input_scale`.
    pub input_mean: Vec<f64>,
    /// Training standard deviation, or 1 for a constant column (which then feeds a constant 0).
    pub input_scale: Vec<f64>,
    pub target_mean: f64,
    pub target_scale: f64,
    pub output: OutputActivation,
}

/// How training went.
#[derive(Debug, Clone, PartialEq)]
pub struct MlpReport {
    /// Epochs actually run (fewer than `epochs` when early stopping ended training).
    pub epochs_run: usize,
    /// The epoch whose weights were kept (1-based); the last epoch without a validation split.
    pub best_epoch: usize,
    /// Validation loss of the kept weights: mean squared error in the target's own units
    /// (regression), mean log loss (binary) or the mean negative log-likelihood of the
    /// zero-inflated lognormal, spend in its own units. `None` when `validation_fraction` is 0.
    pub best_validation_loss: Option<f64>,
}

impl MlpModel {
    /// Predicts one row: the target (regression), P(label = 1) (binary) or the zero-inflated
    /// lognormal mean (see [`OutputActivation::ZeroInflatedLognormal`]). `x` holds one value
    /// per feature, in feature order. Never allocates and never panics; a model that fails
    /// [`MlpModel::validate`] yields NaN.
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        let mut z = [0.0f64; MAX_OUTPUTS];
        if !self.outputs(x.iter().copied(), &mut z) {
            return f64::NAN;
        }
        self.output
            .prediction(&z, (self.target_mean, self.target_scale))
    }

    /// P(buy) and a buyer's lognormal μ and σ, from a zero-inflated lognormal network reading
    /// the features `x`; `None` for any other network or one that fails validation.
    #[inline]
    pub fn ziln_parts(&self, x: impl Iterator<Item = f64>) -> Option<ZilnParts> {
        let mut z = [0.0f64; MAX_OUTPUTS];
        (self.output == OutputActivation::ZeroInflatedLognormal && self.outputs(x, &mut z))
            .then(|| self.ziln_parts_of(&z))
    }

    /// σ is at most `target_scale`, the spread of ln(spend) over all training buyers: a
    /// customer's spend is not less predictable than a stranger's, and exp(σ²/2) must not let
    /// a network extrapolating beyond its data inflate a prediction.
    #[inline]
    fn ziln_parts_of(&self, z: &[f64; MAX_OUTPUTS]) -> ZilnParts {
        ZilnParts::of(z, (self.target_mean, self.target_scale))
    }

    /// Writes the output layer's pre-activations into `z`; false when the network does not
    /// have the shape its output activation needs.
    #[inline]
    fn outputs(&self, x: impl Iterator<Item = f64>, z: &mut [f64; MAX_OUTPUTS]) -> bool {
        let mut buf_a = [0.0f64; MAX_WIDTH];
        let mut buf_b = [0.0f64; MAX_WIDTH];
        let Some((first, rest)) = self.layers.split_first() else {
            return false;
        };
        let standardised = x
            .zip(&self.input_mean)
            .zip(&self.input_scale)
            .map(|((v, m), s)| (v - m) / s);
        let Some(mut width) = dense(first, standardised, &mut buf_a) else {
            return false;
        };
        let (mut cur, mut next) = (&mut buf_a, &mut buf_b);
        for layer in rest {
            let hidden = &mut cur[..width];
            hidden.iter_mut().for_each(|v| *v = relu(*v));
            width = match dense(layer, hidden.iter().copied(), next) {
                Some(w) => w,
                None => return false,
            };
            std::mem::swap(&mut cur, &mut next);
        }
        if width != self.output.width() {
            return false;
        }
        z[..width].copy_from_slice(&cur[..width]);
        true
    }

    pub fn n_features(&self) -> usize {
        self.input_mean.len()
    }

    /// Widths of the hidden layers, input side first.
    pub fn hidden_layers(&self) -> Vec<usize> {
        let n = self.layers.len().saturating_sub(1);
        self.layers[..n].iter().map(|l| l.n_out as usize).collect()
    }

    /// Weights plus biases.
    pub fn n_parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weights.len() + l.bias.len())
            .sum()
    }

    /// Checks every length, shape and value scoring relies on, so a model decoded from bytes
    /// can neither index out of bounds nor return garbage silently.
    pub fn validate(&self, n_features: usize) -> Result<()> {
        let bad = |why: String| {
            Err(EngineError::corrupted(format!(
                "mlp model is invalid: {why}"
            )))
        };
        if self.input_mean.len() != n_features || self.input_scale.len() != n_features {
            return bad(format!(
                "{} input means and {} scales for {n_features} features",
                self.input_mean.len(),
                self.input_scale.len()
            ));
        }
        if self.input_mean.iter().any(|m| !m.is_finite()) {
            return bad("non-finite input mean".into());
        }
        if self
            .input_scale
            .iter()
            .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return bad("an input scale is not a positive number".into());
        }
        if !(self.target_mean.is_finite()
            && self.target_scale.is_finite()
            && self.target_scale > 0.0)
        {
            return bad("target mean or scale is not valid".into());
        }
        if self.layers.is_empty() || self.layers.len() > MAX_HIDDEN_LAYERS + 1 {
            return bad(format!("{} layers", self.layers.len()));
        }
        let mut expected_in = n_features;
        for (k, layer) in self.layers.iter().enumerate() {
            let (n_in, n_out) = (layer.n_in as usize, layer.n_out as usize);
            if n_in != expected_in {
                return bad(format!(
                    "layer {k} has {n_in} inputs, expected {expected_in}"
                ));
            }
            if n_out == 0 || n_out > MAX_WIDTH {
                return bad(format!("layer {k} has {n_out} outputs"));
            }
            if Some(layer.weights.len()) != n_in.checked_mul(n_out) {
                return bad(format!(
                    "layer {k} has {} weights for {n_in} × {n_out}",
                    layer.weights.len()
                ));
            }
            if layer.bias.len() != n_out {
                return bad(format!(
                    "layer {k} has {} biases for {n_out} outputs",
                    layer.bias.len()
                ));
            }
            if layer
                .weights
                .iter()
                .chain(&layer.bias)
                .any(|v| !v.is_finite())
            {
                return bad(format!("layer {k} holds a non-finite weight"));
            }
            expected_in = n_out;
        }
        if expected_in != self.output.width() {
            return bad(format!(
                "the last layer has {expected_in} outputs, not {}",
                self.output.width()
            ));
        }
        Ok(())
    }
}

/// `out[..n_out] = bias + Σ_i inputs[i] · weights[i, ..]`; `None` when the layer does not fit
/// the buffer (only possible for a model that fails validation).
#[inline]
fn dense(
    layer: &DenseLayer,
    inputs: impl Iterator<Item = f64>,
    out: &mut [f64; MAX_WIDTH],
) -> Option<usize> {
    let n_out = layer.n_out as usize;
    if n_out == 0 || layer.bias.len() != n_out {
        return None;
    }
    let out = out.get_mut(..n_out)?;
    out.copy_from_slice(&layer.bias);
    for (a, row) in inputs.zip(layer.weights.chunks_exact(n_out)) {
        for (o, w) in out.iter_mut().zip(row) {
            *o += a * w;
        }
    }
    Some(n_out)
}

/// ReLU that keeps NaN (`f64::max` would turn NaN into 0 and hide a diverged layer).
#[inline]
fn relu(v: f64) -> f64 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// `ln(1 + e^z)`, stable for any `z`.
#[inline]
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// Log loss of logit `z` for label `y`, stable for any `z`:
/// `-y·ln σ(z) - (1-y)·ln(1-σ(z)) = max(z, 0) - z·y + ln(1 + e^-|z|)`.
#[inline]
fn log_loss(z: f64, y: f64) -> f64 {
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

// ---------------------------------------------------------------------------------------------
// Training (ndarray)
// ---------------------------------------------------------------------------------------------

/// The network during training: `w[l]` is `n_in × n_out`, `b[l]` has `n_out` entries.
#[derive(Debug, Clone, PartialEq)]
struct Net {
    w: Vec<Array2<f64>>,
    b: Vec<Array1<f64>>,
}

impl Net {
    /// He initialisation (normal, variance 2 / fan-in; suits ReLU), zero biases. Uses libm's
    /// `log`/`cos` so a seed gives the same weights on every platform.
    fn he_init(sizes: &[usize], rng: &mut SplitMix64) -> Net {
        let mut w = Vec::with_capacity(sizes.len().saturating_sub(1));
        let mut b = Vec::with_capacity(sizes.len().saturating_sub(1));
        for pair in sizes.windows(2) {
            let (n_in, n_out) = (pair[0], pair[1]);
            let sd = (2.0 / n_in as f64).sqrt();
            w.push(Array2::from_shape_fn((n_in, n_out), |_| {
                sd * standard_normal(rng)
            }));
            b.push(Array1::zeros(n_out));
        }
        Net { w, b }
    }

    fn zeros_like(&self) -> Net {
        Net {
            w: self.w.iter().map(|w| Array2::zeros(w.raw_dim())).collect(),
            b: self.b.iter().map(|b| Array1::zeros(b.raw_dim())).collect(),
        }
    }

    fn all_finite(&self) -> bool {
        self.w.iter().all(|w| w.iter().all(|v| v.is_finite()))
            && self.b.iter().all(|b| b.iter().all(|v| v.is_finite()))
    }

    fn to_layers(&self) -> Vec<DenseLayer> {
        self.w
            .iter()
            .zip(&self.b)
            .map(|(w, b)| DenseLayer {
                n_in: w.nrows() as u32,
                n_out: w.ncols() as u32,
                // `iter` walks in logical (row-major) order whatever the memory layout
                weights: w.iter().copied().collect(),
                bias: b.to_vec(),
            })
            .collect()
    }
}

/// Box–Muller from two uniforms in (0, 1) built from the top 53 bits.
fn standard_normal(rng: &mut SplitMix64) -> f64 {
    const TWO_POW_MINUS_53: f64 = 1.0 / (1u64 << 53) as f64;
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) * TWO_POW_MINUS_53;
    let u2 = (rng.next_u64() >> 11) as f64 * TWO_POW_MINUS_53;
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * std::f64::consts::PI * u2)
}

/// Buffers for one mini-batch of up to `capacity` rows, allocated once per fit:
/// `acts[l]` is layer `l`'s output (ReLU applied for hidden layers, the raw logit/score for the
/// last), `deltas[l]` the loss gradient with respect to layer `l`'s pre-activation.
struct Workspace {
    acts: Vec<Array2<f64>>,
    deltas: Vec<Array2<f64>>,
}

impl Workspace {
    fn new(net: &Net, capacity: usize) -> Workspace {
        let shapes = || net.w.iter().map(|w| Array2::zeros((capacity, w.ncols())));
        Workspace {
            acts: shapes().collect(),
            deltas: shapes().collect(),
        }
    }
}

/// Forward pass of `x` (`m` rows, standardised); afterwards `ws.acts[last][..m, 0]` holds the
/// output pre-activations.
fn forward(net: &Net, x: ArrayView2<f64>, ws: &mut Workspace) {
    let m = x.nrows();
    let last = net.w.len() - 1;
    for l in 0..net.w.len() {
        let (before, after) = ws.acts.split_at_mut(l);
        let mut out = after[0].slice_mut(s![..m, ..]);
        let input = if l == 0 {
            x.view()
        } else {
            before[l - 1].slice(s![..m, ..])
        };
        general_mat_mul(1.0, &input, &net.w[l], 0.0, &mut out);
        out += &net.b[l];
        if l < last {
            out.mapv_inplace(relu);
        }
    }
}

/// Mean loss over the rows of `z` (the output layer's pre-activations, one row per example)
/// against `y` (standardised), and the gradient of that mean with respect to each `z`, written
/// to `delta`.
fn output_loss(
    objective: Objective,
    z: ArrayView2<f64>,
    y: ArrayView1<f64>,
    mut delta: Option<ArrayViewMut2<f64>>,
) -> f64 {
    let m = y.len() as f64;
    let mut sum = 0.0;
    for (i, (z, &y)) in z.rows().into_iter().zip(y).enumerate() {
        let (loss, gradient) = row_loss(objective, z, y);
        sum += loss;
        if let Some(delta) = delta.as_mut() {
            for (k, d) in delta.row_mut(i).iter_mut().enumerate() {
                *d = gradient[k] / m;
            }
        }
    }
    sum / m
}

/// One example's loss and its gradient with respect to the outputs `z`.
#[inline]
pub(crate) fn row_loss(
    objective: Objective,
    z: ArrayView1<f64>,
    y: f64,
) -> (f64, [f64; MAX_OUTPUTS]) {
    match objective {
        // 0.5·(z - y)² per row, as scikit-learn; the gradient is then z - y
        Objective::SquaredError => (0.5 * (z[0] - y) * (z[0] - y), [z[0] - y, 0.0, 0.0]),
        Objective::LogLoss => (log_loss(z[0], y), [sigmoid(z[0]) - y, 0.0, 0.0]),
        Objective::ZeroInflatedLognormal => ziln_loss(z[0], z[1], z[2], y),
    }
}

/// The zero-inflated lognormal loss of one example on the standardised log scale, `y` being
/// the standardised ln(spend) of a buyer or −∞ (ln 0) for no purchase: the log loss of "buys"
/// plus, for a buyer, `ln σ + (y − μ)² / 2σ²` with μ = `z₁` and σ = softplus(`z₂`) (within
/// [`SIGMA_FLOOR`], [`SIGMA_CEILING`]).
/// This is the negative log-likelihood up to terms that do not depend on the weights
/// ([`validation_loss`] adds them back).
#[inline]
fn ziln_loss(z_buy: f64, mu: f64, z_sd: f64, y: f64) -> (f64, [f64; MAX_OUTPUTS]) {
    let bought = y > f64::NEG_INFINITY;
    let label = f64::from(u8::from(bought));
    let mut loss = log_loss(z_buy, label);
    let mut gradient = [sigmoid(z_buy) - label, 0.0, 0.0];
    if bought {
        let raw_sd = softplus(z_sd);
        let sd = raw_sd.clamp(SIGMA_FLOOR, SIGMA_CEILING);
        let (r, var) = (y - mu, sd * sd);
        loss += sd.ln() + r * r / (2.0 * var);
        gradient[1] = -r / var;
        if raw_sd > SIGMA_FLOOR && raw_sd < SIGMA_CEILING {
            // d/dσ (ln σ + r²/2σ²) = 1/σ − r²/σ³, and softplus' = sigmoid
            gradient[2] = (1.0 / sd - r * r / (var * sd)) * sigmoid(z_sd);
        }
    }
    (loss, gradient)
}

fn l2_penalty(net: &Net, l2: f64) -> f64 {
    if l2 == 0.0 {
        return 0.0;
    }
    0.5 * l2
        * net
            .w
            .iter()
            .map(|w| w.iter().map(|v| v * v).sum::<f64>())
            .sum::<f64>()
}

/// The mini-batch objective (mean loss + L2 term) without gradients (for the gradient check).
#[cfg(test)]
fn objective(
    net: &Net,
    task: Objective,
    l2: f64,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    ws: &mut Workspace,
) -> f64 {
    forward(net, x, ws);
    let last = net.w.len() - 1;
    let m = x.nrows();
    output_loss(task, ws.acts[last].slice(s![..m, ..]), y, None) + l2_penalty(net, l2)
}

/// Forward and backward pass: returns the mini-batch objective and writes its gradient with
/// respect to every weight and bias into `grads`.
fn objective_and_gradient(
    net: &Net,
    task: Objective,
    l2: f64,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    ws: &mut Workspace,
    grads: &mut Net,
) -> f64 {
    forward(net, x, ws);
    let m = x.nrows();
    let last = net.w.len() - 1;
    let loss = output_loss(
        task,
        ws.acts[last].slice(s![..m, ..]),
        y,
        Some(ws.deltas[last].slice_mut(s![..m, ..])),
    );
    for l in (0..=last).rev() {
        {
            let delta = ws.deltas[l].slice(s![..m, ..]);
            let input = if l == 0 {
                x.view()
            } else {
                ws.acts[l - 1].slice(s![..m, ..])
            };
            general_mat_mul(1.0, &input.t(), &delta, 0.0, &mut grads.w[l]);
            if l2 != 0.0 {
                grads.w[l].scaled_add(l2, &net.w[l]);
            }
            let gb = &mut grads.b[l];
            gb.fill(0.0);
            for row in delta.rows() {
                *gb += &row;
            }
        }
        if l > 0 {
            // δ_{l-1} = (δ_l · W_lᵀ) ⊙ relu'(z_{l-1}); relu'(z) = 1 exactly where the output > 0
            let (below, here) = ws.deltas.split_at_mut(l);
            let mut prev = below[l - 1].slice_mut(s![..m, ..]);
            general_mat_mul(
                1.0,
                &here[0].slice(s![..m, ..]),
                &net.w[l].t(),
                0.0,
                &mut prev,
            );
            Zip::from(&mut prev)
                .and(ws.acts[l - 1].slice(s![..m, ..]))
                .for_each(|d, &a| {
                    if a <= 0.0 {
                        *d = 0.0;
                    }
                });
        }
    }
    loss + l2_penalty(net, l2)
}

/// Adam (Kingma & Ba 2015) with bias correction.
struct Adam {
    lr: f64,
    m: Net,
    v: Net,
    beta1_power: f64,
    beta2_power: f64,
}

impl Adam {
    fn new(net: &Net, lr: f64) -> Adam {
        Adam {
            lr,
            m: net.zeros_like(),
            v: net.zeros_like(),
            beta1_power: 1.0,
            beta2_power: 1.0,
        }
    }

    fn step(&mut self, net: &mut Net, grads: &Net) {
        self.beta1_power *= ADAM_BETA1;
        self.beta2_power *= ADAM_BETA2;
        let (c1, c2, lr) = (1.0 - self.beta1_power, 1.0 - self.beta2_power, self.lr);
        let update = |p: &mut f64, m: &mut f64, v: &mut f64, g: &f64| {
            *m = ADAM_BETA1 * *m + (1.0 - ADAM_BETA1) * g;
            *v = ADAM_BETA2 * *v + (1.0 - ADAM_BETA2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPSILON);
        };
        for l in 0..net.w.len() {
            Zip::from(&mut net.w[l])
                .and(&mut self.m.w[l])
                .and(&mut self.v.w[l])
                .and(&grads.w[l])
                .for_each(update);
            Zip::from(&mut net.b[l])
                .and(&mut self.m.b[l])
                .and(&mut self.v.b[l])
                .and(&grads.b[l])
                .for_each(update);
        }
    }
}

/// Standardised rows (row-major) and targets of one part of the data.
struct Part {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Part {
    fn n_rows(&self) -> usize {
        self.y.len()
    }
}

/// Mean and standard deviation (population, as scikit-learn's StandardScaler) of column `j`
/// over all rows; two passes so large offsets do not cost precision.
fn column_moments(data: &Dataset, j: usize) -> (f64, f64) {
    let n = data.n_rows as f64;
    let p = data.n_features;
    let column = || data.x.iter().skip(j).step_by(p);
    let mean = column().sum::<f64>() / n;
    let var = column().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// A standard deviation usable as a divisor: a constant (or denormal-spread) column gets 1,
/// so it becomes a constant 0 input instead of a division by zero.
pub(crate) fn usable_scale(sd: f64) -> f64 {
    if sd.is_normal() {
        sd
    } else {
        1.0
    }
}

/// Trains an MLP on `train`. `interrupt` is called before every mini-batch and validation pass
/// (on this thread), so a Postgres cancel or `statement_timeout` takes effect within one batch.
///
/// Errors: an invalid option (`InvalidParameter`), too few rows (`InsufficientData`), labels
/// other than 0/1 or a single class for [`Loss::LogLoss`] (`InvalidParameter` /
/// `InsufficientData`), and a loss that stops being a finite number (`FitFailed`, naming the
/// epoch and suggesting a lower `learning_rate`).
pub fn fit_mlp(
    train: &Dataset,
    task: Loss,
    options: &MlpOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<(MlpModel, MlpReport)> {
    fit_network(train, task.into(), options, interrupt).map(|(_, model, report)| (model, report))
}

/// Trains a zero-inflated lognormal network on a target of 0 or more (spend): P(buy) and a
/// buyer's lognormal μ and σ from one network, fitted on the ZILN likelihood. Errors as
/// [`fit_mlp`], and a negative target (`InvalidParameter`) or fewer than
/// [`MIN_ZILN_BUYERS`] rows above 0 (`InsufficientData`).
pub fn fit_mlp_ziln(
    train: &Dataset,
    options: &MlpOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<(MlpModel, MlpReport)> {
    let objective = Objective::ZeroInflatedLognormal;
    fit_network(train, objective, options, interrupt).map(|(_, model, report)| (model, report))
}

/// Fewest buyers (rows with a target above 0) a zero-inflated lognormal network needs: the
/// spread of their ln(spend) standardises its μ and σ outputs.
pub const MIN_ZILN_BUYERS: usize = 10;

fn fit_network(
    train: &Dataset,
    task: Objective,
    options: &MlpOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<(Net, MlpModel, MlpReport)> {
    options.validate()?;
    let (n_val, output) = check_training_data(train, task, options)?;
    // the standardised copy of the rows and targets (ndarray allocates it without a way to
    // fail) and the rows' order: 8 bytes a value, 24 a row
    let (rows, features) = (train.n_rows as u64, train.n_features as u64);
    memory::check_headroom(rows * (features + 3) * 8, "the mlp's standardised rows")?;
    let scaling = Scaling::measure(train, task)?;
    let p = train.n_features;
    let mut rng = SplitMix64::new(options.seed);
    let mut order: Vec<usize> = (0..train.n_rows).collect();
    rng.shuffle(&mut order);
    let (val_rows, fit_rows) = order.split_at(n_val);
    let fit_part = scaling.part(train, fit_rows);
    let val_part = scaling.part(train, val_rows);
    let mut sizes = Vec::with_capacity(options.hidden_layers.len() + 2);
    sizes.push(p);
    sizes.extend_from_slice(&options.hidden_layers);
    sizes.push(output.width());
    let net = Net::he_init(&sizes, &mut rng);
    let data = EpochData {
        task,
        fit: &fit_part,
        validation: (n_val > 0).then_some(&val_part),
        target: (scaling.target.mean, scaling.target.scale),
        p,
    };
    let (net, report) = train_epochs(net, &data, options, &mut rng, interrupt)?;
    let model = MlpModel {
        layers: net.to_layers(),
        input_mean: scaling.input_mean,
        input_scale: scaling.input_scale,
        target_mean: scaling.target.mean,
        target_scale: scaling.target.scale,
        output,
    };
    model.validate(p).map_err(|e| {
        EngineError::new(
            ErrorKind::FitFailed,
            format!("mlp training produced an unusable network: {}", e.message),
        )
        .with_hint("Try a lower learning_rate.")
    })?;
    Ok((net, model, report))
}

/// Checks the training data and the target for `task`; returns how many rows are set aside for
/// validation and the output unit's activation.
fn check_training_data(
    train: &Dataset,
    task: Objective,
    options: &MlpOptions,
) -> Result<(usize, OutputActivation)> {
    let (n, p) = (train.n_rows, train.n_features);
    if Some(train.x.len()) != n.checked_mul(p) || train.y.len() != n {
        return Err(EngineError::new(
            ErrorKind::Internal,
            format!(
                "dataset of {n} rows × {p} features holds {} values and {} targets",
                train.x.len(),
                train.y.len()
            ),
        ));
    }
    if p == 0 {
        return Err(EngineError::insufficient_data(
            "mlp needs at least one feature column",
        ));
    }
    if train.x.iter().chain(&train.y).any(|v| !v.is_finite()) {
        return Err(EngineError::new(
            ErrorKind::NonFiniteValue,
            "mlp training data holds a NaN or infinite value",
        ));
    }
    let n_val = if options.validation_fraction > 0.0 {
        ((n as f64 * options.validation_fraction).round() as usize).max(1)
    } else {
        0
    };
    let n_fit = n.saturating_sub(n_val);
    if n_fit < MIN_FIT_ROWS {
        return Err(EngineError::insufficient_data(format!(
            "mlp needs at least {MIN_FIT_ROWS} training rows after setting aside {n_val} validation rows, got {n} rows"
        ))
        .with_hint("Use more rows, or a smaller validation_fraction."));
    }
    match task {
        Objective::SquaredError => {}
        Objective::ZeroInflatedLognormal => check_spend_target(train)?,
        Objective::LogLoss => {
            if let Some(v) = train.y.iter().find(|&&v| v != 0.0 && v != 1.0) {
                return Err(EngineError::invalid_parameter(format!(
                    "binary classification needs a 0/1 target, found {v}"
                )));
            }
            let positives = train.y.iter().filter(|&&v| v == 1.0).count();
            if positives == 0 || positives == n {
                return Err(EngineError::insufficient_data(format!(
                    "binary classification needs both classes, every training row has label {}",
                    train.y[0]
                )));
            }
        }
    };
    Ok((n_val, task.output()))
}

/// The zero-inflated lognormal's target: spend, 0 or more, with enough buyers.
pub(crate) fn check_spend_target(train: &Dataset) -> Result<()> {
    if let Some(y) = train.y.iter().find(|y| **y < 0.0) {
        return Err(EngineError::invalid_parameter(format!(
            "loss \"ziln\" needs a target of 0 or more (spend); the target holds {y}"
        )));
    }
    let buyers = train.y.iter().filter(|y| **y > 0.0).count();
    if buyers < MIN_ZILN_BUYERS {
        return Err(EngineError::insufficient_data(format!(
            "loss \"ziln\" needs at least {MIN_ZILN_BUYERS} rows with a target above 0; the training rows have {buyers} of {}",
            train.n_rows
        )));
    }
    Ok(())
}

/// The standardisation of inputs and (for a value target) the target, stored with the model.
/// Measured on all rows handed in, so the stored transform describes the whole training set
/// (the validation rows are only used to decide when to stop).
/// The zero-inflated lognormal standardises ln(spend) of the buyers instead of the target.
struct Scaling {
    input_mean: Vec<f64>,
    input_scale: Vec<f64>,
    target: TargetScale,
}

/// How a network reads its target (the mlp's and the sequence networks'): standardised by
/// `mean` and `scale` — of the value (squared error), of nothing (a 0/1 label), or of ln(spend)
/// of the buyers (the zero-inflated lognormal, which reads ln 0 = −∞ as "no purchase").
#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetScale {
    pub mean: f64,
    pub scale: f64,
    log: bool,
}

impl TargetScale {
    /// The scale of the targets `y` for `objective`.
    pub(crate) fn measure(y: impl Iterator<Item = f64>, objective: Objective) -> Result<Self> {
        let (mean, scale) = match objective {
            Objective::SquaredError => target_moments(&y.collect::<Vec<f64>>())?,
            Objective::LogLoss => (0.0, 1.0),
            Objective::ZeroInflatedLognormal => {
                let log_spend: Vec<f64> = y.filter(|y| *y > 0.0).map(f64::ln).collect();
                target_moments(&log_spend)?
            }
        };
        Ok(TargetScale {
            mean,
            scale,
            log: objective == Objective::ZeroInflatedLognormal,
        })
    }

    /// `y` as the network's loss reads it.
    #[inline]
    pub(crate) fn read(&self, y: f64) -> f64 {
        let target = if self.log { y.ln() } else { y };
        (target - self.mean) / self.scale
    }
}

impl Scaling {
    fn measure(train: &Dataset, task: Objective) -> Result<Scaling> {
        let p = train.n_features;
        let mut input_mean = Vec::with_capacity(p);
        let mut input_scale = Vec::with_capacity(p);
        for j in 0..p {
            let (mean, sd) = column_moments(train, j);
            if !mean.is_finite() || !sd.is_finite() {
                return Err(EngineError::new(
                    ErrorKind::FitFailed,
                    format!(
                        "mlp cannot standardise feature {}: its values are too large",
                        j + 1
                    ),
                )
                .with_hint("Rescale the column (e.g. divide by 1000) in a SELECT source."));
            }
            input_mean.push(mean);
            input_scale.push(usable_scale(sd));
        }
        Ok(Scaling {
            input_mean,
            input_scale,
            target: TargetScale::measure(train.y.iter().copied(), task)?,
        })
    }

    /// The rows `rows` of `train`, standardised.
    fn part(&self, train: &Dataset, rows: &[usize]) -> Part {
        let mut x = Vec::with_capacity(rows.len() * train.n_features);
        let mut y = Vec::with_capacity(rows.len());
        for &i in rows {
            x.extend(
                train
                    .row(i)
                    .iter()
                    .zip(&self.input_mean)
                    .zip(&self.input_scale)
                    .map(|((v, m), s)| (v - m) / s),
            );
            y.push(self.target.read(train.y[i]));
        }
        Part { x, y }
    }
}

/// Mean and usable standard deviation of a target to standardise.
fn target_moments(values: &[f64]) -> Result<(f64, f64)> {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    if !mean.is_finite() || !var.is_finite() {
        return Err(EngineError::new(
            ErrorKind::FitFailed,
            "mlp cannot standardise the target: its values are too large",
        ));
    }
    Ok((mean, usable_scale(var.sqrt())))
}

/// What the epochs train on: standardised fitting rows, and validation rows if any.
struct EpochData<'a> {
    task: Objective,
    fit: &'a Part,
    validation: Option<&'a Part>,
    /// The target's standardisation: mean and scale.
    target: (f64, f64),
    p: usize,
}

/// Adam over shuffled mini-batches, epoch after epoch; with validation rows, stops after
/// `patience` epochs without a significant improvement and returns the best weights.
fn train_epochs(
    mut net: Net,
    data: &EpochData<'_>,
    options: &MlpOptions,
    rng: &mut SplitMix64,
    interrupt: &mut dyn FnMut(),
) -> Result<(Net, MlpReport)> {
    let (p, n_fit) = (data.p, data.fit.y.len());
    let batch = options.batch_size.min(n_fit);
    let mut ws = Workspace::new(&net, batch);
    let mut grads = net.zeros_like();
    let mut adam = Adam::new(&net, options.learning_rate);
    let mut batch_x = vec![0.0; batch * p];
    let mut batch_y = vec![0.0; batch];
    let mut perm: Vec<usize> = (0..n_fit).collect();
    let mut stopping = EarlyStopping::default();
    let mut epochs_run = 0;
    for epoch in 1..=options.epochs {
        rng.shuffle(&mut perm);
        let mut loss_sum = 0.0;
        for chunk in perm.chunks(batch) {
            interrupt();
            let m = chunk.len();
            for (r, &i) in chunk.iter().enumerate() {
                batch_x[r * p..(r + 1) * p].copy_from_slice(&data.fit.x[i * p..(i + 1) * p]);
                batch_y[r] = data.fit.y[i];
            }
            let xb = view2(&batch_x[..m * p], m, p)?;
            let yb = ArrayView1::from(&batch_y[..m]);
            let loss =
                objective_and_gradient(&net, data.task, options.l2, xb, yb, &mut ws, &mut grads);
            loss_sum += loss * m as f64;
            adam.step(&mut net, &grads);
        }
        epochs_run = epoch;
        if !(loss_sum.is_finite() && net.all_finite()) {
            return Err(diverged(epoch, "training", options.learning_rate));
        }
        let Some(validation) = data.validation else {
            continue;
        };
        interrupt();
        let val_loss = validation_loss(&net, data.task, validation, data.target, &mut ws)?;
        if !val_loss.is_finite() {
            return Err(diverged(epoch, "validation", options.learning_rate));
        }
        if stopping.observe(val_loss, epoch, &net) >= options.patience {
            break;
        }
    }
    let (best_epoch, best_validation_loss) = match stopping.best {
        Some((loss, epoch, weights)) => {
            net = weights;
            (epoch, Some(loss))
        }
        None => (epochs_run, None),
    };
    let report = MlpReport {
        epochs_run,
        best_epoch,
        best_validation_loss,
    };
    Ok((net, report))
}

/// The best validation loss so far (with its epoch and weights) and the epochs since it last
/// improved significantly.
#[derive(Default)]
struct EarlyStopping {
    best: Option<(f64, usize, Net)>,
    since_improvement: usize,
}

impl EarlyStopping {
    /// Records this epoch's validation loss; returns the epochs without a significant
    /// improvement. A lower loss is kept even when the improvement is too small to count.
    fn observe(&mut self, val_loss: f64, epoch: usize, net: &Net) -> usize {
        match &self.best {
            Some((best_loss, _, _)) if val_loss >= *best_loss => self.since_improvement += 1,
            _ => {
                let significant = match &self.best {
                    Some((best_loss, _, _)) => {
                        val_loss < *best_loss - MIN_RELATIVE_IMPROVEMENT * best_loss.abs()
                    }
                    None => true,
                };
                self.since_improvement = if significant {
                    0
                } else {
                    self.since_improvement + 1
                };
                self.best = Some((val_loss, epoch, net.clone()));
            }
        }
        self.since_improvement
    }
}

fn view2(values: &[f64], rows: usize, cols: usize) -> Result<ArrayView2<'_, f64>> {
    ArrayView2::from_shape((rows, cols), values)
        .map_err(|e| EngineError::new(ErrorKind::Internal, format!("mlp batch shape: {e}")))
}

/// Validation loss in reportable units: MSE on the target's own scale, mean log loss, or the
/// zero-inflated lognormal's mean negative log-likelihood of spend in its own units.
fn validation_loss(
    net: &Net,
    task: Objective,
    part: &Part,
    (target_mean, target_scale): (f64, f64),
    ws: &mut Workspace,
) -> Result<f64> {
    let p = net.w[0].nrows();
    let batch = ws.acts[0].nrows();
    let last = net.w.len() - 1;
    let mut sum = 0.0;
    for (xs, ys) in part.x.chunks(batch * p).zip(part.y.chunks(batch)) {
        let m = ys.len();
        forward(net, view2(xs, m, p)?, ws);
        let z = ws.acts[last].slice(s![..m, ..]);
        sum += m as f64 * output_loss(task, z, ArrayView1::from(ys), None);
    }
    let n = part.n_rows() as f64;
    let mean = sum / n;
    Ok(match task {
        // output_loss is 0.5·(z-y)² on the standardised scale
        Objective::SquaredError => 2.0 * mean * target_scale * target_scale,
        Objective::LogLoss => mean,
        Objective::ZeroInflatedLognormal => {
            // the terms of −ln f(spend) the training loss leaves out: ln spend, the Jacobian of
            // the standardisation (ln scale) and ½ ln 2π, for every buyer
            let omitted: f64 = part
                .y
                .iter()
                .filter(|y| y.is_finite())
                .map(|u| target_mean + target_scale * u + target_scale.ln() + LN_SQRT_2PI)
                .sum();
            mean + omitted / n
        }
    })
}

/// ½ ln 2π.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

fn diverged(epoch: usize, which: &str, learning_rate: f64) -> EngineError {
    EngineError::new(
        ErrorKind::FitFailed,
        format!("mlp training diverged in epoch {epoch}: the {which} loss is not a finite number"),
    )
    .with_hint(format!(
        "Try a lower learning_rate than {learning_rate}, e.g. {}.",
        learning_rate / 10.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::models::LinearModel;

    /// Uniform in [lo, hi).
    fn uniform(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// `n` rows of `p` features uniform in [-2, 2), target `f(row)`.
    fn dataset(n: usize, p: usize, seed: u64, f: impl Fn(&[f64]) -> f64) -> Dataset {
        let mut rng = SplitMix64::new(seed);
        let mut x = Vec::with_capacity(n * p);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = (0..p).map(|_| uniform(&mut rng, -2.0, 2.0)).collect();
            y.push(f(&row));
            x.extend_from_slice(&row);
        }
        Dataset {
            n_rows: n,
            n_features: p,
            x,
            y,
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        }
    }

    fn r2(actual: &[f64], predicted: &[f64]) -> f64 {
        let mean = actual.iter().sum::<f64>() / actual.len() as f64;
        let ss_res: f64 = actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p) * (a - p))
            .sum();
        let ss_tot: f64 = actual.iter().map(|a| (a - mean) * (a - mean)).sum();
        1.0 - ss_res / ss_tot
    }

    /// AUC by brute force over every (positive, negative) pair, ties counting one half.
    fn auc(labels: &[f64], scores: &[f64]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (i, &li) in labels.iter().enumerate() {
            for (j, &lj) in labels.iter().enumerate() {
                if li == 1.0 && lj == 0.0 {
                    pairs += 1.0;
                    if scores[i] > scores[j] {
                        wins += 1.0;
                    } else if scores[i] == scores[j] {
                        wins += 0.5;
                    }
                }
            }
        }
        wins / pairs
    }

    fn predict_all(model: &MlpModel, data: &Dataset) -> Vec<f64> {
        (0..data.n_rows)
            .map(|i| model.predict(data.row(i)))
            .collect()
    }

    fn fit(data: &Dataset, task: Loss, options: &MlpOptions) -> (MlpModel, MlpReport) {
        fit_mlp(data, task, options, &mut || {}).unwrap()
    }

    /// Analytic gradients against central finite differences of the objective, for every weight
    /// and bias of a 3 → 5 → 4 → outputs network. Relative error with a 1e-3 floor on the
    /// denominator (below that, the absolute error is what finite differences can resolve).
    fn gradient_check(task: Objective, l2: f64) {
        let mut rng = SplitMix64::new(5);
        let outputs = task.output().width();
        let mut net = Net::he_init(&[3, 5, 4, outputs], &mut rng);
        for b in &mut net.b {
            b.mapv_inplace(|_| uniform(&mut rng, -0.5, 0.5));
        }
        let m = 6;
        let x = Array2::from_shape_fn((m, 3), |_| uniform(&mut rng, -1.5, 1.5));
        let y = Array1::from_shape_fn(m, |i| match task {
            Objective::SquaredError => uniform(&mut rng, -2.0, 2.0),
            Objective::LogLoss => (i % 2) as f64,
            // every third example bought nothing (ln 0)
            Objective::ZeroInflatedLognormal if i % 3 == 0 => f64::NEG_INFINITY,
            Objective::ZeroInflatedLognormal => uniform(&mut rng, -2.0, 2.0),
        });
        let mut ws = Workspace::new(&net, m);
        let mut grads = net.zeros_like();
        objective_and_gradient(&net, task, l2, x.view(), y.view(), &mut ws, &mut grads);
        let h = 1e-6;
        let mut f = |net: &Net| objective(net, task, l2, x.view(), y.view(), &mut ws);
        let mut worst: f64 = 0.0;
        let mut checked = 0;
        for l in 0..net.w.len() {
            for k in 0..net.w[l].len() + net.b[l].len() {
                let numeric = {
                    let mut plus = net.clone();
                    let mut minus = net.clone();
                    let nw = net.w[l].len();
                    let (p, q) = if k < nw {
                        (
                            plus.w[l].iter_mut().nth(k).unwrap(),
                            minus.w[l].iter_mut().nth(k).unwrap(),
                        )
                    } else {
                        (
                            plus.b[l].iter_mut().nth(k - nw).unwrap(),
                            minus.b[l].iter_mut().nth(k - nw).unwrap(),
                        )
                    };
                    *p += h;
                    *q -= h;
                    (f(&plus) - f(&minus)) / (2.0 * h)
                };
                let nw = net.w[l].len();
                let analytic = if k < nw {
                    *grads.w[l].iter().nth(k).unwrap()
                } else {
                    grads.b[l][k - nw]
                };
                let rel = (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(1e-3);
                worst = worst.max(rel);
                checked += 1;
            }
        }
        assert_eq!(checked, 3 * 5 + 5 + 5 * 4 + 4 + 4 * outputs + outputs);
        assert!(
            worst < 1e-6,
            "{task:?} l2={l2}: worst relative error {worst}"
        );
    }

    #[test]
    fn backprop_matches_finite_differences_for_squared_error() {
        gradient_check(Objective::SquaredError, 0.0);
        gradient_check(Objective::SquaredError, 0.1);
    }

    #[test]
    fn backprop_matches_finite_differences_for_log_loss() {
        gradient_check(Objective::LogLoss, 0.0);
        gradient_check(Objective::LogLoss, 0.1);
    }

    #[test]
    fn backprop_matches_finite_differences_for_the_zero_inflated_lognormal() {
        gradient_check(Objective::ZeroInflatedLognormal, 0.0);
        gradient_check(Objective::ZeroInflatedLognormal, 0.1);
    }

    /// The reported validation loss is the zero-inflated lognormal's negative log-likelihood of
    /// spend in its own units, written here from the densities: −ln(1 − p) for no purchase,
    /// −ln p − ln f(y) for a buyer with f the lognormal density
    /// `exp(−(ln y − μ)²/2σ²) / (y σ √(2π))`, averaged over the examples.
    #[test]
    fn the_ziln_validation_loss_is_the_negative_log_likelihood_of_spend() {
        let mut rng = SplitMix64::new(8);
        let net = Net::he_init(&[2, 4, 3], &mut rng);
        let spend: [f64; 8] = [0.0, 12.5, 0.0, 3.0, 250.0, 40.0, 0.0, 7.25];
        let x: Vec<f64> = (0..2 * spend.len())
            .map(|_| uniform(&mut rng, -1.0, 1.0))
            .collect();
        let (mean, scale) = (2.1, 1.3);
        let part = Part {
            x: x.clone(),
            y: spend.iter().map(|y| (y.ln() - mean) / scale).collect(),
        };
        let mut ws = Workspace::new(&net, 3);
        let objective = Objective::ZeroInflatedLognormal;
        let reported = validation_loss(&net, objective, &part, (mean, scale), &mut ws).unwrap();
        let model = MlpModel {
            layers: net.to_layers(),
            input_mean: vec![0.0; 2],
            input_scale: vec![1.0; 2],
            target_mean: mean,
            target_scale: scale,
            output: OutputActivation::ZeroInflatedLognormal,
        };
        let expected = spend
            .iter()
            .enumerate()
            .map(|(i, &y)| {
                let parts = model
                    .ziln_parts(x[2 * i..2 * i + 2].iter().copied())
                    .unwrap();
                let (p, mu, sd) = (parts.buy_probability, parts.log_mean, parts.log_sd);
                if y == 0.0 {
                    -(1.0 - p).ln()
                } else {
                    let density = (-(y.ln() - mu).powi(2) / (2.0 * sd * sd)).exp()
                        / (y * sd * (2.0 * std::f64::consts::PI).sqrt());
                    -p.ln() - density.ln()
                }
            })
            .sum::<f64>()
            / spend.len() as f64;
        assert!(
            (reported - expected).abs() < 1e-12,
            "{reported} vs {expected}"
        );
    }

    #[test]
    fn learns_a_linear_function() {
        let f = |r: &[f64]| 3.0 * r[0] - 2.0 * r[1] + 1.0;
        let train = dataset(3000, 3, 1, f);
        let test = dataset(500, 3, 2, f);
        let (model, report) = fit(&train, Loss::SquaredError, &MlpOptions::default());
        let score = r2(&test.y, &predict_all(&model, &test));
        assert!(score > 0.99, "r² {score}, {report:?}");
    }

    #[test]
    fn learns_a_nonlinear_function_a_linear_model_cannot() {
        let f = |r: &[f64]| r[0] * r[0] + 0.5 * r[1].abs();
        let train = dataset(3000, 3, 3, f);
        let test = dataset(500, 3, 4, f);
        let (model, report) = fit(&train, Loss::SquaredError, &MlpOptions::default());
        let mlp = r2(&test.y, &predict_all(&model, &test));
        let ols = LinearModel::fit_ols(&train).unwrap();
        let linear = r2(
            &test.y,
            &(0..test.n_rows)
                .map(|i| ols.predict(test.row(i)))
                .collect::<Vec<_>>(),
        );
        assert!(mlp > 0.97, "mlp r² {mlp}, {report:?}");
        assert!(mlp > linear + 0.5, "mlp r² {mlp}, linear r² {linear}");
    }

    #[test]
    fn the_same_seed_gives_the_same_model() {
        let train = dataset(600, 4, 5, |r| r[0] * r[1] + r[2]);
        let options = MlpOptions {
            seed: 7,
            epochs: 5,
            ..MlpOptions::default()
        };
        let a = fit(&train, Loss::SquaredError, &options);
        let b = fit(&train, Loss::SquaredError, &options);
        assert_eq!(a, b);
        let c = fit(
            &train,
            Loss::SquaredError,
            &MlpOptions { seed: 8, ..options },
        );
        assert_ne!(a.0, c.0);
    }

    /// Pure-noise target and a big network with a high learning rate: the validation loss rises
    /// after a few epochs, so training stops long before `epochs`. Rerunning with `epochs` set
    /// to the reported best epoch follows the same seeded trajectory and must give exactly the
    /// returned weights — which proves the weights were restored, since the first run trained
    /// past that epoch.
    #[test]
    fn early_stopping_stops_and_restores_the_best_weights() {
        let mut rng = SplitMix64::new(99);
        let train = dataset(300, 5, 6, |_| 0.0);
        let train = Dataset {
            y: (0..300).map(|_| uniform(&mut rng, -1.0, 1.0)).collect(),
            ..train
        };
        let options = MlpOptions {
            hidden_layers: vec![128, 128],
            learning_rate: 0.01,
            epochs: 500,
            batch_size: 16,
            validation_fraction: 0.2,
            patience: 4,
            ..MlpOptions::default()
        };
        let (model, report) = fit(&train, Loss::SquaredError, &options);
        assert!(report.epochs_run < 100, "{report:?}");
        assert!(report.best_epoch < report.epochs_run, "{report:?}");
        assert!(report.epochs_run - report.best_epoch <= options.patience);

        let truncated = MlpOptions {
            epochs: report.best_epoch,
            ..options.clone()
        };
        let (again, again_report) = fit(&train, Loss::SquaredError, &truncated);
        assert_eq!(again, model);
        assert_eq!(
            again_report.best_validation_loss,
            report.best_validation_loss
        );

        // The reported loss is the returned model's MSE on the validation rows: the first
        // round(n · validation_fraction) rows of the seeded shuffle.
        let mut order: Vec<usize> = (0..train.n_rows).collect();
        SplitMix64::new(options.seed).shuffle(&mut order);
        let val = &order[..60];
        let mse = val
            .iter()
            .map(|&i| (model.predict(train.row(i)) - train.y[i]).powi(2))
            .sum::<f64>()
            / 60.0;
        let reported = report.best_validation_loss.unwrap();
        assert!(
            (mse - reported).abs() <= 1e-9 * reported,
            "{mse} vs {reported}"
        );
    }

    #[test]
    fn without_a_validation_split_every_epoch_runs() {
        let train = dataset(200, 2, 7, |r| r[0]);
        let options = MlpOptions {
            validation_fraction: 0.0,
            epochs: 7,
            ..MlpOptions::default()
        };
        let (_, report) = fit(&train, Loss::SquaredError, &options);
        assert_eq!(
            report,
            MlpReport {
                epochs_run: 7,
                best_epoch: 7,
                best_validation_loss: None
            }
        );
    }

    /// The stored model's plain-loop predict against the ndarray forward pass of the network it
    /// was copied from, for both output kinds.
    #[test]
    fn stored_model_predicts_like_the_ndarray_network() {
        for task in [Loss::SquaredError, Loss::LogLoss] {
            let train = dataset(800, 4, 8, |r| {
                let v = 100.0 * r[0] - 50.0 * r[1] * r[2] + 1000.0;
                match task {
                    Loss::SquaredError => v,
                    Loss::LogLoss => f64::from(v > 1000.0),
                }
            });
            let options = MlpOptions {
                hidden_layers: vec![16, 8, 4],
                epochs: 3,
                ..MlpOptions::default()
            };
            let (net, model, _) = fit_network(&train, task.into(), &options, &mut || {}).unwrap();
            let n = train.n_rows;
            let standardised = Array2::from_shape_fn((n, 4), |(i, j)| {
                (train.row(i)[j] - model.input_mean[j]) / model.input_scale[j]
            });
            let mut ws = Workspace::new(&net, n);
            forward(&net, standardised.view(), &mut ws);
            let last = net.w.len() - 1;
            for i in 0..n {
                let z = ws.acts[last][[i, 0]];
                let want = match task {
                    Loss::SquaredError => model.target_mean + model.target_scale * z,
                    Loss::LogLoss => 1.0 / (1.0 + (-z).exp()),
                };
                let got = model.predict(train.row(i));
                assert!(
                    (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                    "{task:?} row {i}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn postcard_round_trip_is_exact() {
        let train = dataset(400, 3, 9, |r| r[0] - r[2]);
        let options = MlpOptions {
            epochs: 2,
            ..MlpOptions::default()
        };
        let (model, _) = fit(&train, Loss::SquaredError, &options);
        let bytes = postcard::to_allocvec(&model).unwrap();
        let decoded: MlpModel = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, model);
        decoded.validate(3).unwrap();
        for i in 0..train.n_rows {
            assert_eq!(
                decoded.predict(train.row(i)).to_bits(),
                model.predict(train.row(i)).to_bits()
            );
        }
        // 3·64 + 64 + 64·32 + 32 + 32 + 1 parameters, 8 bytes each, plus small headers
        assert_eq!(model.n_parameters(), 2369);
        assert!(bytes.len() < 2369 * 8 + 200, "{} bytes", bytes.len());
    }

    fn tiny_model() -> MlpModel {
        MlpModel {
            layers: vec![
                DenseLayer {
                    n_in: 2,
                    n_out: 2,
                    weights: vec![1.0, -1.0, 0.5, 2.0],
                    bias: vec![0.0, 0.1],
                },
                DenseLayer {
                    n_in: 2,
                    n_out: 1,
                    weights: vec![1.0, 1.0],
                    bias: vec![-0.5],
                },
            ],
            input_mean: vec![1.0, 2.0],
            input_scale: vec![2.0, 1.0],
            target_mean: 10.0,
            target_scale: 3.0,
            output: OutputActivation::Identity,
        }
    }

    #[test]
    fn predict_follows_the_documented_formula() {
        let m = tiny_model();
        m.validate(2).unwrap();
        // x = (3, 1) → standardised (1, -1); hidden = relu((1·1 + -1·0.5 + 0, 1·-1 + -1·2 + 0.1))
        // = relu(0.5, -2.9) = (0.5, 0); out = 0.5 - 0.5 = 0 → 10 + 3·0 = 10
        assert_eq!(m.predict(&[3.0, 1.0]), 10.0);
        // x = (1, 3) → (0, 1); hidden = relu(0.5, 2.1); out = 2.6 - 0.5 = 2.1 → 10 + 6.3
        assert!((m.predict(&[1.0, 3.0]) - 16.3).abs() < 1e-12);
        let s = MlpModel {
            output: OutputActivation::Sigmoid,
            ..m
        };
        assert!((s.predict(&[1.0, 3.0]) - 1.0 / (1.0 + (-2.1f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn validate_rejects_wrong_shapes_and_non_finite_values() {
        let ok = tiny_model();
        ok.validate(2).unwrap();
        let mut cases: Vec<(&str, MlpModel)> = Vec::new();
        let mut push = |name, change: &dyn Fn(&mut MlpModel)| {
            let mut m = tiny_model();
            change(&mut m);
            cases.push((name, m));
        };
        push("no layers", &|m| m.layers.clear());
        push("short weights", &|m| {
            m.layers[0].weights.pop();
        });
        push("long bias", &|m| m.layers[1].bias.push(0.0));
        push("n_in mismatch", &|m| m.layers[1].n_in = 3);
        push("n_out lies", &|m| m.layers[0].n_out = 3);
        push("two outputs", &|m| {
            m.layers[1].n_out = 2;
            m.layers[1].weights = vec![0.0; 4];
            m.layers[1].bias = vec![0.0; 2];
        });
        push("too wide", &|m| {
            m.layers[0].n_out = (MAX_WIDTH + 1) as u32;
            m.layers[0].weights = vec![0.0; 2 * (MAX_WIDTH + 1)];
            m.layers[0].bias = vec![0.0; MAX_WIDTH + 1];
            m.layers[1].n_in = (MAX_WIDTH + 1) as u32;
            m.layers[1].weights = vec![0.0; MAX_WIDTH + 1];
        });
        push("huge n_in", &|m| m.layers[0].n_in = u32::MAX);
        push("NaN weight", &|m| m.layers[1].weights[0] = f64::NAN);
        push("inf bias", &|m| m.layers[0].bias[1] = f64::INFINITY);
        push("zero scale", &|m| m.input_scale[0] = 0.0);
        push("NaN mean", &|m| m.input_mean[1] = f64::NAN);
        push("short means", &|m| {
            m.input_mean.pop();
        });
        push("negative target scale", &|m| m.target_scale = -1.0);
        push("NaN target mean", &|m| m.target_mean = f64::NAN);
        for (name, m) in &cases {
            let err = m.validate(2).unwrap_err();
            assert_eq!(err.kind, ErrorKind::DataCorrupted, "{name}");
            // whatever the damage, predicting must not panic
            let _ = m.predict(&[0.5, 0.5]);
        }
        assert_eq!(
            ok.validate(3).unwrap_err().kind,
            ErrorKind::DataCorrupted,
            "feature count"
        );
    }

    #[test]
    fn separable_classes_are_ranked_almost_perfectly() {
        let rule = |r: &[f64]| f64::from(r[0] + 0.5 * r[1] > 0.2);
        let train = dataset(2000, 3, 10, rule);
        let test = dataset(600, 3, 11, rule);
        let (model, report) = fit(&train, Loss::LogLoss, &MlpOptions::default());
        let p = predict_all(&model, &test);
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        let score = auc(&test.y, &p);
        assert!(score > 0.95, "AUC {score}, {report:?}");
        assert!(report.best_validation_loss.unwrap() < 0.3, "{report:?}");
    }

    #[test]
    fn a_constant_column_is_harmless() {
        let mut train = dataset(1000, 2, 12, |r| 2.0 * r[0]);
        for i in 0..train.n_rows {
            train.x[i * 2 + 1] = 5.0;
        }
        let (model, _) = fit(&train, Loss::SquaredError, &MlpOptions::default());
        assert_eq!(model.input_scale[1], 1.0);
        assert_eq!(model.input_mean[1], 5.0);
        model.validate(2).unwrap();
        let a = model.predict(&[1.0, 5.0]);
        assert!((a - 2.0).abs() < 0.2, "{a}");
        assert!(model.predict(&[1.0, 1e6]).is_finite());
    }

    #[test]
    fn a_huge_target_scale_is_learned_in_its_own_units() {
        let f = |r: &[f64]| 1e7 + 3e6 * r[0];
        let train = dataset(2000, 2, 13, f);
        let test = dataset(300, 2, 14, f);
        let (model, _) = fit(&train, Loss::SquaredError, &MlpOptions::default());
        assert!(r2(&test.y, &predict_all(&model, &test)) > 0.99);
    }

    #[test]
    fn too_few_rows_and_bad_labels_are_clear_errors() {
        let small = dataset(10, 2, 15, |r| r[0]);
        let err = fit_mlp(
            &small,
            Loss::SquaredError,
            &MlpOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        assert!(err.message.contains("got 10 rows"), "{}", err.message);

        let labels = dataset(100, 2, 16, |r| r[0]);
        let err = fit_mlp(&labels, Loss::LogLoss, &MlpOptions::default(), &mut || {}).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
        let one_class = dataset(100, 2, 17, |_| 1.0);
        let err = fit_mlp(
            &one_class,
            Loss::LogLoss,
            &MlpOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);

        let broken = Dataset {
            n_rows: 50,
            ..dataset(40, 2, 18, |r| r[0])
        };
        let err = fit_mlp(
            &broken,
            Loss::SquaredError,
            &MlpOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
    }

    #[test]
    fn invalid_options_are_refused_by_name() {
        let data = dataset(100, 2, 19, |r| r[0]);
        let cases = [
            (
                MlpOptions {
                    hidden_layers: vec![64, 0],
                    ..MlpOptions::default()
                },
                "hidden_layers",
            ),
            (
                MlpOptions {
                    hidden_layers: vec![8; MAX_HIDDEN_LAYERS + 1],
                    ..MlpOptions::default()
                },
                "hidden_layers",
            ),
            (
                MlpOptions {
                    learning_rate: f64::NAN,
                    ..MlpOptions::default()
                },
                "learning_rate",
            ),
            (
                MlpOptions {
                    epochs: 0,
                    ..MlpOptions::default()
                },
                "epochs",
            ),
            (
                MlpOptions {
                    batch_size: 0,
                    ..MlpOptions::default()
                },
                "batch_size",
            ),
            (
                MlpOptions {
                    validation_fraction: 0.9,
                    ..MlpOptions::default()
                },
                "validation_fraction",
            ),
            (
                MlpOptions {
                    patience: 0,
                    ..MlpOptions::default()
                },
                "patience",
            ),
            (
                MlpOptions {
                    l2: -1.0,
                    ..MlpOptions::default()
                },
                "l2",
            ),
        ];
        for (options, key) in cases {
            let err = fit_mlp(&data, Loss::SquaredError, &options, &mut || {}).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidParameter, "{key}");
            assert!(err.message.starts_with(key), "{key}: {}", err.message);
        }
    }

    #[test]
    fn divergence_is_a_fit_failure_naming_the_epoch() {
        let data = dataset(500, 3, 20, |r| r[0] + r[1]);
        let options = MlpOptions {
            learning_rate: 1e150,
            ..MlpOptions::default()
        };
        let err = fit_mlp(&data, Loss::SquaredError, &options, &mut || {}).unwrap_err();
        assert_eq!(err.kind, ErrorKind::FitFailed, "{err}");
        assert!(err.message.contains("diverged in epoch 1"), "{err}");
        assert!(err.hint.unwrap().contains("lower learning_rate"));
    }

    #[test]
    fn an_empty_hidden_stack_is_a_linear_model() {
        let f = |r: &[f64]| 3.0 * r[0] - 2.0 * r[1] + 1.0;
        let train = dataset(2000, 2, 21, f);
        let options = MlpOptions {
            hidden_layers: vec![],
            learning_rate: 0.01,
            ..MlpOptions::default()
        };
        let (model, _) = fit(&train, Loss::SquaredError, &options);
        assert_eq!(model.layers.len(), 1);
        assert!(model.hidden_layers().is_empty());
        assert!((model.predict(&[1.0, 1.0]) - 2.0).abs() < 0.01);
    }

    #[test]
    fn interrupt_runs_before_every_batch_and_validation_pass_and_may_unwind() {
        let data = dataset(1000, 2, 22, |r| r[0]);
        let options = MlpOptions {
            epochs: 3,
            ..MlpOptions::default()
        };
        let mut calls = 0;
        fit_mlp(&data, Loss::SquaredError, &options, &mut || calls += 1).unwrap();
        // 900 fit rows → 8 batches of ≤ 128, plus one validation pass, per epoch
        assert_eq!(calls, 3 * (8 + 1));

        let result = std::panic::catch_unwind(|| {
            let mut n = 0;
            let _ = fit_mlp(&data, Loss::SquaredError, &options, &mut || {
                n += 1;
                if n == 5 {
                    panic!("query canceled");
                }
            });
        });
        assert!(
            result.is_err(),
            "the interrupt's unwind must reach the caller"
        );
    }
}
