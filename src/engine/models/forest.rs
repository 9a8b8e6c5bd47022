//! Tree ensembles in our own flat format, and random-forest training with smartcore.
//!
//! All trees of an ensemble live in one node array; a node is 24 bytes (split feature, two child
//! indices and a value that is the threshold of a split or the output of a leaf). Scoring walks
//! `x[feature] <= threshold → left` like smartcore does, so predictions are identical to the
//! library's, but without its per-call matrix allocation. Children always sit after their parent,
//! which [`TreeEnsemble::validate`] checks: a decoded model can neither index out of bounds nor
//! loop. Scoring uses a layout derived from the nodes on the first prediction
//! ([`super::complete_trees`]), with the same results to the bit.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::Dataset;
use crate::engine::guard::catch_library_panic;
use crate::engine::options::values::integer;

use super::complete_trees::CompleteTreesCache;
use super::linear::matrix;

/// Marks a leaf in [`Node::feature`].
pub const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Split feature, or [`LEAF`].
    pub feature: u32,
    /// Child for `x[feature] <= value`.
    pub left: u32,
    /// Child for `x[feature] > value`.
    pub right: u32,
    /// Threshold of a split, output of a leaf.
    pub value: f64,
}

impl Node {
    /// A leaf that outputs `value`.
    pub fn leaf(value: f64) -> Node {
        Node {
            feature: LEAF,
            left: 0,
            right: 0,
            value,
        }
    }

    /// A split: rows with `x[feature] <= threshold` go to `left`, the others to `right`.
    pub fn split(feature: u32, left: u32, right: u32, threshold: f64) -> Node {
        Node {
            feature,
            left,
            right,
            value: threshold,
        }
    }
}

/// `prediction = offset + scale · Σ_trees leaf(tree, x)`: a forest averages (scale = 1/trees),
/// boosting adds (scale = 1, offset = base score).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeEnsemble {
    pub n_features: u32,
    pub roots: Vec<u32>,
    pub nodes: Vec<Node>,
    pub scale: f64,
    pub offset: f64,
    /// The scoring layout, built on the first `predict` and never stored (not part of the
    /// format): an ensemble is not edited once it has predicted (a clone starts without one).
    #[serde(skip)]
    pub complete: CompleteTreesCache,
}

impl TreeEnsemble {
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Depth of the deepest tree (a single leaf has depth 0).
    pub fn max_depth(&self) -> usize {
        // children always follow their parent, so one forward pass assigns every depth
        let mut depth = vec![0usize; self.nodes.len()];
        let mut deepest = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let here = depth[i];
            deepest = deepest.max(here);
            if node.feature != LEAF {
                for child in [node.left as usize, node.right as usize] {
                    if let Some(d) = depth.get_mut(child) {
                        *d = here + 1;
                    }
                }
            }
        }
        deepest
    }

    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        match self.complete.get_or_build(self) {
            Some(complete) if x.len() >= self.n_features as usize => complete.predict(self, x),
            // an invalid ensemble, or a row too short for the model: walk the nodes, which
            // fails (or not) exactly as it always has
            _ => {
                let sum = self
                    .roots
                    .iter()
                    .fold(0.0, |sum, &root| sum + self.linked_leaf(root as usize, x));
                self.offset + self.scale * sum
            }
        }
    }

    /// The leaf value of `x` in the tree at node `root`, by walking the linked nodes.
    #[inline]
    pub fn linked_leaf(&self, root: usize, x: &[f64]) -> f64 {
        let mut node = &self.nodes[root];
        while node.feature != LEAF {
            let next = if x[node.feature as usize] <= node.value {
                node.left
            } else {
                node.right
            };
            node = &self.nodes[next as usize];
        }
        node.value
    }

    pub fn validate(&self, n_features: usize) -> Result<()> {
        let bad = |why: String| {
            Err(EngineError::corrupted(format!(
                "tree ensemble is invalid: {why}"
            )))
        };
        if self.n_features as usize != n_features {
            return bad(format!(
                "built for {} features, model has {n_features}",
                self.n_features
            ));
        }
        if self.roots.is_empty() {
            return bad("it has no trees".into());
        }
        if !self.scale.is_finite() || !self.offset.is_finite() {
            return bad("non-finite scale or offset".into());
        }
        let len = self.nodes.len();
        for &root in &self.roots {
            if root as usize >= len {
                return bad(format!("root {root} is outside {len} nodes"));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.value.is_finite() {
                return bad(format!("node {i} holds a non-finite value"));
            }
            if node.feature == LEAF {
                continue;
            }
            if node.feature as usize >= n_features {
                return bad(format!(
                    "node {i} splits on feature {} of {n_features}",
                    node.feature
                ));
            }
            for child in [node.left, node.right] {
                if child as usize <= i || child as usize >= len {
                    return bad(format!("node {i} has child {child}"));
                }
            }
        }
        Ok(())
    }
}

/// Random-forest hyperparameters (names as in scikit-learn / the option names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    pub min_samples_split: usize,
    /// Features tried at each split; `None` = a third of the features (at least one).
    pub max_features: Option<usize>,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 100,
            max_depth: 10,
            min_samples_leaf: 5,
            min_samples_split: 10,
            max_features: None,
            seed: 42,
        }
    }
}

impl ForestParams {
    /// The option keys of the random forest.
    pub const KEYS: &'static [&'static str] = &[
        "n_trees",
        "max_depth",
        "min_samples_leaf",
        "min_samples_split",
        "max_features",
    ];

    /// Reads the [`ForestParams::KEYS`] from an options object, starting from the defaults;
    /// `seed` seeds the bootstrap and the feature draws.
    pub fn from_options(map: &Map<String, Value>, seed: u64) -> Result<ForestParams> {
        let mut p = ForestParams {
            seed,
            ..ForestParams::default()
        };
        if let Some(n) = integer(map, "n_trees", 1, 10_000)? {
            p.n_trees = n as usize;
        }
        if let Some(d) = integer(map, "max_depth", 1, 64)? {
            p.max_depth = d as u16;
        }
        if let Some(n) = integer(map, "min_samples_leaf", 1, 1_000_000)? {
            p.min_samples_leaf = n as usize;
            // a split must leave room for two leaves unless min_samples_split says otherwise
            if !map.contains_key("min_samples_split") {
                p.min_samples_split = 2 * n as usize;
            }
        }
        if let Some(n) = integer(map, "min_samples_split", 2, 2_000_000)? {
            p.min_samples_split = n as usize;
        }
        if let Some(n) = integer(map, "max_features", 1, 100_000)? {
            p.max_features = Some(n as usize);
        }
        Ok(p)
    }
}

/// Trains a random forest one tree at a time, calling `between_trees` before each tree so the
/// caller can honour cancellation and `statement_timeout`.
pub fn fit_random_forest(
    data: &Dataset,
    params: &ForestParams,
    between_trees: &mut dyn FnMut(),
) -> Result<TreeEnsemble> {
    if data.n_rows < 2 * params.min_samples_leaf.max(1) {
        return Err(EngineError::insufficient_data(format!(
            "random_forest needs at least {} training rows with min_samples_leaf = {}, got {}",
            2 * params.min_samples_leaf.max(1),
            params.min_samples_leaf,
            data.n_rows
        )));
    }
    let mtry = params
        .max_features
        .unwrap_or_else(|| data.n_features.div_ceil(3))
        .max(1);
    if mtry > data.n_features {
        return Err(EngineError::invalid_parameter(format!(
            "max_features = {mtry} is more than the {} features",
            data.n_features
        )));
    }
    let x: DenseMatrix<f64> = matrix(data)?;
    let mut ensemble = TreeEnsemble {
        n_features: data.n_features as u32,
        roots: Vec::with_capacity(params.n_trees),
        nodes: Vec::new(),
        scale: 1.0 / params.n_trees as f64,
        offset: 0.0,
        complete: CompleteTreesCache::default(),
    };
    for t in 0..params.n_trees {
        between_trees();
        let tree_params = RandomForestRegressorParameters {
            // smartcore counts levels (a lone root is depth 1); our max_depth counts splits on
            // the longest path, as scikit-learn and LightGBM do
            max_depth: Some(params.max_depth.saturating_add(1)),
            min_samples_leaf: params.min_samples_leaf,
            min_samples_split: params.min_samples_split,
            n_trees: 1,
            m: Some(mtry),
            keep_samples: false,
            seed: params.seed.wrapping_add(t as u64),
        };
        let fitted = catch_library_panic("random_forest", || {
            RandomForestRegressor::fit(&x, &data.y, tree_params)
        })?
        .map_err(|e| {
            EngineError::new(
                ErrorKind::FitFailed,
                format!("random_forest could not be fitted: {e}"),
            )
        })?;
        append_smartcore_trees(&mut ensemble, &fitted)?;
    }
    ensemble.validate(data.n_features)?;
    Ok(ensemble)
}

/// Copies the trees of a fitted smartcore forest into `ensemble`. smartcore keeps its nodes
/// private, so they are read through its serde representation; a layout change in a future
/// smartcore fails here, at training time, with a clear error — stored models are unaffected.
fn append_smartcore_trees(
    ensemble: &mut TreeEnsemble,
    forest: &RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>,
) -> Result<()> {
    let layout = |what: &str| {
        EngineError::new(
            ErrorKind::Internal,
            format!("unexpected smartcore forest layout: {what}"),
        )
    };
    // serde writes a non-finite number as null: a split or leaf mean that overflowed (values
    // near ±1.8e308) is the data's doing, not a layout change
    let not_finite = |what: &str| {
        EngineError::new(
            ErrorKind::NonFiniteValue,
            format!("random_forest computed a non-finite {what}: the values are too large to average"),
        )
        .with_hint("Scale the target and features down (e.g. thousands instead of units), or leave out rows with extreme values.")
    };
    let value = serde_json::to_value(forest).map_err(|e| layout(&e.to_string()))?;
    let trees = value
        .pointer("/forest_regressor/trees")
        .and_then(Value::as_array)
        .ok_or_else(|| layout("no trees"))?;
    for tree in trees {
        let nodes = tree
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or_else(|| layout("tree without nodes"))?;
        let base = ensemble.nodes.len();
        ensemble.roots.push(base as u32);
        for node in nodes {
            let child = |key: &str| node.get(key).and_then(Value::as_u64);
            let converted = match (child("true_child"), child("false_child")) {
                (Some(left), Some(right)) => Node {
                    feature: node
                        .get("split_feature")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| layout("split without feature"))?
                        as u32,
                    left: (base as u64 + left) as u32,
                    right: (base as u64 + right) as u32,
                    value: match node.get("split_value") {
                        Some(Value::Null) => return Err(not_finite("split value")),
                        v => v
                            .and_then(Value::as_f64)
                            .ok_or_else(|| layout("split without value"))?,
                    },
                },
                _ => Node::leaf(match node.get("output") {
                    Some(Value::Null) => return Err(not_finite("leaf mean")),
                    v => v
                        .and_then(Value::as_f64)
                        .ok_or_else(|| layout("leaf without output"))?,
                }),
            };
            ensemble.nodes.push(converted);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stats::SplitMix64;
    use smartcore::linalg::basic::arrays::Array;

    fn step_data(n: usize) -> Dataset {
        let mut rng = SplitMix64::new(3);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.below(100) as f64;
            let b = rng.below(100) as f64;
            x.extend_from_slice(&[a, b]);
            y.push(if a > 50.0 { 100.0 } else { 10.0 } + b / 10.0);
        }
        Dataset {
            n_rows: n,
            n_features: 2,
            x,
            y,
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        }
    }

    #[test]
    fn flat_trees_predict_exactly_like_smartcore() {
        let data = step_data(300);
        let x = matrix(&data).unwrap();
        let params = RandomForestRegressorParameters {
            max_depth: Some(6),
            min_samples_leaf: 2,
            min_samples_split: 4,
            n_trees: 1,
            m: Some(2),
            keep_samples: false,
            seed: 9,
        };
        let forest = RandomForestRegressor::fit(&x, &data.y, params).unwrap();
        let expected = forest.predict(&x).unwrap();
        let mut ensemble = TreeEnsemble {
            n_features: 2,
            roots: vec![],
            nodes: vec![],
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        append_smartcore_trees(&mut ensemble, &forest).unwrap();
        ensemble.validate(2).unwrap();
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(ensemble.predict(data.row(i)), *want);
        }
        assert_eq!(x.shape(), (300, 2));
    }

    #[test]
    fn max_depth_counts_splits_like_scikit_learn() {
        let data = step_data(400);
        for depth in [1u16, 3] {
            let params = ForestParams {
                n_trees: 3,
                max_depth: depth,
                min_samples_leaf: 1,
                min_samples_split: 2,
                ..ForestParams::default()
            };
            let model = fit_random_forest(&data, &params, &mut || {}).unwrap();
            assert_eq!(model.max_depth(), depth as usize);
        }
    }

    #[test]
    fn forest_learns_a_step_and_checks_for_interrupts_between_trees() {
        let data = step_data(400);
        let params = ForestParams {
            n_trees: 12,
            ..ForestParams::default()
        };
        let mut calls = 0;
        let model = fit_random_forest(&data, &params, &mut || calls += 1).unwrap();
        assert_eq!(calls, 12);
        assert_eq!(model.n_trees(), 12);
        assert!(model.predict(&[90.0, 50.0]) > 80.0);
        assert!(model.predict(&[10.0, 50.0]) < 30.0);
    }

    #[test]
    fn validation_rejects_cycles_and_out_of_range_indices() {
        let leaf = Node::leaf(1.0);
        let ok = TreeEnsemble {
            n_features: 1,
            roots: vec![0],
            nodes: vec![Node::split(0, 1, 2, 0.5), leaf, leaf],
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        ok.validate(1).unwrap();
        let mut cyclic = ok.clone();
        cyclic.nodes[0].left = 0;
        assert_eq!(
            cyclic.validate(1).unwrap_err().kind,
            ErrorKind::DataCorrupted
        );
        let mut outside = ok.clone();
        outside.nodes[0].right = 9;
        assert!(outside.validate(1).is_err());
        let mut bad_feature = ok.clone();
        bad_feature.nodes[0].feature = 3;
        assert!(bad_feature.validate(1).is_err());
        let mut bad_root = ok;
        bad_root.roots = vec![7];
        assert!(bad_root.validate(1).is_err());
    }
}
