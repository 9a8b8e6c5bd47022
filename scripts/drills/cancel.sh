#!/usr/bin/env bash
# Reliability drill (issue #5): cancel and statement_timeout during
#   train    a long random-forest training of a new version of "m" (deploy: always),
#   retrain  customer_value.retrain('m', …) with the same long options (it runs its work in a
#            subtransaction and records failures, but a cancel must abort and record nothing),
#   score    SELECT sum(customer_value(c, 'm')) FROM big c over millions of rows, parallel workers on.
# Each is interrupted DRILL_CANCEL_REPEATS times by pg_cancel_backend() and as many by a
# statement_timeout, at a random point (20–80 % of a calibrated run time). Measures the time from
# the cancel (or the timeout's deadline) to the client having its error (must be < 1 s), and checks
# the error is SQLSTATE 57014 and nothing is left behind: same models and training_runs rows, same
# deployed version scoring a fixed row the same, no backend or parallel worker still running.
#
# Usage: scripts/drills/cancel.sh
#   DRILL_CANCEL_REPEATS (5)  interruptions per statement and method
#   DRILL_ROWS (200000)       training rows;  DRILL_BIG_ROWS (3000000) rows scored
#   DRILL_TREES (60)          trees of the long training;  DRILL_MAX_LATENCY (1.0) seconds allowed
set -euo pipefail
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/drill_common.sh"
lock_install

REPEATS=${DRILL_CANCEL_REPEATS:-5}
ROWS=${DRILL_ROWS:-200000}
BIG_ROWS=${DRILL_BIG_ROWS:-3000000}
TREES=${DRILL_TREES:-60}
MAX_LATENCY=${DRILL_MAX_LATENCY:-1.0}
LONG_OPTIONS="{\"n_trees\": $TREES, \"max_depth\": 12, \"deploy\": \"always\"}"

ensure_toolchain
install_extension
step "starting a throwaway cluster"
start_cluster "max_worker_processes = 8" "max_parallel_workers = 4"
psql_run -c "CREATE EXTENSION customer_value"
step "generating $ROWS customers and $BIG_ROWS rows to score"
make_customers customers "$ROWS" 5
make_customers big "$BIG_ROWS" 5

step "version 1 of m (random_forest, 100 trees, depth 8), deployed"
psql_run -c "SELECT name, version, algorithm, deployed
               FROM customer_value.train('m', 'customers', 'spend', 'random_forest', '{\"n_trees\": 100, \"max_depth\": 8}')"

declare -A SQL
SQL[train]="SELECT version FROM customer_value.train('m', 'customers', 'spend', 'random_forest', '$LONG_OPTIONS') /*drill*/"
SQL[retrain]="SELECT version, decision FROM customer_value.retrain('m', '$LONG_OPTIONS') /*drill*/"
SQL[score]="SELECT sum(customer_value(c, 'm')) FROM big c /*drill*/"

step "calibrating: the uninterrupted run time of each statement"
declare -A DURATION
t=$(now)
q "SELECT version FROM customer_value.train('calibration', 'customers', 'spend', 'random_forest', '$LONG_OPTIONS')" >/dev/null
DURATION[train]=$(elapsed "$t")
DURATION[retrain]=${DURATION[train]}
t=$(now)
q "${SQL[score]}" >/dev/null
DURATION[score]=$(elapsed "$t")
WORKERS=$(psql_run -At -c "EXPLAIN (ANALYZE, COSTS OFF, FORMAT JSON) ${SQL[score]}" | grep -o '"Workers Launched": [0-9]*' | head -1 | grep -o '[0-9]*$')
echo "train ${DURATION[train]}s, score ${DURATION[score]}s ($WORKERS parallel workers launched)"

snapshot() {
    q "SELECT (SELECT count(*) FROM customer_value.models) || '|' ||
              (SELECT count(*) FROM customer_value.training_runs) || '|' ||
              (SELECT string_agg(name || '@' || version || CASE WHEN deployed THEN '*' ELSE '' END, ',' ORDER BY name, version)
                 FROM customer_value.models) || '|' ||
              (SELECT coalesce(max(id), 0) FROM customer_value.training_runs)"
}
score() { q "SELECT customer_value(c, 'm')::text FROM customers c WHERE customer_id = 42"; }
BASE=$(snapshot)
BASE_SCORE=$(score)
echo "baseline: $BASE; score of customer 42 with m: $BASE_SCORE"

WORK=$(mktemp -d /tmp/cancel_drill.XXXXXX)
declare -A LAT
RESULTS=$WORK/results
: >"$RESULTS"

# interrupt KIND METHOD N: runs SQL[KIND] in the background and interrupts it by METHOD
# (cancel or timeout) after a random share of its calibrated duration; records the latency.
interrupt() {
    local kind=$1 method=$2 n=$3 delay_ms pid t_int t_end rc err latency start
    delay_ms=$(awk -v s="${DURATION[$kind]}" -v r="$RANDOM" 'BEGIN { printf "%d", 1000 * s * (0.2 + 0.6 * r / 32767) }')
    local setup="SET statement_timeout = 0"
    [ "$method" = timeout ] && setup="SET statement_timeout = $delay_ms"
    ( set +e
      "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$setup" -c "${SQL[$kind]}" \
          >"$WORK/out" 2>"$WORK/err"
      rc=$?; now >"$WORK/end"; echo "$rc" >"$WORK/rc" ) &
    local bg=$!
    # the statement's backend and start time, once it runs
    start=""
    for _ in $(seq 1 400); do
        IFS='|' read -r pid start < <(q "SELECT pid, extract(epoch FROM query_start) FROM pg_stat_activity
                                  WHERE state = 'active' AND backend_type = 'client backend'
                                    AND query LIKE '%/*drill*/%' AND pid <> pg_backend_pid()") || true
        [ -n "$start" ] && break
        sleep 0.005
    done
    [ -n "$start" ] || die "$kind/$method $n: the statement never showed up in pg_stat_activity"
    if [ "$method" = cancel ]; then
        sleep "$(awk -v d="$delay_ms" -v s="$start" -v n="$(now)" 'BEGIN { w = s + d / 1000 - n; printf "%.3f", (w > 0 ? w : 0) }')"
        t_int=$(q "SELECT extract(epoch FROM clock_timestamp()) || (CASE WHEN pg_cancel_backend($pid) THEN '' ELSE ' not-signalled' END)")
        check "$kind/$method $n: pg_cancel_backend($pid) signalled the backend" "yes" \
            "$([[ $t_int == *not-signalled* ]] && echo no || echo yes)" || true
    else
        t_int=$(awk -v s="$start" -v d="$delay_ms" 'BEGIN { printf "%.6f", s + d / 1000 }')
    fi
    wait "$bg" || true
    rc=$(cat "$WORK/rc")
    t_end=$(cat "$WORK/end")
    err=$(grep -m1 -o "ERROR: .*" "$WORK/err" || head -c 120 "$WORK/err")
    latency=$(awk -v a="${t_int%% *}" -v b="$t_end" 'BEGIN { printf "%.3f", b - a }')
    printf '%-7s %-7s %d: interrupted after %5d ms; statement ended %ss later (rc %s) %s\n' \
        "$kind" "$method" "$n" "$delay_ms" "$latency" "$rc" "$err"
    echo "$kind $method $latency" >>"$RESULTS"
    check "$kind/$method $n: the statement failed with 57014" "yes" \
        "$([ "$rc" != 0 ] && grep -q "ERROR:  57014" "$WORK/err" && echo yes || echo no)" || true
    check "$kind/$method $n: ended within ${MAX_LATENCY}s of the interrupt" "yes" \
        "$(awk -v l="$latency" -v m="$MAX_LATENCY" 'BEGIN { print ((l < m) ? "yes" : "no") }')" || true
    check "$kind/$method $n: nothing left in the store" "$BASE" "$(snapshot)" || true
    check "$kind/$method $n: deployed m scores customer 42 as before" "$BASE_SCORE" "$(score)" || true
    check "$kind/$method $n: no backend or parallel worker left running" "0" \
        "$(q "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
                AND backend_type IN ('client backend', 'parallel worker') AND state IS DISTINCT FROM 'idle'")" || true
}

for kind in train retrain score; do
    step "interrupting $kind"
    for method in cancel timeout; do
        for n in $(seq 1 "$REPEATS"); do interrupt "$kind" "$method" "$n"; done
    done
done

check "no crash in the server log" "" "$(crash_lines)" || true
{
    echo "statement|method|runs|latency min|median|max|mean (s)"
    for kind in train retrain score; do
        for method in cancel timeout; do
            read -r mn md mx me < <(awk -v k="$kind" -v m="$method" '$1 == k && $2 == m { print $3 }' "$RESULTS" | stats)
            echo "$kind|$method|$REPEATS|$mn|$md|$mx|$me"
        done
    done
} | summary "cancel (uninterrupted: train ${DURATION[train]}s, score ${DURATION[score]}s with $WORKERS workers; invariant violations: $DRILL_FAILURES)"
rm -rf "$WORK"
finish
