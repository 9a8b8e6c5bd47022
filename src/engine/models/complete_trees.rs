//! A faster layout of a [`TreeEnsemble`] for scoring, derived in memory and never stored.
//!
//! Walking the linked nodes costs a branch per split whose direction depends on the row, which
//! the processor cannot predict for rows it has not seen. Here each tree is stored as a
//! *complete* binary tree of a fixed depth: the split at slot `i` has its children at `2i + 1`
//! (`x ≤ threshold`) and `2i + 2`, so one step is `i = 2i + 2 − [x[feature] ≤ threshold]` —
//! arithmetic instead of a branch — and after `depth` steps `i` names a leaf. A tree shallower
//! than its slot is padded: a leaf above the last level fills every leaf slot below it, so the
//! (arbitrary) padding splits under it lead to the same value whichever way a row goes, NaN
//! included.
//!
//! Trees are taken in groups of eight consecutive trees (`GROUP`) padded to the deepest tree of
//! the group, and the trees of a group are walked together, one level at a time: their steps do
//! not depend on each other, so the processor overlaps the loads of eight trees. The leaf values
//! are added one tree at a time in tree order, exactly as the node walk adds them, so predictions
//! are bit-identical. A group deeper than ten levels (`MAX_PADDED_DEPTH`), or whose padding would
//! take much more memory than its nodes, keeps the node walk.
//!
//! A full group's walk reads its splits and the row without bounds checks: the slot arithmetic
//! keeps every index in its tree, [`CompleteTrees::build`] checks that every split feature is
//! below the ensemble's feature count, and the walk checks the row is that long. The walk is
//! bound by the instructions it issues (about ten a step, eight trees' steps in flight), so
//! what does not shorten a step does not help: timed once in development (end-to-end scoring is
//! measured by bench/models.sh) on a 100-tree depth-6 gbm, quantising
//! the row into per-feature threshold ranks (u16 splits, 4× less memory) was 14 % slower
//! (ranking ten features costs as much as it saves), AVX2 gathers of eight trees 65 % slower,
//! walking two levels per step (three comparisons, half the latency) 15 % slower, and dropping
//! the bounds checks 5 % faster.

use std::sync::OnceLock;

use super::forest::{Node, TreeEnsemble, LEAF};

/// Trees walked together: enough independent loads to hide their latency (measured on a
/// 100-tree depth-6 gbm: 4 trees at a time are 20 % slower, 16 no faster).
const GROUP: usize = 8;

/// Deepest group stored complete: a depth-10 tree takes 20 KB padded.
const MAX_PADDED_DEPTH: usize = 10;

/// Most bytes a padded group may take per byte of its stored nodes (a sparse deep tree would
/// otherwise grow by up to 2^depth).
const MAX_GROWTH: usize = 8;

/// How a group of consecutive trees is scored.
#[derive(Debug, Clone, Copy, PartialEq)]
enum GroupLayout {
    /// Complete trees of `depth` levels of splits: tree `k` of the group has its splits at
    /// `first_split + k·(2^depth − 1)` and its leaves at `first_leaf + k·2^depth`.
    Complete {
        depth: usize,
        first_split: usize,
        first_leaf: usize,
    },
    /// The linked nodes of the ensemble, walked as they are stored.
    Linked,
}

#[derive(Debug, Clone, PartialEq)]
struct TreeGroup {
    first_tree: usize,
    n_trees: usize,
    layout: GroupLayout,
}

/// The trees of one ensemble in groups, most of them complete (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct CompleteTrees {
    groups: Vec<TreeGroup>,
    /// The ensemble's feature count: every split feature, padding included, is below it, so a
    /// row at least this long has every value a split reads.
    n_features: usize,
    split_features: Vec<u32>,
    split_thresholds: Vec<f64>,
    leaf_values: Vec<f64>,
}

impl CompleteTrees {
    /// The layout of a valid ensemble; `None` for one [`TreeEnsemble::validate`] refuses (it is
    /// then only ever walked node by node, which is what it was before this layout existed).
    pub fn build(ensemble: &TreeEnsemble) -> Option<CompleteTrees> {
        ensemble.validate(ensemble.n_features as usize).ok()?;
        let mut trees = CompleteTrees {
            groups: Vec::new(),
            n_features: ensemble.n_features as usize,
            split_features: Vec::new(),
            split_thresholds: Vec::new(),
            leaf_values: Vec::new(),
        };
        for (g, roots) in ensemble.roots.chunks(GROUP).enumerate() {
            let layout = match padded_depth(&ensemble.nodes, roots) {
                Some(depth) => trees.pad_group(&ensemble.nodes, roots, depth),
                None => GroupLayout::Linked,
            };
            trees.groups.push(TreeGroup {
                first_tree: g * GROUP,
                n_trees: roots.len(),
                layout,
            });
        }
        // what `add_group_of_depth`'s unchecked reads of the row rely on
        let n = trees.n_features;
        trees
            .split_features
            .iter()
            .all(|&f| (f as usize) < n)
            .then_some(trees)
    }

    /// Appends the trees of `roots` as complete trees of `depth` levels of splits.
    fn pad_group(&mut self, nodes: &[Node], roots: &[u32], depth: usize) -> GroupLayout {
        let layout = GroupLayout::Complete {
            depth,
            first_split: self.split_features.len(),
            first_leaf: self.leaf_values.len(),
        };
        let n_splits = (1 << depth) - 1;
        for &root in roots {
            let splits = self.split_features.len();
            let leaves = self.leaf_values.len();
            // padding splits test feature 0 at 0: both sides lead to the same leaf value
            self.split_features.resize(splits + n_splits, 0);
            self.split_thresholds.resize(splits + n_splits, 0.0);
            self.leaf_values.resize(leaves + n_splits + 1, 0.0);
            let mut stack = vec![(root as usize, 0usize, 0usize)];
            while let Some((at, slot, level)) = stack.pop() {
                let node = nodes[at];
                if node.feature == LEAF {
                    // the leaf slots under `slot` are `first .. first + 2^(depth − level)`
                    let below = depth - level;
                    let first = leaves + ((slot + 1) << below) - 1 - n_splits;
                    self.leaf_values[first..first + (1 << below)].fill(node.value);
                } else {
                    self.split_features[splits + slot] = node.feature;
                    self.split_thresholds[splits + slot] = node.value;
                    stack.push((node.left as usize, 2 * slot + 1, level + 1));
                    stack.push((node.right as usize, 2 * slot + 2, level + 1));
                }
            }
        }
        layout
    }

    /// `offset + scale · Σ leaf`, the leaves added in tree order as [`TreeEnsemble`]'s node walk
    /// adds them. `x` must hold at least `ensemble.n_features` values (every split feature and
    /// the padding's feature 0 index it).
    pub fn predict(&self, ensemble: &TreeEnsemble, x: &[f64]) -> f64 {
        let mut sum = 0.0;
        for group in &self.groups {
            sum = match group.layout {
                GroupLayout::Complete {
                    depth,
                    first_split,
                    first_leaf,
                } => {
                    let n_splits = group.n_trees * ((1 << depth) - 1);
                    let n_leaves = group.n_trees << depth;
                    let splits = Splits {
                        n_features: self.n_features,
                        features: &self.split_features[first_split..first_split + n_splits],
                        thresholds: &self.split_thresholds[first_split..first_split + n_splits],
                    };
                    let leaves = &self.leaf_values[first_leaf..first_leaf + n_leaves];
                    add_complete_group(sum, depth, splits, leaves, x)
                }
                GroupLayout::Linked => linked_sum(sum, ensemble, group, x),
            };
        }
        ensemble.offset + ensemble.scale * sum
    }
}

/// `sum` plus the leaf values of the trees of `group`, by walking their linked nodes.
fn linked_sum(sum: f64, ensemble: &TreeEnsemble, group: &TreeGroup, x: &[f64]) -> f64 {
    let roots = &ensemble.roots[group.first_tree..][..group.n_trees];
    roots.iter().fold(sum, |sum, &root| {
        sum + ensemble.linked_leaf(root as usize, x)
    })
}

/// The split slots of a group's complete trees, one tree after the other.
#[derive(Clone, Copy)]
struct Splits<'a> {
    /// Above every feature of `features` (see [`CompleteTrees::n_features`]).
    n_features: usize,
    features: &'a [u32],
    thresholds: &'a [f64],
}

impl Splits<'_> {
    /// The slot a row goes to from split slot `slot` (of the tree starting at `tree_start`).
    #[inline(always)]
    fn step(&self, tree_start: usize, slot: usize, x: &[f64]) -> usize {
        let at = tree_start + slot;
        let go_left = x[self.features[at] as usize] <= self.thresholds[at];
        2 * slot + 2 - usize::from(go_left)
    }

    /// [`Splits::step`] without bounds checks: a walk of eight trees takes 5 % less time
    /// without them (it is bound by the instructions it issues, two checks of ten per step).
    ///
    /// # Safety
    ///
    /// `tree_start + slot` must be below the length of both `features` and `thresholds`, and
    /// `x` must hold at least `n_features` values.
    #[inline(always)]
    unsafe fn step_unchecked(&self, tree_start: usize, slot: usize, x: &[f64]) -> usize {
        let at = tree_start + slot;
        // SAFETY: `at` is in bounds and `x` holds `n_features` values (the caller's promises),
        // and every split feature is below `n_features` (checked by `CompleteTrees::build`)
        let go_left = unsafe {
            let feature = *self.features.get_unchecked(at);
            *x.get_unchecked(feature as usize) <= *self.thresholds.get_unchecked(at)
        };
        2 * slot + 2 - usize::from(go_left)
    }
}

/// The depth a group of trees is padded to, or `None` when it keeps the linked nodes.
fn padded_depth(nodes: &[Node], roots: &[u32]) -> Option<usize> {
    let mut depth = 0;
    let mut stored = 0;
    for &root in roots {
        let (tree_depth, n_nodes) = tree_shape(nodes, root as usize)?;
        depth = depth.max(tree_depth);
        stored += n_nodes * size_of::<Node>();
    }
    let per_tree = ((1 << depth) - 1) * (size_of::<u32>() + size_of::<f64>())
        + (1 << depth) * size_of::<f64>();
    (roots.len() * per_tree <= MAX_GROWTH * stored).then_some(depth)
}

/// Depth and node count of the tree at `root` of a validated ensemble, or `None` when it is
/// deeper than [`MAX_PADDED_DEPTH`] (the walk stops there, so it visits at most 2^11 nodes even
/// when nodes are shared between branches).
fn tree_shape(nodes: &[Node], root: usize) -> Option<(usize, usize)> {
    let mut depth = 0;
    let mut count = 0;
    let mut stack = vec![(root, 0usize)];
    while let Some((at, level)) = stack.pop() {
        let node = nodes.get(at)?;
        count += 1;
        depth = depth.max(level);
        if node.feature != LEAF {
            if level == MAX_PADDED_DEPTH {
                return None;
            }
            stack.push((node.left as usize, level + 1));
            stack.push((node.right as usize, level + 1));
        }
    }
    Some((depth, count))
}

/// Adds the leaf values of a group of complete trees of `depth` levels to `sum`, tree by tree.
/// A full group is walked by a loop specialised for its depth (the compiler unrolls it and keeps
/// the eight positions in registers: 7 % faster at depth 6 than a loop over a runtime depth).
fn add_complete_group(sum: f64, depth: usize, splits: Splits, leaves: &[f64], x: &[f64]) -> f64 {
    if leaves.len() != GROUP << depth {
        return add_tree_by_tree(sum, depth, splits, leaves, x);
    }
    match depth {
        0 => add_group_of_depth::<0>(sum, splits, leaves, x),
        1 => add_group_of_depth::<1>(sum, splits, leaves, x),
        2 => add_group_of_depth::<2>(sum, splits, leaves, x),
        3 => add_group_of_depth::<3>(sum, splits, leaves, x),
        4 => add_group_of_depth::<4>(sum, splits, leaves, x),
        5 => add_group_of_depth::<5>(sum, splits, leaves, x),
        6 => add_group_of_depth::<6>(sum, splits, leaves, x),
        7 => add_group_of_depth::<7>(sum, splits, leaves, x),
        8 => add_group_of_depth::<8>(sum, splits, leaves, x),
        9 => add_group_of_depth::<9>(sum, splits, leaves, x),
        10 => add_group_of_depth::<10>(sum, splits, leaves, x),
        _ => add_tree_by_tree(sum, depth, splits, leaves, x),
    }
}

/// [`GROUP`] complete trees of `DEPTH` levels, walked together one level at a time.
#[inline(always)]
fn add_group_of_depth<const DEPTH: usize>(
    mut sum: f64,
    splits: Splits,
    leaves: &[f64],
    x: &[f64],
) -> f64 {
    let n_splits = (1 << DEPTH) - 1;
    let whole = GROUP * n_splits;
    let lengths = [splits.features.len(), splits.thresholds.len()];
    if lengths != [whole, whole] || x.len() < splits.n_features {
        return add_tree_by_tree(sum, DEPTH, splits, leaves, x);
    }
    let mut slots = [0usize; GROUP];
    for _ in 0..DEPTH {
        for (tree, slot) in slots.iter_mut().enumerate() {
            // SAFETY: before step k < DEPTH a slot is at most 2^(k+1) − 2 < n_splits (it starts
            // at 0 and a step takes it to 2·slot + 1 or 2·slot + 2), so the split's index is
            // below GROUP·n_splits, both lengths, and x is long enough (both checked above)
            *slot = unsafe { splits.step_unchecked(tree * n_splits, *slot, x) };
        }
    }
    for (tree, slot) in slots.iter().enumerate() {
        // after DEPTH steps the slot is on the leaf level, which starts at slot n_splits
        sum += leaves[tree * (n_splits + 1) + slot - n_splits];
    }
    sum
}

/// Complete trees of `depth` levels walked one after the other (a group of fewer than
/// [`GROUP`] trees, at the end of the ensemble, or a depth without a specialised loop).
fn add_tree_by_tree(mut sum: f64, depth: usize, splits: Splits, leaves: &[f64], x: &[f64]) -> f64 {
    let n_splits = (1 << depth) - 1;
    for (tree, tree_leaves) in leaves.chunks_exact(n_splits + 1).enumerate() {
        let mut slot = 0;
        for _ in 0..depth {
            slot = splits.step(tree * n_splits, slot, x);
        }
        sum += tree_leaves[slot - n_splits];
    }
    sum
}

/// The [`CompleteTrees`] of an ensemble, built on its first prediction: a cache, not part of the
/// stored format. Two caches are always equal, and a clone starts empty (a copy may be edited
/// before it predicts, and then needs a layout of its own).
#[derive(Default)]
pub struct CompleteTreesCache(OnceLock<Option<CompleteTrees>>);

impl CompleteTreesCache {
    /// The layout, built from `ensemble` on the first call; `None` for an invalid ensemble.
    #[inline]
    pub fn get_or_build(&self, ensemble: &TreeEnsemble) -> Option<&CompleteTrees> {
        self.0
            .get_or_init(|| CompleteTrees::build(ensemble))
            .as_ref()
    }
}

impl Clone for CompleteTreesCache {
    fn clone(&self) -> CompleteTreesCache {
        CompleteTreesCache::default()
    }
}

impl PartialEq for CompleteTreesCache {
    fn eq(&self, _: &CompleteTreesCache) -> bool {
        true
    }
}

impl std::fmt::Debug for CompleteTreesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.0.get().is_some();
        write!(f, "CompleteTreesCache {{ built: {built} }}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::features::Dataset;
    use crate::engine::models::forest::{fit_random_forest, ForestParams};
    use crate::engine::models::gbm::{fit_gbm, GbmOptions};
    use crate::engine::models::Loss;
    use crate::engine::stats::SplitMix64;

    /// The node walk as it was before the complete layout (`linked_leaf`, the path of invalid
    /// ensembles): the definition the layout must match.
    fn reference_predict(e: &TreeEnsemble, x: &[f64]) -> f64 {
        let sum = e
            .roots
            .iter()
            .fold(0.0, |sum, &root| sum + e.linked_leaf(root as usize, x));
        e.offset + e.scale * sum
    }

    fn assert_same_bits(e: &TreeEnsemble, x: &[f64]) {
        let (got, want) = (e.predict(x), reference_predict(e, x));
        assert_eq!(got.to_bits(), want.to_bits(), "x = {x:?}: {got} ≠ {want}");
    }

    /// Thresholds and leaf values with ties, signed zeros, extreme magnitudes and values whose
    /// sum depends on the order of addition (1e16 + 1 + 1 ≠ 1e16 + 2 in f64).
    const SPECIAL: [f64; 12] = [
        0.0, -0.0, 1.0, -1.0, 0.5, 1e16, -1e16, 1e300, -1e300, 1.7e308, 5e-324, 2.5,
    ];

    fn special_or_uniform(rng: &mut SplitMix64) -> f64 {
        if rng.below(2) == 0 {
            SPECIAL[rng.below(SPECIAL.len())]
        } else {
            4.0 * rng.next_f64() - 2.0
        }
    }

    /// Appends a random tree in pre-order (children after their parent, as validation wants)
    /// and returns its root: full to `depth` when `leaf_odds` is 0, else each node below the
    /// root is a leaf with probability `leaf_odds`/8 (unbalanced trees and lone leaves).
    fn grow(
        rng: &mut SplitMix64,
        nodes: &mut Vec<Node>,
        n_features: usize,
        depth: usize,
        leaf_odds: usize,
    ) -> u32 {
        let at = nodes.len();
        let is_leaf = depth == 0 || (at > 0 && rng.below(8) < leaf_odds);
        push_node(rng, nodes, n_features, is_leaf);
        if !is_leaf {
            nodes[at].left = grow(rng, nodes, n_features, depth - 1, leaf_odds);
            nodes[at].right = grow(rng, nodes, n_features, depth - 1, leaf_odds);
        }
        at as u32
    }

    /// Appends a spine of `depth` splits, each with a small full subtree on a random side.
    fn grow_spine(
        rng: &mut SplitMix64,
        nodes: &mut Vec<Node>,
        n_features: usize,
        depth: usize,
    ) -> u32 {
        let at = nodes.len();
        push_node(rng, nodes, n_features, depth == 0);
        if depth > 0 {
            let side = rng.below(3);
            let on_side = grow(rng, nodes, n_features, side, 0);
            let below = grow_spine(rng, nodes, n_features, depth - 1);
            (nodes[at].left, nodes[at].right) = if rng.below(2) == 0 {
                (on_side, below)
            } else {
                (below, on_side)
            };
        }
        at as u32
    }

    fn push_node(rng: &mut SplitMix64, nodes: &mut Vec<Node>, n_features: usize, is_leaf: bool) {
        nodes.push(Node {
            feature: if is_leaf {
                LEAF
            } else {
                rng.below(n_features) as u32
            },
            left: 0,
            right: 0,
            value: special_or_uniform(rng),
        });
    }

    fn random_ensemble(rng: &mut SplitMix64) -> TreeEnsemble {
        let n_features = 1 + rng.below(12);
        let mut nodes = Vec::new();
        let mut roots = Vec::new();
        for _ in 0..1 + rng.below(40) {
            let start = nodes.len();
            roots.push(start as u32);
            // the tree's own indices start at 0: shift them to where it goes
            let mut tree = Vec::new();
            let (kind, depth) = (rng.below(16), rng.below(11));
            match kind {
                0..=5 => grow(rng, &mut tree, n_features, depth.min(7), 0),
                6..=10 => grow(rng, &mut tree, n_features, depth, 2),
                11..=14 => grow(rng, &mut tree, n_features, depth.min(3), 0),
                // deeper than MAX_PADDED_DEPTH: the group keeps the linked nodes
                _ => grow_spine(rng, &mut tree, n_features, 11 + depth % 4),
            };
            for mut node in tree {
                if node.feature != LEAF {
                    node.left += start as u32;
                    node.right += start as u32;
                }
                nodes.push(node);
            }
        }
        let e = TreeEnsemble {
            n_features: n_features as u32,
            roots,
            nodes,
            scale: [1.0, 0.1, 1.0 / 3.0][rng.below(3)],
            offset: special_or_uniform(rng),
            complete: Default::default(),
        };
        e.validate(n_features).unwrap();
        e
    }

    /// A row of values on, next to and far from the ensemble's thresholds, NaN and ±∞ included.
    fn random_row(rng: &mut SplitMix64, e: &TreeEnsemble) -> Vec<f64> {
        let thresholds: Vec<f64> = e
            .nodes
            .iter()
            .filter(|n| n.feature != LEAF)
            .map(|n| n.value)
            .collect();
        (0..e.n_features)
            .map(|_| match (rng.below(6), thresholds.len()) {
                (0..=2, n) if n > 0 => {
                    let t = thresholds[rng.below(n)];
                    [t, t.next_up(), t.next_down(), -t][rng.below(4)]
                }
                (3, _) => [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0][rng.below(4)],
                _ => special_or_uniform(rng),
            })
            .collect()
    }

    #[test]
    fn random_ensembles_predict_the_node_walk_to_the_bit() {
        let mut rng = SplitMix64::new(13);
        let (mut complete_full, mut complete_tail, mut linked) = (0, 0, 0);
        for _ in 0..400 {
            let e = random_ensemble(&mut rng);
            let layout = e
                .complete
                .get_or_build(&e)
                .expect("a valid ensemble has a layout");
            for group in &layout.groups {
                match group.layout {
                    GroupLayout::Complete { .. } if group.n_trees == GROUP => complete_full += 1,
                    GroupLayout::Complete { .. } => complete_tail += 1,
                    GroupLayout::Linked => linked += 1,
                }
            }
            for _ in 0..200 {
                assert_same_bits(&e, &random_row(&mut rng, &e));
            }
        }
        // every path was taken, many times
        assert!(
            complete_full > 100 && complete_tail > 100 && linked > 100,
            "{complete_full} {complete_tail} {linked}"
        );
    }

    #[test]
    fn full_groups_of_every_depth_predict_the_node_walk_to_the_bit() {
        let mut rng = SplitMix64::new(29);
        for depth in 0..=MAX_PADDED_DEPTH {
            for (n_trees, leaf_odds) in [(8, 0), (8, 1), (16, 0), (17, 2)] {
                let n_features = 1 + rng.below(6);
                let mut nodes = Vec::new();
                let mut roots = Vec::new();
                for _ in 0..n_trees {
                    let start = nodes.len() as u32;
                    roots.push(start);
                    let mut tree = Vec::new();
                    grow(&mut rng, &mut tree, n_features, depth, leaf_odds);
                    nodes.extend(tree.into_iter().map(|mut node| {
                        if node.feature != LEAF {
                            node.left += start;
                            node.right += start;
                        }
                        node
                    }));
                }
                let e = TreeEnsemble {
                    n_features: n_features as u32,
                    roots,
                    nodes,
                    scale: 0.1,
                    offset: special_or_uniform(&mut rng),
                    complete: Default::default(),
                };
                let layout = e.complete.get_or_build(&e).unwrap();
                assert!(layout
                    .groups
                    .iter()
                    .all(|g| matches!(g.layout, GroupLayout::Complete { .. })));
                for _ in 0..300 {
                    assert_same_bits(&e, &random_row(&mut rng, &e));
                }
            }
        }
    }

    #[test]
    fn a_row_shorter_than_the_features_is_read_with_bounds_checks() {
        // eight trees on feature 0 of 3: the layout itself, given a one-value row, must take
        // its checked walk (the ensemble's predict never hands it such a row)
        let mut nodes = Vec::new();
        for tree in 0..8u32 {
            let at = 3 * tree;
            nodes.push(Node::split(0, at + 1, at + 2, tree as f64));
            nodes.push(Node::leaf(1.0));
            nodes.push(Node::leaf(1e16));
        }
        let e = TreeEnsemble {
            n_features: 3,
            roots: (0..8).map(|t| 3 * t).collect(),
            nodes,
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        let layout = e.complete.get_or_build(&e).unwrap();
        for x0 in [-1.0, 3.0, 3.5, 7.0, 8.0, f64::NAN, f64::INFINITY] {
            let got = layout.predict(&e, &[x0]);
            assert_eq!(got.to_bits(), reference_predict(&e, &[x0]).to_bits());
            assert_same_bits(&e, &[x0, f64::NAN, 0.0]);
        }
    }

    #[test]
    fn padding_leads_to_the_leaf_whatever_the_row_even_nan() {
        let leaf = Node::leaf;
        // tree 0: a lone leaf; tree 1: depth 2 with a leaf at depth 1 (padded below it)
        let e = TreeEnsemble {
            n_features: 2,
            roots: vec![0, 1],
            nodes: vec![
                leaf(1e16),
                Node::split(1, 2, 3, 0.0),
                leaf(1.0),
                Node::split(0, 4, 5, -0.0),
                leaf(2.0),
                leaf(4.0),
            ],
            scale: 1.0,
            offset: 0.5,
            complete: Default::default(),
        };
        let layout = e.complete.get_or_build(&e).unwrap();
        assert_eq!(layout.groups.len(), 1);
        assert_eq!(
            layout.groups[0].layout,
            GroupLayout::Complete {
                depth: 2,
                first_split: 0,
                first_leaf: 0
            }
        );
        // the padding splits test feature 0 at 0: x0 = NaN, ±0 and ±∞ must not change a leaf
        for x0 in [f64::NAN, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, 7.0] {
            for x1 in [f64::NAN, 0.0, -0.0, -3.0, 3.0] {
                assert_same_bits(&e, &[x0, x1]);
            }
        }
        // NaN goes right, as `x <= t` is false: 1e16 + 4 (not + 1)
        assert_eq!(e.predict(&[f64::NAN, f64::NAN]), 1e16 + 4.0 + 0.5);
        assert_eq!(e.predict(&[-0.0, 0.0]), 1e16 + 1.0 + 0.5);
    }

    #[test]
    fn invalid_ensembles_and_short_rows_walk_the_nodes() {
        let leaf = Node::leaf;
        let e = TreeEnsemble {
            n_features: 3,
            roots: vec![0],
            nodes: vec![Node::split(0, 1, 2, 0.5), leaf(1.0), leaf(2.0)],
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        // a row shorter than the model's features, with every feature the tree reads
        assert_eq!(e.predict(&[1.0]), 2.0);
        assert!(e.complete.get_or_build(&e).is_some());
        // a split on a feature the model does not have: no layout, the walk as before
        let mut bad = e.clone();
        bad.nodes[0].feature = 5;
        assert!(bad.validate(3).is_err());
        assert!(bad.complete.get_or_build(&bad).is_none());
        assert_eq!(bad.predict(&[0.0, 0.0, 0.0, 0.0, 0.0, 9.0]), 2.0);
        // a clone does not keep its original's layout, and the stored bytes never hold one
        assert!(format!("{:?}", e.complete).contains("built: true"));
        assert!(format!("{:?}", e.clone().complete).contains("built: false"));
        let stored = postcard::to_allocvec(&e).unwrap();
        let fresh = TreeEnsemble {
            complete: Default::default(),
            ..e.clone()
        };
        assert_eq!(stored, postcard::to_allocvec(&fresh).unwrap());
        assert_eq!(postcard::from_bytes::<TreeEnsemble>(&stored).unwrap(), e);
    }

    #[test]
    fn deep_sparse_groups_keep_the_linked_nodes() {
        let mut rng = SplitMix64::new(5);
        // a spine of depth 9: 19 nodes, 10 KB padded, more than 8 × its 456 bytes
        let mut nodes = Vec::new();
        for level in 0..9u32 {
            let at = 2 * level;
            nodes.push(Node::split(0, at + 1, at + 2, level as f64));
            nodes.push(Node::leaf(rng.next_f64()));
        }
        nodes.push(Node::leaf(9.0));
        let e = TreeEnsemble {
            n_features: 1,
            roots: vec![0],
            nodes,
            scale: 1.0,
            offset: 0.0,
            complete: Default::default(),
        };
        let layout = e.complete.get_or_build(&e).unwrap();
        assert_eq!(layout.groups[0].layout, GroupLayout::Linked);
        assert!(layout.leaf_values.is_empty());
        for x in 0..12 {
            assert_same_bits(&e, &[x as f64 - 0.5]);
        }
    }

    /// A dataset of the rows `x` (10 values each) and their targets `y`.
    fn ten_features(x: Vec<f64>, y: Vec<f64>) -> Dataset {
        Dataset {
            n_rows: y.len(),
            n_features: 10,
            x,
            y,
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        }
    }

    /// A squared-error gbm of `n_trees` trees of depth 6 fitted on `train`.
    fn depth_six_gbm(train: &Dataset, n_trees: usize, min_samples_leaf: usize) -> TreeEnsemble {
        let options = GbmOptions {
            n_trees,
            max_depth: 6,
            min_samples_leaf,
            ..GbmOptions::default()
        };
        fit_gbm(train, Loss::SquaredError, &options, &mut || {})
            .unwrap()
            .ensemble
    }

    /// y from ten features with thresholds, interactions and many ties (rounded features).
    fn ten_feature_data(n: usize, seed: u64) -> Dataset {
        let mut rng = SplitMix64::new(seed);
        let mut x = Vec::with_capacity(n * 10);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = (0..10)
                .map(|j| {
                    if j % 3 == 0 {
                        rng.below(20) as f64
                    } else {
                        rng.next_f64()
                    }
                })
                .collect();
            y.push(
                3.0 * f64::from(u8::from(row[0] > 9.0)) + row[1] * row[2] + (row[3] / 4.0).sin()
                    - row[4] * row[4]
                    + 0.2 * rng.next_f64(),
            );
            x.extend(row);
        }
        ten_features(x, y)
    }

    fn assert_same_on_rows_and_thresholds(e: &TreeEnsemble, rows: &Dataset) {
        let mut rng = SplitMix64::new(9);
        for i in 0..rows.n_rows {
            assert_same_bits(e, rows.row(i));
        }
        for _ in 0..rows.n_rows {
            assert_same_bits(e, &random_row(&mut rng, e));
        }
    }

    #[test]
    fn a_trained_gbm_and_forest_predict_the_node_walk_to_the_bit() {
        let train = ten_feature_data(3_000, 1);
        let rows = ten_feature_data(2_000, 2);
        let gbm = depth_six_gbm(&train, 60, GbmOptions::default().min_samples_leaf);
        assert_eq!(gbm.max_depth(), 6);
        let layout = gbm.complete.get_or_build(&gbm).unwrap();
        assert!(layout
            .groups
            .iter()
            .all(|g| matches!(g.layout, GroupLayout::Complete { .. })));
        assert_same_on_rows_and_thresholds(&gbm, &rows);

        // depth 9 is stored complete; depth 14 (beyond MAX_PADDED_DEPTH) keeps the nodes
        for (max_depth, complete) in [(9, true), (14, false)] {
            let params = ForestParams {
                n_trees: 12,
                max_depth,
                min_samples_leaf: 2,
                ..ForestParams::default()
            };
            let forest = fit_random_forest(&train, &params, &mut || {}).unwrap();
            assert_eq!(forest.max_depth(), max_depth as usize);
            let layout = forest.complete.get_or_build(&forest).unwrap();
            assert!(layout
                .groups
                .iter()
                .all(|g| matches!(g.layout, GroupLayout::Complete { .. }) == complete));
            assert_same_on_rows_and_thresholds(&forest, &rows);
        }
    }
}
