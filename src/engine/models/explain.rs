//! Exact per-feature explanations of one prediction.
//!
//! Tree ensembles use TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent Individualized Feature
//! Attribution for Tree Ensembles", Algorithm 2): the exact Shapley values of the set function
//! `v(S)` = the ensemble's expected output when only the features in `S` are known, where an
//! unknown feature's split is averaged over its children weighted by their *cover* (the training
//! population that reached them). It costs O(leaves · depth²) per tree instead of the 2^features
//! of the definition. Contributions add up exactly: `baseline + Σ contributions = prediction`,
//! with `baseline` = the cover-weighted mean prediction. Covers come either from the training
//! rows ([`node_covers`], any ensemble — LightGBM's convention) or from the booster's hessian
//! sums ([`super::gbm::GbmFit::hessian_covers`], XGBoost's convention).
//!
//! Linear models use `coef_j · (x_j − mean_j)` ([`linear_contributions`]), the exact Shapley
//! values of a linear function with independent features.

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::Dataset;

use super::forest::{TreeEnsemble, LEAF};
use super::linear::LinearModel;

/// Deepest tree explained. TreeSHAP recurses once per level; trees here are ≤ 64 deep, and the
/// bound keeps a corrupted or hand-built degenerate tree from exhausting the stack.
const MAX_EXPLAIN_DEPTH: usize = 1_000;

/// A node whose cover is zero (no training row reached it, or its rows' hessians underflowed)
/// is given this share of its tree's root cover: its conditional expectation is undefined, and a
/// tiny positive weight keeps every ratio finite while changing results negligibly. Σ
/// contributions = prediction − baseline holds exactly either way, because the baseline is
/// computed with the same weights.
const COVER_FLOOR: f64 = 1e-9;

fn mismatch(what: String) -> EngineError {
    EngineError::new(ErrorKind::Internal, what)
}

/// The number of `data` rows that reach each node of `ensemble` (indexed like its nodes): the
/// cover TreeSHAP needs, for any tree ensemble (random forests included). Pass the training
/// rows, so the baseline is the mean training prediction of a forest.
pub fn node_covers(ensemble: &TreeEnsemble, data: &Dataset) -> Result<Vec<f64>> {
    ensemble.validate(data.n_features)?;
    let nodes = &ensemble.nodes;
    let mut covers = vec![0.0; nodes.len()];
    for i in 0..data.n_rows {
        let x = data.row(i);
        for &root in &ensemble.roots {
            let mut at = root as usize;
            loop {
                covers[at] += 1.0;
                let node = &nodes[at];
                if node.feature == LEAF {
                    break;
                }
                at = if x[node.feature as usize] <= node.value {
                    node.left
                } else {
                    node.right
                } as usize;
            }
        }
    }
    Ok(covers)
}

/// One feature on the current root-to-node path (Algorithm 2's `m`): the share of the
/// population that follows the path when the feature is unknown (`zero_fraction`), whether `x`
/// follows it (`one_fraction`, 0 or 1), and the permutation weight of subsets of this size.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: usize,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

/// Marks the path's first element, which stands for no feature.
const NO_FEATURE: usize = usize::MAX;

/// EXTEND of Algorithm 2: append a feature and update the subset-size weights.
fn extend(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: usize) {
    path[depth] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i + 1) as f64 / d1;
        path[i].pweight = zero * path[i].pweight * (depth - i) as f64 / d1;
    }
}

/// UNWIND of Algorithm 2: remove element `index`, undoing its EXTEND.
fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d1 = (depth + 1) as f64;
    let mut next_one_portion = path[depth].pweight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one_portion * d1 / ((i + 1) as f64 * one);
            next_one_portion = tmp - path[i].pweight * zero * (depth - i) as f64 / d1;
        } else {
            path[i].pweight = path[i].pweight * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

/// The total permutation weight the path would have with element `index` unwound, without
/// modifying it (Algorithm 2 computes `sum(UNWIND(m, i).w)`).
fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d1 = (depth + 1) as f64;
    let mut next_one_portion = path[depth].pweight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = next_one_portion * d1 / ((i + 1) as f64 * one);
            total += tmp;
            next_one_portion = path[i].pweight - tmp * zero * (depth - i) as f64 / d1;
        } else {
            // zero > 0: covers are floored positive
            total += path[i].pweight * d1 / (zero * (depth - i) as f64);
        }
    }
    total
}

/// What TreeSHAP precomputes for one [`TreeEnsemble`] and its covers (validation, floored
/// covers, the baseline): computed once per model, reused for every row it explains.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeShapTables {
    /// Covers with zeros floored (see [`COVER_FLOOR`]).
    covers: Vec<f64>,
    baseline: f64,
    /// Length of the scratch path buffer for the deepest tree.
    path_len: usize,
}

/// TreeSHAP for one [`TreeEnsemble`] with fixed covers: validates once, then explains rows.
#[derive(Debug, Clone)]
pub struct TreeExplainer<'a> {
    ensemble: &'a TreeEnsemble,
    tables: std::borrow::Cow<'a, TreeShapTables>,
}

impl<'a> TreeExplainer<'a> {
    /// `covers` has one non-negative value per node (e.g. [`node_covers`] of the training rows);
    /// every tree's root must have a positive cover.
    pub fn new(ensemble: &'a TreeEnsemble, covers: &[f64]) -> Result<TreeExplainer<'a>> {
        Ok(TreeExplainer {
            ensemble,
            tables: std::borrow::Cow::Owned(TreeShapTables::new(ensemble, covers)?),
        })
    }

    /// An explainer from tables already computed for this `ensemble` (no work per call).
    pub fn with_tables(
        ensemble: &'a TreeEnsemble,
        tables: &'a TreeShapTables,
    ) -> Result<TreeExplainer<'a>> {
        if tables.covers.len() != ensemble.nodes.len() {
            return Err(mismatch(format!(
                "TreeSHAP tables for {} nodes used with {} nodes",
                tables.covers.len(),
                ensemble.nodes.len()
            )));
        }
        Ok(TreeExplainer {
            ensemble,
            tables: std::borrow::Cow::Borrowed(tables),
        })
    }
}

impl TreeShapTables {
    /// Validates `ensemble` and `covers` and precomputes what explaining a row needs.
    pub fn new(ensemble: &TreeEnsemble, covers: &[f64]) -> Result<TreeShapTables> {
        ensemble.validate(ensemble.n_features as usize)?;
        let nodes = &ensemble.nodes;
        if covers.len() != nodes.len() {
            return Err(mismatch(format!(
                "{} covers for {} tree nodes",
                covers.len(),
                nodes.len()
            )));
        }
        if let Some(i) = covers.iter().position(|c| !(c.is_finite() && *c >= 0.0)) {
            return Err(mismatch(format!("node {i} has cover {}", covers[i])));
        }
        let mut floored = covers.to_vec();
        let mut depth = vec![0usize; nodes.len()];
        let mut deepest = 0;
        for (t, &root) in ensemble.roots.iter().enumerate() {
            let root_cover = covers[root as usize];
            if root_cover <= 0.0 {
                return Err(EngineError::insufficient_data(format!(
                    "tree {} of the model has no cover: explanations need the training rows that reached it",
                    t + 1
                )));
            }
            let floor = root_cover * COVER_FLOOR;
            let mut stack = vec![(root as usize, 0usize)];
            while let Some((at, d)) = stack.pop() {
                if d > MAX_EXPLAIN_DEPTH {
                    return Err(EngineError::new(
                        ErrorKind::NotSupported,
                        format!("tree {} is deeper than {MAX_EXPLAIN_DEPTH} levels", t + 1),
                    ));
                }
                floored[at] = floored[at].max(floor);
                depth[at] = d;
                deepest = deepest.max(d);
                let node = &nodes[at];
                if node.feature != LEAF {
                    stack.push((node.left as usize, d + 1));
                    stack.push((node.right as usize, d + 1));
                }
            }
        }
        // Expected value of every node under the cover weights, children before parents
        // (children always have larger indices).
        let mut expected = vec![0.0; nodes.len()];
        for i in (0..nodes.len()).rev() {
            let node = &nodes[i];
            expected[i] = if node.feature == LEAF {
                node.value
            } else {
                let (l, r) = (node.left as usize, node.right as usize);
                // the weights TreeSHAP's zero fractions use (child cover / parent cover), so
                // that Σ contributions = prediction − baseline even when covers do not add up
                // exactly (f32 hessian sums, floored zeros)
                (floored[l] * expected[l] + floored[r] * expected[r]) / floored[i]
            };
        }
        let sum: f64 = ensemble.roots.iter().map(|&r| expected[r as usize]).sum();
        let baseline = ensemble.offset + ensemble.scale * sum;
        if !baseline.is_finite() {
            return Err(EngineError::new(
                ErrorKind::NonFiniteValue,
                "the model's expected value is not finite",
            ));
        }
        let path_len = (deepest + 2) * (deepest + 3) / 2 + 1;
        Ok(TreeShapTables {
            covers: floored,
            baseline,
            path_len,
        })
    }
}

impl TreeExplainer<'_> {
    /// The cover-weighted mean prediction: what the contributions of a row start from.
    pub fn baseline(&self) -> f64 {
        self.tables.baseline
    }

    /// Per-feature contributions to the prediction of `x` (one value per feature, in feature
    /// order), scaled by the ensemble's `scale`: `baseline + Σ contributions = predict(x)`.
    pub fn contributions(&self, x: &[f64]) -> Result<Vec<f64>> {
        let mut phi = vec![0.0; self.ensemble.n_features as usize];
        self.contributions_into(x, &mut phi)?;
        Ok(phi)
    }

    /// [`Self::contributions`] into a caller's buffer (overwritten), for many rows.
    pub fn contributions_into(&self, x: &[f64], phi: &mut [f64]) -> Result<()> {
        let n = self.ensemble.n_features as usize;
        if x.len() != n || phi.len() != n {
            return Err(mismatch(format!(
                "explaining a row of {} values with {} outputs for a model of {n} features",
                x.len(),
                phi.len()
            )));
        }
        phi.iter_mut().for_each(|p| *p = 0.0);
        let mut walk = Walk {
            ensemble: self.ensemble,
            covers: &self.tables.covers,
            x,
            phi,
            path: vec![PathElement::default(); self.tables.path_len],
        };
        for &root in &self.ensemble.roots {
            walk.recurse(root as usize, 0, 0, 1.0, 1.0, NO_FEATURE);
        }
        let scale = self.ensemble.scale;
        phi.iter_mut().for_each(|p| *p *= scale);
        Ok(())
    }
}

/// The state of one row's TreeSHAP walk.
struct Walk<'w> {
    ensemble: &'w TreeEnsemble,
    covers: &'w [f64],
    x: &'w [f64],
    phi: &'w mut [f64],
    /// Every level's copy of the path, each after its parent's (`RECURSE` passes `m` by value).
    path: Vec<PathElement>,
}

impl Walk<'_> {
    /// RECURSE of Algorithm 2 at node `at`, whose parent's path starts at `parent_start` and has
    /// `depth` elements before this node's feature is appended.
    fn recurse(
        &mut self,
        at: usize,
        mut depth: usize,
        parent_start: usize,
        zero: f64,
        one: f64,
        feature: usize,
    ) {
        let start = parent_start + depth + 1;
        self.path
            .copy_within(parent_start..parent_start + depth + 1, start);
        let path = &mut self.path[start..];
        extend(path, depth, zero, one, feature);
        let node = self.ensemble.nodes[at];
        if node.feature == LEAF {
            for i in 1..=depth {
                let w = unwound_sum(path, depth, i);
                let el = path[i];
                self.phi[el.feature] += w * (el.one_fraction - el.zero_fraction) * node.value;
            }
            return;
        }
        let split = node.feature as usize;
        let (hot, cold) = if self.x[split] <= node.value {
            (node.left as usize, node.right as usize)
        } else {
            (node.right as usize, node.left as usize)
        };
        let cover = self.covers[at];
        let (hot_zero, cold_zero) = (self.covers[hot] / cover, self.covers[cold] / cover);
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        // a feature split on before: undo its element, its fractions carry on below
        if let Some(k) = (1..=depth).find(|&k| path[k].feature == split) {
            incoming_zero = path[k].zero_fraction;
            incoming_one = path[k].one_fraction;
            unwind(path, depth, k);
            depth -= 1;
        }
        self.recurse(
            hot,
            depth + 1,
            start,
            hot_zero * incoming_zero,
            incoming_one,
            split,
        );
        self.recurse(
            cold,
            depth + 1,
            start,
            cold_zero * incoming_zero,
            0.0,
            split,
        );
    }
}

/// Exact contributions of a linear model for independent features: `coef_j · (x_j − mean_j)`,
/// with `means` the training means, so that `baseline + Σ = predict(x)` where
/// `baseline = intercept + Σ coef_j · mean_j` (returned first).
pub fn linear_contributions(
    model: &LinearModel,
    means: &[f64],
    x: &[f64],
) -> Result<(f64, Vec<f64>)> {
    let n = model.coefficients.len();
    if means.len() != n || x.len() != n {
        return Err(mismatch(format!(
            "{} means and {} values for a model of {n} features",
            means.len(),
            x.len()
        )));
    }
    let baseline = model.intercept
        + model
            .coefficients
            .iter()
            .zip(means)
            .map(|(c, m)| c * m)
            .sum::<f64>();
    let phi = model
        .coefficients
        .iter()
        .zip(x.iter().zip(means))
        .map(|(c, (v, m))| c * (v - m))
        .collect();
    Ok((baseline, phi))
}

/// Column means of a dataset (the baseline point of [`linear_contributions`]).
pub fn feature_means(data: &Dataset) -> Vec<f64> {
    let mut means = vec![0.0; data.n_features];
    for i in 0..data.n_rows {
        for (m, v) in means.iter_mut().zip(data.row(i)) {
            *m += v;
        }
    }
    let n = data.n_rows.max(1) as f64;
    means.iter_mut().for_each(|m| *m /= n);
    means
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::models::forest::Node;
    use crate::engine::stats::SplitMix64;

    fn uniform(rng: &mut SplitMix64) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Appends a random tree in pre-order; leaves get random positive weights which are summed
    /// up the tree, so the covers are consistent (a parent's cover = its children's).
    fn random_tree(
        rng: &mut SplitMix64,
        nodes: &mut Vec<Node>,
        covers: &mut Vec<f64>,
        n_features: usize,
        depth_left: usize,
    ) -> f64 {
        let at = nodes.len();
        let stop = depth_left == 0 || (at > 0 && rng.below(4) == 0);
        if stop {
            nodes.push(Node::leaf(4.0 * uniform(rng) - 2.0));
            let c = 0.1 + 5.0 * uniform(rng);
            covers.push(c);
            return c;
        }
        let f = rng.below(n_features) as u32;
        nodes.push(Node::split(f, 0, 0, uniform(rng)));
        covers.push(0.0);
        let left = nodes.len() as u32;
        let cl = random_tree(rng, nodes, covers, n_features, depth_left - 1);
        let right = nodes.len() as u32;
        let cr = random_tree(rng, nodes, covers, n_features, depth_left - 1);
        nodes[at].left = left;
        nodes[at].right = right;
        covers[at] = cl + cr;
        cl + cr
    }

    fn random_ensemble(seed: u64, n_features: usize) -> (TreeEnsemble, Vec<f64>) {
        let mut rng = SplitMix64::new(seed);
        let mut nodes = Vec::new();
        let mut covers = Vec::new();
        let mut roots = Vec::new();
        for _ in 0..1 + rng.below(4) {
            roots.push(nodes.len() as u32);
            let depth = 1 + rng.below(5);
            random_tree(&mut rng, &mut nodes, &mut covers, n_features, depth);
        }
        let ensemble = TreeEnsemble {
            n_features: n_features as u32,
            roots,
            nodes,
            scale: 0.25 + uniform(&mut rng),
            offset: uniform(&mut rng) - 0.5,
            complete: Default::default(),
        };
        ensemble.validate(n_features).unwrap();
        (ensemble, covers)
    }

    /// The definition, independently of TreeSHAP: v(S) walks each tree, following x at a split
    /// on a known feature and averaging the children weighted by cover at an unknown one; φ_i is
    /// the Shapley-weighted sum of v(S ∪ {i}) − v(S) over all subsets S of the other features.
    fn brute_force(e: &TreeEnsemble, covers: &[f64], x: &[f64]) -> (f64, Vec<f64>) {
        fn value(e: &TreeEnsemble, covers: &[f64], x: &[f64], known: u32, at: usize) -> f64 {
            let n = &e.nodes[at];
            if n.feature == LEAF {
                return n.value;
            }
            let (l, r) = (n.left as usize, n.right as usize);
            if known & (1 << n.feature) != 0 {
                let next = if x[n.feature as usize] <= n.value {
                    l
                } else {
                    r
                };
                value(e, covers, x, known, next)
            } else {
                (covers[l] * value(e, covers, x, known, l)
                    + covers[r] * value(e, covers, x, known, r))
                    / (covers[l] + covers[r])
            }
        }
        let v = |known: u32| {
            e.offset
                + e.scale
                    * e.roots
                        .iter()
                        .map(|&root| value(e, covers, x, known, root as usize))
                        .sum::<f64>()
        };
        let m = e.n_features as usize;
        let factorial = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
        let mut phi = vec![0.0; m];
        for (i, p) in phi.iter_mut().enumerate() {
            for s in 0u32..(1 << m) {
                if s & (1 << i) != 0 {
                    continue;
                }
                let size = s.count_ones() as usize;
                let weight = factorial(size) * factorial(m - size - 1) / factorial(m);
                *p += weight * (v(s | (1 << i)) - v(s));
            }
        }
        (v(0), phi)
    }

    fn random_row(rng: &mut SplitMix64, m: usize) -> Vec<f64> {
        (0..m).map(|_| uniform(rng)).collect()
    }

    #[test]
    fn tree_shap_equals_brute_force_shapley_values() {
        let mut rng = SplitMix64::new(99);
        for seed in 0..300 {
            let m = 1 + (seed as usize % 6);
            let (e, covers) = random_ensemble(seed, m);
            let explainer = TreeExplainer::new(&e, &covers).unwrap();
            for _ in 0..5 {
                let x = random_row(&mut rng, m);
                let (base, want) = brute_force(&e, &covers, &x);
                let got = explainer.contributions(&x).unwrap();
                assert!((explainer.baseline() - base).abs() < 1e-9, "seed {seed}");
                for j in 0..m {
                    assert!(
                        (got[j] - want[j]).abs() < 1e-9,
                        "seed {seed} feature {j}: {} vs {}",
                        got[j],
                        want[j]
                    );
                }
            }
        }
    }

    #[test]
    fn contributions_add_up_to_the_prediction() {
        // bigger ensembles, covers counted from random rows (zero covers floored)
        let mut rng = SplitMix64::new(5);
        for seed in 0..40 {
            let m = 3 + seed as usize % 8;
            let mut nodes = Vec::new();
            let mut roots = Vec::new();
            let mut ignored = Vec::new();
            for _ in 0..20 {
                roots.push(nodes.len() as u32);
                random_tree(&mut rng, &mut nodes, &mut ignored, m, 7);
            }
            let e = TreeEnsemble {
                n_features: m as u32,
                roots,
                nodes,
                scale: 0.05,
                offset: 3.0,
                complete: Default::default(),
            };
            let n = 300;
            let data = Dataset {
                n_rows: n,
                n_features: m,
                x: (0..n * m).map(|_| uniform(&mut rng)).collect(),
                y: vec![0.0; n],
                dropped_null_target: 0,
                pending_target_means: Vec::new(),
                compact: None,
            };
            let covers = node_covers(&e, &data).unwrap();
            let explainer = TreeExplainer::new(&e, &covers).unwrap();
            for _ in 0..20 {
                let x = random_row(&mut rng, m);
                let phi = explainer.contributions(&x).unwrap();
                let total = explainer.baseline() + phi.iter().sum::<f64>();
                assert!(
                    (total - e.predict(&x)).abs() < 1e-9,
                    "{total} vs {}",
                    e.predict(&x)
                );
            }
        }
    }

    #[test]
    fn random_forest_baseline_is_the_mean_training_prediction() {
        // With covers counted from the training rows, the cover-weighted mean of every tree is
        // its mean over those rows, so baseline = mean training prediction (a closed form).
        use crate::engine::models::forest::{fit_random_forest, ForestParams};
        let mut rng = SplitMix64::new(21);
        let n = 400;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let row = random_row(&mut rng, 3);
            y.push(if row[0] > 0.5 { 10.0 } else { 0.0 } + 5.0 * row[1] * row[2]);
            x.extend_from_slice(&row);
        }
        let data = Dataset {
            n_rows: n,
            n_features: 3,
            x,
            y,
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        };
        let params = ForestParams {
            n_trees: 15,
            max_depth: 5,
            ..ForestParams::default()
        };
        let forest = fit_random_forest(&data, &params, &mut || {}).unwrap();
        let covers = node_covers(&forest, &data).unwrap();
        let explainer = TreeExplainer::new(&forest, &covers).unwrap();
        let mean = (0..n).map(|i| forest.predict(data.row(i))).sum::<f64>() / n as f64;
        assert!((explainer.baseline() - mean).abs() < 1e-9);
        for i in 0..50 {
            let phi = explainer.contributions(data.row(i)).unwrap();
            let total = explainer.baseline() + phi.iter().sum::<f64>();
            assert!((total - forest.predict(data.row(i))).abs() < 1e-9);
        }
    }

    #[test]
    fn hand_computed_tree() {
        // root: x0 <= 0.5 (cover 10)
        //   left: x1 <= 0.5 (cover 6) → leaf 10 (cover 2) | leaf 20 (cover 4)
        //   right: leaf 30 (cover 4)
        // E[f] = (2·10 + 4·20 + 4·30) / 10 = 22.  x = (0.2, 0.8) reaches leaf 20.
        // v(∅) = 22, v({x0}) = (2·10 + 4·20)/6 = 50/3, v({x1}) = 0.6·20 + 0.4·30 = 24, v(all) = 20.
        // φ0 = ½[(50/3 − 22) + (20 − 24)] = −14/3;  φ1 = ½[(24 − 22) + (20 − 50/3)] = 8/3.
        // With scale ½ and offset 1: baseline = 1 + 11 = 12, φ = (−7/3, 4/3), prediction 11.
        let e = TreeEnsemble {
            n_features: 2,
            roots: vec![0],
            nodes: vec![
                Node::split(0, 1, 4, 0.5),
                Node::split(1, 2, 3, 0.5),
                Node::leaf(10.0),
                Node::leaf(20.0),
                Node::leaf(30.0),
            ],
            scale: 0.5,
            offset: 1.0,
            complete: Default::default(),
        };
        let covers = [10.0, 6.0, 2.0, 4.0, 4.0];
        let explainer = TreeExplainer::new(&e, &covers).unwrap();
        assert!((explainer.baseline() - 12.0).abs() < 1e-12);
        let phi = explainer.contributions(&[0.2, 0.8]).unwrap();
        assert!((phi[0] + 7.0 / 3.0).abs() < 1e-12, "{phi:?}");
        assert!((phi[1] - 4.0 / 3.0).abs() < 1e-12, "{phi:?}");
        assert_eq!(e.predict(&[0.2, 0.8]), 11.0);
        // the same covers counted from rows: 2 rows at leaf 10, 4 at leaf 20, 4 at leaf 30
        let mut x = Vec::new();
        for (a, b, k) in [(0.1, 0.1, 2), (0.1, 0.9, 4), (0.9, 0.0, 4)] {
            for _ in 0..k {
                x.extend_from_slice(&[a, b]);
            }
        }
        let data = Dataset {
            n_rows: 10,
            n_features: 2,
            x,
            y: vec![0.0; 10],
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        };
        assert_eq!(node_covers(&e, &data).unwrap(), covers.to_vec());
    }

    #[test]
    fn a_feature_used_twice_on_a_path_is_handled() {
        // x0 <= 0.5 → (x0 <= 0.2 → 1 | 2) | 3: only x0 matters, so φ0 = f(x) − E[f] and φ1 = 0
        let e = TreeEnsemble {
            n_features: 2,
            roots: vec![0],
            nodes: vec![
                Node::split(0, 1, 4, 0.5),
                Node::split(0, 2, 3, 0.2),
                Node::leaf(1.0),
                Node::leaf(2.0),
                Node::leaf(3.0),
            ],
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        let covers = [8.0, 4.0, 1.0, 3.0, 4.0];
        let explainer = TreeExplainer::new(&e, &covers).unwrap();
        // E = (1 + 6 + 12) / 8
        assert!((explainer.baseline() - 19.0 / 8.0).abs() < 1e-12);
        for x in [[0.1, 0.0], [0.3, 1.0], [0.9, 0.5]] {
            let phi = explainer.contributions(&x).unwrap();
            assert!((phi[0] - (e.predict(&x) - 19.0 / 8.0)).abs() < 1e-12);
            assert_eq!(phi[1], 0.0);
        }
    }

    #[test]
    fn zero_covers_stay_finite_and_bad_inputs_are_errors() {
        let e = TreeEnsemble {
            n_features: 1,
            roots: vec![0],
            nodes: vec![Node::split(0, 1, 2, 0.5), Node::leaf(1.0), Node::leaf(5.0)],
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        let explainer = TreeExplainer::new(&e, &[3.0, 3.0, 0.0]).unwrap();
        let phi = explainer.contributions(&[0.9]).unwrap();
        assert!(phi[0].is_finite());
        assert!((explainer.baseline() + phi[0] - 5.0).abs() < 1e-9);
        assert!((explainer.baseline() - 1.0).abs() < 1e-6);
        assert!(TreeExplainer::new(&e, &[0.0, 0.0, 0.0]).is_err());
        assert!(TreeExplainer::new(&e, &[1.0, 1.0]).is_err());
        assert!(TreeExplainer::new(&e, &[1.0, f64::NAN, 1.0]).is_err());
        assert!(explainer.contributions(&[0.1, 0.2]).is_err());
        let data = Dataset {
            n_rows: 1,
            n_features: 2,
            x: vec![0.0, 0.0],
            y: vec![0.0],
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        };
        assert!(node_covers(&e, &data).is_err());
    }

    #[test]
    fn linear_contributions_are_centred_terms() {
        let model = LinearModel {
            intercept: 1.0,
            coefficients: vec![2.0, -3.0],
        };
        let data = Dataset {
            n_rows: 2,
            n_features: 2,
            x: vec![1.0, 0.0, 3.0, 2.0],
            y: vec![0.0, 0.0],
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        };
        let means = feature_means(&data);
        assert_eq!(means, vec![2.0, 1.0]);
        // baseline = 1 + 2·2 − 3·1 = 2; x = (4, 4): φ = (2·2, −3·3) = (4, −9); 2 + 4 − 9 = −3
        let (base, phi) = linear_contributions(&model, &means, &[4.0, 4.0]).unwrap();
        assert_eq!(base, 2.0);
        assert_eq!(phi, vec![4.0, -9.0]);
        assert_eq!(model.predict(&[4.0, 4.0]), base + phi.iter().sum::<f64>());
    }
}
