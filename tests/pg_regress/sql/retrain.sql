-- Retraining: the stored spec re-run on today's data, champion/challenger on one holdout,
-- and every run (deployed, kept, failed) in customer_value.training_runs.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;
CREATE SCHEMA shop;
CALL regress.create_customers('shop.customers', 300);
-- Trained through the search_path: the spec stores the schema-qualified relation, so a
-- scheduled retrain (another search_path) reads the same table.
SET search_path = shop, public;
SELECT version, algorithm, deployed FROM customer_value.train('spend', 'customers', 'spend', 'auto');
RESET search_path;
SELECT version, spec FROM customer_value.models WHERE name = 'spend';

-- Today's data: more customers, same relationship. The challenger is scored against the
-- serving version on the challenger's holdout (100 rows); here the serving version is a hair
-- better on them, so the challenger is stored but not deployed.
INSERT INTO shop.customers SELECT customer_id, orders, tenure, spend FROM regress.customers(500, 301);
SELECT name, version, deployed, decision, reason, champion_version,
       (metrics ->> 'n_test')::int AS n_test, (champion_metrics ->> 'n')::int AS champion_n
  FROM customer_value.retrain('spend');

-- Options override the spec: a challenger forced to a weak algorithm loses clearly.
SELECT version, deployed, decision, left(reason, 40) AS reason
  FROM customer_value.retrain('spend', '{"candidates": ["random_forest"], "n_trees": 2, "max_depth": 1}');
SELECT version FROM customer_value.models WHERE name = 'spend' AND deployed;
-- deploy = always overrides the comparison; the run says so.
SELECT version, deployed, decision, reason
  FROM customer_value.retrain('spend', '{"candidates": ["random_forest"], "n_trees": 2, "max_depth": 1, "deploy": "always"}');
SELECT customer_value.deploy('spend', 2) AS replaced;

-- A failing retrain is recorded, reported with a WARNING, and leaves the serving version.
ALTER TABLE shop.customers RENAME COLUMN spend TO revenue;
SELECT name, version, deployed, decision, reason FROM customer_value.retrain('spend');
SELECT version FROM customer_value.models WHERE name = 'spend' AND deployed;
ALTER TABLE shop.customers RENAME COLUMN revenue TO spend;
-- An option the algorithm does not know is a failure too.
SELECT decision, reason FROM customer_value.retrain('spend', '{"learning_rat": 0.1}');
-- An equally good challenger replaces the serving version (ties go to the fresher model).
SELECT version, decision, reason FROM customer_value.retrain('spend');
-- The serving version cannot score today's data (its column changed type): the challenger,
-- trained on today's columns, replaces it, and the run says why.
ALTER TABLE shop.customers ALTER COLUMN tenure TYPE text;
SELECT version, deployed, decision, reason
  FROM customer_value.retrain('spend', '{"exclude": ["tenure"]}');
ALTER TABLE shop.customers ALTER COLUMN tenure TYPE float8 USING tenure::float8;

-- The run log: one row per run, train and retrain, in order.
SELECT model, version, kind, rows_read, champion_version, decision, sqlstate,
       finished >= started AS timed, run_by = current_user AS by_me
  FROM customer_value.training_runs ORDER BY id;

-- Unknown models and bad names are errors of the call, not recorded runs.
SELECT * FROM customer_value.retrain('nope');
SELECT * FROM customer_value.retrain('bad@name');
SELECT * FROM customer_value.retrain(NULL);
SELECT customer_value.restrict_model(NULL, NULL);
SELECT customer_value.unschedule_retraining(NULL);
SELECT count(*) AS runs_for_unknown FROM customer_value.training_runs WHERE model IN ('nope', 'bad@name');
ROLLBACK;
