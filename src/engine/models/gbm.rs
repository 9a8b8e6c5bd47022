//! Gradient-boosted trees, trained with hessboost and stored in our own [`TreeEnsemble`].
//!
//! Why hessboost (0.4.6, pinned exactly): it is pure Rust (a C compiler is needed only for the
//! bundled libzstd), builds on our rustc, trains at least as fast as LightGBM on our benchmark,
//! and exposes everything we need to copy a model out: every node's split feature, threshold,
//! children, leaf value, hessian sum (`sum_hess`, the cover XGBoost's TreeSHAP uses) and split
//! gain. Its serde format does not survive postcard, so — like the random forest — a fitted model
//! is converted to our flat node array and the library is never needed for scoring.
//!
//! Three things need care:
//!
//! * **Cancellation.** hessboost has a per-round hook (`Trainer::on_round`), but it runs on the
//!   training thread inside the library (and must be `Send`), while our `interrupt` may only run
//!   on the calling thread and must never run inside `catch_unwind` (in Postgres it unwinds to
//!   cancel the statement). So training runs on a worker thread whose hook reports each finished
//!   round over a channel; the calling thread waits on the channel and calls `interrupt` after
//!   each round (and at least every [`POLL`] while a round is running). If `interrupt` unwinds,
//!   a drop guard closes the channel — the hook sees that and stops after the current round — and
//!   joins the worker, so no training keeps running behind a cancelled statement. Nothing on the
//!   worker touches Postgres.
//! * **Thresholds.** hessboost trains on `f32` features and routes `x < split_cond` (an `f32`);
//!   we score `f64` features with `x <= threshold`. [`f64_threshold`] picks the `f64` threshold
//!   for which `x <= t` ⇔ `(x as f32) < split_cond` for every `f64` x, so our routing is exactly
//!   the library's on the row it would see. Missing values never reach the model (features are
//!   imputed before training and scoring), so `default_left` is irrelevant and not stored.
//! * **Precision.** hessboost sums its margins in `f32`; we sum the same `f32` leaf values in
//!   `f64`. Our prediction therefore equals, to 1e-9, the library's base score plus the sum of the
//!   leaves the library itself picks for the row (tested with `leaf_id_dense`), and differs from
//!   the library's own `f32` margin only by its `f32` rounding (~1e-7 relative).

use std::ops::ControlFlow;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hessboost::config::{GrowPolicy, TrainingParams, TreeMethod};
use hessboost::data::{BinnedMatrix, DMatrix};
use hessboost::model::BoostedModel;
use hessboost::objective::{Objective, RegLoss};
use hessboost::training::Trainer;
use hessboost::tree::Node as LibraryNode;
use serde_json::{Map, Value};

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{Dataset, F32Rows};
use crate::engine::guard::catch_library_panic;
use crate::engine::memory;
use crate::engine::options::values::{fraction, integer};

use super::forest::{Node, TreeEnsemble};
use super::Loss;

/// Longest wait for `interrupt` while a boosting round runs: a cancel is honoured within this
/// even when one round is slow (a round on 200k rows takes ~20 ms here).
const POLL: Duration = Duration::from_millis(100);

/// Hyperparameters of gradient boosting. Names follow LightGBM/scikit-learn where they exist.
#[derive(Debug, Clone, PartialEq)]
pub struct GbmOptions {
    /// Boosting rounds (one tree each). Option `n_trees`.
    pub n_trees: usize,
    /// Most splits on any root-to-leaf path (LightGBM/XGBoost `max_depth`). Option `max_depth`.
    pub max_depth: usize,
    /// Shrinkage of every tree (`eta`). Option `learning_rate`.
    pub learning_rate: f64,
    /// Fewest training rows in a leaf. hessboost bounds the *hessian* sum of a leaf instead
    /// (`min_child_weight`): for squared error a row's hessian is 1, so the bound is exactly this
    /// row count; for log loss it is `min_samples_leaf · p̄(1 − p̄)`, the hessian that many rows
    /// carry at the base rate p̄ (equal at the start of boosting, looser where trees have already
    /// become confident). Option `min_samples_leaf`.
    pub min_samples_leaf: usize,
    /// Share of rows sampled (without replacement) for each tree. Option `subsample`.
    pub subsample: f64,
    /// Seed of the row sampling; the same seed and data give the same model on any thread count.
    pub seed: u64,
    /// L2 penalty on leaf values (XGBoost `lambda`). Not a user option: 1 is XGBoost's default
    /// and is negligible next to `min_samples_leaf` rows per leaf.
    pub l2: f64,
    /// Worker threads of hessboost's own pool (the calling thread only waits and checks for
    /// interrupts). 1 by default: a database server runs many backends at once.
    pub threads: usize,
}

impl Default for GbmOptions {
    fn default() -> Self {
        GbmOptions {
            n_trees: 100,
            max_depth: 6,
            learning_rate: 0.1,
            min_samples_leaf: 20,
            subsample: 1.0,
            seed: 42,
            l2: 1.0,
            threads: 1,
        }
    }
}

/// The option keys gradient boosting reads (besides the common `seed`), for `valid_keys`.
impl GbmOptions {
    /// The option keys of gradient boosting.
    pub const KEYS: &'static [&'static str] = &[
        "n_trees",
        "max_depth",
        "learning_rate",
        "min_samples_leaf",
        "subsample",
    ];

    /// Reads the [`GbmOptions::KEYS`] (and `seed`) from an options object, starting from the
    /// defaults. Unknown keys are the caller's business (`TrainOptions::parse` refuses them).
    pub fn from_options(map: &Map<String, Value>) -> Result<GbmOptions> {
        let mut o = GbmOptions::default();
        if let Some(n) = integer(map, "n_trees", 1, 10_000)? {
            o.n_trees = n as usize;
        }
        if let Some(d) = integer(map, "max_depth", 1, 32)? {
            o.max_depth = d as usize;
        }
        if let Some(r) = fraction(map, "learning_rate")? {
            o.learning_rate = r;
        }
        if let Some(n) = integer(map, "min_samples_leaf", 1, 1_000_000)? {
            o.min_samples_leaf = n as usize;
        }
        if let Some(s) = fraction(map, "subsample")? {
            o.subsample = s;
        }
        if let Some(seed) = integer(map, "seed", 0, i64::MAX as u64)? {
            o.seed = seed;
        }
        o.validate()?;
        Ok(o)
    }

    /// Checks ranges for options built in code (the JSON path checks them as it parses).
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, expected: &str, got: String| {
            Err(EngineError::invalid_parameter(format!(
                "option \"{key}\" must be {expected}, got {got}"
            )))
        };
        if !(1..=10_000).contains(&self.n_trees) {
            return bad(
                "n_trees",
                "an integer from 1 to 10000",
                self.n_trees.to_string(),
            );
        }
        if !(1..=32).contains(&self.max_depth) {
            return bad(
                "max_depth",
                "an integer from 1 to 32",
                self.max_depth.to_string(),
            );
        }
        let fraction = |f: f64| f > 0.0 && f <= 1.0;
        if !fraction(self.learning_rate) {
            return bad(
                "learning_rate",
                "a number greater than 0 and at most 1",
                self.learning_rate.to_string(),
            );
        }
        if self.min_samples_leaf == 0 {
            return bad(
                "min_samples_leaf",
                "an integer from 1 to 1000000",
                "0".into(),
            );
        }
        if !fraction(self.subsample) {
            return bad(
                "subsample",
                "a number greater than 0 and at most 1",
                self.subsample.to_string(),
            );
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) || self.threads == 0 {
            return Err(EngineError::new(
                ErrorKind::Internal,
                format!("invalid l2 = {} or threads = {}", self.l2, self.threads),
            ));
        }
        Ok(())
    }
}

/// A fitted booster in our representation, with what explanations and importances need.
#[derive(Debug, Clone, PartialEq)]
pub struct GbmFit {
    /// `offset` = the library's base score (label mean, or its log-odds), `scale` = 1.
    pub ensemble: TreeEnsemble,
    /// Hessian sum of the (sampled) training rows reaching each node, indexed like
    /// `ensemble.nodes`: XGBoost's TreeSHAP cover. Row-count covers come from
    /// [`super::explain::node_covers`].
    pub hessian_covers: Vec<f64>,
    /// Loss reduction of each split node (0 for leaves), for gain importance.
    pub split_gains: Vec<f64>,
}

/// The `f64` threshold `t` with `x <= t` ⇔ `(x as f32) < s` for every `f64` x (`s` = the
/// library's `f32` split condition, compared after the library rounds the feature to `f32`).
///
/// `(x as f32) < s` ⇔ `(x as f32) <= p` with `p` the largest `f32` below `s`, ⇔ x lies below the
/// rounding boundary between `p` and `s`: their midpoint `m`, which is exact in `f64`. At `m`
/// itself round-to-nearest-even decides: if `p`'s mantissa is even, `m` rounds to `p` (goes
/// left, `t = m`), else to `s` (goes right, `t` = the `f64` just below `m`).
pub fn f64_threshold(s: f32) -> Option<f64> {
    if s.is_nan() || s == f32::NEG_INFINITY {
        return None;
    }
    let p = s.next_down();
    if p == f32::NEG_INFINITY {
        // s = -f32::MAX: only values rounding to -inf go left; no finite f32 does.
        return None;
    }
    let m = if s == f32::INFINITY {
        // the boundary above f32::MAX is MAX + half its ulp (2^103)
        f64::from(f32::MAX) + 2f64.powi(103)
    } else {
        (f64::from(p) + f64::from(s)) / 2.0
    };
    let p_even = p.to_bits() & 1 == 0;
    Some(if p_even { m } else { m.next_down() })
}

fn library_error(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::new(
        ErrorKind::FitFailed,
        format!("gradient_boosting could not be fitted: {what}: {e}"),
    )
}

/// Checks the data, so that the library never sees a problem it would report obscurely.
fn check_data(train: &Dataset, loss: Loss, options: &GbmOptions) -> Result<()> {
    let needed = (2 * options.min_samples_leaf).max(2);
    if train.n_features == 0 || train.n_rows < needed {
        return Err(EngineError::insufficient_data(format!(
            "gradient_boosting needs at least {needed} training rows with min_samples_leaf = {}, got {}",
            options.min_samples_leaf, train.n_rows
        )));
    }
    let n_values = match &train.compact {
        Some(rows) => rows.as_slice().len(),
        None => train.x.len(),
    };
    if n_values != train.n_rows * train.n_features || train.y.len() != train.n_rows {
        return Err(EngineError::new(
            ErrorKind::Internal,
            "dataset shape does not match its values",
        ));
    }
    // compact rows are finite f32 values by construction
    let limit = f64::from(f32::MAX);
    if let Some(i) = train.x.iter().position(|v| v.is_nan() || v.abs() > limit) {
        return Err(EngineError::new(
            ErrorKind::NonFiniteValue,
            format!(
                "feature {} of training row {} is {}, outside the range gradient_boosting handles (±3.4e38)",
                i % train.n_features + 1,
                i / train.n_features + 1,
                train.x[i]
            ),
        ));
    }
    match loss {
        Loss::SquaredError => {
            if let Some(i) = train.y.iter().position(|v| v.is_nan() || v.abs() > limit) {
                return Err(EngineError::new(
                    ErrorKind::NonFiniteValue,
                    format!(
                        "the target of training row {} is {}, outside the range gradient_boosting handles (±3.4e38)",
                        i + 1,
                        train.y[i]
                    ),
                ));
            }
            let first = train.y[0];
            if train.y.iter().all(|&v| v == first) {
                return Err(EngineError::insufficient_data(format!(
                    "the target is {first} in every training row; there is nothing to learn"
                )));
            }
        }
        Loss::LogLoss => {
            if let Some(i) = train.y.iter().position(|&v| v != 0.0 && v != 1.0) {
                return Err(EngineError::new(
                    ErrorKind::DatatypeMismatch,
                    format!(
                        "log loss needs a 0/1 target, got {} in training row {}",
                        train.y[i],
                        i + 1
                    ),
                )
                .with_hint("Use a boolean or 0/1 target column for classification."));
            }
            let positives = train.y.iter().filter(|&&v| v == 1.0).count();
            if positives == 0 || positives == train.n_rows {
                return Err(EngineError::insufficient_data(format!(
                    "the target is {} in every training row; classification needs both classes",
                    train.y[0]
                )));
            }
        }
    }
    Ok(())
}

/// Joins the training thread however the caller leaves [`fit_gbm`] — in particular when
/// `interrupt` unwinds: dropping the receiver makes the round hook stop training after the
/// current round, then the join waits for it.
struct Worker {
    rounds: Option<Receiver<usize>>,
    handle: Option<JoinHandle<Result<GbmFit>>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.rounds.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Worker {
    /// Waits for the training thread, calling `interrupt` after every finished round and at least
    /// every [`POLL`] while one runs, and returns what the thread returned.
    fn wait(mut self, interrupt: &mut dyn FnMut()) -> Result<GbmFit> {
        if let Some(rounds) = &self.rounds {
            // a finished round or a slow one: check; the worker hanging up ends training
            while let Ok(_) | Err(RecvTimeoutError::Timeout) = rounds.recv_timeout(POLL) {
                interrupt();
            }
        }
        let handle = self.handle.take().ok_or_else(|| {
            EngineError::new(
                ErrorKind::Internal,
                "gradient_boosting training thread lost",
            )
        })?;
        handle.join().map_err(|_| {
            EngineError::new(
                ErrorKind::Internal,
                "gradient_boosting training thread panicked",
            )
        })?
    }
}

/// Features (row-major) rounded to `f32`, the library's input format; routing stays exact
/// (see [`f64_threshold`]).
enum BoostingFeatures {
    /// A copy, freed once the library has binned it.
    Copied(Vec<f32>),
    /// A compact dataset's own rows, shared with the library without a copy.
    Shared(Arc<F32Rows>),
}

/// Everything the training thread needs, owned: it runs beside the caller and borrows nothing.
struct BoostingJob {
    x: BoostingFeatures,
    /// The target rounded to `f32`.
    y: Vec<f32>,
    n_rows: usize,
    n_features: usize,
    loss: Loss,
    min_child_weight: f64,
    options: GbmOptions,
    /// Told the number of every finished round; the receiver hanging up means the caller has
    /// gone (cancelled), and training stops after the round.
    rounds: Sender<usize>,
}

impl BoostingJob {
    fn new(
        train: &Dataset,
        loss: Loss,
        options: &GbmOptions,
        rounds: Sender<usize>,
    ) -> Result<Self> {
        let x = match &train.compact {
            Some(rows) => BoostingFeatures::Shared(Arc::clone(rows)),
            None => {
                let mut x = memory::try_with_capacity(train.x.len(), "the rows rounded to f32")?;
                x.extend(train.x.iter().map(|&v| v as f32));
                BoostingFeatures::Copied(x)
            }
        };
        Ok(BoostingJob {
            x,
            y: train.y.iter().map(|&v| v as f32).collect(),
            n_rows: train.n_rows,
            n_features: train.n_features,
            loss,
            min_child_weight: min_child_weight(train, loss, options),
            options: options.clone(),
            rounds,
        })
    }

    /// Runs on the training thread: boosts, then converts the model to our format.
    fn run(self) -> Result<GbmFit> {
        let n_features = self.n_features;
        // every rayon call of the library runs in this pool, never in rayon's global one
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.options.threads)
            .thread_name(|i| format!("customer_value gbm {i}"))
            .start_handler(memory::pool_threads_on_caller_account())
            .build()
            .map_err(|e| library_error("thread pool", e))?;
        let model =
            pool.install(move || catch_library_panic("gradient_boosting", move || self.boost()))??;
        catch_library_panic("gradient_boosting", || convert(&model, n_features))?
    }

    /// The library's training proper, reporting every round on `rounds`.
    fn boost(self) -> Result<BoostedModel> {
        let params = training_params(self.loss, &self.options, self.min_child_weight)?;
        let values = match self.x {
            BoostingFeatures::Copied(x) => DMatrix::from_dense_vec(x, self.n_rows, self.n_features),
            BoostingFeatures::Shared(rows) => {
                DMatrix::from_dense_shared(rows, self.n_rows, self.n_features, f32::NAN)
            }
        }
        .map_err(|e| library_error("training matrix", e))?;
        // histogram growth reads the bins only: training on them is training on the values,
        // bit for bit, and the library lets go of the values (4 bytes each) before the first
        // round (a copy is freed; shared rows stay with the dataset)
        let dtrain = BinnedMatrix::new(&values, params.max_bin)
            .and_then(|d| d.with_labels(&self.y))
            .map_err(|e| library_error("training matrix", e))?;
        drop(values);
        let rounds = self.rounds;
        let result = Trainer::new(&params, &dtrain, self.options.n_trees)
            .on_round(move |round| match rounds.send(round.iteration()) {
                Ok(()) => ControlFlow::Continue(()),
                // the caller is gone (cancelled): stop after this round
                Err(_) => ControlFlow::Break(()),
            })
            .train()
            .map_err(|e| library_error("training", e))?;
        Ok(result.model)
    }
}

/// Checks that there is memory for what hessboost allocates without a way to fail cleanly: its
/// histogram index (a u16 global and a u8 local bin per value, a row pointer per row),
/// gradients, margins and partitions — measured at 82 bytes a row for 10 features, asked for as
/// 8 a value and 32 a row — plus the `f32` copy of rows that are not compact.
fn check_library_headroom(train: &Dataset) -> Result<()> {
    let (rows, features) = (train.n_rows as u64, train.n_features as u64);
    let copy = if train.compact.is_some() {
        0
    } else {
        4 * rows * features
    };
    memory::check_headroom(
        rows * (8 * features + 32) + copy,
        "gradient_boosting's working memory",
    )
}

/// hessboost bounds the hessian sum of a leaf, not its rows: the hessian `min_samples_leaf` rows
/// carry (see [`GbmOptions::min_samples_leaf`]).
fn min_child_weight(train: &Dataset, loss: Loss, options: &GbmOptions) -> f64 {
    match loss {
        Loss::SquaredError => options.min_samples_leaf as f64,
        Loss::LogLoss => {
            let p = train.y.iter().sum::<f64>() / train.n_rows as f64;
            options.min_samples_leaf as f64 * p * (1.0 - p)
        }
    }
}

/// The library's parameters for our options: histogram trees grown depth-wise.
fn training_params(
    loss: Loss,
    options: &GbmOptions,
    min_child_weight: f64,
) -> Result<TrainingParams> {
    let objective = match loss {
        Loss::SquaredError => Objective::SquaredError(RegLoss::default()),
        Loss::LogLoss => Objective::BinaryLogistic(RegLoss::default()),
    };
    TrainingParams::builder()
        .objective(objective)
        .tree_method(TreeMethod::Hist)
        .grow_policy(GrowPolicy::DepthWise)
        .max_depth(options.max_depth)
        .eta(options.learning_rate)
        .min_child_weight(min_child_weight)
        .subsample(options.subsample)
        .lambda(options.l2)
        .seed(options.seed)
        // the pool `BoostingJob::run` installs (`options.threads` threads): `nthread` would
        // have the library start a second pool of as many threads beside it
        .global_pool()
        .build()
        .map_err(|e| library_error("parameters", e))
}

/// Trains gradient-boosted trees on `train` and converts them to our format.
///
/// `interrupt` is called on the calling thread before training, after every boosting round and
/// at least every [`POLL`] while a round runs; it may unwind (Postgres cancel), in which case
/// training stops after the running round and its thread is joined before the unwind goes on.
pub fn fit_gbm(
    train: &Dataset,
    loss: Loss,
    options: &GbmOptions,
    interrupt: &mut dyn FnMut(),
) -> Result<GbmFit> {
    options.validate()?;
    check_data(train, loss, options)?;
    interrupt();

    check_library_headroom(train)?;
    let (sender, receiver) = mpsc::channel::<usize>();
    let job = BoostingJob::new(train, loss, options, sender)?;
    let handle =
        spawn_with_signals_blocked("customer_value gbm", move || job.run()).map_err(|e| {
            EngineError::new(
                ErrorKind::InsufficientResources,
                format!("could not start the training thread: {e}"),
            )
            .with_hint("The server is at its limit of processes or threads (ulimit -u, the cgroup's pids.max); try again when fewer sessions train.")
        })?;
    let worker = Worker {
        rounds: Some(receiver),
        handle: Some(handle),
    };
    worker.wait(interrupt)
}

fn unsupported_model(what: &str) -> EngineError {
    EngineError::new(
        ErrorKind::Internal,
        format!("unexpected hessboost model: {what}"),
    )
}

/// Copies a fitted hessboost model into our flat format (nodes renumbered in pre-order, so
/// children always follow their parent whatever the library's layout), with per-node hessian
/// covers and split gains.
fn convert(model: &BoostedModel, n_features: usize) -> Result<GbmFit> {
    if model.n_outputs() != 1 || model.trees_per_iteration() != 1 || model.has_vector_leaves() {
        return Err(unsupported_model("more than one output"));
    }
    if model.n_features() != n_features {
        return Err(unsupported_model("feature count differs"));
    }
    let mut fit = GbmFit {
        ensemble: TreeEnsemble {
            n_features: n_features as u32,
            roots: Vec::with_capacity(model.trees().len()),
            nodes: Vec::new(),
            scale: 1.0,
            offset: f64::from(model.base_score()),
            complete: Default::default(),
        },
        hessian_covers: Vec::new(),
        split_gains: Vec::new(),
    };
    let weights: Vec<f32> = model.tree_weights().collect();
    for (t, tree) in model.trees().iter().enumerate() {
        if tree.linear_leaves().is_some() || tree.has_categorical_splits() {
            return Err(unsupported_model("linear leaves or categorical splits"));
        }
        let weight = f64::from(weights.get(t).copied().unwrap_or(1.0));
        let order = preorder(tree.nodes())?;
        fit.append_tree(tree.nodes(), &order, weight)?;
    }
    fit.ensemble.validate(n_features)?;
    Ok(fit)
}

/// The indices of a library tree's nodes in pre-order (every node before its children, the left
/// subtree first), checking on the way that the child links form a tree.
fn preorder(nodes: &[LibraryNode]) -> Result<Vec<usize>> {
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack = vec![0usize];
    while let Some(old) = stack.pop() {
        let node = nodes
            .get(old)
            .ok_or_else(|| unsupported_model("child out of range"))?;
        if order.len() >= nodes.len() {
            return Err(unsupported_model("a node is reached twice"));
        }
        order.push(old);
        if !node.is_leaf() {
            // push right first so the left child comes next
            for child in [node.right, node.left] {
                stack.push(usize::try_from(child).map_err(|_| unsupported_model("bad child"))?);
            }
        }
    }
    Ok(order)
}

impl GbmFit {
    /// Appends a library tree whose nodes, taken in `order` (see [`preorder`]), become
    /// consecutive nodes of ours; leaf values are scaled by the tree's `weight`.
    fn append_tree(&mut self, nodes: &[LibraryNode], order: &[usize], weight: f64) -> Result<()> {
        let base = self.ensemble.nodes.len();
        let mut new_index = vec![u32::MAX; nodes.len()];
        for (k, &old) in order.iter().enumerate() {
            new_index[old] = (base + k) as u32;
        }
        self.ensemble.roots.push(base as u32);
        for &old in order {
            let node = &nodes[old];
            let converted = if node.is_leaf() {
                Node::leaf(weight * f64::from(node.leaf_value))
            } else {
                Node {
                    feature: node.split_feature,
                    left: new_index[node.left as usize],
                    right: new_index[node.right as usize],
                    value: f64_threshold(node.split_cond)
                        .ok_or_else(|| unsupported_model("a split at -inf or NaN"))?,
                }
            };
            self.ensemble.nodes.push(converted);
            self.hessian_covers.push(f64::from(node.sum_hess));
            self.split_gains.push(if node.is_leaf() {
                0.0
            } else {
                f64::from(node.split_gain)
            });
        }
        Ok(())
    }
}

/// Starts a thread that runs beside the backend with every signal blocked
/// ([`crate::engine::parallel::with_signals_blocked`]).
pub(crate) fn spawn_with_signals_blocked<T: Send + 'static>(
    name: &str,
    job: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    crate::engine::parallel::with_signals_blocked(|| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(memory::on_caller_account(job))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::models::forest::LEAF;
    use crate::engine::stats::sigmoid;
    use crate::engine::stats::SplitMix64;
    use hessboost::model::Iterations;

    fn uniform(rng: &mut SplitMix64) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// y = 3·[x0 > 0.5] + x1² − x2 + noise; churn label from a logistic of the same terms.
    fn data(n: usize, seed: u64, classify: bool) -> Dataset {
        let mut rng = SplitMix64::new(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let row = [uniform(&mut rng), uniform(&mut rng), uniform(&mut rng), {
                // a discrete feature with many ties
                rng.below(5) as f64
            }];
            let f =
                3.0 * f64::from(u8::from(row[0] > 0.5)) + row[1] * row[1] - row[2] + 0.3 * row[3];
            x.extend_from_slice(&row);
            if classify {
                y.push(f64::from(u8::from(
                    uniform(&mut rng) < sigmoid(2.0 * (f - 1.5)),
                )));
            } else {
                y.push(f + 0.1 * (uniform(&mut rng) - 0.5));
            }
        }
        Dataset {
            n_rows: n,
            n_features: 4,
            x,
            y,
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        }
    }

    #[test]
    fn a_compact_dataset_trains_the_same_model_and_predicts_the_same_bits() {
        for (classify, loss) in [(false, Loss::SquaredError), (true, Loss::LogLoss)] {
            let mut plain = data(3000, 7, classify);
            // values that f32 rounds, at and beside the rounding boundaries
            plain.x[0] = 0.1;
            plain.x[5] = 1.0 + f64::EPSILON;
            plain.x[10] = f64::from(f32::MAX);
            let options = GbmOptions {
                n_trees: 20,
                threads: 2,
                ..GbmOptions::default()
            };
            let from_f64 = fit_gbm(&plain, loss, &options, &mut || {}).unwrap();
            let mut compact = plain.clone();
            assert!(compact.compact_to_f32());
            assert!(compact.x.is_empty());
            let from_f32 = fit_gbm(&compact, loss, &options, &mut || {}).unwrap();
            assert_eq!(from_f64, from_f32);
            let mut buffer = Vec::new();
            for i in 0..plain.n_rows {
                let row = compact.row_values(i, &mut buffer);
                assert_eq!(
                    from_f64.ensemble.predict(plain.row(i)).to_bits(),
                    from_f32.ensemble.predict(row).to_bits(),
                    "row {i}"
                );
            }
        }
    }

    /// hessboost trained directly with the parameters fit_gbm derives (min_child_weight is the
    /// row count for squared error, rows × p̄(1 − p̄) for log loss).
    fn fit_library(train: &Dataset, loss: Loss, o: &GbmOptions) -> BoostedModel {
        let p = train.y.iter().sum::<f64>() / train.n_rows as f64;
        let (objective, min_child_weight) = match loss {
            Loss::SquaredError => (
                Objective::SquaredError(RegLoss::default()),
                o.min_samples_leaf as f64,
            ),
            Loss::LogLoss => (
                Objective::BinaryLogistic(RegLoss::default()),
                o.min_samples_leaf as f64 * p * (1.0 - p),
            ),
        };
        let params = TrainingParams::builder()
            .objective(objective)
            .tree_method(TreeMethod::Hist)
            .max_depth(o.max_depth)
            .eta(o.learning_rate)
            .min_child_weight(min_child_weight)
            .subsample(o.subsample)
            .seed(o.seed)
            .nthread(1)
            .build()
            .unwrap();
        let x: Vec<f32> = train.x.iter().map(|&v| v as f32).collect();
        let y: Vec<f32> = train.y.iter().map(|&v| v as f32).collect();
        let d = DMatrix::from_dense(&x, train.n_rows, train.n_features)
            .unwrap()
            .with_labels(&y)
            .unwrap();
        Trainer::new(&params, &d, o.n_trees).train().unwrap().model
    }

    /// Random f64 rows, including values right at and around the f32 thresholds.
    fn probe_rows(model: &GbmFit, n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = SplitMix64::new(seed);
        let thresholds: Vec<(u32, f64)> = model
            .ensemble
            .nodes
            .iter()
            .filter(|n| n.feature != LEAF)
            .map(|n| (n.feature, n.value))
            .collect();
        (0..n)
            .map(|_| {
                let mut row = vec![
                    uniform(&mut rng),
                    uniform(&mut rng),
                    uniform(&mut rng),
                    rng.below(5) as f64,
                ];
                // put one feature exactly on / next to a stored threshold
                let (f, t) = thresholds[rng.below(thresholds.len())];
                row[f as usize] = match rng.below(3) {
                    0 => t,
                    1 => t.next_up(),
                    _ => t.next_down(),
                };
                row
            })
            .collect()
    }

    #[test]
    fn f64_thresholds_route_like_f32_less_than() {
        // reference: the definition, (x as f32) < s, on x near every rounding boundary
        let mut rng = SplitMix64::new(11);
        let mut specials = vec![
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.5,
            f32::MIN_POSITIVE,
            1e-45,
            -1e-45,
            f32::MAX,
            f32::INFINITY,
            16_777_216.0,
            3.5,
        ];
        for _ in 0..20_000 {
            specials.push(f32::from_bits(rng.next_u64() as u32));
        }
        for s in specials {
            let Some(t) = f64_threshold(s) else {
                assert!(s.is_nan() || s <= f32::MIN);
                continue;
            };
            let p = s.next_down();
            let mid = if s.is_infinite() {
                f64::from(f32::MAX) + 2f64.powi(103)
            } else {
                (f64::from(p) + f64::from(s)) / 2.0
            };
            let mut probes = vec![
                t,
                t.next_up(),
                t.next_down(),
                f64::from(s),
                f64::from(p),
                mid,
                mid.next_up(),
                mid.next_down(),
            ];
            probes.retain(|x| x.is_finite());
            for x in probes {
                assert_eq!(x <= t, (x as f32) < s, "s = {s:e}, x = {x:e}, t = {t:e}");
            }
        }
    }

    #[test]
    fn our_trees_pick_the_library_leaves_and_match_its_margins() {
        for loss in [Loss::SquaredError, Loss::LogLoss] {
            let train = data(3_000, 1, loss == Loss::LogLoss);
            let o = GbmOptions {
                n_trees: 30,
                max_depth: 4,
                min_samples_leaf: 10,
                ..GbmOptions::default()
            };
            let fit = fit_gbm(&train, loss, &o, &mut || {}).unwrap();
            let library = fit_library(&train, loss, &o);
            // same parameters, same model: as many trees and nodes
            assert_eq!(fit.ensemble.n_trees(), 30);
            let library_nodes: usize = library.trees().iter().map(|t| t.num_nodes()).sum();
            assert_eq!(fit.ensemble.n_nodes(), library_nodes);
            let mut rows: Vec<Vec<f64>> = (0..500).map(|i| train.row(i).to_vec()).collect();
            rows.extend(probe_rows(&fit, 2_000, 5));
            for row in rows {
                let row32: Vec<f32> = row.iter().map(|&v| v as f32).collect();
                // the library's own leaf choice, summed in f64
                let mut expected = f64::from(library.base_score());
                for tree in library.trees() {
                    let leaf = tree.leaf_id_dense(&row32, f32::NAN);
                    expected += f64::from(tree.nodes()[leaf].leaf_value);
                }
                let ours = fit.ensemble.predict(&row);
                assert!((ours - expected).abs() <= 1e-9, "{ours} vs {expected}");
                // and the library's f32 margin, up to its f32 accumulation
                let margin = f64::from(
                    library
                        .predict_margin_row(&row32, Iterations::Best)
                        .unwrap(),
                );
                assert!(
                    (ours - margin).abs() <= 1e-5 * (1.0 + ours.abs()),
                    "{ours} vs {margin}"
                );
            }
        }
    }

    #[test]
    fn tree_shap_with_hessian_covers_matches_the_library_shap() {
        // hessboost's own TreeSHAP (XGBoost's algorithm, f32 cover fractions) is an independent
        // implementation: ours on the converted trees must agree up to f32 rounding.
        use crate::engine::models::explain::TreeExplainer;
        for loss in [Loss::SquaredError, Loss::LogLoss] {
            let train = data(3_000, 12, loss == Loss::LogLoss);
            let o = GbmOptions {
                n_trees: 20,
                max_depth: 5,
                ..GbmOptions::default()
            };
            let fit = fit_gbm(&train, loss, &o, &mut || {}).unwrap();
            let library = fit_library(&train, loss, &o);
            let rows = 200;
            let x32: Vec<f32> = train.x[..rows * 4].iter().map(|&v| v as f32).collect();
            let contribs = library
                .predict_contribs(
                    &DMatrix::from_dense(&x32, rows, 4).unwrap(),
                    Iterations::Best,
                )
                .unwrap();
            let explainer = TreeExplainer::new(&fit.ensemble, &fit.hessian_covers).unwrap();
            for i in 0..rows {
                let theirs = contribs.get(i, 0).unwrap();
                let ours = explainer.contributions(train.row(i)).unwrap();
                for j in 0..4 {
                    let t = f64::from(theirs[j]);
                    assert!(
                        (ours[j] - t).abs() < 1e-4 * (1.0 + t.abs()),
                        "{loss:?} row {i} feature {j}: {} vs {t}",
                        ours[j]
                    );
                }
                let bias = f64::from(theirs[4]);
                assert!((explainer.baseline() - bias).abs() < 1e-4 * (1.0 + bias.abs()));
            }
        }
    }

    #[test]
    fn hessian_covers_add_up_and_count_rows_for_squared_error() {
        let train = data(2_000, 2, false);
        let fit = fit_gbm(
            &train,
            Loss::SquaredError,
            &GbmOptions {
                n_trees: 5,
                ..GbmOptions::default()
            },
            &mut || {},
        )
        .unwrap();
        let e = &fit.ensemble;
        assert_eq!(fit.hessian_covers.len(), e.n_nodes());
        assert_eq!(fit.split_gains.len(), e.n_nodes());
        for &root in &e.roots {
            // squared error: hessian 1 per row, so the root covers every training row
            assert_eq!(fit.hessian_covers[root as usize], 2_000.0);
        }
        for (i, n) in e.nodes.iter().enumerate() {
            if n.feature != LEAF {
                let sum =
                    fit.hessian_covers[n.left as usize] + fit.hessian_covers[n.right as usize];
                assert_eq!(fit.hessian_covers[i], sum);
                assert!(fit.split_gains[i] > 0.0);
            } else {
                assert!(fit.hessian_covers[i] >= 20.0, "min_samples_leaf");
            }
        }
    }

    #[test]
    fn learns_and_respects_depth_and_rounds() {
        let train = data(4_000, 3, false);
        let test = data(1_000, 4, false);
        let o = GbmOptions {
            max_depth: 3,
            ..GbmOptions::default()
        };
        let fit = fit_gbm(&train, Loss::SquaredError, &o, &mut || {}).unwrap();
        assert_eq!(fit.ensemble.n_trees(), 100);
        assert!(fit.ensemble.max_depth() <= 3);
        let mean = test.y.iter().sum::<f64>() / test.n_rows as f64;
        let (mut sse, mut sst) = (0.0, 0.0);
        for i in 0..test.n_rows {
            sse += (test.y[i] - fit.ensemble.predict(test.row(i))).powi(2);
            sst += (test.y[i] - mean).powi(2);
        }
        // the signal has variance ≈ 2.4, the noise 0.1²/12: r² should be close to 1
        assert!(1.0 - sse / sst > 0.95, "r2 = {}", 1.0 - sse / sst);
    }

    #[test]
    fn log_loss_margins_give_calibrated_probabilities() {
        let train = data(6_000, 5, true);
        let fit = fit_gbm(&train, Loss::LogLoss, &GbmOptions::default(), &mut || {}).unwrap();
        let base_rate = train.y.iter().sum::<f64>() / train.n_rows as f64;
        // the intercept is the log-odds of the base rate
        assert!((sigmoid(fit.ensemble.offset) - base_rate).abs() < 1e-6);
        // mean predicted probability ≈ base rate (log loss is calibrated in the mean)
        let mean_p = (0..train.n_rows)
            .map(|i| sigmoid(fit.ensemble.predict(train.row(i))))
            .sum::<f64>()
            / train.n_rows as f64;
        assert!((mean_p - base_rate).abs() < 0.01, "{mean_p} vs {base_rate}");
    }

    #[test]
    fn subsampling_is_seeded() {
        let train = data(2_000, 6, false);
        let o = GbmOptions {
            n_trees: 10,
            subsample: 0.5,
            ..GbmOptions::default()
        };
        let a = fit_gbm(&train, Loss::SquaredError, &o, &mut || {}).unwrap();
        let b = fit_gbm(&train, Loss::SquaredError, &o, &mut || {}).unwrap();
        assert_eq!(a, b);
        let c = fit_gbm(
            &train,
            Loss::SquaredError,
            &GbmOptions { seed: 7, ..o },
            &mut || {},
        )
        .unwrap();
        assert_ne!(a.ensemble, c.ensemble);
        // the root's hessian covers only the sampled half
        assert!(
            (900.0..1_100.0).contains(&a.hessian_covers[0]),
            "{}",
            a.hessian_covers[0]
        );
    }

    #[test]
    fn interrupt_runs_on_the_calling_thread_after_every_round() {
        let train = data(500, 7, false);
        let me = std::thread::current().id();
        let mut calls = 0;
        let o = GbmOptions {
            n_trees: 12,
            min_samples_leaf: 5,
            ..GbmOptions::default()
        };
        fit_gbm(&train, Loss::SquaredError, &o, &mut || {
            assert_eq!(std::thread::current().id(), me);
            calls += 1;
        })
        .unwrap();
        // once before training and at least once per round
        assert!(calls >= 13, "{calls}");
    }

    #[test]
    fn an_unwinding_interrupt_stops_training_and_propagates_unchanged() {
        let train = data(2_000, 8, false);
        // 10 000 rounds would take minutes: the test finishing quickly shows training stopped
        let o = GbmOptions {
            n_trees: 10_000,
            ..GbmOptions::default()
        };
        let started = std::time::Instant::now();
        let mut calls = 0;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fit_gbm(&train, Loss::SquaredError, &o, &mut || {
                calls += 1;
                if calls == 4 {
                    std::panic::panic_any("canceling statement due to user request");
                }
            })
        }));
        let payload = outcome.unwrap_err();
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"canceling statement due to user request")
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    /// Issue #13: training on two threads gives the model of one thread (hessboost partitions
    /// rows and sums histograms in a fixed order; the row sampling is seeded).
    #[test]
    fn one_and_two_threads_train_the_same_model() {
        for (classify, subsample) in [(false, 1.0), (true, 0.8)] {
            let train = data(20_000, 21, classify);
            let loss = if classify {
                Loss::LogLoss
            } else {
                Loss::SquaredError
            };
            let fit_on = |threads| {
                let o = GbmOptions {
                    n_trees: 30,
                    subsample,
                    threads,
                    ..GbmOptions::default()
                };
                fit_gbm(&train, loss, &o, &mut || {}).unwrap().ensemble
            };
            assert_eq!(fit_on(1), fit_on(2), "classify {classify}");
        }
    }

    /// Issue #13: a cancel during training on two threads returns within a second (the worker
    /// stops after its round; a round on these rows takes milliseconds in a release build and
    /// well under a second with the unoptimised library of a debug build).
    #[test]
    fn cancel_during_two_thread_training_stops_within_a_second() {
        let train = data(30_000, 22, false);
        let o = GbmOptions {
            n_trees: 10_000,
            threads: 2,
            ..GbmOptions::default()
        };
        let mut cancelled_at = None;
        let mut calls = 0;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fit_gbm(&train, Loss::SquaredError, &o, &mut || {
                calls += 1;
                if calls == 5 {
                    cancelled_at = Some(std::time::Instant::now());
                    std::panic::panic_any("canceling statement due to user request");
                }
            })
        }));
        assert!(outcome.is_err());
        let stopped_after = cancelled_at.unwrap().elapsed();
        assert!(stopped_after < Duration::from_secs(1), "{stopped_after:?}");
    }

    #[test]
    fn bad_data_and_options_are_clean_errors() {
        let mut constant = data(200, 9, false);
        constant.y.iter_mut().for_each(|v| *v = 5.0);
        let err = fit_gbm(
            &constant,
            Loss::SquaredError,
            &GbmOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        assert!(
            err.message.contains("every training row"),
            "{}",
            err.message
        );

        let tiny = data(30, 9, false);
        let err = fit_gbm(
            &tiny,
            Loss::SquaredError,
            &GbmOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        assert_eq!(
            err.message,
            "gradient_boosting needs at least 40 training rows with min_samples_leaf = 20, got 30"
        );
        let one_leaf = GbmOptions {
            min_samples_leaf: 1,
            ..GbmOptions::default()
        };
        let two = Dataset {
            n_rows: 2,
            n_features: 1,
            x: vec![0.0, 1.0],
            y: vec![0.0, 1.0],
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        };
        // two rows are enough to fit (one split)
        let fit = fit_gbm(&two, Loss::SquaredError, &one_leaf, &mut || {}).unwrap();
        assert!(fit.ensemble.predict(&[1.0]) > fit.ensemble.predict(&[0.0]));
        let err = fit_gbm(
            &Dataset {
                n_rows: 1,
                x: vec![0.0],
                y: vec![1.0],
                ..two.clone()
            },
            Loss::SquaredError,
            &one_leaf,
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);

        let one_class = Dataset {
            y: vec![1.0; 200],
            ..data(200, 9, true)
        };
        let err = fit_gbm(
            &one_class,
            Loss::LogLoss,
            &GbmOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        let mut not_binary = data(200, 9, true);
        not_binary.y[17] = 0.5;
        let err = fit_gbm(
            &not_binary,
            Loss::LogLoss,
            &GbmOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::DatatypeMismatch);
        assert!(err.message.contains("row 18"));

        let mut huge = data(200, 9, false);
        huge.x[5] = 1e300;
        let err = fit_gbm(
            &huge,
            Loss::SquaredError,
            &GbmOptions::default(),
            &mut || {},
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NonFiniteValue);
        assert!(
            err.message.contains("feature 2 of training row 2"),
            "{}",
            err.message
        );

        for bad in [
            GbmOptions {
                n_trees: 0,
                ..GbmOptions::default()
            },
            GbmOptions {
                learning_rate: 0.0,
                ..GbmOptions::default()
            },
            GbmOptions {
                subsample: 1.5,
                ..GbmOptions::default()
            },
            GbmOptions {
                max_depth: 0,
                ..GbmOptions::default()
            },
        ] {
            let err =
                fit_gbm(&data(200, 9, false), Loss::SquaredError, &bad, &mut || {}).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidParameter);
        }
    }

    #[test]
    fn options_parse_with_the_engine_wording() {
        let parse = |v: Value| GbmOptions::from_options(v.as_object().unwrap());
        assert_eq!(parse(serde_json::json!({})).unwrap(), GbmOptions::default());
        let o = parse(
            serde_json::json!({"n_trees": 50, "max_depth": 3, "learning_rate": 0.05,
                                         "min_samples_leaf": 5, "subsample": 0.8, "seed": 7}),
        )
        .unwrap();
        assert_eq!(
            (o.n_trees, o.max_depth, o.min_samples_leaf, o.seed),
            (50, 3, 5, 7)
        );
        assert_eq!((o.learning_rate, o.subsample), (0.05, 0.8));
        let err = parse(serde_json::json!({"learning_rate": 0})).unwrap_err();
        assert_eq!(
            err.message,
            "option \"learning_rate\" must be a number greater than 0 and at most 1, got 0"
        );
        let err = parse(serde_json::json!({"max_depth": 40})).unwrap_err();
        assert_eq!(
            err.message,
            "option \"max_depth\" must be an integer from 1 to 32, got 40"
        );
        assert!(parse(serde_json::json!({"subsample": "all"})).is_err());
    }
}
