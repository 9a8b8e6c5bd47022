-- Training from a table, a view or a SELECT; what is stored; metrics; recovered coefficients.
\set ON_ERROR_ROLLBACK on
BEGIN;
-- Customers whose spend follows a known formula exactly:
--   spend = 12 + 4.5·orders + 1.2·avg_basket + 20·is_member − 0.03·days_since_last
CREATE TABLE customers (
    customer_id     int PRIMARY KEY,
    orders          int,
    avg_basket      numeric,
    is_member       boolean,
    days_since_last float8,
    spend           float8
);
INSERT INTO customers
SELECT customer_id, orders, basket, customer_id % 5 = 0, ((customer_id * 29) % 365)::float8, NULL
  FROM regress.customers(500);
UPDATE customers
   SET spend = 12 + 4.5 * orders + 1.2 * avg_basket::float8 + 20 * is_member::int - 0.03 * days_since_last;

-- One call trains, stores and deploys version 1. The primary key is not a feature.
SELECT name, version, algorithm, deployed, jsonb_object_keys(metrics) AS metric_keys
  FROM customer_value.train('spend', 'customers', 'spend', 'linear')
 ORDER BY metric_keys;
SELECT name, version, algorithm, task, target, source, deployed, trained_by = current_user AS by_me,
       features, options, jsonb_array_length(tiers) AS n_tiers
  FROM customer_value.models;
-- The holdout split is 80/20 by default; exact data give a perfect fit.
SELECT n_train, n_test, round(rmse::numeric, 6) AS rmse, round(r2::numeric, 6) AS r2,
       round(spearman::numeric, 4) AS spearman, round(gini::numeric, 4) AS gini, features
  FROM customer_value.model_summary;
-- Recovered formula: the fitted coefficients are the generating ones …
SELECT key AS feature, round(value::numeric, 6) AS coefficient
  FROM jsonb_each_text(customer_value.model_params('spend') -> 'coefficients')
UNION ALL
SELECT 'intercept', round((customer_value.model_params('spend') ->> 'intercept')::numeric, 6)
ORDER BY 1;
-- … and the model's predictions equal the formula on every row.
SELECT max(abs(customer_value(c) - (12 + 4.5 * orders + 1.2 * avg_basket::float8
                                    + 20 * is_member::int - 0.03 * days_since_last))) < 1e-6 AS recovered
  FROM customers c;
-- The model bytes are self-describing: magic "CVMODEL\0", then format version 2.
SELECT substr(model, 1, 8) AS magic, get_byte(model, 8) AS format_version
  FROM customer_value.models WHERE name = 'spend';

-- Sources: a view, a SELECT (no primary key there, so exclude the id), explicit features.
CREATE VIEW members AS SELECT * FROM customers WHERE is_member;
SELECT name, version, algorithm FROM customer_value.train('members_spend', 'members', 'spend', 'ridge',
       '{"exclude": ["customer_id", "is_member"], "alpha": 0.001}');
SELECT name, version FROM customer_value.train('by_query',
       $$SELECT orders, avg_basket, spend FROM customers WHERE customer_id % 2 = 0$$, 'spend', 'linear');
SELECT name, version FROM customer_value.train('two_features', 'customers', 'spend', 'linear',
       '{"features": ["orders", "avg_basket"], "test_size": 0.3, "seed": 7}');
SELECT name, features, n_train, n_test FROM customer_value.model_summary ORDER BY name;

-- NULL targets are skipped; NULL features are imputed with the training median (stored).
UPDATE customers SET spend = NULL WHERE customer_id <= 10;
UPDATE customers SET orders = NULL WHERE customer_id BETWEEN 11 AND 20;
SELECT name, version, (metrics ->> 'dropped_null_target')::int AS dropped
  FROM customer_value.train('with_nulls', 'customers', 'spend', 'linear');
SELECT f ->> 'name' AS feature, f ->> 'impute' AS impute, f ->> 'impute_value' AS median
  FROM customer_value.models, jsonb_array_elements(features) f
 WHERE name = 'with_nulls';

-- lasso and elastic_net (L1 / L1+L2 penalties on standardised features)
SELECT name, algorithm, round((metrics ->> 'r2')::numeric, 3) AS r2
  FROM customer_value.train('sparse', 'customers', 'spend', 'lasso', '{"alpha": 0.1}');
SELECT name, algorithm, round((metrics ->> 'r2')::numeric, 3) AS r2
  FROM customer_value.train('mixed', 'customers', 'spend', 'elastic_net', '{"alpha": 0.1, "l1_ratio": 0.7}');
-- random_forest and auto; auto records every trial and keeps the best on holdout rmse.
SELECT name, version, algorithm, round((metrics ->> 'r2')::numeric, 3) AS r2
  FROM customer_value.train('forest', 'customers', 'spend', 'random_forest',
       '{"n_trees": 25, "max_depth": 8, "min_samples_leaf": 2}');
SELECT customer_value.model_params('forest');
SELECT name, algorithm, jsonb_array_length(metrics -> 'trials') AS trials,
       (SELECT array_agg(t ->> 'algorithm' ORDER BY t ->> 'algorithm') FROM jsonb_array_elements(metrics -> 'trials') t) AS tried
  FROM customer_value.train('best', 'customers', 'spend', 'auto', '{"n_trees": 10}');
-- Option sample: train on a share of a table's rows, drawn where they are stored (TABLESAMPLE
-- BERNOULLI, repeatable with the seed); a query or a view is refused with what to do instead.
SELECT name, (metrics ->> 'n_train')::int + (metrics ->> 'n_test')::int BETWEEN 150 AND 350 AS about_half,
       round((metrics ->> 'r2')::numeric, 3) AS r2
  FROM customer_value.train('sampled', 'customers', 'spend', 'linear', '{"sample": 0.5}');
SELECT (SELECT metrics -> 'n_train' FROM customer_value.train('sampled', 'customers', 'spend', 'linear', '{"sample": 0.5}'))
     = (SELECT metrics -> 'n_train' FROM customer_value.models WHERE name = 'sampled' AND version = 1) AS repeatable;
SELECT * FROM customer_value.train('sampled', 'SELECT * FROM customers', 'spend', 'linear', '{"sample": 0.5}');
SELECT * FROM customer_value.train('sampled', 'customers', 'spend', 'linear', '{"sample": 0}');
ROLLBACK;
