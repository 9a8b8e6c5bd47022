#!/usr/bin/env bash
# Citus golden tests (tests/citus): a coordinator and two workers (and a spare node the test adds
# itself) on localhost, each a throwaway cluster, with this extension and an installed Citus.
#
# Citus is not packaged for this platform, and this project neither ships nor builds it: the
# tests run when Citus is installed in the PostgreSQL under test ($PKGLIBDIR/citus.so), and
# otherwise this script says so and exits 77, which scripts/test.sh reports in its summary line
# as SKIPPED — never as passed.
# Usage: scripts/citus.sh [--accept]
source "$(dirname "$0")/common.sh"
lock_install
cd "$ROOT"
SKIPPED=77
accept=0
[ "${1:-}" = "--accept" ] && accept=1

if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
    echo "SKIPPED: Citus tests — Citus is not installed in PostgreSQL $PG_MAJOR ($("$PG_CONFIG" --pkglibdir)/citus.so is missing)"
    exit $SKIPPED
fi
ensure_toolchain
step "building and installing the extension (release)"
cargo pgrx install --release --pg-config "$PG_CONFIG" ${SUDO:+--sudo} >/dev/null

# Nodes listen on localhost only; trust authentication for local connections (initdb -A trust).
COORDINATOR_PORT=9700
PORTS=(9700 9701 9702 9703)
DB=customer_value_citus
CITUS_DIR=$(mktemp -d /tmp/customer_value_citus.XXXXXX)
chmod 755 "$CITUS_DIR"
[ "$(id -u)" -eq 0 ] && chown postgres: "$CITUS_DIR"
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

stop_nodes() {
    local port
    for port in "${PORTS[@]}"; do
        [ -d "$CITUS_DIR/$port" ] &&
            as_db_user "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$port" -m immediate -w stop >/dev/null 2>&1
    done
    rm -rf "$CITUS_DIR"
}
trap stop_nodes EXIT

node_psql() { local port=$1; shift; "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h localhost -p "$port" -U postgres "$@"; }

step "starting a Citus coordinator (port $COORDINATOR_PORT) and workers (${PORTS[*]:1}) on localhost"
for port in "${PORTS[@]}"; do
    as_db_user "$PG_BIN/initdb" -D "$CITUS_DIR/$port" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
    {
        echo "listen_addresses = 'localhost'"
        echo "port = $port"
        echo "unix_socket_directories = '$CITUS_DIR'"
        echo "shared_preload_libraries = 'citus, pg_cron'"
        echo "cron.database_name = '$DB'"
        echo "cron.use_background_workers = on"
        echo "max_worker_processes = 32"
        echo "max_connections = 100"
        echo "max_prepared_transactions = 100"
        echo "fsync = off"
        echo "max_parallel_workers_per_gather = 2"
        echo "citus.shard_count = 8"
        echo "citus.log_remote_commands = off"
    } | as_db_user tee -a "$CITUS_DIR/$port/postgresql.conf" >/dev/null
    as_db_user "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$port" -l "$CITUS_DIR/$port.log" -w start >/dev/null
    node_psql "$port" -d postgres -c "CREATE DATABASE $DB"
    node_psql "$port" -d "$DB" -c "CREATE EXTENSION citus"
done
coordinator() { node_psql $COORDINATOR_PORT -d $DB "$@"; }
coordinator -c "SELECT citus_set_coordinator_host('localhost', $COORDINATOR_PORT)" >/dev/null
coordinator -c "SELECT citus_add_node('localhost', 9701)" -c "SELECT citus_add_node('localhost', 9702)" >/dev/null
# 9703 stays out: the test adds it and rebalances.

OUT=$(mktemp -d /tmp/customer_value_citus_out.XXXXXX)
chmod 777 "$OUT"
mkdir -p "$OUT/data" && cp tests/data/*.csv "$OUT/data/" && chmod -R a+rX "$OUT/data"
export CV_TEST_DATA="$OUT/data"
PG_REGRESS="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
step "Citus golden tests"
status=0
as_db_user "$PG_REGRESS" --host=localhost --port=$COORDINATOR_PORT --user=postgres --bindir="$PG_BIN" \
    --use-existing --dbname=$DB --inputdir=tests/citus --outputdir="$OUT" citus || status=$?
if [ $accept -eq 1 ]; then
    mkdir -p tests/citus/expected
    cp "$OUT"/results/*.out tests/citus/expected/
    echo "accepted outputs into tests/citus/expected (review with git diff)"
elif [ $status -ne 0 ]; then
    cat "$OUT/regression.diffs" 2>/dev/null || true
    for port in "${PORTS[@]}"; do
        echo "--- last lines of node $port's log"; tail -n 20 "$CITUS_DIR/$port.log" || true
    done
fi
rm -rf "$OUT"
exit $status
