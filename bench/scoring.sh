#!/usr/bin/env bash
# Scoring benchmark (issue #2): 1M generated customers with 5 numeric features, side by side:
#   - count(c): just materialising the whole row, the floor for any f(row) function
#   - the same linear formula written in plain SQL float8 arithmetic
#   - customer_value(c) with the linear model
#   - customer_value(c) with a 100-tree random forest
# each without and with parallel workers, best of 3 runs; then narrowed calls on 7, 20 and 50
# column tables (plain SQL vs customer_value vs the whole-row path of 0.2, one core); plus the
# first-call latency on a fresh connection. Usage: bench/scoring.sh [rows]   (default 1000000). Prints a table and writes
# bench/results/scoring.csv for plots.
source "$(dirname "$0")/../scripts/common.sh"
lock_install
cd "$ROOT"
ROWS=${1:-1000000}
RUNS=3
ensure_toolchain
install_extension >/dev/null
start_cluster "shared_buffers = '1GB'" "work_mem = '64MB'" "max_worker_processes = 8" "max_parallel_workers = 4"
psql_run -c "CREATE EXTENSION customer_value"

step "generating $ROWS customers"
psql_run <<SQL
SELECT setseed(0.42);
CREATE TABLE bench_customers AS
SELECT i AS customer_id,
       random() * 50               AS orders,
       random() * 120              AS avg_basket,
       random() * 365              AS days_since_last,
       random() * 3                AS tenure_years,
       random() * 10               AS support_calls,
       0::float8                   AS spend
  FROM generate_series(1, $ROWS) AS i;
UPDATE bench_customers
   SET spend = 12 + 3.5 * orders + 0.8 * avg_basket - 0.05 * days_since_last + 9 * tenure_years
             - 1.5 * support_calls + (random() - 0.5) * 20;
ALTER TABLE bench_customers ADD PRIMARY KEY (customer_id);
VACUUM ANALYZE bench_customers;
SQL

step "training (linear on all rows; random forest with 100 trees on a 50k sample)"
psql_run -c "\timing on" -c "SELECT name, algorithm, round((metrics->>'r2')::numeric, 4) AS r2 FROM customer_value.train('bench_linear', 'bench_customers', 'spend', 'linear')"
psql_run -c "\timing on" -c "SELECT name, algorithm, round((metrics->>'r2')::numeric, 4) AS r2 FROM customer_value.train('bench_forest', 'SELECT * FROM bench_customers WHERE customer_id <= 50000', 'spend', 'random_forest', '{\"n_trees\": 100, \"max_depth\": 8, \"exclude\": [\"customer_id\"]}')"

# best-of-N milliseconds of one query at a given parallelism
time_query() {
    local workers=$1 query=$2 best=""
    for _ in $(seq $RUNS); do
        local ms
        ms=$(psql_run -c "SET max_parallel_workers_per_gather = $workers" -c "\timing on" -c "$query" |
             awk '/^Time:/ { print $2 }')
        if [ -z "$best" ] || awk "BEGIN { exit !($ms < $best) }"; then best=$ms; fi
    done
    printf '%.0f' "$best"
}

declare -A QUERIES=(
    [count_row]="SELECT count(c) FROM bench_customers c"
    [plain_sql]="SELECT sum(12 + 3.5 * orders + 0.8 * avg_basket - 0.05 * days_since_last + 9 * tenure_years - 1.5 * support_calls) FROM bench_customers c"
    [linear]="SELECT sum(customer_value(c, 'bench_linear')) FROM bench_customers c"
    [forest]="SELECT sum(customer_value(c, 'bench_forest')) FROM bench_customers c"
    [tier]="SELECT count(*) FILTER (WHERE customer_tier(c, 'bench_linear') = 'VIP') FROM bench_customers c"
)
ORDER=(count_row plain_sql linear forest tier)
mkdir -p bench/results
CSV=bench/results/scoring.csv
echo "query,rows,workers,ms,rows_per_s" > "$CSV"
step "scoring $ROWS rows (best of $RUNS)"
printf '%-12s %14s %14s %16s\n' query "ms (serial)" "ms (2 workers)" "rows/s (2 wkrs)"
for name in "${ORDER[@]}"; do
    serial=$(time_query 0 "${QUERIES[$name]}")
    parallel=$(time_query 2 "${QUERIES[$name]}")
    rate=$(awk "BEGIN { printf \"%.0f\", $ROWS / ($parallel / 1000) }")
    printf '%-12s %14s %14s %16s\n' "$name" "$serial" "$parallel" "$rate"
    echo "$name,$ROWS,0,$serial,$(awk "BEGIN { printf \"%.0f\", $ROWS / ($serial / 1000) }")" >> "$CSV"
    echo "$name,$ROWS,2,$parallel,$rate" >> "$CSV"
done

# Narrowed calls (issue #13): a realistic customers table — id, the 5 features, a 32-character
# name — and the same with 13 and 43 more unused float8 columns (7, 20 and 50 columns), one core.
# The plain SQL formula; customer_value(c) as planned now (only the model's columns are passed);
# and with customer_value.narrow_scoring = off, the whole row as 0.2 passed it.
step "narrowed scoring: the same linear model on 7, 20 and 50 columns, one core (best of $RUNS)"
FORMULA="12 + 3.5 * orders + 0.8 * avg_basket - 0.05 * days_since_last + 9 * tenure_years - 1.5 * support_calls"
printf '%-10s %12s %16s %16s %12s\n' columns "plain SQL" "customer_value" "whole row (0.2)" "ratio"
for columns in 7 20 50; do
    extra=""
    for i in $(seq 1 $((columns - 7))); do extra="$extra, random() AS unused_$i"; done
    psql_run -q -c "DROP TABLE IF EXISTS bench_wide" \
        -c "CREATE TABLE bench_wide AS SELECT customer_id, orders, avg_basket, days_since_last, tenure_years, support_calls, md5(customer_id::text) AS name $extra FROM bench_customers" \
        -c "VACUUM ANALYZE bench_wide"
    sql=$(time_query 0 "SELECT sum($FORMULA) FROM bench_wide c")
    narrowed=$(time_query 0 "SELECT sum(customer_value(c, 'bench_linear')) FROM bench_wide c")
    whole=$(time_query 0 "SET customer_value.narrow_scoring = off; SELECT sum(customer_value(c, 'bench_linear')) FROM bench_wide c")
    ratio=$(awk "BEGIN { printf \"%.2f\", $narrowed / $sql }")
    printf '%-10s %12s %16s %16s %11s×\n' "$columns" "$sql" "$narrowed" "$whole" "$ratio"
    echo "narrow_${columns}_plain_sql,$ROWS,0,$sql,$(awk "BEGIN { printf \"%.0f\", $ROWS / ($sql / 1000) }")" >> "$CSV"
    echo "narrow_${columns}_customer_value,$ROWS,0,$narrowed,$(awk "BEGIN { printf \"%.0f\", $ROWS / ($narrowed / 1000) }")" >> "$CSV"
    echo "narrow_${columns}_whole_row,$ROWS,0,$whole,$(awk "BEGIN { printf \"%.0f\", $ROWS / ($whole / 1000) }")" >> "$CSV"
done
psql_run -q -c "DROP TABLE bench_wide"

step "first call on a fresh connection (library load + model lookup + decode), vs warm"
for model in bench_linear bench_forest; do
    out=$(psql_run -c "\timing on" \
        -c "SELECT customer_value(c, '$model') FROM bench_customers c WHERE customer_id = 1" \
        -c "SELECT customer_value(c, '$model') FROM bench_customers c WHERE customer_id = 2" | awk '/^Time:/ { print $2 }')
    first=$(echo "$out" | sed -n 1p); warm=$(echo "$out" | sed -n 2p)
    printf '%-14s first call %8s ms   warm %8s ms\n' "$model" "$first" "$warm"
    echo "first_call_$model,1,0,$first," >> "$CSV"
    echo "warm_call_$model,1,0,$warm," >> "$CSV"
done
psql_run -c "SELECT name, algorithm, model_bytes FROM customer_value.model_summary ORDER BY name"
echo "results: $CSV"
