-- Versions, the deploy decision, and rollback.
\set ON_ERROR_ROLLBACK on
BEGIN;
CALL regress.create_customers('customers', 300);

SELECT version, algorithm, deployed FROM customer_value.train('spend', 'customers', 'spend', 'linear');
-- A worse model (a 3-tree forest) is stored but not deployed; a NOTICE says why.
SELECT version, algorithm, deployed FROM customer_value.train('spend', 'customers', 'spend', 'random_forest',
       '{"n_trees": 3, "max_depth": 2, "min_samples_leaf": 20}');
-- deploy = always / never override the comparison.
SELECT version, deployed FROM customer_value.train('spend', 'customers', 'spend', 'random_forest',
       '{"n_trees": 3, "max_depth": 2, "min_samples_leaf": 20, "deploy": "always"}');
SELECT version, deployed FROM customer_value.train('spend', 'customers', 'spend', 'linear', '{"deploy": "never"}');
SELECT version, algorithm, deployed FROM customer_value.models ORDER BY version;
-- Rollback: deploy returns the version it replaced.
SELECT customer_value.deploy('spend', 1) AS replaced;
SELECT version FROM customer_value.models WHERE deployed;
-- A different selection metric decides deployment too.
SELECT version, deployed, metrics ->> 'selection_metric' AS metric
  FROM customer_value.train('spend', 'customers', 'spend', 'random_forest',
       '{"metric": "spearman", "n_trees": 3, "max_depth": 2, "min_samples_leaf": 20}');
-- At most one deployed version per name, enforced by the database.
UPDATE customer_value.models SET deployed = true WHERE name = 'spend';
ROLLBACK;
