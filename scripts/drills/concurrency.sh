#!/usr/bin/env bash
# Reliability drill (issue #5): scoring under load while the model is redeployed and retrained.
# Model "m" has two families of versions whose predictions are far apart: version 1 learns spend
# (predictions < 1,100) and version 2 learns spend + 10,000 (> 9,000). pgbench runs DRILL_CLIENTS
# clients for DRILL_SECONDS; each transaction scores a block of customers in ONE statement and
# checks that one version scored them all (count(DISTINCT value > 5000) = 1); one transaction in ten
# scans a tenth of the table with parallel workers forced, same check. A mixed statement is
# logged in drill_mixed and fails its transaction (division by zero, which aborts the client).
# Meanwhile another session alternates customer_value.deploy('m', 1 | 2) every
# DRILL_REDEPLOY_INTERVAL seconds and, every DRILL_RETRAIN_EVERY-th time, runs
# customer_value.retrain('m', '{"deploy": "always"}') instead (a new version of the serving family).
# Invariants: no pgbench error or aborted client, no mixed-version statement, no failed redeploy,
# one deployed version at the end, no crash in the server log.
#
# Usage: scripts/drills/concurrency.sh
#   DRILL_CLIENTS (16)  DRILL_SECONDS (120)  DRILL_ROWS (100000)  DRILL_BLOCK (1000 rows per statement)
#   DRILL_REDEPLOY_INTERVAL (1.0 s)  DRILL_RETRAIN_EVERY (5)  DRILL_THRESHOLD (5000; 130 = self-test, must fail)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/drill_common.sh"
lock_install

CLIENTS=${DRILL_CLIENTS:-16}
SECONDS_RUN=${DRILL_SECONDS:-120}
ROWS=${DRILL_ROWS:-100000}
BLOCK=${DRILL_BLOCK:-1000}
INTERVAL=${DRILL_REDEPLOY_INTERVAL:-1.0}
RETRAIN_EVERY=${DRILL_RETRAIN_EVERY:-5}
# The cut that tells the families apart. A self-test of the check: DRILL_THRESHOLD=130 cuts
# through version 1's predictions, so mixed statements appear and the drill must fail.
THRESHOLD=${DRILL_THRESHOLD:-5000}
FEATURES='{"features": ["f1", "f2", "f3", "f4", "f5"]'

ensure_toolchain
install_extension
step "starting a throwaway cluster"
start_cluster "max_connections = 100" "max_worker_processes = 8" "max_parallel_workers = 4"
psql_run -c "CREATE EXTENSION customer_value"
step "generating $ROWS customers"
make_customers customers "$ROWS" 5
psql_run <<SQL
ALTER TABLE customers ADD COLUMN spend_hi float8;
UPDATE customers SET spend_hi = spend + 10000;
VACUUM ANALYZE customers;
CREATE TABLE drill_mixed (at timestamptz DEFAULT clock_timestamp(), kind text, first_id int);
SQL

step "two families of versions: 1 on spend, 2 on spend + 10000"
psql_run <<SQL
SELECT name, version, algorithm, deployed
  FROM customer_value.train('m', 'customers', 'spend', 'linear', '$FEATURES}');
SELECT name, version, algorithm, deployed
  FROM customer_value.train('m', 'customers', 'spend_hi', 'linear', '$FEATURES, "deploy": "always"}');
SQL
read -r low_max high_min < <(q "SELECT max(customer_value(c, 'm@1')), min(customer_value(c, 'm@2')) FROM customers c" | tr '|' ' ')
echo "version 1 predicts at most $low_max, version 2 at least $high_min"
check "the two families are separated by 5000" "yes" \
    "$(awk -v l="$low_max" -v h="$high_min" 'BEGIN { print ((l < 5000 && h > 5000) ? "yes" : "no") }')" || die "bad set-up"

WORK=$(mktemp -d /tmp/concurrency_drill.XXXXXX)
chmod 755 "$WORK"
cat >"$WORK/block.sql" <<'SQL'
\set start random(1, :rows - :block + 1)
SELECT count(DISTINCT (customer_value(c, 'm') > :threshold)) AS mixed
  FROM customers c WHERE customer_id BETWEEN :start AND :start + :block - 1 \gset
\if :mixed > 1
INSERT INTO drill_mixed (kind, first_id) VALUES ('block', :start);
SELECT 1 / 0 AS mixed_versions_in_one_statement;
\endif
SQL
cat >"$WORK/parallel.sql" <<'SQL'
\set k random(0, 9)
BEGIN;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SELECT count(DISTINCT (customer_value(c, 'm') > :threshold)) AS mixed FROM customers c WHERE customer_id % 10 = :k \gset
COMMIT;
\if :mixed > 1
INSERT INTO drill_mixed (kind, first_id) VALUES ('parallel', :k);
SELECT 1 / 0 AS mixed_versions_in_one_statement;
\endif
SQL
psql_run <<'SQL'
BEGIN;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT count(DISTINCT (customer_value(c, 'm') > 5000)) FROM customers c WHERE customer_id % 10 = 3;
COMMIT;
SQL

# The redeployer: alternates the deployed family; every RETRAIN_EVERY-th turn a retrain instead.
redeployer() {
    set +e
    local i=0 deploys=0 retrains=0 errors=0
    while [ ! -e "$WORK/stop" ]; do
        sleep "$INTERVAL"
        i=$((i + 1))
        if [ $((i % RETRAIN_EVERY)) -eq 0 ]; then
            if psql_run -At -c "SELECT version, decision FROM customer_value.retrain('m', '{\"deploy\": \"always\"}')" \
                    >>"$WORK/redeploy.log" 2>&1; then
                retrains=$((retrains + 1))
            else
                errors=$((errors + 1))
            fi
        else
            if psql_run -At -c "SELECT customer_value.deploy('m', $(( (i % 2) + 1 )))" >>"$WORK/redeploy.log" 2>&1; then
                deploys=$((deploys + 1))
            else
                errors=$((errors + 1))
            fi
        fi
    done
    echo "$deploys $retrains $errors" >"$WORK/redeploy.counts"
}

step "pgbench: $CLIENTS clients for ${SECONDS_RUN}s, $BLOCK rows per statement; redeploy every ${INTERVAL}s"
redeployer &
REDEPLOYER=$!
set +e
(cd "$WORK" && "$PG_BIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECONDS_RUN" -P 20 -D rows="$ROWS" -D block="$BLOCK" -D threshold="$THRESHOLD" \
    -l --log-prefix="$WORK/tx" -f "$WORK/block.sql@9" -f "$WORK/parallel.sql@1" \
    >"$WORK/pgbench.out" 2>"$WORK/pgbench.err")
PGBENCH_RC=$?
set -e
touch "$WORK/stop"
wait "$REDEPLOYER"
{ grep -v "^pgbench: error: client .* aborted" "$WORK/pgbench.err" || true; } | tail -20
cat "$WORK/pgbench.out"
read -r DEPLOYS RETRAINS REDEPLOY_ERRORS <"$WORK/redeploy.counts"

tps=$(grep -oP '^tps = \K[0-9.]+' "$WORK/pgbench.out" || echo "-")
lat=$(grep -oP '^latency average = \K[0-9.]+' "$WORK/pgbench.out" || echo "-")
txs=$(grep -oP '^number of transactions actually processed: \K[0-9]+' "$WORK/pgbench.out" || echo 0)
failed=$(grep -oP '^number of failed transactions: \K[0-9]+' "$WORK/pgbench.out" || echo 0)
aborted=$(grep -c "aborted in command" "$WORK/pgbench.err" || true)
# per-transaction log: client tx latency(µs) script_no …
read -r p50 p95 p99 pmax < <(cat "$WORK"/tx.* | awk '{ print $3 / 1000 }' | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.1f %.1f %.1f %.1f\n", v[int(NR * 0.5) + 1], v[int(NR * 0.95) + 1], v[int(NR * 0.99) + 1], v[NR] }')
read -r n_block n_parallel < <(cat "$WORK"/tx.* | awk '{ n[$4]++ } END { print n[0] + 0, n[1] + 0 }')
mixed=$(q "SELECT count(*) FROM drill_mixed")
versions=$(q "SELECT count(*) FROM customer_value.models WHERE name = 'm'")

check "pgbench exit status" "0" "$PGBENCH_RC" || true
check "aborted pgbench clients (errors)" "0" "$aborted" || true
check "failed pgbench transactions" "0" "$failed" || true
check "statements scored by two versions" "0" "$mixed" || true
check "failed redeploys / retrains" "0" "$REDEPLOY_ERRORS" || true
check "deployed versions of m" "1" "$(q "SELECT count(*) FROM customer_value.models WHERE name = 'm' AND deployed")" || true
check "no crash in the server log" "" "$(crash_lines)" || true
if [ "$REDEPLOY_ERRORS" != 0 ]; then grep -i error "$WORK/redeploy.log" | sort | uniq -c | head; fi

{
    echo "figure|value"
    echo "clients × seconds|$CLIENTS × $SECONDS_RUN s"
    echo "transactions (block of $BLOCK rows / parallel tenth of $ROWS)|$txs ($n_block / $n_parallel)"
    echo "tps|$tps"
    echo "latency average (ms)|$lat"
    echo "latency p50 / p95 / p99 / max (ms)|$p50 / $p95 / $p99 / $pmax"
    echo "errors: aborted clients / failed transactions|$aborted / $failed"
    echo "mixed-version statements|$mixed"
    echo "deploys / retrains (deploy always) / failures|$DEPLOYS / $RETRAINS / $REDEPLOY_ERRORS"
    echo "versions of m at the end|$versions"
} | summary "concurrency"
rm -rf "$WORK"
finish
