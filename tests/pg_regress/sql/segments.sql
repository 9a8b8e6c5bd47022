-- RFM segments for dashboards: rfm_segment(row [, model]) and rfm_score(row [, model]). Each
-- customer gets recency, frequency and monetary scores 1 … 5 — the quintile of the model's
-- training population they fall in, boundaries stored with the model like its tiers — and a
-- named segment from the recency score and the mean of the other two.
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
\getenv test_data CV_TEST_DATA
\set transactions_csv :test_data '/cdnow_sample_transactions.csv'
BEGIN;
CREATE TABLE sample_tx (customer_id int, purchased date, cds int, dollars numeric);
COPY sample_tx FROM :'transactions_csv' WITH (FORMAT csv, HEADER);

-- 1. A log model: boundaries of days_since_last, frequency (repeat purchases) and total_spend
--    over the customers as of as_of.
SELECT version FROM customer_value.train_from_log('seg_log', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                                  '1997-09-30', '{"horizon_days": 273, "algorithm": "linear"}');
SELECT p -> 'rfm_segments' AS rfm_segments FROM customer_value.model_params('seg_log') AS p;
SELECT customer_value.create_log_features('seg_features', 'seg_log', '1997-09-30') AS customers;
SELECT customer_value.rfm_segment(f, 'seg_log') AS segment, count(*) AS customers,
       round(avg(days_since_last)::numeric) AS mean_days_since_last, round(avg(frequency)::numeric, 2) AS mean_frequency,
       round(avg(total_spend)::numeric) AS mean_total_spend
  FROM seg_features f GROUP BY 1 ORDER BY mean_days_since_last, mean_total_spend DESC;

-- The scores against the same definition written in plain SQL (percentile_cont interpolates
-- linearly, as the boundaries do; a value on a boundary falls below it): no customer differs.
WITH cuts AS (
    SELECT percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY days_since_last) AS r,
           percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY frequency) AS f,
           percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY total_spend) AS m
      FROM seg_features),
sql_scores AS (
    SELECT f.customer_id,
           (6 - (1 + (SELECT count(*) FROM unnest(c.r) b WHERE f.days_since_last > b)))::text
           || (1 + (SELECT count(*) FROM unnest(c.f) b WHERE f.frequency > b))::text
           || (1 + (SELECT count(*) FROM unnest(c.m) b WHERE f.total_spend > b))::text AS score
      FROM seg_features f, cuts c)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE customer_value.rfm_score(f, 'seg_log') <> s.score) AS scores_differing
  FROM seg_features f JOIN sql_scores s USING (customer_id);

-- A few customers, each with their score; the default model (customer_value.model) serves too.
SET customer_value.model = 'seg_log';
SELECT customer_id, days_since_last, frequency, total_spend,
       customer_value.rfm_score(f) AS score, customer_value.rfm_segment(f) AS segment
  FROM seg_features f WHERE customer_id IN (4, 18, 70, 144, 1000, 2333) ORDER BY customer_id;
RESET customer_value.model;

-- The boundaries belong to the model: a row is scored alone, whatever else the table holds.
SELECT customer_value.rfm_segment(x, 'seg_log')
  FROM (SELECT 3 AS days_since_last, 5 AS frequency, 400.0 AS total_spend) x;
SELECT customer_value.rfm_segment(x, 'seg_log')
  FROM (SELECT 300 AS days_since_last, 0 AS frequency, 15.0 AS total_spend) x;

-- 2. A CLV model on an RFM summary: recency is t − recency (the summary's time unit, weeks), M
--    the mean repeat purchase value (0 for a one-time buyer).
SELECT customer_value.create_rfm('seg_rfm', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30') AS customers;
SELECT version FROM customer_value.train('seg_clv', 'seg_rfm', NULL, 'clv');
SELECT p -> 'rfm_segments' -> 'recency' AS recency, p -> 'rfm_segments' -> 'monetary' AS monetary
  FROM customer_value.model_params('seg_clv') AS p;
SELECT customer_value.rfm_segment(r, 'seg_clv') AS segment, count(*) AS customers,
       round(avg(t - recency)::numeric, 1) AS mean_weeks_since_last, round(avg(frequency), 2) AS mean_frequency
  FROM seg_rfm r GROUP BY 1 ORDER BY mean_weeks_since_last, mean_frequency DESC;

-- 3. Errors. A count model does not read the monetary value, and a table model has no RFM
--    population: neither has segments.
SELECT version FROM customer_value.train('seg_bgnbd', 'seg_rfm', NULL, 'bgnbd');
SELECT customer_value.rfm_segment(r, 'seg_bgnbd') FROM seg_rfm r LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
-- A row without one of the columns, with a NULL in one, or with a text in one.
SELECT customer_value.rfm_segment(x, 'seg_log') FROM (SELECT 3 AS days_since_last, 5 AS frequency) x;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.rfm_segment(x, 'seg_log')
  FROM (SELECT 3 AS days_since_last, NULL::int AS frequency, 400.0 AS total_spend) x;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.rfm_segment(x, 'seg_log')
  FROM (SELECT 3 AS days_since_last, 'five'::text AS frequency, 400.0 AS total_spend) x;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.rfm_segment(x, 'no_such_model') FROM (SELECT 1 AS a) x;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
