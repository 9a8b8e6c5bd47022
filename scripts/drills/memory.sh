#!/usr/bin/env bash
# Reliability drill (issue #5): memory.
#  (a) With customer_value.max_training_rows = 100000, training on a 150,000-row table is refused
#      with SQLSTATE 54000 and a message that names the limit, and nothing is written.
#  (b) Peak memory of the backend (VmHWM of /proc/self/status, read by the backend itself through
#      pg_read_file right after the statement, in the same session; one fresh session per
#      measurement) for: a plain scan of the table (the floor: library loaded, shared buffers
#      touched), training linear and random_forest on DRILL_ROWS rows × 10 features, and scoring
#      every row (serial, so the backend does all the work) with each model.
#
# Usage: scripts/drills/memory.sh    DRILL_ROWS (1000000)  DRILL_RF_TREES (20)  DRILL_RF_DEPTH (8)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/drill_common.sh"
lock_install

ROWS=${DRILL_ROWS:-1000000}
RF_TREES=${DRILL_RF_TREES:-20}
RF_DEPTH=${DRILL_RF_DEPTH:-8}

ensure_toolchain
install_extension
step "starting a throwaway cluster"
start_cluster "max_parallel_workers_per_gather = 0"
psql_run -c "CREATE EXTENSION customer_value"

step "(a) max_training_rows = 100000 and a 150000-row source"
make_customers small 150000 5
set +e
out=$(psql_run -v VERBOSITY=verbose -c "SET customer_value.max_training_rows = 100000" \
    -c "SELECT * FROM customer_value.train('too_big', 'small', 'spend', 'linear')" 2>&1)
rc=$?
set -e
echo "$out"
REFUSAL=$(echo "$out" | grep -m1 -oP "ERROR:  \K.*" || true)
check "training past max_training_rows fails" "yes" "$([ $rc -ne 0 ] && echo yes || echo no)" || true
check "with SQLSTATE 54000" "54000" "$(echo "$REFUSAL" | grep -oP '^[0-9A-Z]{5}' || true)" || true
check "the message names the setting" "yes" "$(echo "$out" | grep -q "max_training_rows" && echo yes || echo no)" || true
check "nothing written" "0|0" "$(q "SELECT (SELECT count(*) FROM customer_value.models) || '|' || (SELECT count(*) FROM customer_value.training_runs)")" || true
check "at the limit itself training works" "1" \
    "$(psql_run -At -c "SET customer_value.max_training_rows = 150000" \
        -c "SELECT version FROM customer_value.train('at_limit', 'small', 'spend', 'linear')")" || true

step "(b) $ROWS rows × 10 features"
make_customers wide "$ROWS" 10
HWM="SELECT round((regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::numeric / 1024, 1)"
# measure LABEL SQL: one fresh session runs SQL, then reads its own peak memory; prints "MiB seconds"
measure() {
    local t0 mib
    t0=$(now)
    mib=$(psql_run -At -c "$2" -c "$HWM" | tail -1)
    echo "$mib $(elapsed "$t0")"
}
declare -A MIB SEC
run() {
    read -r "MIB[$1]" "SEC[$1]" < <(measure "$1" "$2")
    printf '%-34s %8s MiB  %7ss\n' "$1" "${MIB[$1]}" "${SEC[$1]}"
}
run "fresh backend (SELECT 1)" "SELECT 1"
run "scan floor (count(w))" "SELECT count(w) FROM wide w"
run "train linear" "SELECT version FROM customer_value.train('lin', 'wide', 'spend', 'linear')"
run "train random_forest" "SELECT version FROM customer_value.train('rf', 'wide', 'spend', 'random_forest', '{\"n_trees\": $RF_TREES, \"max_depth\": $RF_DEPTH}')"
run "score linear (serial)" "SELECT sum(customer_value(w, 'lin')) FROM wide w"
run "score random_forest (serial)" "SELECT sum(customer_value(w, 'rf')) FROM wide w"
RF_BYTES=$(q "SELECT pg_size_pretty(length(model)::bigint) FROM customer_value.models WHERE name = 'rf'")
check "no crash in the server log" "" "$(crash_lines)" || true

{
    echo "measurement ($ROWS rows × 10 features)|VmHWM MiB|above scan floor|seconds"
    for k in "fresh backend (SELECT 1)" "scan floor (count(w))" "train linear" "train random_forest" \
             "score linear (serial)" "score random_forest (serial)"; do
        echo "$k|${MIB[$k]}|$(awk -v a="${MIB[$k]}" -v b="${MIB[scan floor (count(w))]}" 'BEGIN { printf "%+.1f", a - b }')|${SEC[$k]}"
    done
} | summary "memory"
echo "random forest: $RF_TREES trees, depth $RF_DEPTH, model $RF_BYTES"
echo "past max_training_rows: ERROR $REFUSAL"
finish
