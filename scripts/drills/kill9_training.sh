#!/usr/bin/env bash
# Reliability drill (issue #5): kill -9 a backend in the middle of a long training, many times.
# Version 1 of model "m" is trained and deployed; then, each repetition, a long random-forest
# training of a new version of "m" (deploy: always) starts in a background psql and its backend is
# killed with SIGKILL after a random share (10–90 %) of a calibrated training time. The postmaster
# restarts every backend (crash recovery); once the server accepts connections again the drill
# checks that nothing partial is left (models and training_runs unchanged, same versions), that
# version 1 is still deployed and scores a fixed row exactly as before, that the store's indexes
# pass amcheck, and that pg_stat_activity holds no leftover backend. Reports recovery times.
#
# Usage: scripts/drills/kill9_training.sh
#   DRILL_REPEATS (20)  kills
#   DRILL_ROWS (200000) rows of the training table;  DRILL_TREES (60) trees of the long training
set -euo pipefail
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/drill_common.sh"
lock_install

REPEATS=${DRILL_REPEATS:-20}
ROWS=${DRILL_ROWS:-200000}
TREES=${DRILL_TREES:-60}
LONG_OPTIONS="{\"n_trees\": $TREES, \"max_depth\": 12, \"deploy\": \"always\"}"

ensure_toolchain
install_extension
step "starting a throwaway cluster"
start_cluster "restart_after_crash = on"
psql_run -c "CREATE EXTENSION customer_value" -c "CREATE EXTENSION amcheck"
step "generating $ROWS customers"
make_customers customers "$ROWS" 5

step "version 1 of m (linear), deployed"
psql_run -c "SELECT name, version, algorithm, deployed FROM customer_value.train('m', 'customers', 'spend', 'linear')"

step "calibrating: one long training (random_forest, $TREES trees) of a scratch model"
t=$(now)
q "SELECT version FROM customer_value.train('calibration', 'customers', 'spend', 'random_forest', '$LONG_OPTIONS')" >/dev/null
LONG_SECONDS=$(elapsed "$t")
echo "a long training takes ${LONG_SECONDS}s"

snapshot() {
    q "SELECT (SELECT count(*) FROM customer_value.models) || '|' ||
              (SELECT count(*) FROM customer_value.training_runs) || '|' ||
              (SELECT string_agg(name || '@' || version || CASE WHEN deployed THEN '*' ELSE '' END, ',' ORDER BY name, version)
                 FROM customer_value.models) || '|' ||
              (SELECT max(id) FROM customer_value.training_runs)"
}
score() { q "SELECT customer_value(c, 'm')::text FROM customers c WHERE customer_id = 42"; }
BASE=$(snapshot)
BASE_SCORE=$(score)
echo "baseline: $BASE; score of customer 42 with m: $BASE_SCORE"

# amcheck of every btree index of the store (heapallindexed): an error if one is corrupt
STORE_INDEXES="SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'customer_value' AND c.relam = 403"
N_INDEXES=$(q "SELECT count(*) FROM ($STORE_INDEXES) s")
AMCHECK="SELECT count(*) FROM (SELECT bt_index_check(oid, true) FROM ($STORE_INDEXES) s) t"

LOG=$CLUSTER_DIR/server.log
WORK=$(mktemp -d /tmp/kill9_drill.XXXXXX)
RECOVERY=()
KILLED=0 MISSED=0
for r in $(seq 1 "$REPEATS"); do
    delay=$(awk -v s="$LONG_SECONDS" -v r="$RANDOM" 'BEGIN { printf "%.3f", s * (0.1 + 0.8 * r / 32767) }')
    log_offset=$(stat -c %s "$LOG")
    ( set +e; "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -c "SELECT version FROM customer_value.train('m', 'customers', 'spend', 'random_forest', '$LONG_OPTIONS')" \
        >"$WORK/out.$r" 2>"$WORK/err.$r"; echo $? >"$WORK/rc.$r" ) &
    bg=$!
    sleep "$delay"
    pid=$(q "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
               AND query LIKE '%customer_value.train(''m''%'")
    if [ -z "$pid" ]; then
        # the training ended before the kill: not a kill, undo its version and go on
        wait "$bg" || true
        MISSED=$((MISSED + 1))
        echo "repeat $r: training already finished after ${delay}s (rc $(cat "$WORK/rc.$r")), not killed"
        psql_run -c "SELECT customer_value.deploy('m', 1)" \
                 -c "DELETE FROM customer_value.models WHERE name = 'm' AND version > 1" >/dev/null
        BASE=$(snapshot)
        continue
    fi
    kill -9 "$pid"
    t0=$(now)
    # Wait for the postmaster to notice the crash and reinitialise, then for a working connection
    # (a connection made before it noticed would be killed with the rest).
    until tail -c +"$((log_offset + 1))" "$LOG" | grep -q "all server processes terminated; reinitializing"; do
        if longer_than "$t0" 60; then die "repeat $r: no crash restart within 60 s"; fi
        sleep 0.005
    done
    until "$PG_BIN/psql" -X -q -At -c "SELECT 1" >/dev/null 2>&1; do
        if longer_than "$t0" 120; then die "repeat $r: server not accepting connections 120 s after the kill"; fi
        sleep 0.005
    done
    rec=$(elapsed "$t0")
    RECOVERY+=("$rec")
    KILLED=$((KILLED + 1))
    wait "$bg" || true
    rc=$(cat "$WORK/rc.$r")
    err=$(tr '\n' ' ' <"$WORK/err.$r" | cut -c1-100)
    printf 'repeat %2d: killed backend %s after %ss; recovered in %ss; client rc %s: %s\n' \
        "$r" "$pid" "$delay" "$rec" "$rc" "$err"

    check "repeat $r: the killed training's client failed" "yes" "$([ "$rc" != 0 ] && echo yes || echo no)" || true
    check "repeat $r: models/training_runs rows, versions, last run" "$BASE" "$(snapshot)" || true
    check "repeat $r: deployed version of m" "1" "$(q "SELECT version FROM customer_value.models WHERE name = 'm' AND deployed")" || true
    check "repeat $r: score of customer 42 with m" "$BASE_SCORE" "$(score)" || true
    check "repeat $r: other client backends in pg_stat_activity" "0" \
        "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" || true
    check "repeat $r: auxiliary processes back" "autovacuum launcher,background writer,checkpointer,walwriter" \
        "$(q "SELECT string_agg(DISTINCT backend_type, ',' ORDER BY backend_type) FROM pg_stat_activity
               WHERE backend_type IN ('checkpointer', 'background writer', 'walwriter', 'autovacuum launcher')")" || true
    check "repeat $r: amcheck of the store's $N_INDEXES btree indexes" "$N_INDEXES" "$(q "$AMCHECK")" || true
    check "repeat $r: the crash was logged as signal 9" "1" \
        "$(tail -c +"$((log_offset + 1))" "$LOG" | grep -c "was terminated by signal 9" || true)" || true
done

step "after $KILLED kills: the store still trains, deploys and scores"
after_version=$(q "SELECT version FROM customer_value.train('m', 'customers', 'spend', 'linear', '{\"deploy\": \"never\"}')")
check "a new version after the kills is the next number" "$(( $(q "SELECT max(version) FROM customer_value.models WHERE name = 'm' AND version < $after_version") + 1 ))" "$after_version" || true
check "the store's indexes pass amcheck (heapallindexed)" "$N_INDEXES" "$(q "$AMCHECK")" || true
check "version 1 still deployed and scoring the same" "$BASE_SCORE" "$(score)" || true
rm -rf "$WORK"

read -r rmin rmed rmax rmean < <(printf '%s\n' "${RECOVERY[@]}" | stats)
{
    echo "figure|value"
    echo "kills (SIGKILL of the training backend)|$KILLED of $REPEATS"
    echo "trainings that finished before the kill|$MISSED"
    echo "long training (random_forest, $TREES trees, $ROWS rows)|${LONG_SECONDS}s"
    echo "recovery time min / median / max / mean|${rmin}s / ${rmed}s / ${rmax}s / ${rmean}s"
    echo "invariant violations|$DRILL_FAILURES"
} | summary "kill9_training"
finish
