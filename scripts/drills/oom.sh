#!/usr/bin/env bash
# Reliability drill (issue #10, item 12): running out of memory while training is an ERROR
# (53200), never an allocation failure that aborts the backend and makes the postmaster restart
# every connection.
#  (a) The budget: with customer_value.max_training_memory = 256MB, training on a table of
#      DRILL_ROWS rows × 10 features (36 bytes per value counted) is refused before a row is
#      read (the planner's estimate), and from a query as the rows arrive.
#  (b) The system: the server runs under an address-space limit (ulimit -v, its baseline plus
#      DRILL_HEADROOM_MB) and the budget is set far above it, so the allocation itself fails: the
#      training's big buffers are allocated fallibly and end in the same clean error.
# In both: SQLSTATE 53200, the session still works, nothing is written, and the server log has no
# "terminated by signal", no crash recovery.
#
# Usage: scripts/drills/oom.sh     DRILL_ROWS (3000000)  DRILL_HEADROOM_MB (700)
#                                  DRILL_GBM_HEADROOM_MB (400)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/drill_common.sh"
lock_install

ROWS=${DRILL_ROWS:-3000000}
HEADROOM_MB=${DRILL_HEADROOM_MB:-700}
GBM_HEADROOM_MB=${DRILL_GBM_HEADROOM_MB:-400}

crash_lines() {
    grep -E "terminated by signal|was terminated by|PANIC|server process .* exited with exit code [^0]|all server processes terminated|memory allocation of .* failed" \
        "$CLUSTER_DIR/server.log" || true
}

ensure_toolchain
install_extension >/dev/null
start_cluster
psql_run -c "CREATE EXTENSION customer_value" >/dev/null
step "a table of $ROWS rows × 10 features"
make_customers customers "$ROWS" 10
results=()

# expect_oom CASE BUDGET SOURCE ALGORITHM OPTIONS: one training in a fresh session must fail with
# 53200, write nothing and leave the session working; records the message.
expect_oom() {
    local case=$1 budget=$2 source=$3 algorithm=$4 options=$5 out
    out=$("$PG_BIN/psql" -X -At -v VERBOSITY=default 2>&1 <<SQL || true
SET customer_value.max_training_memory = '$budget';
SELECT * FROM customer_value.train('oom', '$source', 'spend', '$algorithm', '$options');
\\echo state :LAST_ERROR_SQLSTATE
SELECT 'alive', count(*) FROM customer_value.models;
SQL
)
    echo "$out" | grep -E "ERROR|state|alive" | sed 's/^/    /'
    check "$case: SQLSTATE" "state 53200" "$(echo "$out" | grep '^state')"
    check "$case: nothing written, session alive" "alive|0" "$(echo "$out" | grep '^alive')"
    results+=("$case|$(echo "$out" | grep '^state' | cut -d' ' -f2)|$(echo "$out" | grep -oE 'about [0-9]+ MiB for [^,]*|out of memory [^(]*' | head -1)")
}

step "(a) the budget: refused before reading (estimate) and as rows arrive"
expect_oom "budget: a table" 256MB customers gbm '{"n_trees": 5}'
expect_oom "budget: a query" 256MB "SELECT f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, spend FROM customers" gbm '{"n_trees": 5}'

step "(b) the system: the server under ulimit -v (its baseline + headroom), the budget far above"
baseline_kb=$(q "LOAD 'customer_value'; SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmSize:\s+(\d+)'))[1]")
echo "    backend VmSize with the library loaded: $((baseline_kb / 1024)) MB"
# restart_limited MB: the server restarted under an address-space limit of its baseline + MB
restart_limited() {
    local limit_kb=$((baseline_kb + $1 * 1024))
    echo "    limit: $((limit_kb / 1024)) MB"
    as_db_user "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
    as_db_user bash -c "ulimit -v $limit_kb && exec '$PG_BIN/pg_ctl' -D '$CLUSTER_DIR/data' -l '$CLUSTER_DIR/server.log' -w start" >/dev/null
}
restart_limited "$HEADROOM_MB"
expect_oom "system limit: linear" 100GB customers linear '{}'
# gbm holds the rows as f32 during its fit: it needs a tighter limit to run out
restart_limited "$GBM_HEADROOM_MB"
expect_oom "system limit: gbm" 100GB customers gbm '{"n_trees": 5}'

crashes=$(crash_lines)
check "no backend crash or crash recovery in the server log" "" "$crashes"
{
    echo "case|SQLSTATE|message"
    printf '%s\n' "${results[@]}"
} | summary "out of memory while training: $ROWS rows × 10 features"
finish
