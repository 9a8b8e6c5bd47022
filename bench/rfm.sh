#!/usr/bin/env bash
# RFM at scale (issue #13): the RFM summary of 1M and 10M transactions (the CDNOW master log
# replicated with distinct customer ids), side by side in one run:
#   - customer_value.rfm() in PostgreSQL, serial and with 2 parallel workers;
#   - pandas (groupby, data already in memory) and DuckDB (vectorised, 2 threads, data already
#     loaded), on the same transactions exported to CSV, in bench/.venv.
# Best of 3 each; loading times printed beside; a checksum line shows the results agree.
# Usage: bench/rfm.sh [--no-python] [--sizes "1000000 10000000"]
source "$(dirname "$0")/../scripts/common.sh"
lock_install
cd "$ROOT"
python=1 sizes="1000000 10000000" runs=3
bench_flags "$@"
ensure_toolchain
install_extension >/dev/null
start_cluster "shared_buffers = '2GB'" "work_mem = '256MB'" "max_worker_processes = 8" "max_parallel_workers = 4"
psql_run -c "CREATE EXTENSION customer_value"
load_cdnow_master cdnow_tx
if [ $python -eq 1 ]; then
    step "pandas and DuckDB in bench/.venv"
    [ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
    bench/.venv/bin/python -c "import pandas, duckdb" 2>/dev/null ||
        bench/.venv/bin/pip install -q numpy==2.4.6 pandas==3.1.1 duckdb==2.0.1
fi
mkdir -p bench/results
CSV=bench/results/rfm.csv
echo "system,transactions,step,ms" > "$CSV"
AS_OF=1997-09-30
WORK=$(mktemp -d /tmp/customer_value_rfm.XXXXXX)
chmod 777 "$WORK"
trap 'stop_cluster; rm -rf "$WORK"' EXIT

best_ms() {
    local workers=$1 sql=$2 best=""
    for _ in $(seq $runs); do
        local ms
        ms=$(psql_run -c "SET max_parallel_workers_per_gather = $workers" -c "\timing on" -c "$sql" |
             awk '/^Time:/ { print $2 }' | tail -1)
        if [ -z "$best" ] || awk "BEGIN { exit !($ms < $best) }"; then best=$ms; fi
    done
    printf '%.0f' "$best"
}

for n in $sizes; do
    step "$n transactions (CDNOW master replicated, customer ids shifted per copy)"
    psql_run -q <<SQL
DROP TABLE IF EXISTS tx;
CREATE TABLE tx AS
SELECT c.customer_id + copy * 100000 AS customer_id, c.purchased, c.amount::float8 AS amount
  FROM generate_series(0, ceil($n / 69659.0)::int - 1) AS copy, cdnow_tx c
 LIMIT $n;
VACUUM ANALYZE tx;
SQL
    RFM="customer_value.rfm('tx', 'customer_id', 'purchased', 'amount', '$AS_OF')"
    CHECK="SELECT count(*), sum(frequency), round(sum(t)::numeric, 1), round(sum(monetary_value)::numeric, 1) FROM $RFM"
    serial=$(best_ms 0 "SELECT count(*) FROM $RFM")
    parallel=$(best_ms 2 "SELECT count(*) FROM $RFM")
    printf '  %-34s %10s ms\n' "customer_value.rfm(), serial" "$serial" "customer_value.rfm(), 2 workers" "$parallel"
    echo "customer_value,$n,rfm_serial,$serial" >> "$CSV"
    echo "customer_value,$n,rfm_2_workers,$parallel" >> "$CSV"
    printf '  %-34s %s\n' "customer_value checksum" "$(psql_run -At -F, -c "$CHECK")"
    if [ $python -eq 1 ]; then
        psql_run -q -c "\copy (SELECT customer_id, purchased, amount FROM tx) TO '$WORK/tx.csv' (FORMAT csv)"
        while IFS=, read -r system load ms customers frequency t monetary; do
            printf '  %-34s %10s ms   (loading %s ms)\n' "$system" "$ms" "$load"
            printf '  %-34s %s\n' "$system checksum" "$customers,$frequency,$t,$monetary"
            echo "$system,$n,rfm,$ms" >> "$CSV"
            echo "$system,$n,load,$load" >> "$CSV"
        done < <(bench/.venv/bin/python bench/rfm_reference.py "$WORK/tx.csv" "$AS_OF" "$runs")
        rm -f "$WORK/tx.csv"
    fi
done
echo "results: $CSV"
