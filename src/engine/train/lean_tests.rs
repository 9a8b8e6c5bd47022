//! The memory training takes: peak heap bytes per row of reading a table, encoding it and
//! training gbm on it, counted by the test build's allocator (`memory::tracking`). Run with
//! `--nocapture` to see the figures.

use serde_json::json;

use crate::engine::features::{RawTable, SqlType};
use crate::engine::memory::tracking::{measure, phase_peak};
use crate::engine::models::Algorithm;
use crate::engine::options::TrainOptions;
use crate::engine::stats::SplitMix64;

use super::train_owned;

/// Enough rows that the library's fixed-size buffers (its quantile sketches, a 64k-row block)
/// do not dominate the figure; 200k / 2¹⁸ = 800k / 2²⁰, so the columns' growth slack is that of
/// the 800k-row benchmark.
const ROWS: usize = 200_000;
const FEATURES: usize = 10;

/// `rows` rows of `FEATURES` numbers (every 37th value of the even columns NULL) and a target
/// that depends on a few of them, pushed as the glue pushes them.
fn read_table(rows: usize) -> RawTable {
    let features = (0..FEATURES)
        .map(|j| (format!("x{j}"), SqlType::Double))
        .collect();
    let mut table = RawTable::new("y", features).unwrap();
    let mut rng = SplitMix64::new(13);
    let mut row = vec![None; FEATURES];
    for i in 0..rows {
        for (j, v) in row.iter_mut().enumerate() {
            let x = rng.next_f64() * 10.0;
            *v = (j % 2 == 1 || (i + j) % 37 != 0).then_some(x);
        }
        let x = |j: usize| row[j].unwrap_or(5.0);
        let y = 3.0 * x(0) + (x(1) - 5.0).powi(2) + 2.0 * x(3) * x(5) / 10.0 + rng.next_f64();
        table.push_row(&row, Some(y)).unwrap();
    }
    table
}

/// The peaks of reading, encoding and training `algorithm` (one thread) on `rows` rows, in
/// bytes; the training's holdout r².
fn peaks(algorithm: Algorithm, rows: usize) -> ([(&'static str, u64); 3], Option<f64>) {
    let mut options = TrainOptions::parse(&json!({}), algorithm).unwrap();
    options.gbm.threads = 1;
    let (phases_and_r2, _, _) = measure(|| {
        let raw = read_table(rows);
        let read = phase_peak();
        let (specs, data, profiles) = raw.into_dataset_with_profiles().unwrap();
        assert_eq!(profiles.len(), FEATURES);
        let encode = phase_peak();
        let (outcome, _) =
            train_owned(specs, data, algorithm, Some("y"), &options, &mut || {}).unwrap();
        let fit = phase_peak();
        let r2 = outcome.metrics.and_then(|m| m.r2);
        ([("read", read), ("encode", encode), ("train", fit)], r2)
    });
    phases_and_r2
}

/// Peak bytes per row of training gbm from a table (`CUSTOMER_VALUE_LEAN_ROWS` rows, default
/// [`ROWS`]); linear's for comparison (printed with `--nocapture`), or those of the algorithms
/// `CUSTOMER_VALUE_LEAN_ALGORITHMS` names.
#[test]
fn gbm_training_from_a_table_stays_under_its_bytes_per_row() {
    let rows = std::env::var("CUSTOMER_VALUE_LEAN_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROWS);
    // more with e.g. CUSTOMER_VALUE_LEAN_ALGORITHMS=gbm,linear,random_forest,mlp
    let algorithms: Vec<Algorithm> = std::env::var("CUSTOMER_VALUE_LEAN_ALGORITHMS")
        .map(|names| {
            names
                .split(',')
                .map(|name| Algorithm::parse(name.trim()).unwrap())
                .collect()
        })
        .unwrap_or_else(|_| vec![Algorithm::Gbm, Algorithm::Linear]);
    let mut gbm_peak = 0.0;
    for algorithm in algorithms {
        let (phases, r2) = peaks(algorithm, rows);
        let per_row = |bytes: u64| bytes as f64 / rows as f64;
        let peak = phases.iter().map(|(_, b)| per_row(*b)).fold(0.0, f64::max);
        let shown: Vec<String> = phases
            .iter()
            .map(|(name, b)| format!("{name} {:.0}", per_row(*b)))
            .collect();
        println!(
            "lean training: {} peak {peak:.0} bytes per row ({}; {rows} rows × {FEATURES} features)",
            algorithm.name(),
            shown.join(", ")
        );
        if algorithm == Algorithm::Gbm {
            assert!(r2.unwrap() > 0.9, "{r2:?}");
            gbm_peak = peak;
        }
    }
    // at fewer rows the library's fixed-size buffers weigh more per row
    if rows == ROWS {
        assert!(gbm_peak < 230.0, "{gbm_peak} bytes per row");
    }
}
