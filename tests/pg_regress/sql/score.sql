-- Scoring by column name, pinned versions, ids, the default model, tiers.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY default
BEGIN;
CREATE TABLE customers (customer_id int PRIMARY KEY, orders int, avg_basket float8, spend float8);
INSERT INTO customers SELECT customer_id, orders, basket, 0 FROM regress.customers(400);
UPDATE customers SET spend = 10 + 2 * orders + 0.5 * avg_basket;
SELECT version FROM customer_value.train('spend', 'customers', 'spend', 'linear');

-- Features are matched by name: column order and extra columns do not matter, and any numeric
-- type works for a number feature.
SELECT round(customer_value(r)::numeric, 6) AS value
  FROM (SELECT 'ignored'::text AS note, 4.0::numeric AS avg_basket, 3::smallint AS orders) r;
SELECT round(customer_value(r, 'spend')::numeric, 6) AS value
  FROM (SELECT 3::bigint AS orders, 4::real AS avg_basket) r;
-- A NULL feature is imputed with the training median; a NULL row gives NULL.
SELECT round(customer_value(r)::numeric, 6) AS imputed,
       round((10 + 2 * 3 + 0.5 * (f ->> 'impute_value')::float8)::numeric, 6) AS expected
  FROM (SELECT 3 AS orders, NULL::float8 AS avg_basket) r,
       customer_value.models m, jsonb_array_elements(m.features) f
 WHERE f ->> 'name' = 'avg_basket';
SELECT customer_value(NULL::customers) IS NULL AS null_row;

-- Tiers: VIP top 5 %, high next 15 %, medium next 30 %, low bottom 50 % of the training population
-- (customers tied at a cut point share the higher tier, so VIP holds 21 of 400 here).
SELECT customer_tier(c) AS tier, count(*) AS customers, round(min(customer_value(c))::numeric, 2) AS lowest
  FROM customers c GROUP BY 1 ORDER BY 3 DESC;
SELECT t ->> 'name' AS tier, t ->> 'share' AS share, round((t ->> 'min')::numeric, 4) AS min
  FROM customer_value.models, jsonb_array_elements(tiers) t WHERE name = 'spend';

-- Version 2 with custom tiers by threshold (absolute bounds on the predicted value).
SELECT version, deployed FROM customer_value.train('spend', 'customers', 'spend', 'linear',
       '{"tiers": [{"name": "gold", "min": 50}, {"name": "silver", "min": 30}, {"name": "bronze"}], "deploy": "always"}');
SELECT customer_tier(c) AS tier, count(*) FROM customers c GROUP BY 1 ORDER BY 1;
-- Pinned version and immutable id still use version 1's tiers.
SELECT customer_tier(c, 'spend@1') AS tier, count(*) FROM customers c GROUP BY 1 ORDER BY 1;
SELECT customer_tier(c, (SELECT id FROM customer_value.models WHERE name = 'spend' AND version = 1)) AS tier,
       count(*) FROM customers c GROUP BY 1 ORDER BY 1;

-- With two deployed models, the default needs a name: the GUC, or an argument.
SELECT version FROM customer_value.train('other', 'customers', 'spend', 'linear', '{"exclude": ["orders"]}');
SELECT customer_value(c) FROM customers c LIMIT 1;
SET customer_value.model = 'spend@1';
SELECT round(customer_value(c)::numeric, 4) AS value, customer_tier(c) FROM customers c WHERE customer_id = 7;
RESET customer_value.model;
SELECT round(customer_value(c, 'other')::numeric, 4) AS other FROM customers c WHERE customer_id = 7;
-- A typo in a customer_value.* setting is refused (the prefix is reserved).
SET customer_value.modle = 'spend';

-- Every row of a statement is scored by the same version (here: all exact).
SELECT count(*) FILTER (WHERE abs(customer_value(c, 'spend') - (10 + 2 * orders + 0.5 * avg_basket)) > 1e-9) AS wrong
  FROM customers c;
ROLLBACK;

-- Parallel workers score too (the functions are PARALLEL SAFE and read models read-only).
-- Outside a transaction block, so the workers start from a transaction without an xid.
CREATE TABLE many AS SELECT customer_id, orders, basket::float8 AS avg_basket FROM regress.customers(20000);
SELECT version FROM customer_value.train('par',
       'SELECT orders, avg_basket, 10 + 2 * orders + 0.5 * avg_basket AS spend FROM many', 'spend', 'linear');
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT sum(customer_value(m, 'par')), sum((customer_tier(m, 'par') = 'VIP')::int) FROM many m;
SELECT round(sum(customer_value(m, 'par'))::numeric, 3) AS parallel_sum,
       round(sum(10 + 2 * orders + 0.5 * avg_basket)::numeric, 3) AS expected,
       sum((customer_tier(m, 'par') = 'VIP')::int) AS vip
  FROM many m;
RESET ALL;
DROP TABLE many;
DELETE FROM customer_value.models WHERE name = 'par';
