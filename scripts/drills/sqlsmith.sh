#!/usr/bin/env bash
# Reliability drill (issue #10, item 17a): SQLsmith (Debian package `sqlsmith`, the random query
# generator that found hundreds of PostgreSQL bugs) against a database with the extension,
# trained models of every kind and small tables, connected as a non-superuser trainer (as a
# superuser it would call pg_terminate_backend, file and large-object functions), for
# DRILL_QUERIES queries (default 20,000) with a 2-second statement timeout, seeded.
# Invariants: the postmaster never restarts, the server log has no "terminated by signal" and no
# PANIC, and no statement that calls the extension's functions ends in an internal error (XX000;
# the log's line prefix carries each error's SQLSTATE). PostgreSQL's own internal errors that
# SQLsmith finds elsewhere are counted and shown, not failed on.
#
# Usage: scripts/drills/sqlsmith.sh      DRILL_QUERIES (20000)  DRILL_SEED (1)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/drill_common.sh"
lock_install
QUERIES=${DRILL_QUERIES:-20000}
SEED=${DRILL_SEED:-1}

ensure_toolchain
if ! command -v sqlsmith >/dev/null; then
    step "installing sqlsmith"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends sqlsmith
fi
install_extension
step "starting a throwaway cluster"
start_cluster "log_line_prefix = '%e '" "log_min_messages = warning" "log_min_error_statement = error"
psql_run -c "CREATE EXTENSION customer_value"
make_customers customers 2000 5
make_models_of_every_kind cv_smith
psql_run >/dev/null <<'SQL'
ALTER ROLE cv_smith SET statement_timeout = '2s';
SQL
start_time=$(psql_run -At -c "SELECT pg_postmaster_start_time()")
started=$(now)
step "sqlsmith: $QUERIES queries as a trainer"
# A generated query may end its own session (pg_terminate_backend(pg_backend_pid()) is allowed
# to any role); SQLsmith then waits forever, so it gets a deadline.
timeout $((QUERIES / 20 + 120)) sqlsmith --target="host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=cv_smith" \
    --seed="$SEED" --max-queries="$QUERIES" --exclude-catalog --verbose > "$CLUSTER_DIR/sqlsmith.out" 2>&1 ||
    echo "sqlsmith ended early (exit $?): its session was ended or it hit the deadline"
tail -n 5 "$CLUSTER_DIR/sqlsmith.out"
seconds=$(elapsed "$started")
log="$CLUSTER_DIR/server.log"
# a statement calls the extension when it calls one of its functions (not merely when it reads
# one of the store's tables, e.g. customer_value.models)
CALLS='(customer_value|customer_tier)[[:space:]]*\(|customer_value\.[a-z_]+[[:space:]]*\('
# every logged error with its whole statement on one line. No interval expressions: Debian's awk
# is mawk, which reads {5} literally (and would then join the whole log into one string).
error_blocks() {
    awk '/^[0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z] ERROR:/ { if (b != "") print b; b = $0; next }
         /^[0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z] / && $2 != "STATEMENT:" { if (b != "") print b; b = ""; next }
         b != "" { b = b " " $0 }
         END { if (b != "") print b }' "$log"
}
error_blocks > "$CLUSTER_DIR/errors.txt"
errors=$(wc -l < "$CLUSTER_DIR/errors.txt")
ours=$(grep -cE "$CALLS" "$CLUSTER_DIR/errors.txt" || true)
# internal errors, and those among them whose statement calls one of the extension's functions
# (SQLsmith also finds PostgreSQL's own, e.g. "failed to find conversion function from unknown")
internal_blocks() { grep '^XX000' "$CLUSTER_DIR/errors.txt" || true; }
internal=$(internal_blocks | wc -l)
internal_ours=$(internal_blocks | grep -cE "$CALLS" || true)
grep -E "$CALLS" "$CLUSTER_DIR/errors.txt" | cut -c1-5 | sort | uniq -c | sort -rn | head -8 |
    sed 's/^/    SQLSTATE of errors in statements calling the extension: /'
internal_blocks | cut -c1-200 | sort | uniq -c | sort -rn | head -5
check "postmaster start time (a crash restarts it)" "$start_time" "$(psql_run -At -c "SELECT pg_postmaster_start_time()")" || true
check "server log: crashes and panics" "0" "$(grep -cE 'terminated by signal|PANIC' "$log" || true)" || true
check "internal errors (XX000) in statements that call the extension" "0" "$internal_ours" || true
echo "sqlsmith: $QUERIES queries in ${seconds}s (seed $SEED); logged errors $errors, of which $ours involve the extension's functions; internal errors $internal ($internal_ours in statements calling the extension); invariant failures: $DRILL_FAILURES"
[ "$DRILL_FAILURES" -eq 0 ]
