-- Customer tables as they are: text categories (one-hot, or target encoding when there are
-- many), dates and timestamps as ages in days, NULLs, and categories never seen in training.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;
CREATE TABLE customers (
    customer_id int PRIMARY KEY,
    segment     text,          -- 4 values: one-hot
    city        varchar(20),   -- 41 values: target (mean) encoding
    last_order  date,          -- age in days at as_of
    signed_up   timestamptz,
    orders      int,
    spend       float8
);
INSERT INTO customers
SELECT i,
       CASE WHEN i % 50 = 0 THEN NULL ELSE (ARRAY['gold', 'silver', 'bronze', 'new'])[1 + i % 4] END,
       'city_' || ((i * 7) % 41),
       DATE '2025-12-31' - (i * 7) % 365,
       TIMESTAMPTZ '2020-01-01 00:00+00' + ((i * 13) % 1000) * interval '1 day',
       (i * 37) % 23,
       100 * (i % 4 = 1)::int + 2 * ((i * 37) % 23) + 0.1 * ((i * 7) % 365 < 30)::int * 50
           + CASE WHEN (i * 7) % 41 < 5 THEN 30 ELSE 0 END
  FROM generate_series(1, 2000) AS i;
-- as_of fixes the reference time (by default it is the training time)
SELECT algorithm, round((metrics ->> 'r2')::numeric, 2) AS r2
  FROM customer_value.train('spend', 'customers', 'spend', 'linear', '{"as_of": "2026-01-01"}');
SELECT f ->> 'name' AS feature, f ->> 'column' AS column, f ->> 'encoding' AS encoding,
       f ->> 'impute' AS null_handling, f ->> 'categories' AS categories
  FROM customer_value.models m, jsonb_array_elements(m.features) f WHERE m.name = 'spend';
-- silver customers are worth 100 more: the one-hot coefficients say so (the reference level,
-- all indicators 0, is the most frequent category, here "new")
SELECT key AS indicator, round(value::numeric) AS coefficient
  FROM jsonb_each_text(customer_value.model_params('spend') -> 'coefficients') WHERE key LIKE 'segment=%' ORDER BY key;
-- scoring: a category never seen (mars) and a NULL segment are scored as the average customer
-- (each indicator at its training share), between the known categories; a NULL date is imputed
SELECT seg, round(customer_value(c, 'spend')::numeric, 1) AS value
  FROM (SELECT s.seg, 'city_1'::varchar(20) AS city, DATE '2025-12-01' AS last_order,
               TIMESTAMPTZ '2021-06-01 00:00+00' AS signed_up, 10 AS orders, s.seg AS segment
          FROM (VALUES ('gold'), ('silver'), ('mars'), (NULL)) AS s(seg)) c
 ORDER BY value DESC, seg;
SELECT customer_value(c, 'spend') IS NOT NULL AS scored
  FROM (SELECT 'gold' AS segment, 'city_1' AS city, NULL::date AS last_order,
               NULL::timestamptz AS signed_up, 10 AS orders) c;
-- explanations are by column: the one-hot indicators of segment add up to one contribution
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(e -> 'contributions') k) AS columns,
       abs((e ->> 'baseline')::float8 + (SELECT sum(value::float8) FROM jsonb_each_text(e -> 'contributions'))
           - (e ->> 'prediction')::float8) < 1e-9 AS adds_up
  FROM (SELECT customer_value.explain(c, 'spend') AS e FROM customers c WHERE customer_id = 5) x;
-- trees take the same encodings; drift and retrain read text and dates too
SELECT algorithm, (metrics ->> 'r2')::float8 > 0.9 AS good
  FROM customer_value.train('spend_gbm', 'customers', 'spend', 'gbm', '{"as_of": "2026-01-01", "n_trees": 50}');
SELECT feature, drift FROM customer_value.drift('spend_gbm', 'customers') WHERE feature IN ('segment=gold', 'city', 'orders') ORDER BY 1;
SELECT decision, champion_version FROM customer_value.retrain('spend_gbm', '{"deploy": "auto"}');
-- more categories than max_one_hot: target encoding for segment too
SELECT version FROM customer_value.train('te', 'customers', 'spend', 'ridge', '{"max_one_hot": 3, "as_of": "2026-01-01"}');
SELECT f ->> 'encoding' AS encoding
  FROM customer_value.models m, jsonb_array_elements(m.features) f
 WHERE m.name = 'te' AND f ->> 'column' = 'segment';
-- NULL imputation per column: median (default), mean, mode or a constant; stored and used
-- identically when scoring
UPDATE customers SET orders = NULL WHERE customer_id % 10 = 0;
SELECT version FROM customer_value.train('imputed', 'customers', 'spend', 'linear',
       '{"as_of": "2026-01-01", "impute": {"orders": "mode", "last_order": 30}}');
SELECT f ->> 'column' AS column, f ->> 'impute_value' AS filled_with
  FROM customer_value.models m, jsonb_array_elements(m.features) f
 WHERE m.name = 'imputed' AND f ->> 'column' IN ('orders', 'last_order', 'signed_up') ORDER BY 1;
SELECT (SELECT mode() WITHIN GROUP (ORDER BY orders) FROM customers) AS mode_of_orders;
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'linear', '{"impute": {"orders": "max"}}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'linear', '{"impute": {"segment": "mode"}}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'linear', '{"impute": {"ordrs": 0}}');
-- Errors: a date where the model was trained on a number, text where it was trained on a date,
-- a bad as_of, char(n) columns
SELECT customer_value(c, 'spend') FROM (SELECT 'gold' AS segment, 'city_1' AS city, DATE '2025-01-01' AS last_order,
       now() AS signed_up, DATE '2025-01-01' AS orders) c;
SELECT customer_value(c, 'spend') FROM (SELECT 'gold' AS segment, 'city_1' AS city, '2025-01-01' AS last_order,
       now() AS signed_up, 1 AS orders) c;
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'linear', '{"as_of": "someday"}');
SELECT * FROM customer_value.train('x', 'SELECT spend, orders, segment::char(6) AS seg FROM customers', 'spend', 'linear');
ROLLBACK;
