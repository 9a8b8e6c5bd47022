# Shared helpers of the reliability drills (issue #5): sourced by the drill scripts after
# scripts/common.sh. Data generation, timing, invariant checks and the summary table.
# shellcheck shell=bash

DRILL_FAILURES=0

now() { date +%s.%N; }

# elapsed START [END]: seconds between two `now` readings, 3 decimals
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.3f", b - a }'; }

# longer_than START SECONDS: true once more than SECONDS have passed since START
longer_than() { awk -v a="$1" -v b="$(now)" -v l="$2" 'BEGIN { exit !(b - a > l) }'; }

# check DESCRIPTION EXPECTED ACTUAL: an invariant; a mismatch is reported and fails the drill.
check() {
    if [ "$2" != "$3" ]; then
        printf 'INVARIANT BROKEN: %s: expected [%s], got [%s]\n' "$1" "$2" "$3" >&2
        DRILL_FAILURES=$((DRILL_FAILURES + 1))
        return 1
    fi
}

# die MESSAGE: stops the drill at once (exit 1), with the tail of the server log.
die() {
    printf 'DRILL FAILED: %s\n' "$*" >&2
    server_log_tail >&2
    exit 1
}

server_log_tail() {
    if [ -n "${CLUSTER_DIR:-}" ] && [ -f "$CLUSTER_DIR/server.log" ]; then
        echo "--- last lines of the server log ---"
        tail -n "${1:-40}" "$CLUSTER_DIR/server.log"
    fi
}

# q SQL: one value (tuples only, unaligned), errors fatal.
q() { psql_run -At -c "$1"; }

# stats: min / median / max / mean of the numbers on stdin (one per line), e.g. "0.120 0.130 0.410 0.160"
stats() {
    sort -g | awk '{ v[NR] = $1; s += $1 }
        END { if (NR == 0) { print "- - - -"; exit }
              m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "%.3f %.3f %.3f %.3f\n", v[1], m, v[NR], s / NR }'
}

# Crash evidence in the server log (the drills that do not kill on purpose expect none).
crash_lines() {
    grep -E "terminated by signal|was terminated by|PANIC|server process .* exited with exit code [^0]" \
        "$CLUSTER_DIR/server.log" || true
}

# make_customers TABLE ROWS [FEATURES]: customer_id int PK, f1..fN float8 in [0, 10),
# spend = 50 + Σ i·f_i + noise (stays within [0, 1000] for up to 10 features), deterministic.
make_customers() {
    local table=$1 rows=$2 nf=${3:-5} cols="" names="" expr="50" i
    for i in $(seq 1 "$nf"); do
        cols+=", (random() * 10)::float8 AS f$i"
        names+=", f$i"
        expr+=" + $i * f$i"
    done
    psql_run <<SQL
SELECT setseed(0.42) \gset
CREATE TABLE $table AS
SELECT customer_id $names, round(($expr + random() * 20)::numeric, 2)::float8 AS spend
  FROM (SELECT g AS customer_id $cols FROM generate_series(1, $rows) AS g) s;
ALTER TABLE $table ADD PRIMARY KEY (customer_id);
VACUUM ANALYZE $table;
SQL
}

# summary TITLE: prints the table read from stdin (lines "label|value…") under a title.
summary() {
    printf '\n==== %s ====\n' "$1"
    column -t -s '|'
}

finish() {
    if [ "$DRILL_FAILURES" -ne 0 ]; then
        printf '\n%s: %d invariant(s) broken\n' "$(basename "$0")" "$DRILL_FAILURES" >&2
        server_log_tail >&2
        exit 1
    fi
    printf '\n%s: all invariants held\n' "$(basename "$0")"
}

# make_models_of_every_kind: on a `customers` table from make_customers, the models the fuzz
# drills call — linear, gbm, logistic, multi-class forest — plus an RFM summary `rfm` of a
# generated log `tx` with a BG/NBD model `clv`, and a trainer role $1 that may read every table.
make_models_of_every_kind() {
    local trainer=$1
    psql_run >/dev/null <<SQL
ALTER TABLE customers ADD COLUMN region text, ADD COLUMN churned boolean;
UPDATE customers SET region = (ARRAY['north', 'south', 'east'])[1 + customer_id % 3], churned = customer_id % 5 = 0;
SELECT * FROM customer_value.train('spend', 'customers', 'spend', 'linear', '{"exclude": ["churned", "region"]}');
SELECT * FROM customer_value.train('gbm', 'customers', 'spend', 'gbm', '{"n_trees": 10}');
SELECT * FROM customer_value.train('churn', 'customers', 'churned', 'logistic', '{"exclude": ["spend"]}');
SELECT * FROM customer_value.train('region', 'customers', 'region', 'random_forest', '{"n_trees": 5, "exclude": ["spend", "churned"]}');
CREATE TABLE tx AS SELECT customer_id, DATE '2024-01-01' + (customer_id * 7 + g * 13) % 300 AS day,
       (customer_id % 50 + g)::numeric AS amount
  FROM customers, generate_series(1, 3) AS g WHERE customer_id % 3 <> 0 OR g = 1;
SELECT customer_value.create_rfm('rfm', 'tx', 'customer_id', 'day', 'amount', '2024-09-30');
SELECT * FROM customer_value.train('clv', 'rfm', NULL, 'bgnbd', '{"penalizer": 0.1}');
CREATE ROLE $trainer LOGIN IN ROLE customer_value_trainer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO $trainer;
SQL
}
