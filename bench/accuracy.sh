#!/usr/bin/env bash
# Accuracy benchmark (issue #11), side by side in one run: predictions of next period's spend
# from a transaction log, scored against what customers really spent.
#  1. CDNOW master (23,570 customers): as of 1997-09-30, the 39-week holdout to 1998-06-30 —
#     customer_value's BG/NBD × Gamma-Gamma and train_from_log with each algorithm, beside
#     lifetimes (BG/NBD and Pareto/NBD × Gamma-Gamma), scikit-learn (gbm and linear on RFM
#     features from an earlier window) and the oracle (bench/accuracy_reference.py, in a
#     throwaway venv under bench/.venv).
#     The sequence models (gru, cnn) read each customer's history by week beside the features.
#  2. UCI Online Retail, when ../shared/data/online_retail is there (a check of generality, not a
#     tuning target): as of 2011-09-09, the next 91 days.
# Prints one table and writes bench/results/accuracy.csv: accuracy, training seconds and the
# scoring rate of customer_value(row, model) over the feature table (one core).
# Usage: bench/accuracy.sh [--no-python] [--algorithms "linear gbm gbm:hurdle auto"] (algorithm:loss)
source "$(dirname "$0")/../scripts/common.sh"
lock_install
cd "$ROOT"
python=1 algorithms="linear ridge random_forest gbm gbm:hurdle mlp mlp:hurdle mlp:ziln gru cnn auto"
bench_flags "$@"
ensure_toolchain
install_extension >/dev/null
start_cluster "shared_buffers = '1GB'" "work_mem = '256MB'"
psql_run -c "CREATE EXTENSION customer_value"
mkdir -p bench/results
CSV=bench/results/accuracy.csv
echo "dataset,approach,gini,total_error_pct,decile_mape,spearman,top_decile_capture,seconds,score_rows_per_s" > "$CSV"

# score_rate MODEL TABLE: rows per second of customer_value(row, MODEL) over TABLE (one core)
score_rate() {
    local started rows
    started=$(date +%s.%N)
    rows=$(psql_run -At -c "SET max_parallel_workers_per_gather = 0;
                            SELECT count(customer_value(cv_row, '$1')) FROM $2 cv_row")
    awk "BEGIN { printf \"%.0f\", $rows / ($(date +%s.%N) - $started) }"
}

# evaluate_row DATASET APPROACH MODEL TABLE SECONDS: one CSV line from customer_value.evaluate,
# with the scoring rate over TABLE
evaluate_row() {
    local rate
    rate=$(score_rate "$3" "$4")
    psql_run -At -F, -c "SELECT '$1', '$2', round((e->>'gini')::numeric, 4), round((e->>'total_error_pct')::numeric, 2),
                                round((e->>'decile_mape')::numeric, 4), round((e->>'spearman')::numeric, 4),
                                round((e->>'top_decile_capture')::numeric, 4), $5, $rate
                           FROM customer_value.evaluate('$3', '$4', 'holdout_spend') e" >> "$CSV"
}

# log_models DATASET LOG AS_OF HOLDOUT_END HORIZON_DAYS: train_from_log with each algorithm,
# features as of AS_OF, scored against the spend in (AS_OF, HOLDOUT_END]
log_models() {
    local dataset=$1 log=$2 as_of=$3 end=$4 horizon=$5 spec algorithm loss model started seconds
    psql_run -c "CREATE TABLE ${log}_holdout AS SELECT customer_id, sum(amount)::float8 AS spend FROM $log
                  WHERE purchased > '$as_of' AND purchased <= '$end' GROUP BY 1"
    for spec in $algorithms; do
        algorithm=${spec%%:*} loss="" model="${log}_${spec/:/_}"
        if [ "$spec" != "$algorithm" ]; then loss=", \"loss\": \"${spec#*:}\""; fi
        step "$dataset: train_from_log, $spec"
        started=$(date +%s.%N)
        psql_run -c "SELECT 1 FROM customer_value.train_from_log('$model', '$log', 'customer_id', 'purchased', 'amount',
                     '$as_of', '{\"horizon_days\": $horizon, \"algorithm\": \"$algorithm\"$loss}')" >/dev/null
        seconds=$(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $started }")
        psql_run -c "SELECT customer_value.create_log_features('${log}_f', '$model', '$as_of')" >/dev/null
        psql_run -c "CREATE TABLE ${log}_eval AS SELECT f.*, coalesce(h.spend, 0) AS holdout_spend
                       FROM ${log}_f f LEFT JOIN ${log}_holdout h USING (customer_id)"
        evaluate_row "$dataset" "customer_value train_from_log ($spec)" "$model" "${log}_eval" "$seconds"
        psql_run -c "DROP TABLE ${log}_f, ${log}_eval"
    done
}

# classic_clv DATASET LOG AS_OF HOLDOUT_END HORIZON_WEEKS: BG/NBD × Gamma-Gamma, undiscounted
classic_clv() {
    local dataset=$1 log=$2 as_of=$3 end=$4 weeks=$5 started seconds
    step "$dataset: BG/NBD x Gamma-Gamma"
    started=$(date +%s.%N)
    psql_run -c "SELECT customer_value.create_rfm('${log}_rfm', '$log', 'customer_id', 'purchased', 'amount', '$as_of',
                 '{\"holdout_end\": \"$end\"}')" >/dev/null
    psql_run -c "SELECT 1 FROM customer_value.train('${log}_clv', '${log}_rfm', NULL, 'clv', '{\"horizon\": $weeks, \"discount_rate\": 0}')" >/dev/null
    seconds=$(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $started }")
    evaluate_row "$dataset" "customer_value BG/NBD x Gamma-Gamma" "${log}_clv" "${log}_rfm" "$seconds"
}

step "loading CDNOW"
load_cdnow_master cdnow
classic_clv CDNOW cdnow 1997-09-30 1998-06-30 39
log_models CDNOW cdnow 1997-09-30 1998-06-30 273

if [ $python -eq 1 ]; then
    step "CDNOW: lifetimes and scikit-learn (Python) in bench/.venv"
    if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c "import lifetimes, sklearn" 2>/dev/null; then
        python3 -m venv bench/.venv
        bench/.venv/bin/pip install -q lifetimes==0.11.3 scikit-learn
    fi
    bench/.venv/bin/python bench/accuracy_reference.py data/cdnow/CDNOW_master.txt |
        awk -F, '{ print "CDNOW," $0 }' >> "$CSV"
fi

RETAIL=../shared/data/online_retail/OnlineRetail.csv.xz
if [ -f "$RETAIL" ]; then
    step "loading UCI Online Retail (from $RETAIL)"
    psql_run -c "CREATE TABLE retail_lines (invoice text, stock_code text, description text, quantity int,
                 invoice_date timestamp, unit_price numeric, customer_id int, country text)"
    xz -dc "$RETAIL" | psql_run -c "COPY retail_lines FROM STDIN (FORMAT csv, HEADER)"
    # every line with a customer, refunds and cancellations included (negative amounts)
    psql_run -c "CREATE TABLE retail AS SELECT customer_id, invoice_date AS purchased, quantity * unit_price AS amount
                  FROM retail_lines WHERE customer_id IS NOT NULL"
    classic_clv "Online Retail" retail 2011-09-09 2011-12-09 13
    log_models "Online Retail" retail 2011-09-09 2011-12-09 91
else
    echo "(UCI Online Retail not found at $RETAIL: its section is skipped)"
fi

step "results (bench/results/accuracy.csv)"
column -s, -t < "$CSV"
