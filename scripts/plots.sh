#!/usr/bin/env bash
# Regenerates the pictures of the README and docs/benchmarks.md from real runs: the CDNOW demo's lift table and the scoring
# benchmark, and the boosting and accuracy benchmarks' last results. Writes docs/*.svg and docs/data/*.csv.
source "$(dirname "$0")/common.sh"
lock_install
cd "$ROOT"
mkdir -p docs/data
DEMO_OUT="$ROOT/docs/data" bash scripts/demo.sh
bash bench/scoring.sh
cp bench/results/scoring.csv docs/data/scoring.csv
python3 scripts/svg_charts.py lift docs/data/cdnow_lift.csv docs/cdnow_lift.svg \
    "CDNOW: train_from_log as of 1997-09-30 vs actual spend of the next 39 weeks, by decile"
python3 scripts/svg_charts.py lift docs/data/cdnow_clv_lift.csv docs/cdnow_clv_lift.svg \
    "CDNOW: 39-week CLV (BG/NBD x Gamma-Gamma) vs actual holdout spend, by decile"
python3 scripts/svg_charts.py scoring docs/data/scoring.csv docs/scoring.svg
# the accuracy benchmark takes minutes and needs a Python venv: charted from its last run
# (bash bench/accuracy.sh refreshes bench/results/accuracy.csv)
python3 scripts/svg_charts.py accuracy bench/results/accuracy.csv docs/cdnow_accuracy.svg CDNOW
# the boosting benchmark takes minutes: charted from its last run (bash bench/models.sh refreshes it)
python3 scripts/svg_charts.py throughput bench/results/models.txt docs/gbm_scoring.svg
echo "wrote docs/cdnow_lift.svg docs/cdnow_clv_lift.svg docs/scoring.svg docs/gbm_scoring.svg docs/cdnow_accuracy.svg"
