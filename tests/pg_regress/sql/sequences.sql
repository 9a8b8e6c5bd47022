-- Sequence models from a transaction log (gru, cnn) on the CDNOW 1/10 sample: each training
-- example is the customer's history up to its cut-off as periods (purchase days and spend,
-- log-scaled) beside the log features; early stopping watches the latest cut-off. The feature
-- table carries the history as two float8[] columns that scoring reads.
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
\getenv test_data CV_TEST_DATA
\set transactions_csv :test_data '/cdnow_sample_transactions.csv'
BEGIN;
CREATE TABLE sample_tx (customer_id int, purchased date, cds int, dollars numeric);
COPY sample_tx FROM :'transactions_csv' WITH (FORMAT csv, HEADER);

-- 13 four-week periods; a short training keeps the test fast. A sequence model of a log
-- learns the zero-inflated lognormal (loss "ziln") unless told otherwise: spend is 0 or more
SELECT name, algorithm, deployed
  FROM customer_value.train_from_log('cdnow_gru', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
       '{"horizon_days": 273, "algorithm": "gru", "sequence_period": 28, "sequence_length": 13, "epochs": 20}');
SELECT name, algorithm, deployed
  FROM customer_value.train_from_log('cdnow_cnn', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
       '{"horizon_days": 273, "algorithm": "cnn", "sequence_period": 28, "sequence_length": 13, "epochs": 20, "kernel_width": 3}');
-- the backtest ranks customers, next to the classic model on the same window
SELECT name, (metrics ->> 'gini')::float8 > 0.4 AS ranks,
       (metrics -> 'baselines' -> 'bgnbd_gamma_gamma' ->> 'gini')::float8 > 0.4 AS classic_ranks
  FROM customer_value.models WHERE name IN ('cdnow_gru', 'cdnow_cnn') ORDER BY name;
SELECT name, p ->> 'encoder' AS encoder, p ->> 'periods' AS periods, p -> 'channels' AS channels
  FROM customer_value.models, LATERAL (SELECT customer_value.model_params(name) AS p) x
 WHERE name IN ('cdnow_gru', 'cdnow_cnn') ORDER BY name;

-- the feature table holds the history as arrays, oldest period first
SELECT customer_value.create_log_features('gru_features', 'cdnow_gru', '1997-09-30') AS customers;
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'gru_features'::regclass AND a.attname LIKE 'sequence%' ORDER BY a.attname;
-- customer 19 bought on 1997-01-02, 02-23, 04-20 and 07-19 (and twice in 1998, after the
-- cut-off): 271, 219, 163 and 73 days before 1997-09-30, so in periods 4, 6, 8 and 11 of the
-- 13 periods of 28 days counted back from the cut-off; the spend of period 11 is ln(1 + its dollars)
SELECT customer_id, array_length(sequence_purchases, 1) AS periods,
       (SELECT array_agg(t ORDER BY t) FROM generate_subscripts(sequence_purchases, 1) t WHERE sequence_purchases[t] > 0) AS periods_with_purchases,
       round(sequence_spend[11]::numeric, 6) AS spend_of_period_11,
       (SELECT round(ln(1 + sum(dollars))::numeric, 6) FROM sample_tx WHERE customer_id = 19 AND purchased = '1997-07-19') AS ln_1_plus_dollars
  FROM gru_features WHERE customer_id = 19;
SELECT purchased, sum(dollars) AS dollars FROM sample_tx WHERE customer_id = 19 GROUP BY 1 ORDER BY 1;
-- scoring the feature table: every customer, on the narrow path and the whole row alike
SELECT count(*) AS customers, count(*) FILTER (WHERE customer_value(f, 'cdnow_gru') >= 0) AS not_negative,
       max(abs(customer_value(f, 'cdnow_gru') - customer_value(g, 'cdnow_gru'))) AS largest_difference
  FROM gru_features f JOIN (SELECT * FROM gru_features OFFSET 0) g USING (customer_id);
SELECT customer_tier(f, 'cdnow_gru') AS tier, count(*) FROM gru_features f GROUP BY 1 ORDER BY 1;
-- explain: per period of the history (both channels summed; sequence[13] is the newest) and
-- per log feature; customer 19's purchases were in periods 4, 6, 8 and 11
SELECT e ->> 'method' AS method,
       abs((e ->> 'baseline')::float8 + (SELECT sum(value::float8) FROM jsonb_each_text(e -> 'contributions'))
           + (e ->> 'residual')::float8 - (e ->> 'prediction')::float8) < 1e-9 AS adds_up,
       (SELECT count(*) FROM jsonb_object_keys(e -> 'contributions') k WHERE k LIKE 'sequence[%') AS periods
  FROM (SELECT customer_value.explain(f, 'cdnow_gru') AS e FROM gru_features f WHERE customer_id = 19) x;
-- a history of another length is refused by name
UPDATE gru_features SET sequence_spend = sequence_spend[2:] WHERE customer_id = 19;
SELECT customer_value(f, 'cdnow_gru') FROM gru_features f WHERE customer_id = 19;
\echo :LAST_ERROR_SQLSTATE

-- sequence options belong to the sequence models
SELECT * FROM customer_value.train_from_log('bad', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
       '{"algorithm": "gbm", "sequence_length": 13}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train_from_log('bad', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
       '{"algorithm": "gru", "sequence_period": "fortnight"}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
