-- Runs on the previous release: trains models of every kind and records their scores.
\set ON_ERROR_STOP on
CREATE TABLE customers (customer_id int PRIMARY KEY, orders int, tenure float8, vip boolean, spend float8);
INSERT INTO customers
SELECT i, (i * 37) % 23, ((i * 71) % 13)::float8, i % 7 = 0,
       10 + 2 * ((i * 37) % 23) + ((i * 17) % 5) + CASE WHEN i % 7 = 0 THEN 30 ELSE 0 END
  FROM generate_series(1, 2000) AS i;
SELECT name, version, algorithm FROM customer_value.train('lin', 'customers', 'spend', 'linear');
SELECT name, version, algorithm FROM customer_value.train('rdg', 'customers', 'spend', 'ridge', '{"alpha": 3}');
SELECT name, version, algorithm FROM customer_value.train('rf', 'customers', 'spend', 'random_forest', '{"n_trees": 20, "max_depth": 6}');
SELECT name, version, algorithm FROM customer_value.train('auto', 'customers', 'spend');
SELECT name, version, algorithm FROM customer_value.train('gbm', 'customers', 'spend', 'gbm', '{"n_trees": 30}');
SELECT name, version, algorithm FROM customer_value.train('mlp', 'customers', 'spend', 'mlp', '{"epochs": 20}');
SELECT name, version, algorithm FROM customer_value.train('vip', 'customers', 'vip', 'logistic');
-- a trainer's model, retrained by the superuser (0.2.0 recorded the superuser as trained_by),
-- and per-model access by role name, one of them a role that is then dropped
CREATE ROLE cv_upgrade_trainer IN ROLE customer_value_trainer;
CREATE ROLE cv_upgrade_gone;
CREATE ROLE cv_upgrade_finance;
GRANT SELECT ON customers TO cv_upgrade_trainer;
SET ROLE cv_upgrade_trainer;
SELECT name, version FROM customer_value.train('by_trainer', 'SELECT customer_id, orders, tenure, spend FROM public.customers', 'spend', 'linear');
RESET ROLE;
SELECT name, version FROM customer_value.retrain('by_trainer', '{"deploy": "always"}');
SELECT customer_value.restrict_model('by_trainer', ARRAY['cv_upgrade_gone', 'cv_upgrade_finance']);
DROP ROLE cv_upgrade_gone;
-- a CLV model on a synthetic RFM summary
CREATE TABLE rfm AS
SELECT i AS customer_id, (i % 6)::float8 AS frequency,
       CASE WHEN i % 6 = 0 THEN 0 ELSE 5 + (i * 13) % 30 END::float8 AS recency,
       40::float8 AS t, CASE WHEN i % 6 = 0 THEN 0 ELSE 20 + (i * 7) % 50 END::float8 AS monetary_value
  FROM generate_series(1, 2000) AS i;
SELECT name, version, algorithm FROM customer_value.train('clv', 'rfm', NULL, 'clv');
CREATE TABLE scores_before AS
SELECT m.name, c.customer_id, customer_value(c, m.name) AS value, customer_tier(c, m.name) AS tier,
       customer_value(c, m.id) AS value_by_id
  FROM customers c CROSS JOIN customer_value.models m WHERE m.name <> 'clv' AND m.deployed
UNION ALL
SELECT 'clv', r.customer_id, customer_value(r, 'clv'), customer_tier(r, 'clv'), customer_value.p_alive(r, 'clv')
  FROM rfm r;
SELECT count(*) AS scores FROM scores_before;
