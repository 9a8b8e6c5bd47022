//! Training a [`SequenceNetwork`]: mini-batch Adam on the mlp's losses, early stopping on a
//! validation set the caller chooses (for a log, the latest cut-off: a time-based window, never
//! a random one), a time budget, and the caller's interrupt before every mini-batch.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::cnn::TemporalConvolution;
use super::gru::Gru;
use super::network::{Encoder, SequenceNetwork};
use crate::engine::error::{EngineError, ErrorKind, Result};
// Adam's settings and the early-stopping threshold are the mlp's
use crate::engine::models::mlp::row_loss;
use crate::engine::models::mlp::{
    Objective, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON, MIN_RELATIVE_IMPROVEMENT,
};
use crate::engine::parallel::map_ranges;
use crate::engine::stats::SplitMix64;
use ndarray::ArrayView1;

/// Which encoder reads the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncoderKind {
    Gru,
    Cnn,
}

/// The hyperparameters of a sequence network, named like the `options` keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceOptions {
    pub encoder: EncoderKind,
    /// GRU hidden units, or CNN filters.
    pub units: usize,
    /// Periods a CNN filter spans.
    pub kernel_width: usize,
    /// Width of the hidden layer between the encoding (with the static features) and the output.
    pub head_units: usize,
    pub learning_rate: f64,
    pub epochs: usize,
    pub batch_size: usize,
    /// Epochs without improvement of the validation loss before training stops.
    pub patience: usize,
    pub seed: u64,
    /// Seconds training may take (the best network so far is kept); None: no limit.
    pub time_budget: Option<f64>,
    /// Threads a mini-batch's gradient is computed on (`customer_value.training_threads`, set
    /// by the trainer; never an option). Any number gives the same network.
    pub threads: usize,
}

impl SequenceOptions {
    /// The option keys of `cnn`; `gru` has the same but `kernel_width` (the last).
    pub const CNN_KEYS: &'static [&'static str] = &[
        "units",
        "head_units",
        "learning_rate",
        "epochs",
        "batch_size",
        "patience",
        "validation_fraction",
        "time_budget",
        "kernel_width",
    ];
    pub const GRU_KEYS: &'static [&'static str] = match Self::CNN_KEYS.split_last() {
        Some((_, keys)) => keys,
        None => &[],
    };

    /// Reads the options of `encoder` from an options object, each checked and named when
    /// wrong; `seed` seeds the weights and mini-batches. Returns the share of a table's rows
    /// that early stopping watches (`validation_fraction`, default 0.1) too.
    pub fn from_options(
        map: &serde_json::Map<String, serde_json::Value>,
        encoder: EncoderKind,
        seed: u64,
    ) -> Result<(SequenceOptions, f64)> {
        use crate::engine::options::values::{integer, number};
        let mut o = SequenceOptions {
            seed,
            ..SequenceOptions::defaults(encoder)
        };
        let count = |key: &str, hi: u64| -> Result<Option<usize>> {
            Ok(integer(map, key, 1, hi)?.map(|n| n as usize))
        };
        o.units = count("units", 256)?.unwrap_or(o.units);
        o.kernel_width = count("kernel_width", 52)?.unwrap_or(o.kernel_width);
        o.head_units = count("head_units", 512)?.unwrap_or(o.head_units);
        o.epochs = count("epochs", 10_000)?.unwrap_or(o.epochs);
        o.batch_size = count("batch_size", 65_536)?.unwrap_or(o.batch_size);
        o.patience = count("patience", 10_000)?.unwrap_or(o.patience);
        let rate = number(map, "learning_rate", 1e-9, 1.0, "a number from 1e-9 to 1")?;
        o.learning_rate = rate.unwrap_or(o.learning_rate);
        o.time_budget = number(map, "time_budget", 0.001, 1e7, "a number of seconds > 0")?;
        let share = number(
            map,
            "validation_fraction",
            0.01,
            0.5,
            "a number from 0.01 to 0.5",
        )?;
        o.validate()?;
        Ok((o, share.unwrap_or(0.1)))
    }

    pub fn defaults(encoder: EncoderKind) -> SequenceOptions {
        SequenceOptions {
            encoder,
            units: 16,
            kernel_width: 4,
            head_units: 16,
            learning_rate: 0.003,
            epochs: 200,
            batch_size: 64,
            patience: 10,
            seed: 42,
            time_budget: None,
            threads: 1,
        }
    }

    /// Checks every value's range; the error names the option.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &str, why: &str| {
            Err(EngineError::invalid_parameter(format!(
                "option \"{name}\" {why}"
            )))
        };
        let in_range = |v: usize, low: usize, high: usize| (low..=high).contains(&v);
        if !in_range(self.units, 1, 256) {
            return bad(
                "units",
                &format!("must be from 1 to 256, got {}", self.units),
            );
        }
        if !in_range(self.head_units, 1, 512) {
            return bad(
                "head_units",
                &format!("must be from 1 to 512, got {}", self.head_units),
            );
        }
        if !in_range(self.kernel_width, 1, 52) {
            return bad(
                "kernel_width",
                &format!("must be from 1 to 52, got {}", self.kernel_width),
            );
        }
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.learning_rate <= 1.0)
        {
            return bad(
                "learning_rate",
                &format!("must be in (0, 1], got {}", self.learning_rate),
            );
        }
        if !in_range(self.epochs, 1, 10_000) {
            return bad(
                "epochs",
                &format!("must be from 1 to 10000, got {}", self.epochs),
            );
        }
        if !in_range(self.batch_size, 1, 65_536) {
            let got = self.batch_size;
            return bad("batch_size", &format!("must be from 1 to 65536, got {got}"));
        }
        if self
            .time_budget
            .is_some_and(|t| !(t.is_finite() && t > 0.0))
        {
            return bad("time_budget", "must be a number of seconds above 0");
        }
        Ok(())
    }
}

/// Examples of equal shape, read one at a time: each a sequence (steps × channels), static
/// features and a target as the objective's loss reads it. A trainer's examples are read from
/// its rows as they are needed (standardised on the fly), never copied out whole.
pub trait Examples: Sync {
    /// (steps, channels, static features) of every example.
    fn shape(&self) -> (usize, usize, usize);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Example `i` into `sequence` (steps × channels) and `statics`; returns its target.
    fn read(&self, i: usize, sequence: &mut [f64], statics: &mut [f64]) -> f64;
}

/// Buffers of one example of `data`'s shape.
fn buffers(data: &dyn Examples) -> (Vec<f64>, Vec<f64>) {
    let (steps, channels, statics) = data.shape();
    (vec![0.0; steps * channels], vec![0.0; statics])
}

/// Examples of equal shape held in memory (tests, small sets).
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceData {
    pub steps: usize,
    pub channels: usize,
    pub n_statics: usize,
    pub sequences: Vec<f64>,
    pub statics: Vec<f64>,
    pub y: Vec<f64>,
}

impl SequenceData {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Example `i`: its sequence, its static features and its target.
    pub fn example(&self, i: usize) -> (&[f64], &[f64], f64) {
        let span = self.steps * self.channels;
        let s = self.n_statics;
        (
            &self.sequences[i * span..(i + 1) * span],
            &self.statics[i * s..(i + 1) * s],
            self.y[i],
        )
    }
}

impl Examples for SequenceData {
    fn shape(&self) -> (usize, usize, usize) {
        (self.steps, self.channels, self.n_statics)
    }

    fn len(&self) -> usize {
        self.y.len()
    }

    fn read(&self, i: usize, sequence: &mut [f64], statics: &mut [f64]) -> f64 {
        let (s, x, y) = self.example(i);
        sequence.copy_from_slice(s);
        statics.copy_from_slice(x);
        y
    }
}

/// How training went.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceReport {
    pub epochs: usize,
    pub best_epoch: usize,
    pub best_validation_loss: f64,
    /// Why training stopped: "patience", "epochs" or "time_budget".
    pub stopped_by: &'static str,
}

/// Adam's moments, one vector per parameter slice of the network.
struct Adam {
    lr: f64,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    beta1_power: f64,
    beta2_power: f64,
}

impl Adam {
    fn new(net: &mut SequenceNetwork, lr: f64) -> Adam {
        let shapes: Vec<Vec<f64>> = net
            .parameters_mut()
            .iter()
            .map(|p| vec![0.0; p.len()])
            .collect();
        Adam {
            lr,
            m: shapes.clone(),
            v: shapes,
            beta1_power: 1.0,
            beta2_power: 1.0,
        }
    }

    /// One step along `grads`, a gradient of the same shape as `net` (already averaged).
    fn step(&mut self, net: &mut SequenceNetwork, grads: &mut SequenceNetwork) {
        self.beta1_power *= ADAM_BETA1;
        self.beta2_power *= ADAM_BETA2;
        let (c1, c2) = (1.0 - self.beta1_power, 1.0 - self.beta2_power);
        let parts = net.parameters_mut().into_iter().zip(grads.parameters_mut());
        for ((p, g), (m, v)) in parts.zip(self.m.iter_mut().zip(&mut self.v)) {
            for k in 0..p.len() {
                m[k] = ADAM_BETA1 * m[k] + (1.0 - ADAM_BETA1) * g[k];
                v[k] = ADAM_BETA2 * v[k] + (1.0 - ADAM_BETA2) * g[k] * g[k];
                p[k] -= self.lr * (m[k] / c1) / ((v[k] / c2).sqrt() + ADAM_EPSILON);
            }
        }
    }
}

/// The untrained network `options` describe for data shaped like `data`.
fn initial_network(
    data: &dyn Examples,
    objective: Objective,
    options: &SequenceOptions,
    rng: &mut SplitMix64,
) -> SequenceNetwork {
    let (_, channels, statics) = data.shape();
    let encoder = match options.encoder {
        EncoderKind::Gru => Encoder::Gru(Gru::new(channels, options.units, rng)),
        EncoderKind::Cnn => Encoder::Cnn(TemporalConvolution::new(
            channels,
            options.units,
            options.kernel_width,
            rng,
        )),
    };
    SequenceNetwork::new(encoder, statics, options.head_units, objective, rng)
}

/// The mean loss of `net` on `data`.
/// Examples per unit of parallel work: a batch or a validation set is cut into pieces of this
/// size whatever the threads, and their sums added in order, so that any number of threads
/// gives the same bits.
const PIECE: usize = 16;

/// `rows` cut into pieces of [`PIECE`].
fn pieces(rows: usize) -> Vec<std::ops::Range<usize>> {
    (0..rows.div_ceil(PIECE))
        .map(|k| k * PIECE..((k + 1) * PIECE).min(rows))
        .collect()
}

/// The mean loss over `data` (forward passes only), on `threads` threads.
fn mean_loss(
    net: &SequenceNetwork,
    objective: Objective,
    data: &dyn Examples,
    threads: usize,
) -> f64 {
    let partial = |range: std::ops::Range<usize>| {
        let mut trace = net.trace();
        let (mut sequence, mut statics) = buffers(data);
        range
            .map(|i| {
                let y = data.read(i, &mut sequence, &mut statics);
                let outputs = net.forward(&sequence, &statics, &mut trace);
                row_loss(objective, ArrayView1::from(outputs), y).0
            })
            .sum::<f64>()
    };
    let total: f64 = map_ranges(pieces(data.len()), threads, &partial)
        .into_iter()
        .sum();
    total / data.len() as f64
}

/// The summed gradient of the examples `batch` of `fit`, on `threads` threads.
fn batch_gradient(
    net: &SequenceNetwork,
    (objective, fit): (Objective, &dyn Examples),
    batch: &[usize],
    threads: usize,
) -> SequenceNetwork {
    let partial = |range: std::ops::Range<usize>| {
        let (mut trace, mut grads) = (net.trace(), net.zeros_like());
        let (mut sequence, mut statics) = buffers(fit);
        for &i in &batch[range] {
            let y = fit.read(i, &mut sequence, &mut statics);
            let example = (&sequence[..], &statics[..], y);
            net.loss_and_gradient(objective, example, &mut trace, &mut grads);
        }
        grads
    };
    let mut parts = map_ranges(pieces(batch.len()), threads, &partial).into_iter();
    let mut total = parts.next().unwrap_or_else(|| net.zeros_like());
    for mut part in parts {
        for (t, p) in total
            .parameters_mut()
            .into_iter()
            .zip(part.parameters_mut())
        {
            t.iter_mut().zip(p.iter()).for_each(|(a, b)| *a += b);
        }
    }
    total
}

/// One pass over `fit` in shuffled mini-batches; `interrupt` before each.
fn train_epoch(
    net: &mut SequenceNetwork,
    adam: &mut Adam,
    (objective, fit): (Objective, &dyn Examples),
    order: &[usize],
    (batch_size, threads): (usize, usize),
    interrupt: &mut dyn FnMut(),
) {
    for batch in order.chunks(batch_size) {
        interrupt();
        let mut grads = batch_gradient(net, (objective, fit), batch, threads);
        let scale = 1.0 / batch.len() as f64;
        for part in grads.parameters_mut() {
            part.iter_mut().for_each(|g| *g *= scale);
        }
        adam.step(net, &mut grads);
    }
}

/// Trains a sequence network on `fit`, stopping early on the loss over `validation`; returns
/// the network of the best validation loss. Errors: invalid options, too few examples, shapes
/// that disagree, and a loss that stops being a number (naming the epoch).
pub fn fit_sequence_network(
    fit: &dyn Examples,
    validation: &dyn Examples,
    objective: Objective,
    options: &SequenceOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<(SequenceNetwork, SequenceReport)> {
    options.validate()?;
    check_shapes(fit, validation, options)?;
    let started = Instant::now();
    let budget = options.time_budget.map(Duration::from_secs_f64);
    let mut rng = SplitMix64::new(options.seed);
    let mut net = initial_network(fit, objective, options, &mut rng);
    let mut adam = Adam::new(&mut net, options.learning_rate);
    let mut order: Vec<usize> = (0..fit.len()).collect();
    let threads = options.threads.max(1);
    let mut best = (
        net.clone(),
        mean_loss(&net, objective, validation, threads),
        0,
    );
    let mut report = SequenceReport {
        epochs: 0,
        best_epoch: 0,
        best_validation_loss: best.1,
        stopped_by: "epochs",
    };
    for epoch in 1..=options.epochs {
        rng.shuffle(&mut order);
        let data = (objective, fit);
        train_epoch(
            &mut net,
            &mut adam,
            data,
            &order,
            (options.batch_size, threads),
            interrupt,
        );
        interrupt();
        let loss = mean_loss(&net, objective, validation, threads);
        report.epochs = epoch;
        if !loss.is_finite() {
            return Err(diverged(epoch));
        }
        if loss < best.1 {
            let improved = loss < best.1 * (1.0 - MIN_RELATIVE_IMPROVEMENT.copysign(best.1));
            let since = if improved { epoch } else { best.2 };
            best = (net.clone(), loss, since);
            report.best_epoch = epoch;
            report.best_validation_loss = loss;
        }
        if epoch - best.2 >= options.patience {
            report.stopped_by = "patience";
            break;
        }
        if budget.is_some_and(|b| started.elapsed() >= b) {
            report.stopped_by = "time_budget";
            break;
        }
    }
    Ok((best.0, report))
}

fn diverged(epoch: usize) -> EngineError {
    EngineError::new(
        ErrorKind::FitFailed,
        format!("the sequence network's loss stopped being a number at epoch {epoch}"),
    )
    .with_hint("Try a lower learning_rate.")
}

/// Both sets hold examples of one shape, with at least one example each, sequences long enough
/// for a CNN filter and finite values.
fn check_shapes(
    fit: &dyn Examples,
    validation: &dyn Examples,
    options: &SequenceOptions,
) -> Result<()> {
    if fit.len() < 2 || validation.is_empty() {
        return Err(EngineError::insufficient_data(format!(
            "a sequence network needs at least 2 training and 1 validation examples, got {} and {}",
            fit.len(),
            validation.len()
        )));
    }
    if fit.shape() != validation.shape() {
        return Err(EngineError::invalid_parameter(
            "the training and validation sequences differ in shape",
        ));
    }
    for (name, d) in [("training", fit), ("validation", validation)] {
        let (mut sequence, mut statics) = buffers(d);
        for i in 0..d.len() {
            d.read(i, &mut sequence, &mut statics);
            if sequence.iter().chain(&statics).any(|v| !v.is_finite()) {
                return Err(EngineError::new(
                    ErrorKind::NonFiniteValue,
                    format!("a {name} input is not a finite number (example {})", i + 1),
                ));
            }
        }
    }
    let steps = fit.shape().0;
    if options.encoder == EncoderKind::Cnn && steps < options.kernel_width {
        return Err(EngineError::invalid_parameter(format!(
            "option \"kernel_width\" ({}) is longer than the sequences ({steps} periods)",
            options.kernel_width
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Examples whose target is the sum of channel 0 over the newest three of 12 periods, with a
    /// second channel and a static feature that carry nothing: only an encoder that reads the
    /// sequence by position can predict it.
    fn recent_sum_data(n: usize, seed: u64) -> SequenceData {
        let (steps, channels) = (12, 2);
        let mut rng = SplitMix64::new(seed);
        let sequences: Vec<f64> = (0..n * steps * channels).map(|_| rng.next_f64()).collect();
        let statics: Vec<f64> = (0..n).map(|_| rng.next_f64()).collect();
        let y = (0..n)
            .map(|i| {
                let s = &sequences[i * steps * channels..(i + 1) * steps * channels];
                (steps - 3..steps).map(|t| s[t * channels]).sum::<f64>() - 1.5
            })
            .collect();
        SequenceData {
            steps,
            channels,
            n_statics: 1,
            sequences,
            statics,
            y,
        }
    }

    /// Trains on squared error without interrupting.
    fn fit_squared(
        fit: &SequenceData,
        validation: &SequenceData,
        options: &SequenceOptions,
    ) -> Result<(SequenceNetwork, SequenceReport)> {
        fit_sequence_network(
            fit,
            validation,
            Objective::SquaredError,
            options,
            &mut || {},
        )
    }

    fn variance(y: &[f64]) -> f64 {
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / y.len() as f64
    }

    #[test]
    fn both_encoders_learn_what_only_the_sequence_tells() {
        let (fit, validation) = (recent_sum_data(600, 1), recent_sum_data(150, 2));
        for kind in [EncoderKind::Gru, EncoderKind::Cnn] {
            let options = SequenceOptions {
                epochs: 60,
                ..SequenceOptions::defaults(kind)
            };
            let (_, report) = fit_squared(&fit, &validation, &options).unwrap();
            // the loss is half the squared error: a constant prediction scores variance / 2
            let constant = variance(&validation.y) / 2.0;
            assert!(
                report.best_validation_loss < 0.1 * constant,
                "{kind:?}: {report:?} vs a constant's {constant}"
            );
        }
    }

    #[test]
    fn one_seed_one_network_and_cancel_is_polled_every_batch() {
        let (fit, validation) = (recent_sum_data(200, 3), recent_sum_data(50, 4));
        let options = SequenceOptions {
            epochs: 3,
            batch_size: 32,
            ..SequenceOptions::defaults(EncoderKind::Gru)
        };
        let mut polls = 0;
        let (a, _) = fit_sequence_network(
            &fit,
            &validation,
            Objective::SquaredError,
            &options,
            &mut || polls += 1,
        )
        .unwrap();
        let (b, _) = fit_squared(&fit, &validation, &options).unwrap();
        assert_eq!(a, b);
        // 7 batches and one validation pass per epoch
        assert!(polls >= 3 * 8, "{polls}");
        // the threads share the batches' pieces, summed in order: the same bits
        for threads in [2, 3] {
            let parallel = SequenceOptions {
                threads,
                ..options.clone()
            };
            let (c, report) = fit_squared(&fit, &validation, &parallel).unwrap();
            assert_eq!(a, c, "{threads} threads");
            assert_eq!(report.epochs, 3);
        }
    }

    #[test]
    fn a_time_budget_stops_after_the_first_epoch() {
        let (fit, validation) = (recent_sum_data(100, 5), recent_sum_data(20, 6));
        let options = SequenceOptions {
            time_budget: Some(1e-9),
            ..SequenceOptions::defaults(EncoderKind::Cnn)
        };
        let (_, report) = fit_squared(&fit, &validation, &options).unwrap();
        assert_eq!((report.epochs, report.stopped_by), (1, "time_budget"));
    }

    #[test]
    fn bad_options_and_data_are_errors_that_name_them() {
        let (fit, validation) = (recent_sum_data(20, 7), recent_sum_data(5, 8));
        let fit_with = |options: &SequenceOptions, fit: &SequenceData| {
            fit_sequence_network(
                fit,
                &validation,
                Objective::SquaredError,
                options,
                &mut || {},
            )
            .map(|_| ())
            .unwrap_err()
        };
        let gru = SequenceOptions::defaults(EncoderKind::Gru);
        let e = fit_with(
            &SequenceOptions {
                units: 0,
                ..gru.clone()
            },
            &fit,
        );
        assert_eq!(e.kind, ErrorKind::InvalidParameter);
        assert!(e.message.contains("\"units\""), "{}", e.message);
        let e = fit_with(
            &SequenceOptions {
                learning_rate: f64::NAN,
                ..gru.clone()
            },
            &fit,
        );
        assert!(e.message.contains("learning_rate"), "{}", e.message);
        let e = fit_with(
            &SequenceOptions {
                batch_size: 0,
                ..gru.clone()
            },
            &fit,
        );
        assert!(
            e.message.contains("\"batch_size\" must be from 1"),
            "{}",
            e.message
        );
        let cnn = SequenceOptions {
            kernel_width: 13,
            ..SequenceOptions::defaults(EncoderKind::Cnn)
        };
        assert!(fit_with(&cnn, &fit).message.contains("kernel_width"));
        let mut broken = fit.clone();
        broken.sequences[7] = f64::NAN;
        assert_eq!(fit_with(&gru, &broken).kind, ErrorKind::NonFiniteValue);
        let mut short = fit.clone();
        short.steps = 11;
        assert_eq!(fit_with(&gru, &short).kind, ErrorKind::InvalidParameter);
    }
}
