#!/usr/bin/env bash
# Developer helper: build + install (debug), start a throwaway cluster, open psql or run a file.
# Usage: scripts/sql.sh [psql args…]
source "$(dirname "$0")/common.sh"
lock_install
ensure_toolchain
# SQL_PROFILE=release for timings; debug builds faster.
(cd "$ROOT" && cargo pgrx install ${SQL_PROFILE:+--$SQL_PROFILE} --pg-config "$PG_CONFIG" ${SUDO:+--sudo} >/dev/null)
start_cluster
psql_run -c "CREATE EXTENSION customer_value" 
psql_run "$@"
