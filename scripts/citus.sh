#!/usr/bin/env bash
# Citus golden tests (tests/distributed): a coordinator and two workers (and a spare node the test adds
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

if ! citus_installed; then
    echo "SKIPPED: Citus tests — Citus is not installed in PostgreSQL $PG_MAJOR ($("$PG_CONFIG" --pkglibdir)/citus.so is missing)"
    exit $SKIPPED
fi
ensure_toolchain
# The test starts from the previous release and upgrades (the upgrade must propagate to the
# workers): its install script comes with scripts/upgrade.sh, which runs first in the test
# command; run it here when it has not run on this machine.
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/customer_value--0.2.0.sql" ]; then
    bash "$ROOT/scripts/upgrade.sh"
fi
step "building and installing the extension (release)"
cargo pgrx install --release --pg-config "$PG_CONFIG" ${SUDO:+--sudo} >/dev/null

# Nodes listen on localhost only; trust authentication for local connections (initdb -A trust).
COORDINATOR_PORT=9700
DB=customer_value_citus
step "starting a Citus coordinator (port $COORDINATOR_PORT) and workers (9701 9702; 9703 spare) on localhost"
start_citus $DB 9700 9701 9702 9703 -- "max_connections = 100" "citus.shard_count = 8"
# 9703 stays out: the test adds it and rebalances.
add_citus_workers $DB $COORDINATOR_PORT 9701 9702

OUT=$(mktemp -d /tmp/customer_value_citus_out.XXXXXX)
chmod 777 "$OUT"
mkdir -p "$OUT/data" && cp tests/data/*.csv "$OUT/data/" && chmod -R a+rX "$OUT/data"
export CV_TEST_DATA="$OUT/data"
PG_REGRESS="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
step "Citus golden tests"
status=0
as_db_user "$PG_REGRESS" --host=localhost --port=$COORDINATOR_PORT --user=postgres --bindir="$PG_BIN" \
    --use-existing --dbname=$DB --inputdir=tests/distributed --outputdir="$OUT" citus || status=$?
if [ $accept -eq 1 ]; then
    mkdir -p tests/distributed/expected
    cp "$OUT"/results/*.out tests/distributed/expected/
    echo "accepted outputs into tests/distributed/expected (review with git diff)"
elif [ $status -ne 0 ]; then
    cat "$OUT/regression.diffs" 2>/dev/null || true
    for port in "${CITUS_PORTS[@]}"; do
        echo "--- last lines of node $port's log"; tail -n 20 "$CITUS_DIR/$port.log" || true
    done
fi
rm -rf "$OUT"
exit $status
