#!/usr/bin/env bash
# Golden SQL tests: installs the extension (release build), starts a throwaway cluster and runs
# tests/pg_regress/sql/*.sql with pg_regress, comparing with tests/pg_regress/expected/*.out.
# Usage: scripts/regress.sh [--debug] [--accept] [--installed] [test …]
#   --debug      install a debug build (faster to build while developing)
#   --accept     copy the actual outputs over the expected ones (then review the git diff!)
#   --installed  test the extension as installed (e.g. from the Debian package): no build
source "$(dirname "$0")/common.sh"
lock_install
cd "$ROOT"
profile=--release accept=0 installed=0 tests=()
for arg in "$@"; do
    case "$arg" in
        --debug) profile="" ;;
        --accept) accept=1 ;;
        --installed) installed=1 ;;
        setup) ;;   # always runs first
        *) tests+=("$arg") ;;
    esac
done
ensure_toolchain
if [ $installed -eq 0 ]; then
    step "building and installing the extension (${profile:-debug})"
    cargo pgrx install $profile --pg-config "$PG_CONFIG" ${SUDO:+--sudo} >/dev/null
fi
if [ ${#tests[@]} -eq 0 ]; then
    mapfile -t tests < <(cd tests/pg_regress/sql && ls -- *.sql | sed 's/\.sql$//' | grep -v '^setup$' | sort)
fi
step "golden SQL tests: ${tests[*]}"
# pg_cron for the scheduling test: preloaded, jobs in the regression database, run by background
# workers (no TCP connection needed on this socket-only cluster).
# RUST_BACKTRACE=1 in the server's environment: no error may carry a Rust backtrace anyway.
CV_SERVER_RUST_BACKTRACE=1 start_cluster "shared_preload_libraries = 'pg_cron'" "cron.database_name = 'customer_value_regress'" \
    "cron.use_background_workers = on" "max_worker_processes = 24"
OUT=$(mktemp -d /tmp/customer_value_regress.XXXXXX)
chmod 777 "$OUT"
# Data files the tests COPY from: a copy the server's OS user can read, wherever the checkout is.
mkdir -p "$OUT/data" && cp tests/data/*.csv "$OUT/data/" && chmod -R a+rX "$OUT/data"
export CV_TEST_DATA="$OUT/data"
PG_REGRESS="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
status=0
as_db_user "$PG_REGRESS" --host="$PGHOST" --port="$PGPORT" --user=postgres --bindir="$PG_BIN" \
    --inputdir=tests/pg_regress --outputdir="$OUT" --dbname=customer_value_regress \
    setup "${tests[@]}" || status=$?
if [ $accept -eq 1 ]; then
    mkdir -p tests/pg_regress/expected
    cp "$OUT"/results/*.out tests/pg_regress/expected/
    echo "accepted outputs into tests/pg_regress/expected (review with git diff)"
elif [ $status -ne 0 ]; then
    cat "$OUT/regression.diffs" 2>/dev/null || true
fi
rm -rf "$OUT"
exit $status
