-- Customer lifetime value on the CDNOW 1/10 sample: RFM summary, BG/NBD, Pareto/NBD,
-- Gamma-Gamma and CLV, checked against the published values (Fader, Hardie & Lee 2005).
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
\getenv test_data CV_TEST_DATA
\set transactions_csv :test_data '/cdnow_sample_transactions.csv'
\set summary_csv :test_data '/cdnow_customers_summary_with_transactions.csv'
BEGIN;
CREATE TABLE sample_tx (customer_id int, purchased date, cds int, dollars numeric);
COPY sample_tx FROM :'transactions_csv' WITH (FORMAT csv, HEADER);
CREATE TABLE published_summary (id int PRIMARY KEY, x int, t_x float8, "T" float8, zbar float8);
COPY published_summary FROM :'summary_csv' WITH (FORMAT csv, HEADER);
SELECT count(*) AS transactions, count(DISTINCT customer_id) AS customers FROM sample_tx;

-- 1. The RFM summary, calibration up to 1997-09-30 (inclusive), weeks, one purchase per day.
SELECT * FROM customer_value.rfm('sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
                                 '{"holdout_end": "1998-06-30"}')
 ORDER BY customer::int LIMIT 4;
-- It reproduces the published summary of all 2,357 customers (x, t_x, T to 2 decimals, zbar to 0.01).
SELECT count(*) AS customers,
       count(*) FILTER (WHERE r.frequency <> p.x) AS x_differs,
       count(*) FILTER (WHERE round(r.recency::numeric, 2) <> round(p.t_x::numeric, 2)) AS t_x_differs,
       count(*) FILTER (WHERE round(r.t::numeric, 2) <> round(p."T"::numeric, 2)) AS t_differs,
       count(*) FILTER (WHERE abs(r.monetary_value - p.zbar) > 0.01) AS zbar_differs
  FROM customer_value.rfm('sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30') r
  JOIN published_summary p ON p.id = r.customer::int;
-- As a table keyed by the source's own column, with the 39-week holdout.
SELECT customer_value.create_rfm('cdnow_rfm', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                 '1997-09-30', '{"holdout_end": "1998-06-30"}') AS customers;
SELECT sum(holdout_purchases) AS holdout_purchases, round(sum(holdout_spend)::numeric, 2) AS holdout_spend,
       count(*) FILTER (WHERE frequency = 0) AS no_repeats
  FROM cdnow_rfm;
-- Other periods and units: weeks collapse purchases per week; t in days.
SELECT customer, frequency, recency, t FROM customer_value.rfm('sample_tx', 'customer_id', 'purchased', 'dollars',
       '1997-09-30', '{"period": "week", "time_unit": "day"}') WHERE customer = '1';

-- rfm() groups the log once by customer with the aggregate customer_value.rfm_periods; in a
-- parallel plan each worker's partial states are serialised and combined, to the same summary.
CREATE TEMP TABLE serial_periods AS
SELECT customer_id, customer_value.rfm_periods(purchased::timestamp, dollars::float8,
                                                purchased <= '1997-09-30', '1997-09-30') AS p
  FROM sample_tx GROUP BY customer_id;
SELECT * FROM serial_periods WHERE customer_id = 1;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL enable_sort = off;
CREATE VIEW parallel_periods AS
SELECT customer_id, customer_value.rfm_periods(purchased::timestamp, dollars::float8,
                                                purchased <= '1997-09-30', '1997-09-30') AS p
  FROM sample_tx GROUP BY customer_id;
EXPLAIN (COSTS OFF) SELECT * FROM parallel_periods;
SELECT count(*) AS customers, count(*) FILTER (WHERE s.p IS DISTINCT FROM q.p) AS differ
  FROM serial_periods s FULL JOIN (SELECT * FROM parallel_periods) q USING (customer_id);
RESET max_parallel_workers_per_gather;
RESET enable_sort;
-- Without a calibration end there is no t: an error, not an infinite age.
SELECT customer_value.rfm_periods(purchased::timestamp, dollars::float8, true, NULL)
  FROM sample_tx WHERE customer_id = 1;
-- Its support functions take the aggregate's internal state: SQL cannot call them directly.
SELECT customer_value.rfm_periods_step(NULL::internal, '2024-01-01'::timestamp, 1::float8, true,
                                       '2024-02-01'::timestamp);

-- 2. BG/NBD. Published: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
SELECT name, algorithm, round((metrics ->> 'log_likelihood')::numeric, 1) AS log_likelihood
  FROM customer_value.train('bgnbd', 'cdnow_rfm', 'holdout_purchases', 'bgnbd', '{"horizon": 39}');
SELECT key, round(value::numeric, 3) FROM jsonb_each_text(customer_value.model_params('bgnbd'))
 WHERE key IN ('r', 'alpha', 'a', 'b') ORDER BY key;
-- Published: E[Y(39) | x = 2, t_x = 30.43, T = 38.86] = 1.226.
SELECT round(customer_value.expected_purchases(r, 39, 'bgnbd')::numeric, 3) AS expected_39_weeks,
       round(customer_value.p_alive(r, 'bgnbd')::numeric, 3) AS p_alive
  FROM (SELECT 2 AS frequency, 30.43 AS recency, 38.86 AS t) r;
-- Holdout check: predicted vs actual repeat purchases in the 39 weeks.
SELECT key, round(value::numeric, 3) FROM jsonb_each_text(customer_value.evaluate('bgnbd', 'cdnow_rfm', 'holdout_purchases'))
 ORDER BY key;

-- 3. Pareto/NBD. Published: r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669, LL = -9595.0.
SELECT name, round((metrics ->> 'log_likelihood')::numeric, 1) AS log_likelihood
  FROM customer_value.train('pnbd', 'cdnow_rfm', NULL, 'pareto_nbd', '{"horizon": 39}');
SELECT key, round(value::numeric, 3) FROM jsonb_each_text(customer_value.model_params('pnbd'))
 WHERE key IN ('r', 'alpha', 's', 'beta') ORDER BY key;

-- 3b. Modified BG/NBD (Batislam et al. 2007): a customer may drop out at the first purchase.
-- BTYDplus on this sample: r = 0.525, alpha = 6.183, a = 0.891, b = 1.614; lifetimes'
-- ModifiedBetaGeoFitter at those values: LL = -9582.13, E[Y(39) | 2, 30.43, 38.86] = 1.263,
-- P(alive) 0.706; and a one-time buyer is no longer certainly alive: P(alive | 0, 0, 38.86) = 0.390.
SELECT name, algorithm, round((metrics ->> 'log_likelihood')::numeric, 2) AS log_likelihood
  FROM customer_value.train('mbgnbd', 'cdnow_rfm', 'holdout_purchases', 'mbgnbd', '{"horizon": 39}');
SELECT key, round(value::numeric, 3) FROM jsonb_each_text(customer_value.model_params('mbgnbd'))
 WHERE key IN ('r', 'alpha', 'a', 'b') ORDER BY key;
SELECT frequency, round(customer_value.expected_purchases(r, 39, 'mbgnbd')::numeric, 3) AS expected_39_weeks,
       round(customer_value.p_alive(r, 'mbgnbd')::numeric, 3) AS p_alive
  FROM (VALUES (2, 30.43, 38.86), (0, 0, 38.86)) AS r(frequency, recency, t);

-- 4. Gamma-Gamma on the 946 repeat customers. Published: p = 6.25, q = 3.74, gamma = 15.44
-- (here from the exact mean spends; the shipped summary, rounded to cents, gives 15.45).
SELECT name, metrics ->> 'spend_customers' AS repeat_customers
  FROM customer_value.train('spend', 'cdnow_rfm', NULL, 'gamma_gamma');
SELECT key, round(value::numeric, 2) FROM jsonb_each_text(customer_value.model_params('spend'))
 WHERE key IN ('p', 'q', 'gamma') ORDER BY key;

-- 5. CLV: BG/NBD × Gamma-Gamma, 39 weeks, 10 % a year discount, deployed; tiers on its value.
SELECT name, algorithm, deployed, round((metrics ->> 'log_likelihood')::numeric, 1) AS count_ll,
       round((metrics ->> 'spend_log_likelihood')::numeric, 1) AS spend_ll
  FROM customer_value.train('clv', 'cdnow_rfm', 'holdout_spend', 'clv', '{"horizon": 39, "discount_rate": 0.1}');
SELECT customer_id, frequency, round(recency::numeric, 2) AS recency, round(monetary_value::numeric, 2) AS monetary,
       round(customer_value(c, 'clv')::numeric, 2) AS clv, customer_tier(c, 'clv') AS tier,
       round(customer_value.expected_spend(c, 'clv')::numeric, 2) AS expected_spend,
       round(holdout_spend::numeric, 2) AS actual_spend
  FROM cdnow_rfm c ORDER BY customer_value(c, 'clv') DESC, customer_id LIMIT 5;
SELECT bucket, customers, round(mean_predicted::numeric, 2) AS mean_predicted,
       round(mean_actual::numeric, 2) AS mean_actual, round(share_of_actual::numeric, 3) AS share
  FROM customer_value.lift('clv', 'cdnow_rfm', 'holdout_spend') ORDER BY bucket;
SELECT customer_tier(c, 'clv') AS tier, count(*) FROM cdnow_rfm c GROUP BY 1 ORDER BY 2;
-- Pareto/NBD as the count model, no discounting
SELECT algorithm, customer_value.model_params('clv_pnbd') ->> 'count_model' AS count_model
  FROM customer_value.train('clv_pnbd', 'cdnow_rfm', NULL, 'clv',
       '{"count_model": "pareto_nbd", "horizon": 39, "discount_rate": 0}');
-- MBG/NBD as the count model; an unknown one lists the choices
SELECT algorithm, customer_value.model_params('clv_mbg') ->> 'count_model' AS count_model
  FROM customer_value.train('clv_mbg', 'cdnow_rfm', NULL, 'clv', '{"count_model": "mbgnbd", "horizon": 39}');
SELECT * FROM customer_value.train('clv_x', 'cdnow_rfm', NULL, 'clv', '{"count_model": "bg"}');
\echo :LAST_ERROR_SQLSTATE

-- 6. Bad inputs.
SELECT * FROM customer_value.rfm('sample_tx', 'nope', 'purchased', 'dollars', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.rfm('sample_tx', 'customer_id', 'cds', 'dollars', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.rfm('sample_tx', 'customer_id', 'purchased', 'purchased', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.rfm('sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30', '{"period": "year"}');
\echo :LAST_ERROR_SQLSTATE
-- a CLV horizon beyond 100 years (it would value each customer over 3·10^10 monthly steps)
SELECT * FROM customer_value.train('far', 'cdnow_rfm', NULL, 'clv', '{"horizon": 1e6, "time_unit_days": 1e6}');
\echo :LAST_ERROR_SQLSTATE
-- create_rfm takes a table name, nothing else
SELECT customer_value.create_rfm('x; DROP TABLE sample_tx', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30');
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.create_rfm('"Odd Name"', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30') AS customers;
-- an empty log gives an empty summary, and nothing to fit
SELECT count(*) FROM customer_value.rfm('SELECT * FROM sample_tx WHERE false', 'customer_id', 'purchased', 'dollars', '1997-09-30');
SELECT * FROM customer_value.train('m', 'SELECT * FROM cdnow_rfm WHERE false', NULL, 'bgnbd');
\echo :LAST_ERROR_SQLSTATE
-- all customers without repeat purchases
SELECT * FROM customer_value.train('m', 'SELECT * FROM cdnow_rfm WHERE frequency = 0', NULL, 'bgnbd');
\echo :LAST_ERROR_SQLSTATE
-- non-positive spend: excluded from Gamma-Gamma and counted; none left is an error
SELECT metrics ->> 'excluded_nonpositive_spend' AS excluded, metrics ->> 'spend_customers' AS used
  FROM customer_value.train('m', 'SELECT customer_id, frequency, recency, t, CASE WHEN customer_id <= 100 THEN -5 ELSE monetary_value END AS monetary_value FROM cdnow_rfm', NULL, 'gamma_gamma');
SELECT * FROM customer_value.train('m', 'SELECT frequency, recency, t, 0 AS monetary_value FROM cdnow_rfm', NULL, 'gamma_gamma');
\echo :LAST_ERROR_SQLSTATE
-- no convergence within the allowed iterations
SELECT * FROM customer_value.train('m', 'cdnow_rfm', NULL, 'pareto_nbd', '{"max_iterations": 5}');
\echo :LAST_ERROR_SQLSTATE
-- cancel and statement_timeout stop a fit between iterations; nothing is stored
SAVEPOINT before_timeout;
SET LOCAL statement_timeout = '100ms';
SELECT * FROM customer_value.train('slow', 'SELECT frequency, recency, t + g / 1000.0 AS t FROM cdnow_rfm, generate_series(1, 100) AS g', NULL, 'pareto_nbd');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT before_timeout;
SELECT count(*) AS stored FROM customer_value.models WHERE name = 'slow';
-- a summary that breaks the definitions; a missing RFM column; a NULL
SELECT * FROM customer_value.train('m', 'SELECT frequency, t + 1 AS recency, t FROM cdnow_rfm', NULL, 'bgnbd');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'SELECT frequency, t FROM cdnow_rfm', NULL, 'bgnbd');
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(r, 'bgnbd') FROM (SELECT NULL::int AS frequency, 1.0 AS recency, 2.0 AS t) r;
\echo :LAST_ERROR_SQLSTATE
-- a CLV function on a model without that part; options of other algorithms
SELECT customer_value.p_alive(c, 'spend') FROM cdnow_rfm c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.expected_purchases(c, -1, 'bgnbd') FROM cdnow_rfm c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'cdnow_rfm', NULL, 'bgnbd', '{"test_size": 0.3}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'cdnow_rfm', NULL, 'clv', '{"count_model": "gbm"}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
