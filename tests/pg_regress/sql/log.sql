-- Models learnt from a transaction log across time (train_from_log), on the CDNOW 1/10 sample:
-- features at earlier cut-offs, the following window's spend as target, a backtest with the
-- classic CLV model and the naive prediction beside it; the feature table of any day; the time
-- split checked with a poisoned future; bad logs refused clearly.
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
\getenv test_data CV_TEST_DATA
\set transactions_csv :test_data '/cdnow_sample_transactions.csv'
BEGIN;
CREATE TABLE sample_tx (customer_id int, purchased date, cds int, dollars numeric);
COPY sample_tx FROM :'transactions_csv' WITH (FORMAT csv, HEADER);

-- 1. Train as of the end of the standard calibration (1997-09-30), for the 39-week holdout.
--    The history (273 days) is shorter than three horizons: the target window is shortened to
--    91 days and extrapolated by the count model's expected-purchase curve.
SELECT name, version, algorithm, deployed
  FROM customer_value.train_from_log('cdnow_log', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                     '1997-09-30', '{"horizon_days": 273, "algorithm": "gbm"}') \gset trained_
SELECT :'trained_name' AS name, :trained_version AS version, :'trained_algorithm' AS algorithm, :'trained_deployed' AS deployed;
SELECT jsonb_pretty(metrics -> 'backtest') AS backtest FROM customer_value.models WHERE name = 'cdnow_log';
-- The backtest (holdout window 1997-07-01 .. 1997-09-30) for the model and both baselines.
SELECT approach, round((m ->> 'gini')::numeric, 3) AS gini, round((m ->> 'total_error_pct')::numeric, 1) AS total_error_pct,
       round((m ->> 'decile_mape')::numeric, 3) AS decile_mape, round((m ->> 'top_decile_capture')::numeric, 3) AS top_decile_capture
  FROM customer_value.models,
       LATERAL (VALUES ('model', metrics),
                       ('bgnbd_gamma_gamma', metrics -> 'baselines' -> 'bgnbd_gamma_gamma'),
                       ('last_window', metrics -> 'baselines' -> 'last_window')) AS a(approach, m)
 WHERE name = 'cdnow_log';
SELECT metrics -> 'n_train' AS n_train, metrics -> 'n_test' AS n_test,
       metrics -> 'log' -> 'customers' AS customers, metrics -> 'log' -> 'repeat_buyers' AS repeat_buyers,
       metrics -> 'log' -> 'examples_per_cutoff' AS examples_per_cutoff,
       metrics -> 'log' -> 'features_left_out' AS features_left_out
  FROM customer_value.models WHERE name = 'cdnow_log';

-- 2. The feature table as of the same day, keyed like the log; scoring reads it.
SELECT customer_value.create_log_features('cdnow_features', 'cdnow_log', '1997-09-30') AS customers;
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'cdnow_features'::regclass AND a.attnum BETWEEN 1 AND 5 ORDER BY a.attnum;
SELECT customer_id, frequency, tenure_days, days_since_last, total_spend, round(clv_p_alive::numeric, 3) AS p_alive
  FROM cdnow_features ORDER BY customer_id LIMIT 3;
SELECT customer_tier(f, 'cdnow_log') AS tier, count(*) FROM cdnow_features f GROUP BY 1 ORDER BY 2;
-- Against the real 39-week holdout (1997-10-01 .. 1998-06-30), with the naive ranking by
-- total_spend beside it.
CREATE TABLE holdout AS
SELECT f.*, coalesce(h.spend, 0) AS holdout_spend
  FROM cdnow_features f
  LEFT JOIN (SELECT customer_id, sum(dollars)::float8 AS spend FROM sample_tx
              WHERE purchased > '1997-09-30' AND purchased <= '1998-06-30' GROUP BY 1) h USING (customer_id);
SELECT key, round(value::text::numeric, 3) AS value
  FROM jsonb_each(customer_value.evaluate('cdnow_log', 'holdout', 'holdout_spend'))
 WHERE key IN ('n', 'gini', 'total_error_pct', 'decile_mape', 'top_decile_capture', 'naive_gini_by_total_spend')
 ORDER BY key;
-- explain() works on the feature table too: the contributions add up to the prediction.
SELECT round((e ->> 'prediction')::numeric, 6) = round(((e ->> 'baseline')::float8 + (SELECT sum(value::text::float8) FROM jsonb_each(e -> 'contributions')))::numeric, 6) AS adds_up
  FROM (SELECT customer_value.explain(f, 'cdnow_log') AS e FROM cdnow_features f ORDER BY customer_id LIMIT 1) x;

-- 3. No example sees its future: the same log with every purchase after as_of poisoned (a
--    thousand times the amount, and new customers) trains exactly the same model.
CREATE TABLE poisoned_tx AS
SELECT customer_id, purchased, cds, CASE WHEN purchased > '1997-09-30' THEN dollars * 1000 ELSE dollars END AS dollars
  FROM sample_tx
UNION ALL
SELECT 100000 + g, DATE '1997-10-01' + g, 1, 1e6 FROM generate_series(1, 50) g;
SELECT version FROM customer_value.train_from_log('cdnow_poisoned', 'poisoned_tx', 'customer_id', 'purchased', 'dollars',
                                                  '1997-09-30', '{"horizon_days": 273, "algorithm": "gbm"}');
SELECT (SELECT metrics FROM customer_value.models WHERE name = 'cdnow_log')
     = (SELECT metrics FROM customer_value.models WHERE name = 'cdnow_poisoned') AS same_metrics,
       count(*) FILTER (WHERE customer_value(f, 'cdnow_log') <> customer_value(f, 'cdnow_poisoned')) AS predictions_differ
  FROM cdnow_features f;
-- The poisoned log's feature table as of 1997-09-30 is the same too.
SELECT customer_value.create_log_features('poisoned_features', 'cdnow_poisoned', '1997-09-30') AS customers;
SELECT count(*) AS rows_differ FROM (TABLE cdnow_features EXCEPT TABLE poisoned_features) d;

-- 4. With the horizon as window (a history of three horizons or more), nothing is extrapolated.
SELECT metrics -> 'backtest' -> 'window_days' AS window_days, metrics -> 'backtest' -> 'extrapolated' AS extrapolated
  FROM customer_value.train_from_log('cdnow_90', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                     '1997-09-30', '{"horizon_days": 90, "algorithm": "linear"}');
-- The modified BG/NBD as the count model behind the CLV features, the extrapolation and the
-- classic baseline (a one-time buyer may have dropped out).
SELECT metrics -> 'log' ->> 'count_model' AS count_model, jsonb_object_keys(metrics -> 'baselines') AS baseline
  FROM customer_value.train_from_log('cdnow_mbg', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                     '1997-09-30', '{"horizon_days": 90, "algorithm": "linear", "count_model": "mbgnbd"}')
 ORDER BY baseline;

-- 4b. Static customer attributes (options->'attributes'), joined by the log's customer column:
--     the month of the first purchase (the acquisition cohort) and the CDs bought that day —
--     both known from the first day on, so no cut-off sees its future through them.
CREATE TABLE sample_attributes AS
SELECT customer_id, to_char(min(purchased), 'Mon') AS cohort, (array_agg(cds ORDER BY purchased, cds))[1] AS first_cds
  FROM sample_tx GROUP BY customer_id;
SELECT name, algorithm
  FROM customer_value.train_from_log('cdnow_attr', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
                                     '{"horizon_days": 273, "algorithm": "ridge", "attributes": "sample_attributes"}');
SELECT metrics -> 'log' -> 'attributes' AS attributes, metrics -> 'log' -> 'customers_with_attributes' AS with_attributes,
       (SELECT array_agg(f ->> 'name' ORDER BY f ->> 'name') FROM jsonb_array_elements(features) f
         WHERE f ->> 'name' LIKE 'cohort%' OR f ->> 'name' = 'first_cds') AS attribute_features
  FROM customer_value.models WHERE name = 'cdnow_attr';
-- The feature table carries the attributes too (their own types), and explain credits them.
SELECT customer_value.create_log_features('attr_features', 'cdnow_attr', '1997-09-30') AS customers;
SELECT customer_id, cohort, first_cds, round(customer_value(f, 'cdnow_attr')::numeric, 2) AS value
  FROM attr_features f ORDER BY customer_id LIMIT 3;
SELECT pg_catalog.format_type(atttypid, atttypmod) AS cohort_type FROM pg_attribute
 WHERE attrelid = 'attr_features'::regclass AND attname = 'cohort';
SELECT count(*) FILTER (WHERE abs((e ->> 'baseline')::float8 + s.total - (e ->> 'prediction')::float8) > 1e-6) AS not_adding_up,
       count(*) FILTER (WHERE e -> 'contributions' ? 'cohort') AS credit_cohort
  FROM attr_features f, LATERAL (SELECT customer_value.explain(f, 'cdnow_attr') AS e) x,
       LATERAL (SELECT sum(value::float8) AS total FROM jsonb_each_text(x.e -> 'contributions')) s;

-- 5. Refunds are features; a window whose refunds exceed its purchases counts as 0.
CREATE TABLE refunds_tx AS
SELECT * FROM sample_tx
UNION ALL
SELECT customer_id, purchased + 3, 0, -dollars / 2 FROM sample_tx WHERE customer_id % 5 = 0 AND purchased <= '1997-09-30';
SELECT (metrics -> 'log' -> 'features_left_out') @> '[{"feature": "refund_amount"}]' AS refunds_left_out
  FROM customer_value.train_from_log('cdnow_refunds', 'refunds_tx', 'customer_id', 'purchased', 'dollars',
                                     '1997-09-30', '{"horizon_days": 273, "algorithm": "linear"}');
SELECT customer_value.create_log_features('refund_features', 'cdnow_refunds', '1997-09-30') AS customers;
SELECT count(*) FILTER (WHERE refund_amount > 0) AS with_refunds, round(sum(refund_amount)::numeric, 2) AS refunded
  FROM refund_features;

-- 6. The two-part (hurdle) loss for zero-inflated spend: P(buy) × E[spend | buy], lognormal
--    spend among buyers. Log models are compared by their backtest Gini unless told otherwise.
SELECT algorithm, metrics ->> 'selection_metric' AS selection_metric,
       round((metrics ->> 'gini')::numeric, 3) AS backtest_gini,
       round((metrics ->> 'total_error_pct')::numeric, 1) AS backtest_total_error_pct
  FROM customer_value.train_from_log('cdnow_hurdle', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                     '1997-09-30', '{"horizon_days": 273, "algorithm": "gbm", "loss": "hurdle"}');
SELECT p ->> 'loss' AS loss, round((p ->> 'log_spend_variance')::numeric, 3) AS log_spend_variance,
       jsonb_typeof(p -> 'buy_model') AS buy_model, jsonb_typeof(p -> 'log_spend_model') AS log_spend_model
  FROM customer_value.model_params('cdnow_hurdle') AS p;
SELECT count(*) AS customers, count(*) FILTER (WHERE customer_value(f, 'cdnow_hurdle') >= 0) AS non_negative,
       round((100 * (sum(customer_value(f, 'cdnow_hurdle')) - sum(holdout_spend)) / sum(holdout_spend))::numeric, 1) AS total_error_pct
  FROM holdout f;
-- A product of two models has no additive explanation.
SELECT customer_value.explain(f, 'cdnow_hurdle') FROM cdnow_features f LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
-- The loss is for gbm and mlp, for a spend (never negative), and not with log1p.
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"algorithm": "linear", "loss": "hurdle"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"loss": "hurdle", "target_transform": "log1p"}');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE signed AS SELECT customer_id, frequency, total_spend, holdout_spend - 10 AS change FROM holdout;
SELECT * FROM customer_value.train('m', 'signed', 'change', 'gbm', '{"loss": "hurdle", "exclude": ["customer_id"]}');
\echo :LAST_ERROR_SQLSTATE
-- The zero-inflated lognormal loss of mlp (ZILN, Wang, Liu & Miao 2019): one network with three
-- outputs gives P(buy) and a buyer's lognormal μ and σ, trained on the likelihood; the
-- prediction is P(buy) · exp(μ + σ²/2), and σ differs from customer to customer.
SELECT algorithm, round((metrics ->> 'gini')::numeric, 3) AS backtest_gini,
       round((metrics ->> 'total_error_pct')::numeric, 1) AS backtest_total_error_pct
  FROM customer_value.train_from_log('cdnow_ziln', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                     '1997-09-30', '{"horizon_days": 273, "algorithm": "mlp", "loss": "ziln"}');
SELECT p ->> 'loss' AS loss, p -> 'hidden_layers' AS hidden_layers, p ->> 'parameters' AS parameters
  FROM customer_value.model_params('cdnow_ziln') AS p;
SELECT count(*) AS customers, count(*) FILTER (WHERE customer_value(f, 'cdnow_ziln') >= 0) AS non_negative,
       round((100 * (sum(customer_value(f, 'cdnow_ziln')) - sum(holdout_spend)) / sum(holdout_spend))::numeric, 1) AS total_error_pct
  FROM holdout f;
-- ZILN is a network's loss (gbm's two-part model is "hurdle"), for a spend, not with log1p.
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"algorithm": "gbm", "loss": "ziln"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"algorithm": "mlp", "loss": "ziln", "target_transform": "log1p"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'signed', 'change', 'mlp', '{"loss": "ziln", "exclude": ["customer_id"]}');
\echo :LAST_ERROR_SQLSTATE

-- 7. retrain re-runs the spec as of now: the cut-offs roll forward, and the serving version is
--    scored on the new backtest window (champion/challenger). The log is CDNOW's calibration
--    moved so that it ends today, so the figures do not depend on the day the test runs.
CREATE TABLE rolling_tx AS
SELECT customer_id, purchased + (current_date - DATE '1997-09-30') AS purchased, dollars
  FROM sample_tx WHERE purchased <= '1997-09-30';
SELECT version, deployed, metrics -> 'backtest' ->> 'as_of' = to_char(current_date - 7, 'YYYY-MM-DD') AS as_of_a_week_ago
  FROM customer_value.train_from_log('rolling', 'rolling_tx', 'customer_id', 'purchased', 'dollars',
                                     current_date - 7, '{"horizon_days": 273, "algorithm": "linear"}');
SELECT version, decision, champion_version, champion_metrics ? 'gini' AS champion_scored,
       metrics -> 'backtest' ->> 'as_of' = to_char(current_date, 'YYYY-MM-DD') AS rolled_forward
  FROM customer_value.retrain('rolling');
SELECT version, spec ->> 'as_of' = to_char(current_date - CASE version WHEN 1 THEN 7 ELSE 0 END, 'YYYY-MM-DD') AS spec_as_of, spec -> 'options' AS options
  FROM customer_value.models WHERE name = 'rolling' ORDER BY version;

-- 8. Bad input: clear errors with fitting SQLSTATEs.
-- as_of before any purchase
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1990-01-01');
\echo :LAST_ERROR_SQLSTATE
-- a history too short for the horizon's backtest
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-01-10');
\echo :LAST_ERROR_SQLSTATE
-- horizon ≤ 0, an option that does not apply, an unknown feature
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"horizon_days": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"test_size": 0.3}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"exclude": ["age"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"algorithm": "bgnbd"}');
\echo :LAST_ERROR_SQLSTATE
-- a log with no repeat buyers
CREATE TABLE one_time_tx AS SELECT DISTINCT ON (customer_id) * FROM sample_tx ORDER BY customer_id, purchased;
SELECT * FROM customer_value.train_from_log('m', 'one_time_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
-- a NULL amount
CREATE TABLE null_tx AS SELECT * FROM sample_tx;
UPDATE null_tx SET dollars = NULL WHERE customer_id = 7 AND purchased = (SELECT min(purchased) FROM sample_tx WHERE customer_id = 7);
SELECT * FROM customer_value.train_from_log('m', 'null_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
-- a time column that is not a date, an amount that is not a number, a missing column
CREATE TABLE text_time_tx AS SELECT customer_id, to_char(purchased, 'YYYYMMDD') AS purchased, dollars FROM sample_tx;
SELECT * FROM customer_value.train_from_log('m', 'text_time_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'purchased', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'bought', 'dollars', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
-- static attributes: without the customer column, with two rows for a customer, a date, a
-- feature's name, not a source
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
                                            '{"attributes": "SELECT 1 AS id, 2 AS x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
       '{"attributes": "SELECT customer_id, cohort FROM sample_attributes UNION ALL SELECT 7, ''x''"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
       '{"attributes": "SELECT customer_id, DATE ''1997-01-01'' AS signup FROM sample_attributes"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
       '{"attributes": "SELECT customer_id, first_cds AS total_spend FROM sample_attributes"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
                                            '{"attributes": 42}');
\echo :LAST_ERROR_SQLSTATE
-- an infinite as_of; NULL arguments
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', 'infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.create_log_features('f2', 'cdnow_log', '-infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('m', 'sample_tx', 'customer_id', 'purchased', 'dollars', NULL);
\echo :LAST_ERROR_SQLSTATE
-- feature tables: of a model not trained from a log, of no model, before any purchase
SELECT customer_value.create_log_features('f2', 'cdnow_log', '1990-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.create_log_features('f2', 'no_such_model', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
SELECT version FROM customer_value.train('table_model', 'holdout', 'holdout_spend', 'linear', '{"features": ["frequency", "total_spend"]}');
SELECT customer_value.create_log_features('f2', 'table_model', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
