#!/usr/bin/env bash
# Citus benchmark (issue #9), on this one machine: a coordinator and two workers (three
# PostgreSQL clusters sharing its cores) against one PostgreSQL with 2 parallel workers, in the
# same run, on the same generated customers:
#  1. N customers (default 10,000,000): id, 5 numeric features and a spend, every value a hash of
#     the id, in a table distributed over the 2 workers (32 shards) and in a plain table on the
#     coordinator ("one node").
#  2. Scoring throughput of sum(customer_value(c, m)) for a linear model and a 100-tree depth-6
#     gbm (trained on a 2 % sample of the distributed table with option sample): distributed vs
#     one node with 2 parallel workers, best of 3, rows/s.
#  3. BG/NBD + Gamma-Gamma (algorithm clv) on N customers' RFM summaries: the distributed
#     summary is read grouped (aggregated on the workers) vs the one-node table read row by row:
#     fit time, rows that reach the fitting backend, that backend's peak memory (VmHWM).
#  4. A worker killed (kill -9 of its postmaster) while deploys flip a model's version, K times:
#     after the worker restarts and Citus recovers its prepared transactions, every node must
#     serve the same version, exactly one per node.
# Needs an installed Citus (this project does not build it). Usage: bench/citus.sh [N] [K]
# Writes bench/results/citus.txt.
source "$(dirname "$0")/../scripts/common.sh"
lock_install
cd "$ROOT"
N=${1:-10000000}
KILLS=${2:-10}
RUNS=3
if ! citus_installed; then
    echo "Citus is not installed in PostgreSQL $PG_MAJOR: nothing to measure" >&2
    exit 1
fi
ensure_toolchain
install_extension >/dev/null
DB=cv_bench
COORD=9710
W1=9711
W2=9712
start_citus $DB $COORD $W1 $W2 -- "shared_buffers = '512MB'" "work_mem = '256MB'" \
    "max_parallel_workers = 4" "citus.shard_count = 32" "max_connections = 200"
add_citus_workers $DB $COORD $W1 $W2
sql() { node_psql $COORD -d $DB "$@"; }
sql_value() { node_psql $COORD -d $DB -At "$@"; }
now_ms() { date +%s%3N; }

mkdir -p bench/results
OUT=bench/results/citus.txt
{
    echo "bench/citus.sh $N $KILLS — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'),"
    echo "Citus $(sql_value -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'"), customer_value $(awk -F'"' '/^version/ {print $2; exit}' Cargo.toml); coordinator + 2 workers on this machine vs one node"
} | tee "$OUT"

step "generating $N customers (distributed and one-node copies)"
sql <<SQL
CREATE EXTENSION customer_value;
CREATE FUNCTION bench_u(i bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS \$\$ SELECT ((hashint8extended(i, k) & 4503599627370495) + 0.5) / 4503599627370496.0 \$\$;
CREATE TABLE customers (id bigint PRIMARY KEY, f1 float8, f2 float8, f3 float8, f4 float8, f5 float8, spend float8);
SELECT create_distributed_table('customers', 'id');
CREATE TABLE customers_one (LIKE customers INCLUDING ALL);
INSERT INTO customers_one
SELECT i, bench_u(i, 1) * 10, bench_u(i, 2) * 100, bench_u(i, 3), bench_u(i, 4) * 5, bench_u(i, 5) * 50,
       20 + 3 * bench_u(i, 1) * 10 + 0.5 * bench_u(i, 2) * 100 + 40 * bench_u(i, 3) * bench_u(i, 4) + 10 * bench_u(i, 6)
  FROM generate_series(1, $N) AS i;
INSERT INTO customers SELECT * FROM customers_one;
-- RFM summaries with the structure of real ones: the CDNOW sample's 2,357 summaries (weeks, x,
-- t_x, T, mean repeat spend), repeated, each repeat's spend scaled by up to ±5 % in cents
CREATE TABLE cdnow (id int, x float8, t_x float8, t float8, zbar float8);
\copy cdnow FROM 'tests/data/cdnow_customers_summary_with_transactions.csv' WITH (FORMAT csv, HEADER)
CREATE TABLE rfm (id bigint PRIMARY KEY, frequency float8, recency float8, t float8, monetary_value float8);
SELECT create_distributed_table('rfm', 'id');
CREATE TABLE rfm_one (LIKE rfm INCLUDING ALL);
INSERT INTO rfm_one
SELECT i, c.x, c.t_x, c.t,
       CASE WHEN c.x = 0 THEN 0 ELSE round((c.zbar * (0.95 + 0.1 * bench_u(i, 13)))::numeric, 2)::float8 END
  FROM generate_series(1, $N) AS i
  JOIN cdnow c ON c.id = 1 + (i - 1) % 2357;
INSERT INTO rfm SELECT * FROM rfm_one;
VACUUM ANALYZE customers_one; VACUUM ANALYZE rfm_one;
SQL
sql -c "VACUUM ANALYZE customers" -c "VACUUM ANALYZE rfm"

step "training linear and gbm on a 2 % sample of the distributed table; distributing the store"
sql -c "SELECT name, algorithm FROM customer_value.train('lin', 'customers', 'spend', 'linear', '{\"sample\": 0.02}')" \
    -c "SELECT name, algorithm FROM customer_value.train('gbm', 'customers', 'spend', 'gbm', '{\"sample\": 0.02, \"n_trees\": 100, \"max_depth\": 6}')" \
    -c "SELECT * FROM customer_value.distribute()" >/dev/null

best_ms() {  # best of RUNS wall-clock times of one statement
    local best="" t0 t1 ms i
    for i in $(seq $RUNS); do
        t0=$(now_ms); sql -c "$1" >/dev/null; t1=$(now_ms); ms=$((t1 - t0))
        if [ -z "$best" ] || [ $ms -lt "$best" ]; then best=$ms; fi
    done
    echo "$best"
}
{
    echo
    echo "Scoring sum(customer_value(c, m)) over $N customers, best of $RUNS (rows/s)"
    printf '%-8s %22s %26s\n' model "distributed (2 workers)" "one node (2 par. workers)"
} | tee -a "$OUT"
for model in lin gbm; do
    d=$(best_ms "SELECT sum(customer_value(c, '$model')) FROM customers c")
    o=$(best_ms "SET max_parallel_workers_per_gather = 2; SELECT sum(customer_value(c, '$model')) FROM customers_one c")
    printf '%-8s %16s %5s ms %20s %5s ms\n' $model "$((N * 1000 / d))" "$d" "$((N * 1000 / o))" "$o" | tee -a "$OUT"
done

step "BG/NBD + Gamma-Gamma on $N customers: distributed (grouped) vs one node (row by row)"
{
    echo
    echo "CLV fit (bgnbd + gamma_gamma) on $N customers"
    printf '%-28s %10s %16s %18s %14s\n' source "fit s" "rows to backend" "backend VmHWM MiB" "log-lik."
} | tee -a "$OUT"
for case in "distributed|rfm|{}" "one node|rfm_one|{}"; do
    IFS='|' read -r label table options <<<"$case"
    line=$(sql_value -F'|' <<SQL
SELECT clock_timestamp() AS t0 \gset
SELECT coalesce(metrics ->> 'summary_rows', metrics ->> 'customers') AS rows,
       round((metrics ->> 'log_likelihood')::numeric, 1) AS ll
  FROM customer_value.train('clv_$table', '$table', NULL, 'clv', '$options') \gset fit_
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 2),
       :'fit_rows',
       (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint / 1024,
       :'fit_ll';
SQL
)
    IFS='|' read -r secs rows hwm ll <<<"$line"
    printf '%-28s %10s %16s %18s %14s\n' "$label" "$secs" "$rows" "$hwm" "$ll" | tee -a "$OUT"
done

step "kill -9 of a worker during deploys ($KILLS times)"
sql -c "SELECT version FROM customer_value.train('flip', 'customers', 'spend', 'linear', '{\"sample\": 0.001, \"deploy\": \"always\"}')" >/dev/null
consistent=0
for k in $(seq "$KILLS"); do
    # deploys flip version 1 ↔ 2 in a loop while worker 1 is killed at a random moment
    ( for j in $(seq 200); do sql -c "SELECT customer_value.deploy('flip', $((j % 2 + 1)))" >/dev/null 2>&1; done ) &
    flipper=$!
    sleep "0.$((RANDOM % 9 + 1))"
    postmaster=$(head -1 "$CITUS_DIR/$W1/postmaster.pid")
    kill -9 $(pgrep -P "$postmaster") "$postmaster" 2>/dev/null || true
    sleep 0.5
    # a killed postmaster may linger as a zombie here (nothing reaps it), which would make its
    # own pid file look live: it is dead, and so is every process it started
    rm -f "$CITUS_DIR/$W1/postmaster.pid" "$CITUS_DIR/.s.PGSQL.$W1.lock"
    wait $flipper || true
    as_db_user "$PG_BIN/pg_ctl" -D "$CITUS_DIR/$W1" -l "$CITUS_DIR/$W1.log" -w start >/dev/null
    sql -c "SELECT recover_prepared_transactions()" >/dev/null
    verdict=$(sql_value -c "SELECT count(DISTINCT result) = 1 AND bool_and(result <> '') AND bool_and(success)
                              FROM run_command_on_placements('customer_value.models',
                                   \$\$SELECT string_agg(version::text, ',') FROM %s WHERE name = 'flip' AND deployed\$\$)")
    [ "$verdict" = "t" ] && consistent=$((consistent + 1))
done
{
    echo
    echo "Worker killed during deploys: $consistent of $KILLS kills left every node serving the same single version"
} | tee -a "$OUT"
[ "$consistent" -eq "$KILLS" ]
