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

/// `ROWS` rows of `FEATURES` numbers (every 37th value of the even columns NULL) and a target
/// that depends on a few of them, pushed as the glue pushes them.
fn read_table() -> RawTable {
    let features = (0..FEATURES)
        .map(|j| (format!("x{j}"), SqlType::Double))
        .collect();
    let mut table = RawTable::new("y", features).unwrap();
    let mut rng = SplitMix64::new(13);
    let mut row = vec![None; FEATURES];
    for i in 0..ROWS {
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

#[test]
fn gbm_training_from_a_table_stays_under_its_bytes_per_row() {
    let mut options = TrainOptions::parse(&json!({}), Algorithm::Gbm).unwrap();
    options.gbm.threads = 1;
    let ((phases, r2), peak, process) = measure(|| {
        let raw = read_table();
        let read = phase_peak();
        let (specs, data, profiles) = raw.into_dataset_with_profiles().unwrap();
        assert_eq!(profiles.len(), FEATURES);
        let encode = phase_peak();
        let (outcome, _) =
            train_owned(specs, data, Algorithm::Gbm, Some("y"), &options, &mut || {}).unwrap();
        let fit = phase_peak();
        let r2 = outcome.metrics.and_then(|m| m.r2);
        ([("read", read), ("encode", encode), ("train", fit)], r2)
    });
    assert!(r2.unwrap() > 0.9, "{r2:?}");
    let per_row = |bytes: u64| bytes as f64 / ROWS as f64;
    for (name, bytes) in phases {
        println!(
            "lean training: {name} peak {:.0} bytes per row",
            per_row(bytes)
        );
    }
    println!(
        "lean training: peak {:.0} bytes per row ({ROWS} rows × {FEATURES} features; process-wide {:.0}, meaningful when run alone)",
        per_row(peak),
        per_row(process),
    );
    assert!(per_row(peak) < 600.0, "{} bytes per row", per_row(peak));
}
