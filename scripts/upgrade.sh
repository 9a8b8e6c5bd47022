#!/usr/bin/env bash
# Upgrade test, previous release → this build:
#  1. builds and installs the previous release from its sources (tests/upgrade, from the commit
#     below),
#  2. creates the extension at that version, trains models of every kind, records their scores,
#  3. stops the server, installs this build, starts it again (a package upgrade),
#  4. runs ALTER EXTENSION customer_value UPDATE and checks that every old model scores
#     identically and that retrain/drift work on them (tests/upgrade/*.sql),
#  5. compares the upgraded catalog with a fresh install's (tests/upgrade/catalog.sql).
# When a release is cut: add its upgrade script (sql/customer_value--<old>--<new>.sql), archive its
# sources into tests/upgrade, and move PREVIOUS_* to it.
source "$(dirname "$0")/common.sh"
lock_install
cd "$ROOT"
PREVIOUS_VERSION=0.2.0
# release 0.2.0 is commit 2901d6e (0.1.0 was 4a017efd6c0591bd8bc07c742f1ebbe0e422f20c)
CURRENT_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
ensure_toolchain

[ -f "sql/customer_value--$PREVIOUS_VERSION--$CURRENT_VERSION.sql" ] || {
    echo "missing upgrade script sql/customer_value--$PREVIOUS_VERSION--$CURRENT_VERSION.sql" >&2; exit 1; }

WORK=$(mktemp -d /tmp/customer_value_upgrade.XXXXXX)
chmod 755 "$WORK"
mkdir "$WORK/previous"
# The previous release's sources ship with the test (tests/upgrade/customer_value-<v>-src.tar.gz,
# made with `git archive <commit> Cargo.toml Cargo.lock customer_value.control src sql`), so the
# test needs no git history: a shallow clone runs it too.
tar -xzf "tests/upgrade/customer_value-$PREVIOUS_VERSION-src.tar.gz" -C "$WORK/previous"
step "building and installing the previous release $PREVIOUS_VERSION (debug build, cached in target/previous-release)"
(cd "$WORK/previous" && CARGO_TARGET_DIR="$ROOT/target/previous-release" \
    cargo pgrx install --pg-config "$PG_CONFIG" ${SUDO:+--sudo} >/dev/null)

step "previous release: train models and record their scores"
start_cluster
psql_run -c "CREATE DATABASE upgraded" -c "CREATE DATABASE fresh"
psql_run -d upgraded -c "CREATE EXTENSION customer_value VERSION '$PREVIOUS_VERSION'"
psql_run -d upgraded -f tests/upgrade/before.sql >/dev/null

step "installing this build ($CURRENT_VERSION) with the server stopped, as a package upgrade would"
as_db_user "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null
install_extension >/dev/null
as_db_user "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null

step "ALTER EXTENSION customer_value UPDATE ($PREVIOUS_VERSION → $CURRENT_VERSION)"
psql_run -d upgraded -c "ALTER EXTENSION customer_value UPDATE TO '$CURRENT_VERSION'"
psql_run -d upgraded -f tests/upgrade/after.sql
psql_run -d fresh -c "CREATE EXTENSION customer_value"

step "comparing the upgraded catalog with a fresh install's"
psql_run -d upgraded -f tests/upgrade/catalog.sql > "$WORK/upgraded.txt"
psql_run -d fresh -f tests/upgrade/catalog.sql > "$WORK/fresh.txt"
if ! diff -u "$WORK/fresh.txt" "$WORK/upgraded.txt"; then
    echo "the upgraded schema differs from a fresh install (- fresh, + upgraded)" >&2
    exit 1
fi
echo "upgrade $PREVIOUS_VERSION → $CURRENT_VERSION: old models score identically; catalog equals a fresh install ($(wc -l < "$WORK/fresh.txt") lines compared)"
rm -rf "$WORK"
