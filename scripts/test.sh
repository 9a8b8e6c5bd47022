#!/usr/bin/env bash
# Runs every test: formatting and lints, engine unit tests and #[pg_test]s (cargo pgrx test),
# then the golden SQL files in tests/pg_regress against a release build in a throwaway cluster,
# the same tests against the Debian package installed with dpkg (scripts/package_test.sh),
# the upgrade test from the previous release (scripts/upgrade.sh), then the Citus golden tests
# on a local coordinator and workers when Citus is installed (scripts/citus.sh; reported as
# SKIPPED in the summary line when it is not).
# Installs whatever is missing first (see common.sh); idempotent.
source "$(dirname "$0")/common.sh"
lock_install
cd "$ROOT"
SECONDS=0
ensure_toolchain

step "cargo fmt --check"
cargo fmt --all -- --check

step "no function over 80 lines outside tests (scripts/long_functions.py)"
python3 "$ROOT/scripts/long_functions.py"

step "cargo clippy -D warnings"
cargo clippy --all-targets --features "pg15 pg_test" --no-default-features -- -D warnings

step "engine unit tests and #[pg_test]s (cargo pgrx test)"
PGRX_TEST_DIR=$(mktemp -d /tmp/customer_value_pgtest.XXXXXX)
chmod 755 "$PGRX_TEST_DIR"
[ "$(id -u)" -eq 0 ] && chown postgres: "$PGRX_TEST_DIR"
(unset RUST_BACKTRACE; cargo pgrx test pg$PG_MAJOR --runas postgres --pgdata "$PGRX_TEST_DIR/data")
rm -rf "$PGRX_TEST_DIR"

bash "$ROOT/scripts/regress.sh"

step "Debian package: build, install with dpkg, golden tests against it (scripts/package_test.sh)"
bash "$ROOT/scripts/package_test.sh"

step "upgrade test (previous release → this build)"
bash "$ROOT/scripts/upgrade.sh"

step "Citus golden tests (scripts/citus.sh)"
citus_status=0
bash "$ROOT/scripts/citus.sh" || citus_status=$?
case $citus_status in
    0) citus="Citus tests passed" ;;
    77) citus="Citus tests SKIPPED (Citus is not installed in PostgreSQL $PG_MAJOR)" ;;
    *) exit $citus_status ;;
esac

step "all tests passed in ${SECONDS}s — $citus"
