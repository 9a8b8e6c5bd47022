-- Narrowed scoring: on a table's whole row (customer_value(c, 'm') FROM customers c) the planner
-- passes only the columns the model reads (customer_value.score_columns_*, seen in EXPLAIN
-- VERBOSE) instead of building every row as a datum. Results are those of the row path, which
-- a subquery that is not pulled up (OFFSET 0) still takes; plans follow redeploys.
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
\getenv test_data CV_TEST_DATA
\set transactions_csv :test_data '/cdnow_sample_transactions.csv'
BEGIN;
-- Columns the models do not read, a text category, a boolean, a date, NULLs (imputed).
CREATE TABLE wide (customer_id int PRIMARY KEY, note text, orders int, region text, tenure float8,
                   vip boolean, days_inactive float8, joined date, basket numeric, padding text, spend float8,
                   churned boolean);
INSERT INTO wide
SELECT customer_id, repeat('x', 32), orders, (ARRAY['north', 'south', 'east'])[customer_id % 3 + 1], tenure,
       vip, days_inactive, date '2020-01-01' + customer_id, basket, md5(customer_id::text), spend,
       days_inactive > 60
  FROM regress.customers(300);
UPDATE wide SET basket = NULL WHERE customer_id % 11 = 0;
UPDATE wide SET region = NULL WHERE customer_id % 13 = 0;
ANALYZE wide;
SELECT name, algorithm FROM customer_value.train('n_linear', 'SELECT orders, region, tenure, vip, days_inactive, joined, basket, spend FROM wide', 'spend', 'linear');
SELECT name, algorithm FROM customer_value.train('n_gbm', 'SELECT orders, region, basket, spend FROM wide', 'spend', 'gbm', '{"n_trees": 20, "max_depth": 3}');
SELECT name, algorithm FROM customer_value.train('n_forest', 'SELECT orders, tenure, basket, spend FROM wide', 'spend', 'random_forest', '{"n_trees": 10}');
SELECT name, algorithm FROM customer_value.train('n_mlp', 'SELECT orders, basket, days_inactive, spend FROM wide', 'spend', 'mlp', '{"epochs": 20}');
SELECT name, algorithm FROM customer_value.train('n_churn', 'SELECT orders, region, days_inactive, churned FROM wide', 'churned', 'logistic');

-- 1. The plan: only the model's columns, by name; the row path for ROW(...), a subquery's
--    record, and the nullable side of an outer join (a missing row must stay NULL).
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_value(w, 'n_gbm') FROM wide w;
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_tier(w, 'n_gbm'), customer_value.explain(w, 'n_gbm') FROM wide w;
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_value(ROW(w.orders, w.basket), 'n_gbm') FROM wide w;
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_value(s, 'n_gbm') FROM (SELECT * FROM wide OFFSET 0) s;
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_value(w, 'n_gbm') FROM (VALUES (1), (0)) v(id) LEFT JOIN wide w ON w.customer_id = v.id;
SELECT v.id, round(customer_value(w, 'n_gbm')::numeric, 4) AS value
  FROM (VALUES (1), (0)) v(id) LEFT JOIN wide w ON w.customer_id = v.id ORDER BY v.id;
-- A model argument that is not a constant is resolved per statement on the row path.
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_value(w, v.m) FROM wide w, (SELECT 'n_gbm'::text AS m OFFSET 0) v;
-- A model id is narrowed too (ids differ between runs: the plan is checked, not printed).
CREATE FUNCTION pg_temp.narrowed(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
        IF line LIKE '%customer_value.score_columns_%' THEN RETURN true; END IF;
    END LOOP;
    RETURN false;
END $$;
SELECT id AS gbm_id FROM customer_value.models WHERE name = 'n_gbm' \gset
SELECT pg_temp.narrowed(format('SELECT customer_value(w, %s::bigint) FROM wide w', :gbm_id)) AS by_id_narrowed,
       (SELECT count(*) FILTER (WHERE customer_value(w, :gbm_id::bigint) <> customer_value(w, 'n_gbm')) FROM wide w) AS values_differing;

-- 2. Same results as the row path: every algorithm, every scoring function, NULLs imputed.
CREATE FUNCTION pg_temp.differing(model text) RETURNS TABLE (narrowed boolean, customers bigint, values_differing bigint)
LANGUAGE plpgsql AS $$
BEGIN
    narrowed := pg_temp.narrowed(format('SELECT customer_value(w, %L) FROM wide w', model));
    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE customer_value(w, %L) IS DISTINCT FROM customer_value(s, %L))
                      FROM wide w JOIN (SELECT * FROM wide OFFSET 0) s USING (customer_id)', model, model)
       INTO customers, values_differing;
    RETURN NEXT;
END $$;
SELECT m AS model, d.* FROM unnest(ARRAY['n_linear', 'n_gbm', 'n_forest', 'n_mlp', 'n_churn']) m, pg_temp.differing(m) d ORDER BY m;
WITH narrowed AS (
    SELECT customer_id, customer_value(w, 'n_gbm') AS value, customer_tier(w, 'n_gbm') AS tier,
           customer_value.explain(w, 'n_gbm') AS explanation, customer_value(w, 'n_linear') AS linear,
           customer_value.predict_proba(w, 'n_churn') AS proba, customer_tier(w, 'n_churn') AS churn_tier
      FROM wide w),
row_path AS (
    SELECT customer_id, customer_value(s, 'n_gbm') AS value, customer_tier(s, 'n_gbm') AS tier,
           customer_value.explain(s, 'n_gbm') AS explanation, customer_value(s, 'n_linear') AS linear,
           customer_value.predict_proba(s, 'n_churn') AS proba, customer_tier(s, 'n_churn') AS churn_tier
      FROM (SELECT * FROM wide OFFSET 0) s)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE n.value <> r.value) AS values_differing,
       count(*) FILTER (WHERE n.tier <> r.tier) AS tiers_differing,
       count(*) FILTER (WHERE n.explanation <> r.explanation) AS explanations_differing,
       count(*) FILTER (WHERE n.linear <> r.linear) AS linear_differing,
       count(*) FILTER (WHERE n.proba <> r.proba) AS probabilities_differing,
       count(*) FILTER (WHERE n.churn_tier <> r.churn_tier) AS churn_tiers_differing
  FROM narrowed n JOIN row_path r USING (customer_id);

-- Another table with the columns renamed into place, reordered, of other numeric types.
CREATE TABLE reordered AS
SELECT padding, basket::float8 AS basket, customer_id, days_inactive::numeric AS days_inactive,
       joined, vip, tenure::real AS tenure, region, orders::bigint AS orders
  FROM wide;
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_value(r, 'n_linear') FROM reordered r;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE abs(customer_value(r, 'n_linear') - customer_value(w, 'n_linear')) > 1e-9) AS values_differing
  FROM reordered r JOIN wide w USING (customer_id);
-- A table without a column the model needs keeps the row path, and its error.
CREATE TABLE lacking AS SELECT customer_id, orders FROM wide;
SELECT customer_value(l, 'n_gbm') FROM lacking l LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
-- A column of a type the model cannot read: the same error as on the row path.
CREATE TABLE mistyped AS SELECT customer_id, orders::text AS orders, region, basket FROM wide;
SELECT customer_value(m, 'n_gbm') FROM mistyped m LIMIT 1;
\echo :LAST_ERROR_SQLSTATE

-- 3. CLV models and RFM segments on an RFM summary: expected_purchases (with a periods
--    expression), p_alive, expected_spend, rfm_segment, rfm_score.
CREATE TABLE sample_tx (customer_id int, purchased date, cds int, dollars numeric);
COPY sample_tx FROM :'transactions_csv' WITH (FORMAT csv, HEADER);
SELECT customer_value.create_rfm('n_rfm', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                 '1997-09-30', '{"holdout_end": "1998-06-30"}') AS customers;
ALTER TABLE n_rfm ADD COLUMN weeks float8;
UPDATE n_rfm SET weeks = 13 + customer_id % 3 * 13;
SELECT name, algorithm FROM customer_value.train('n_clv', 'n_rfm', 'holdout_spend', 'clv', '{"horizon": 39}');
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_value.expected_purchases(c, weeks, 'n_clv') FROM n_rfm c;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE customer_value.expected_purchases(c, c.weeks, 'n_clv') <> customer_value.expected_purchases(s, c.weeks, 'n_clv')) AS purchases_differing,
       count(*) FILTER (WHERE customer_value.p_alive(c, 'n_clv') <> customer_value.p_alive(s, 'n_clv')) AS p_alive_differing,
       count(*) FILTER (WHERE customer_value.expected_spend(c, 'n_clv') <> customer_value.expected_spend(s, 'n_clv')) AS spend_differing,
       count(*) FILTER (WHERE customer_value(c, 'n_clv') <> customer_value(s, 'n_clv')) AS clv_differing,
       count(*) FILTER (WHERE customer_value.rfm_segment(c, 'n_clv') <> customer_value.rfm_segment(s, 'n_clv')) AS segments_differing,
       count(*) FILTER (WHERE customer_value.rfm_score(c, 'n_clv') <> customer_value.rfm_score(s, 'n_clv')) AS scores_differing
  FROM n_rfm c JOIN (SELECT * FROM n_rfm OFFSET 0) s USING (customer_id);
-- periods stays a strict argument: NULL gives NULL.
SELECT customer_value.expected_purchases(c, NULL, 'n_clv') IS NULL AS null_periods FROM n_rfm c LIMIT 1;
COMMIT;

-- 4. A plan follows a deploy: a prepared statement (past the five custom plans, on its generic
--    plan) and a PL/pgSQL function are planned again when another version is deployed, here
--    one that reads another column.
PREPARE totals AS SELECT round(sum(customer_value(w, 'n_forest'))::numeric, 4) FROM wide w;
EXECUTE totals; EXECUTE totals; EXECUTE totals; EXECUTE totals; EXECUTE totals; EXECUTE totals;
CREATE FUNCTION forest_total() RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT round(sum(customer_value(w, 'n_forest'))::numeric, 4) FROM wide w);
END $$;
SELECT forest_total();
SELECT version, deployed FROM customer_value.train('n_forest', 'SELECT days_inactive, vip, spend FROM wide', 'spend', 'random_forest',
                                                   '{"n_trees": 10, "deploy": "always"}');
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE totals;
EXECUTE totals;
SELECT forest_total();
SELECT round(sum(customer_value(s, 'n_forest'))::numeric, 4) AS row_path FROM (SELECT * FROM wide OFFSET 0) s;
-- and a rollback to the first version
SELECT customer_value.deploy('n_forest', 1) AS previous;
EXECUTE totals;
SELECT forest_total();
-- A deploy inside a transaction: its plans see it at once, and no longer after a ROLLBACK.
BEGIN;
SELECT customer_value.deploy('n_forest', 2) AS previous;
EXECUTE totals;
ROLLBACK;
EXECUTE totals;

-- The default model: a plan without a model argument follows customer_value.model.
SET customer_value.model = 'n_linear';
PREPARE default_total AS SELECT round(sum(customer_value(w))::numeric, 4) FROM wide w;
EXECUTE default_total; EXECUTE default_total; EXECUTE default_total; EXECUTE default_total; EXECUTE default_total; EXECUTE default_total;
SET customer_value.model = 'n_gbm';
EXECUTE default_total;
SELECT round(sum(customer_value(s, 'n_gbm'))::numeric, 4) AS row_path FROM (SELECT * FROM wide OFFSET 0) s;
RESET customer_value.model;

-- customer_value.narrow_scoring = off plans every call on the whole row (as 0.2 did); cached
-- plans follow the setting.
SET customer_value.narrow_scoring = off;
EXPLAIN (VERBOSE, COSTS OFF) SELECT customer_value(w, 'n_gbm') FROM wide w;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE totals;
EXECUTE totals;
RESET customer_value.narrow_scoring;
SET customer_value.narrow_scoring = 'sometimes';
\echo :LAST_ERROR_SQLSTATE

-- 5. The narrowed functions are the planner's, but a direct call cannot crash or mislead.
--    A model needing a column the call does not pass (what a plan made for another model
--    would meet) asks to run the statement again.
SELECT customer_value.score_columns_float8(1, 'n_gbm', NULL, NULL, '{orders}', orders) FROM wide LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.score_columns_float8(2, 'n_gbm', NULL, NULL, '{orders}', orders) FROM wide LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.score_columns_text(1, 'n_gbm', NULL, NULL, '{orders}', orders) FROM wide LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.score_columns_float8(1, 'n_gbm', NULL, NULL, '{orders,region}', orders) FROM wide LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.score_columns_float8(1, 'n_gbm', NULL, NULL, NULL, orders) FROM wide LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT round(customer_value.score_columns_float8(1, 'n_gbm', NULL, NULL, '{basket,orders,region}', basket, orders, region)::numeric, 4) AS direct,
       round(customer_value(w, 'n_gbm')::numeric, 4) AS scored
  FROM wide w WHERE customer_id = 5;

-- Leave nothing behind for the files after this one.
DEALLOCATE totals;
DEALLOCATE default_total;
DROP FUNCTION forest_total();
DROP TABLE wide, reordered, lacking, mistyped, sample_tx, n_rfm;
DELETE FROM customer_value.models WHERE name LIKE 'n\_%';
DELETE FROM customer_value.training_runs WHERE model LIKE 'n\_%';
