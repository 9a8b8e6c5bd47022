#!/usr/bin/env bash
# The demo, end to end: installs what is missing, builds and installs the extension, starts a
# throwaway PostgreSQL, loads the CDNOW transaction log shipped in data/cdnow, and learns each
# customer's spend in the next 39 weeks from the log as of 1997-09-30, leak-free
# (train_from_log: a backtest beside BG/NBD x Gamma-Gamma); scores the feature table of that day,
# checks it against what customers really spent, beside the classic CLV model; then a contrast
# with a customer-split model, and the model store.
source "$(dirname "$0")/common.sh"
lock_install
cd "$ROOT"
ensure_toolchain
install_extension
step "starting a throwaway PostgreSQL $PG_MAJOR"
start_cluster
psql_run -c "CREATE EXTENSION customer_value"
psql_run -c "CREATE TABLE cdnow_transactions (customer_id int, purchase_date date, cds int, amount numeric)"
step "loading data/cdnow/CDNOW_master.txt"
awk 'NR > 1 { printf "%d,%s,%s,%s\n", $1, $2, $3, $4 }' data/cdnow/CDNOW_master.txt |
    psql_run -c "COPY cdnow_transactions FROM STDIN (FORMAT csv)"
psql_run -c "SELECT count(*) AS transactions, count(DISTINCT customer_id) AS customers, min(purchase_date), max(purchase_date) FROM cdnow_transactions"
step "running demo/cdnow.sql"
# DEMO_OUT=dir also writes the lift tables as CSV there (used by scripts/plots.sh).
psql_run ${DEMO_OUT:+-v lift_csv="$DEMO_OUT/cdnow_lift.csv" -v clv_lift_csv="$DEMO_OUT/cdnow_clv_lift.csv"} -f demo/cdnow.sql
