#!/usr/bin/env bash
# Reliability drill (issue #10, item 17b): every function of the extension called with random
# arguments drawn from adversarial sets — NULLs, empty and huge strings, odd and injected names,
# pinned and impossible versions, rows of other tables, extreme and non-finite numbers,
# malformed jsonb options, every algorithm, a restricted model, another role — DRILL_CALLS times
# (default 100,000), each in its own subtransaction inside one PL/pgSQL loop, seeded. A quarter
# of the calls run as a non-superuser trainer outside the restricted model's list.
# Invariants: the postmaster never restarts (no backend crashed or aborted), no call ends in
# XX000 (an internal error: what a caught Rust panic becomes) or any other XX class, and the
# server log has no "terminated by signal" and no PANIC. Prints the SQLSTATEs seen, per function.
#
# Usage: scripts/drills/call_fuzz.sh      DRILL_CALLS (100000)  DRILL_SEED (0.42)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/drill_common.sh"
lock_install
CALLS=${DRILL_CALLS:-100000}
SEED=${DRILL_SEED:-0.42}

ensure_toolchain
install_extension
step "starting a throwaway cluster"
start_cluster
psql_run -c "CREATE EXTENSION customer_value"
make_customers customers 3000 5
make_models_of_every_kind cv_fuzz_trainer

step "models of every kind, a restricted one, an RFM summary, a log model, a trainer role"
# a real log for the log models: the CDNOW 1/10 sample (2,357 customers, 1997-01 .. 1998-06)
psql_run -c "CREATE TABLE txl (customer_id int, day date, cds int, amount numeric)" \
         -c "\\copy txl FROM '$ROOT/tests/data/cdnow_sample_transactions.csv' WITH (FORMAT csv, HEADER)"
psql_run >/dev/null <<'SQL'
SELECT * FROM customer_value.train('mlp', 'customers', 'spend', 'mlp', '{"epochs": 5}');
SELECT * FROM customer_value.train('secret', 'customers', 'spend', 'ridge');
GRANT SELECT ON txl TO cv_fuzz_trainer;
SELECT * FROM customer_value.train_from_log('logm', 'txl', 'customer_id', 'day', 'amount', '1997-09-30', '{"algorithm": "ridge", "horizon_days": 90}');
SELECT customer_value.create_log_features('lf', 'logm', '1997-09-30');
GRANT SELECT ON lf TO cv_fuzz_trainer;
CREATE ROLE cv_fuzz_finance;
SELECT customer_value.restrict_model('secret', ARRAY['cv_fuzz_finance']);
CREATE TABLE extreme AS SELECT * FROM customers LIMIT 0;
INSERT INTO extreme (customer_id, f1, spend) VALUES (1, 'NaN', 1), (2, 'Infinity', 2), (3, 1e308, 1e308), (4, -1e308, 3), (5, NULL, NULL);
GRANT SELECT ON extreme TO cv_fuzz_trainer;
GRANT CREATE ON SCHEMA public TO cv_fuzz_trainer;
CREATE TABLE fuzz_calls (fn text, sqlstate text, calls int, example text, PRIMARY KEY (fn, sqlstate));
GRANT ALL ON fuzz_calls TO cv_fuzz_trainer;
SQL

step "fuzzing: $CALLS calls"
start_time=$(psql_run -At -c "SELECT pg_postmaster_start_time()")
started=$(now)
psql_run -v seed="$SEED" -v calls="$CALLS" >/dev/null <<'SQL'
SET client_min_messages = error;
SET statement_timeout = 0;   -- the loop is one statement; the drill's caller bounds it
SELECT setseed(:seed);
SELECT set_config('fuzz.calls', :'calls', false);
DO $fuzz$
DECLARE
    names text[] := ARRAY[NULL, '', 'spend', 'spend@1', 'spend@2', 'spend@0', 'spend@-1', 'spend@99999999999',
                          'gbm', 'mlp', 'churn', 'region', 'clv', 'secret', 'secret@1', 'no_such_model', '@',
                          repeat('x', 10000), E'sp\x01end', 'spend''; DROP TABLE customers; --', 'Spend', 'logm'];
    sources text[] := ARRAY[NULL, '', 'customers', 'rfm', 'extreme', 'tx', 'pg_class', 'no_such_table',
                            'SELECT 1', 'SELECT * FROM customers WHERE false', '(SELECT', 'customers; DROP TABLE customers',
                            repeat('a', 5000), 'SELECT NULL::int AS x, 1 AS spend', 'SELECT *, 1 AS spend FROM customers',
                            'SELECT customer_id, spend FROM customers TABLESAMPLE SYSTEM (50)', 'VALUES (1, 2)'];
    columns text[] := ARRAY[NULL, '', 'spend', 'churned', 'region', 'customer_id', 'frequency', 'holdout_spend', 'nope', repeat('c', 100)];
    algorithms text[] := ARRAY[NULL, 'auto', 'linear', 'ridge', 'lasso', 'elastic_net', 'random_forest', 'gbm', 'mlp',
                               'logistic', 'bgnbd', 'pareto_nbd', 'gamma_gamma', 'clv', 'bogus', ''];
    options text[] := ARRAY[NULL, '{}', '[]', '1', '"x"', 'null', '{"test_size": 2}', '{"test_size": 0.004}', '{"n_trees": 1e308}',
                            '{"n_trees": 2, "max_depth": 2}', '{"tiers": []}', '{"tiers": [{"name": "a", "share": 2}]}', '{"sample": 0.5}',
                            '{"sample": -1}', '{"group": true}', '{"features": ["nope"]}', '{"candidates": []}', '{"candidates": ["bgnbd"]}',
                            '{"metric": "auc"}', '{"columns": {"count": "frequency"}}', '{"horizon": -1}', '{"deploy": "always"}',
                            '{"search": {"n_trees": [1, 2]}, "n_trees": 2}', '{"epochs": 1, "hidden_layers": [1]}',
                            '{"impute": {"orders": "mode"}}', '{"as_of": "not a date"}', '{"penalizer": 1e300}', '{"max_iterations": 1}',
                            '{"holdout_end": "2024-01-01"}', '{"period": "year"}', '{"x": {"y": [1, {"z": null}]}}',
                            '{"horizon_days": 0}', '{"horizon_days": 1e9}', '{"horizon_days": 60, "algorithm": "ridge"}', '{"horizon_days": 90, "count_model": "mbgnbd", "algorithm": "linear"}', '{"window_days": 1}', '{"cutoffs": 100000}', '{"cutoffs": 1, "algorithm": "linear"}',
                            '{"cutoff_step_days": -3}', '{"count_model": "nope"}',
                            '{"attributes": "customers"}', '{"algorithm": "gbm", "loss": "hurdle", "n_trees": 3}', '{"loss": "ziln"}',
                            '{"algorithm": "bgnbd"}', '{"algorithm": "mlp", "epochs": 1, "loss": "hurdle"}'];
    logs text[] := ARRAY[NULL, '', 'txl', 'txl', 'txl', 'customers', 'extreme', 'no_such_table', 'SELECT customer_id, day, -amount AS amount FROM txl',
                         'SELECT customer_id, day, NULL::numeric AS amount FROM txl', 'SELECT customer_id::text AS customer_id, day::timestamptz AS day, amount::float8 AS amount FROM txl',
                         'SELECT 1 AS customer_id, DATE ''2024-01-01'' AS day, 1 AS amount', '(SELECT'];
    as_ofs text[] := ARRAY[NULL, '1997-09-30', '1997-09-30', '1998-06-30', '1997-01-02', '2024-09-30', '1900-01-01', 'infinity', '-infinity', '2100-01-01'];
    rows text[] := ARRAY['c', '(SELECT c FROM customers c LIMIT 1)', 'r', 'ROW(1, 2)', 'ROW(NULL)', '(SELECT l FROM lf l LIMIT 1)',
                         '(SELECT e FROM extreme e LIMIT 1)', '(SELECT p FROM pg_class p LIMIT 1)',
                         '(SELECT x FROM (SELECT 1e308::float8 AS f1, ''NaN''::float8 AS f2) x)',
                         '(SELECT x FROM (SELECT -3 AS frequency, 5.0 AS recency, 1.0 AS t, 2.0 AS monetary_value) x)'];
    numbers text[] := ARRAY['NULL', '0', '1', '-1', '2', '39', '1e308', '''NaN''::float8', '''-Infinity''::float8', '2147483647'];
    functions text[] := ARRAY['customer_value', 'customer_tier', 'predict_proba', 'explain', 'p_alive',
                              'expected_purchases', 'expected_spend', 'customer_value_id', 'train', 'retrain', 'deploy',
                              'restrict_model', 'evaluate', 'lift', 'drift', 'group_report', 'model_params',
                              'feature_importance', 'rfm', 'create_rfm', 'deployed_id', 'distribute', 'schedule_retraining',
                              'train_from_log', 'create_log_features'];
    weights int[] := ARRAY[14, 8, 6, 5, 4, 4, 4, 4, 6, 3, 4, 3, 4, 3, 3, 3, 3, 3, 3, 2, 3, 1, 1, 1, 2];
    total int := 0;
    fn text;
    stmt text;
    state text;
    i int;
    k int;
    roll int;
    pick text;
    as_trainer boolean;
    message text;
BEGIN
    SELECT sum(w) INTO total FROM unnest(weights) AS w;
    FOR i IN 1..current_setting('fuzz.calls')::int LOOP
        -- a weighted choice of function
        roll := floor(random() * total)::int;
        k := 1;
        WHILE roll >= weights[k] LOOP roll := roll - weights[k]; k := k + 1; END LOOP;
        fn := functions[k];
        pick := format('%L', names[1 + floor(random() * array_length(names, 1))::int]);
        stmt := CASE fn
            WHEN 'customer_value' THEN format('SELECT customer_value(%s, %s) FROM customers c, rfm r LIMIT 3', rows[1 + floor(random() * array_length(rows, 1))::int], pick)
            WHEN 'customer_tier' THEN format('SELECT customer_tier(%s, %s) FROM customers c, rfm r LIMIT 3', rows[1 + floor(random() * array_length(rows, 1))::int], pick)
            WHEN 'predict_proba' THEN format('SELECT customer_value.predict_proba(%s, %s) FROM customers c, rfm r LIMIT 3', rows[1 + floor(random() * array_length(rows, 1))::int], pick)
            WHEN 'explain' THEN format('SELECT customer_value.explain(%s, %s) FROM customers c, rfm r LIMIT 3', rows[1 + floor(random() * array_length(rows, 1))::int], pick)
            WHEN 'p_alive' THEN format('SELECT customer_value.p_alive(%s, %s) FROM customers c, rfm r LIMIT 3', rows[1 + floor(random() * array_length(rows, 1))::int], pick)
            WHEN 'expected_purchases' THEN format('SELECT customer_value.expected_purchases(%s, %s, %s) FROM customers c, rfm r LIMIT 3', rows[1 + floor(random() * array_length(rows, 1))::int], numbers[1 + floor(random() * array_length(numbers, 1))::int], pick)
            WHEN 'expected_spend' THEN format('SELECT customer_value.expected_spend(%s, %s) FROM customers c, rfm r LIMIT 3', rows[1 + floor(random() * array_length(rows, 1))::int], pick)
            WHEN 'customer_value_id' THEN format('SELECT customer_value(%s, %s::bigint) FROM customers c, rfm r LIMIT 3', rows[1 + floor(random() * array_length(rows, 1))::int], numbers[1 + floor(random() * 7)::int])
            WHEN 'train' THEN format('SELECT * FROM customer_value.train(%L, %L, %L, %L, %L::jsonb)', 'f' || floor(random() * 5)::int,
                 sources[1 + floor(random() * array_length(sources, 1))::int], columns[1 + floor(random() * array_length(columns, 1))::int],
                 algorithms[1 + floor(random() * array_length(algorithms, 1))::int], options[1 + floor(random() * array_length(options, 1))::int])
            WHEN 'retrain' THEN format('SELECT * FROM customer_value.retrain(%s, %L::jsonb)', pick, options[1 + floor(random() * array_length(options, 1))::int])
            WHEN 'deploy' THEN format('SELECT customer_value.deploy(%s, %s::int)', pick, numbers[1 + floor(random() * 5)::int])
            WHEN 'restrict_model' THEN format('SELECT customer_value.restrict_model(%s, %s)', pick,
                 (ARRAY['NULL', 'ARRAY[]::text[]', 'ARRAY[NULL]::text[]', 'ARRAY[''no_role'']', 'ARRAY[''cv_fuzz_finance'']', 'ARRAY[''public'']'])[1 + floor(random() * 6)::int])
            WHEN 'evaluate' THEN format('SELECT customer_value.evaluate(%s, %L, %L)', pick, sources[1 + floor(random() * array_length(sources, 1))::int], columns[1 + floor(random() * array_length(columns, 1))::int])
            WHEN 'lift' THEN format('SELECT * FROM customer_value.lift(%s, %L, %L, %s::int)', pick, sources[1 + floor(random() * array_length(sources, 1))::int], columns[1 + floor(random() * array_length(columns, 1))::int], numbers[1 + floor(random() * 6)::int])
            WHEN 'drift' THEN format('SELECT * FROM customer_value.drift(%s, %L)', pick, sources[1 + floor(random() * array_length(sources, 1))::int])
            WHEN 'group_report' THEN format('SELECT * FROM customer_value.group_report(%s, %L, %L, %L)', pick, sources[1 + floor(random() * array_length(sources, 1))::int], columns[1 + floor(random() * array_length(columns, 1))::int], columns[1 + floor(random() * array_length(columns, 1))::int])
            WHEN 'model_params' THEN format('SELECT customer_value.model_params(%s)', pick)
            WHEN 'feature_importance' THEN format('SELECT * FROM customer_value.feature_importance(%s)', pick)
            WHEN 'rfm' THEN format('SELECT count(*) FROM customer_value.rfm(%L, %L, %L, %L, %L::timestamptz, %L::jsonb)',
                 sources[1 + floor(random() * array_length(sources, 1))::int], (ARRAY['customer_id', 'nope', NULL])[1 + floor(random() * 3)::int],
                 (ARRAY['day', 'amount', NULL])[1 + floor(random() * 3)::int], (ARRAY['amount', 'day', NULL])[1 + floor(random() * 3)::int],
                 (ARRAY['2024-09-30', '1900-01-01', 'infinity', NULL])[1 + floor(random() * 4)::int], options[1 + floor(random() * array_length(options, 1))::int])
            WHEN 'create_rfm' THEN format('SELECT customer_value.create_rfm(%L, %L, %L, %L, %L, %L::timestamptz, %L::jsonb)',
                 (ARRAY['rfm_f', 'x; DROP TABLE customers', '', NULL, 'pg_catalog.evil', repeat('t', 100)])[1 + floor(random() * 6)::int] || floor(random() * 1000)::int,
                 sources[1 + floor(random() * array_length(sources, 1))::int], 'customer_id', 'day', 'amount', '2024-09-30', options[1 + floor(random() * array_length(options, 1))::int])
            WHEN 'deployed_id' THEN format('SELECT customer_value.deployed_id(%s)', pick)
            WHEN 'distribute' THEN 'SELECT * FROM customer_value.distribute()'
            WHEN 'train_from_log' THEN format('SELECT * FROM customer_value.train_from_log(%L, %L, %L, %L, %L, %L::timestamptz, %L::jsonb)',
                 'l' || floor(random() * 3)::int, logs[1 + floor(random() * array_length(logs, 1))::int],
                 (ARRAY['customer_id', 'nope', NULL, 'day'])[1 + floor(random() * 4)::int], (ARRAY['day', 'amount', NULL])[1 + floor(random() * 3)::int],
                 (ARRAY['amount', 'day', NULL, 'customer_id'])[1 + floor(random() * 4)::int], as_ofs[1 + floor(random() * array_length(as_ofs, 1))::int],
                 options[1 + floor(random() * array_length(options, 1))::int])
            WHEN 'create_log_features' THEN format('SELECT customer_value.create_log_features(%L, %s, %L::timestamptz)',
                 (ARRAY['lf_f', 'x; DROP TABLE customers', '', NULL, 'pg_catalog.evil', repeat('t', 100)])[1 + floor(random() * 6)::int] || floor(random() * 1000)::int,
                 pick, as_ofs[1 + floor(random() * array_length(as_ofs, 1))::int])
            ELSE format('SELECT customer_value.schedule_retraining(%s, %L)', pick, '* * * * *')
        END;
        as_trainer := random() < 0.25;
        BEGIN
            IF as_trainer THEN
                SET LOCAL ROLE cv_fuzz_trainer;
            END IF;
            EXECUTE stmt;
            state := '00000';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
            IF state = '57014' AND fn NOT IN ('train', 'retrain') THEN
                RAISE;  -- a statement timeout on a cheap call would be a hang: stop the drill
            END IF;
        END;
        RESET ROLE;
        INSERT INTO fuzz_calls VALUES (fn, state, 1, CASE WHEN state LIKE 'XX%' THEN message || ' <- ' || left(stmt, 300) || CASE WHEN as_trainer THEN ' (as trainer)' ELSE '' END END)
            ON CONFLICT ON CONSTRAINT fuzz_calls_pkey DO UPDATE SET calls = fuzz_calls.calls + 1;
    END LOOP;
END
$fuzz$;
SQL
seconds=$(elapsed "$started")

step "results"
psql_run -c "SELECT fn, string_agg(sqlstate || ' ×' || calls, ', ' ORDER BY calls DESC) AS sqlstates, sum(calls) AS calls
               FROM fuzz_calls GROUP BY fn ORDER BY fn"
made=$(psql_run -At -c "SELECT sum(calls) FROM fuzz_calls")
internal=$(psql_run -At -c "SELECT coalesce(sum(calls), 0) FROM fuzz_calls WHERE sqlstate LIKE 'XX%'")
psql_run -c "SELECT fn, sqlstate, example FROM fuzz_calls WHERE sqlstate LIKE 'XX%'"
check "every call accounted for" "$CALLS" "$made" || true
check "calls ending in an internal error (XX…)" "0" "$internal" || true
check "postmaster start time (a crash restarts it)" "$start_time" "$(psql_run -At -c "SELECT pg_postmaster_start_time()")" || true
check "server log: crashes and panics" "0" "$(grep -cE 'terminated by signal|PANIC' "$CLUSTER_DIR/server.log" || true)" || true
echo "call fuzz: $made calls in ${seconds}s (seed $SEED); internal errors: $internal; invariant failures: $DRILL_FAILURES"
[ "$DRILL_FAILURES" -eq 0 ]
