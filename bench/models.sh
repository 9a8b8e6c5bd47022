#!/usr/bin/env bash
# Model benchmark (issue #4): customer_value's gradient boosting (gbm) trained and scored inside
# PostgreSQL vs LightGBM and scikit-learn's HistGradientBoosting in Python, side by side, on the
# same generated customers:
#  1. N customers with 10 numeric features, a skewed spend (a hurdle: ~29 % spend nothing, the
#     rest log-normal around a non-linear mean) and a churn flag, generated deterministically in
#     SQL (every value is a hash of customer_id), with a 20 % holdout flag (also by customer_id).
#  2. Training on the non-holdout rows, spend (regression) and churned (classification), with 100
#     trees, depth 6, learning rate 0.1 and 20 rows per leaf: wall-clock time and peak memory (the
#     backend's VmHWM; each Python fit in a fresh process, getrusage). customer_value.train keeps an
#     internal holdout of its own: test_size 0.01 makes it fit on 99 % of the same rows.
#  3. Holdout r² (spend) and AUC (churn) on the same holdout rows, all computed by the same Python
#     code from exported predictions (and customer_value.evaluate's r² as a cross-check).
#  4. Scoring the spend model: in the database serial and with 2 parallel workers (best of 3) next
#     to count(c) and a plain SQL sum of the features; LightGBM and scikit-learn one row per call
#     and in batch.
# Usage: bench/models.sh [rows…]   (default 200000 1000000). Prints one table per size and writes
# them to bench/results/models.txt. LightGBM and scikit-learn are installed in bench/.venv.
source "$(dirname "$0")/../scripts/common.sh"
lock_install
cd "$ROOT"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(200000 1000000)
RUNS=3
LIGHTGBM_VERSION=4.7.0
SKLEARN_VERSION=1.9.1
ensure_toolchain
install_extension >/dev/null
start_cluster "shared_buffers = '1GB'" "work_mem = '256MB'" "max_worker_processes = 8" "max_parallel_workers = 4"
# customer_value.training_threads = 0: the cores, capped by max_parallel_workers (4 here)
TRAIN_THREADS=$(( $(nproc) < 4 ? $(nproc) : 4 ))
psql_run -c "CREATE EXTENSION customer_value"

step "Python reference tools in bench/.venv (lightgbm $LIGHTGBM_VERSION, scikit-learn $SKLEARN_VERSION)"
[ -x bench/.venv/bin/python ] || python3 -m venv bench/.venv
PY=bench/.venv/bin/python
if ! $PY -c "import lightgbm, sklearn, sys; sys.exit(lightgbm.__version__ != '$LIGHTGBM_VERSION' or sklearn.__version__ != '$SKLEARN_VERSION')" 2>/dev/null; then
    # numpy and pandas pinned to the versions bench/clv.sh's lifetimes runs with in the same venv
    bench/.venv/bin/pip install -q lightgbm==$LIGHTGBM_VERSION scikit-learn==$SKLEARN_VERSION numpy==2.4.6 pandas==3.1.1
fi
REF="$PY bench/models_reference.py"

mkdir -p bench/results
OUT=bench/results/models.txt
: > "$OUT"
{
    echo "bench/models.sh ${SIZES[*]} — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'),"
    echo "customer_value $(awk -F'"' '/^version/ {print $2; exit}' Cargo.toml) (gbm: hessboost), LightGBM $LIGHTGBM_VERSION, scikit-learn $SKLEARN_VERSION, Python $($PY -c 'import platform; print(platform.python_version())')"
} | tee -a "$OUT"

# Every value is a function of customer_id (hashint8extended with a per-column seed): the same
# customers on any machine, whatever the row order or parallelism.
psql_run <<'SQL'
CREATE FUNCTION bench_u(i bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ((hashint8extended(i, k) & 4503599627370495) + 0.5) / 4503599627370496.0 $$;
CREATE FUNCTION bench_z(i bigint, k int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT sqrt(-2 * ln(bench_u(i, k))) * cos(2 * pi() * bench_u(i, k + 100)) $$;
SQL

GBM='"n_trees": 100, "max_depth": 6, "learning_rate": 0.1, "min_samples_leaf": 20, "test_size": 0.01, "seed": 42, "deploy": "always"'
FEATURES="f1, f2, f3, f4, f5, f6, f7, f8, f9, f10"
HWM="SELECT 'hwm|' || (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]"

# train_ours MODEL TARGET: "seconds peak_mib added_mib", timed in one session whose VmHWM is read
# after a full serial scan of the table's heap (so the shared buffers train() reads through are
# in the baseline: count(*) would be an index-only scan of the primary key, and a parallel scan
# would leave two thirds of the pages to its workers) and after train().
train_ours() {
    local model=$1 target=$2 out ms hwm0 hwm1
    out=$(psql_run -At -c "SET max_parallel_workers_per_gather = 0" -c "SELECT count($target) FROM customers" -c "RESET max_parallel_workers_per_gather" -c "$HWM" -c "\timing on" \
        -c "SELECT 'train|' || algorithm FROM customer_value.train('$model', 'SELECT $FEATURES, $target FROM customers WHERE NOT holdout', '$target', 'gbm', '{$GBM}')" \
        -c "\timing off" -c "$HWM")
    ms=$(echo "$out" | awk '/^Time:/ { print $2 }' | tail -1)
    hwm0=$(echo "$out" | awk -F'|' '/^hwm\|/ { print $2 }' | head -1)
    hwm1=$(echo "$out" | awk -F'|' '/^hwm\|/ { print $2 }' | tail -1)
    awk "BEGIN { printf \"%.2f %.0f %.0f\\n\", $ms / 1000, $hwm1 / 1024, ($hwm1 - $hwm0) / 1024 }"
}

# best-of-RUNS rows/s of a query over all customers, serial (0) or with 2 parallel workers
rate_query() {
    local workers=$1 query=$2 n=$3 best="" settings
    settings="SET max_parallel_workers_per_gather = $workers"
    [ "$workers" -gt 0 ] && settings="$settings; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0"
    if [ "$workers" -gt 0 ] && ! psql_run -At -c "$settings" -c "EXPLAIN $query" | grep -q "Workers Planned: $workers"; then
        echo "WARNING: no $workers parallel workers planned for: $query" >&2
    fi
    for _ in $(seq $RUNS); do
        local ms
        ms=$(psql_run -c "$settings" -c "\timing on" -c "$query" | awk '/^Time:/ { print $2 }' | tail -1)
        if [ -z "$best" ] || awk "BEGIN { exit !($ms < $best) }"; then best=$ms; fi
    done
    awk "BEGIN { printf \"%.0f\", $n / ($best / 1000) }"
}

# one training row of the table from REFS[KEY] ("seconds peak added metric"): ref_row LABEL KEY
ref_row() {
    local s peak add metric
    read -r s peak add metric <<< "${REFS[$2]}"
    printf '  %-44s %9.2f %9s %9s %9s\n' "$1" "$s" "$peak" "+$add" "$metric"
}

for n in "${SIZES[@]}"; do
    DIR=$CLUSTER_DIR/bench_$n
    mkdir -p "$DIR"
    step "$n customers: generating"
    psql_run -v n="$n" <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS customers;
CREATE TABLE customers AS
WITH f AS (
    SELECT i AS customer_id,
           floor(-ln(bench_u(i, 1)) * 6)    AS f1,   -- orders last year
           round(bench_u(i, 2) * 365)       AS f2,   -- days since the last order
           bench_u(i, 3) * 8                AS f3,   -- tenure in years
           exp(3.6 + 0.5 * bench_z(i, 4))   AS f4,   -- average basket
           floor(-ln(bench_u(i, 5)) * 1.2)  AS f5,   -- support calls
           bench_u(i, 6)                    AS f6,   -- e-mail open rate
           18 + floor(bench_u(i, 7) * 62)   AS f7,   -- age
           bench_u(i, 8) ^ 2                AS f8,   -- share bought on discount
           exp(1.5 + 0.8 * bench_z(i, 9))   AS f9,   -- web visits a month
           bench_z(i, 10)                   AS f10   -- noise
      FROM generate_series(1, :n) AS i)
SELECT f.*,
       -- hurdle: P(spend > 0) logistic in a few features; a positive spend log-normal with a
       -- non-linear mean (a threshold, a sine, an interaction, a square)
       CASE WHEN bench_u(customer_id, 11) < 1 / (1 + exp(-buy))
            THEN round(exp(mu + 0.6 * bench_z(customer_id, 12))::numeric, 2)::float8
            ELSE 0 END AS spend,
       bench_u(customer_id, 13) < 1 / (1 + exp(-churn)) AS churned,
       bench_u(customer_id, 14) < 0.2 AS holdout
  FROM f,
       LATERAL (SELECT 0.35 + 0.35 * f1 - 0.006 * f2 + 0.15 * f3 + 1.2 * (f6 - 0.5) - 0.25 * f5 AS buy,
                       2.2 + 0.45 * ln(1 + f1) + 0.5 * ln(f4) + 0.35 * sin(f7 / 8) + 0.4 * (f2 < 60)::int
                           + 0.25 * f3 * f6 - 0.5 * f8 ^ 2 + 0.1 * ln(f9) AS mu,
                       -1.2 + 0.007 * f2 - 0.12 * f1 + 0.35 * f5 - 1.5 * f6 + 0.8 * (f8 > 0.6)::int
                           - 0.1 * f3 AS churn) AS l;
ALTER TABLE customers ADD PRIMARY KEY (customer_id);
VACUUM ANALYZE customers;
SQL
    IFS='|' read -r n_train n_holdout zeros churn_rate < <(psql_run -At -c "SELECT count(*) FILTER (WHERE NOT holdout), count(*) FILTER (WHERE holdout), round(100 * avg((spend = 0)::int), 1), round(100 * avg(churned::int), 1) FROM customers")

    step "$n customers: customer_value gbm (train() on $n_train rows)"
    read -r ours_spend_s ours_spend_peak ours_spend_add < <(train_ours spend_gbm spend)
    read -r ours_churn_s ours_churn_peak ours_churn_add < <(train_ours churn_gbm churned)
    psql_run -c "\copy (SELECT customer_id, spend, churned::int AS churned, customer_value(c, 'spend_gbm') AS predicted_spend, customer_value.predict_proba(c, 'churn_gbm') AS churn_probability FROM customers c WHERE holdout ORDER BY customer_id) TO '$DIR/ours.csv' (FORMAT csv, HEADER)"
    IFS=, read -r _ ours_r2 ours_auc < <($REF holdout "$DIR" "$DIR/ours.csv")
    eval_r2=$(psql_run -At -c "SELECT round((customer_value.evaluate('spend_gbm', 'SELECT * FROM customers WHERE holdout', 'spend') ->> 'r2')::numeric, 4)")

    step "$n customers: LightGBM and scikit-learn on the same rows (COPY to CSV)"
    psql_run -c "\copy (SELECT customer_id, $FEATURES, spend, churned::int AS churned, holdout::int AS holdout FROM customers ORDER BY customer_id) TO '$DIR/customers.csv' (FORMAT csv, HEADER)"
    $REF prepare "$DIR/customers.csv" "$DIR"
    declare -A REFS=()
    for target in spend churned; do
        for run in "lightgbm 1" "lightgbm 2" "sklearn 1" "sklearn 2"; do
            read -r tool threads <<< "$run"
            key=${tool}_${target}_$threads
            # a fresh process per fit, so its peak RSS is that fit's
            IFS=, read -r _ _ _ s peak base metric < <($REF train "$DIR" "$tool" "$target" "$threads" "$DIR/$key.pkl")
            REFS[$key]="$s $peak $((peak - base)) $metric"
        done
    done

    step "$n customers: scoring the spend model (best of $RUNS)"
    count_0=$(rate_query 0 "SELECT count(c) FROM customers c" "$n")
    count_2=$(rate_query 2 "SELECT count(c) FROM customers c" "$n")
    plain_0=$(rate_query 0 "SELECT sum(${FEATURES//,/ +}) FROM customers c" "$n")
    plain_2=$(rate_query 2 "SELECT sum(${FEATURES//,/ +}) FROM customers c" "$n")
    ours_0=$(rate_query 0 "SELECT sum(customer_value(c, 'spend_gbm')) FROM customers c" "$n")
    ours_2=$(rate_query 2 "SELECT sum(customer_value(c, 'spend_gbm')) FROM customers c" "$n")
    declare -A PYRATE=()
    while IFS=, read -r name _ _ rate; do PYRATE[$name]=$rate; done \
        < <($REF score "$DIR" "$DIR/lightgbm_spend_1.pkl" "$DIR/sklearn_spend_1.pkl")

    {
        echo
        printf '== %s customers: %s train rows, %s holdout rows; spend 0 for %s %%, churn rate %s %% ==\n' \
            "$n" "$n_train" "$n_holdout" "$zeros" "$churn_rate"
        printf '%-46s %9s %9s %9s %9s\n' "training: 100 trees, depth 6, lr 0.1, leaf >= 20" "seconds" "peak MiB" "added" "holdout"
        echo "spend (regression)                                                                r²"
        printf '  %-44s %9.2f %9s %9s %9s\n' "customer_value gbm, train() ($TRAIN_THREADS threads)" "$ours_spend_s" "$ours_spend_peak" "+$ours_spend_add" "$ours_r2"
        ref_row "LightGBM, 1 thread" lightgbm_spend_1
        ref_row "LightGBM, 2 threads" lightgbm_spend_2
        ref_row "scikit-learn HistGradientBoosting, 1 thread" sklearn_spend_1
        ref_row "scikit-learn HistGradientBoosting, 2 threads" sklearn_spend_2
        echo "churned (classification)                                                          AUC"
        printf '  %-44s %9.2f %9s %9s %9s\n' "customer_value gbm, train() ($TRAIN_THREADS threads)" "$ours_churn_s" "$ours_churn_peak" "+$ours_churn_add" "$ours_auc"
        ref_row "LightGBM, 1 thread" lightgbm_churned_1
        ref_row "LightGBM, 2 threads" lightgbm_churned_2
        ref_row "scikit-learn HistGradientBoosting, 1 thread" sklearn_churned_1
        ref_row "scikit-learn HistGradientBoosting, 2 threads" sklearn_churned_2
        printf '(customer_value.evaluate on the holdout: r² %s)\n' "$eval_r2"
        printf '%-46s %14s %16s\n' "scoring the spend model, all $n rows" "rows/s serial" "rows/s 2 workers"
        printf '  %-44s %14s %16s\n' "SQL count(c) (materialising the row)" "$count_0" "$count_2"
        printf '  %-44s %14s %16s\n' "SQL sum(f1 + ... + f10)" "$plain_0" "$plain_2"
        printf '  %-44s %14s %16s\n' "SQL sum(customer_value(c, 'spend_gbm'))" "$ours_0" "$ours_2"
        printf '  %-44s %14s %16s\n' "LightGBM predict, one row per call" "${PYRATE[lightgbm_single_row]}" "-"
        printf '  %-44s %14s %16s\n' "LightGBM predict, batch (threads)" "${PYRATE[lightgbm_batch_1]}" "${PYRATE[lightgbm_batch_2]}"
        printf '  %-44s %14s %16s\n' "scikit-learn predict, one row per call" "${PYRATE[sklearn_single_row]}" "-"
        printf '  %-44s %14s %16s\n' "scikit-learn predict, batch (threads)" "${PYRATE[sklearn_batch_1]}" "${PYRATE[sklearn_batch_2]}"
    } | tee -a "$OUT"
    rm -rf "$DIR"
done
cat >> "$OUT" <<'EOF'

Notes: customer_value's seconds are train()'s wall clock: reading the rows through SPI, the fit,
holdout metrics, permutation importance and storing the model (it fits on 99 % of the train rows:
test_size 0.01). Python's are the fit alone (LightGBM including its Dataset binning). Peak MiB is
the backend's VmHWM (which counts the shared buffers it touched) or the Python process's peak RSS;
"added" is the peak minus the same measure just before training (after a serial scan of the table's heap /
with the data loaded as float64 arrays). One-row-per-call rates are measured on 20,000 rows
(LightGBM) and 2,000 rows (scikit-learn). r² and AUC of every model are computed by the same
Python code on the same holdout rows.
EOF
echo "results: $OUT (the run took ${SECONDS} s)"
