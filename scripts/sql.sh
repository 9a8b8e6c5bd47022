#!/usr/bin/env bash
# Developer helper: build + install (debug), start a throwaway cluster, open psql or run a file.
# Usage: scripts/sql.sh [psql args…]
source "$(dirname "$0")/common.sh"
ensure_toolchain
(cd "$ROOT" && cargo pgrx install --pg-config "$PG_CONFIG" ${SUDO:+--sudo} >/dev/null)
start_cluster
psql_run -c "CREATE EXTENSION customer_value" 
psql_run "$@"
