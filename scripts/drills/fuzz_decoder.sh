#!/usr/bin/env bash
# Reliability drill: feeds the model decoder millions of mutated, truncated, checksum-repaired and
# random byte strings (a seeded property test in src/engine/codec.rs); any panic fails the drill.
# Usage: scripts/drills/fuzz_decoder.sh [iterations per sample model]   (default 500000 → 1M total)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CV_FUZZ_ITERATIONS=${1:-500000}
cargo test --release --lib engine::codec::tests::mutated_bytes_never_panic -- --nocapture 2>&1 |
    grep -E "decoder fuzz|test result|panicked"
