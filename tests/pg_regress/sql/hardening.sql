-- Hardening: no silent wrong numbers, and user situations that end in a clear error.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;

-- Very regular buyers: every customer buys in January, every second also in March, every third
-- also in May. BG/NBD's likelihood runs off to r, α → ∞ on such data; the fit is refused with
-- the reason instead of deploying a model whose every value is negative.
CREATE TABLE regular_tx (customer_id int, purchased date, amount numeric);
INSERT INTO regular_tx
SELECT i, d::date, 20 + i % 7
  FROM generate_series(1, 3000) AS i,
       LATERAL (SELECT '2024-01-15'::date AS d
                UNION ALL SELECT '2024-03-15' WHERE i % 2 = 0
                UNION ALL SELECT '2024-05-15' WHERE i % 3 = 0) AS days;
SELECT customer_value.create_rfm('regular_rfm', 'regular_tx', 'customer_id', 'purchased', 'amount', '2024-06-30') AS customers;
SELECT * FROM customer_value.train('regular', 'regular_rfm', NULL, 'bgnbd');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS stored FROM customer_value.models WHERE name = 'regular';

-- Customers whose first purchase is on the calibration end get t = 0: create_rfm makes them and
-- train takes them (their likelihood term is 1: they are scored, counted, and left out of the fit).
CREATE TABLE late_tx AS
SELECT customer_id, purchased, dollars FROM (VALUES (1, '2024-01-03'::date, 10.0), (1, '2024-02-10', 12.0),
       (2, '2024-01-20', 30.0), (2, '2024-03-01', 25.0), (2, '2024-05-05', 28.0), (3, '2024-02-02', 8.0),
       (4, '2024-06-30', 50.0), (5, '2024-06-30', 15.0), (6, '2024-03-03', 9.0), (6, '2024-06-01', 11.0))
       AS v(customer_id, purchased, dollars);
INSERT INTO late_tx SELECT 100 + i, '2024-01-01'::date + (i % 150), 10 + i % 9 FROM generate_series(1, 400) AS i;
INSERT INTO late_tx SELECT 100 + i, '2024-01-01'::date + (i % 150) + 20 + i % 30, 12 FROM generate_series(1, 400) AS i WHERE i % 3 = 0;
SELECT customer_value.create_rfm('late_rfm', 'late_tx', 'customer_id', 'purchased', 'dollars', '2024-06-30') AS customers;
SELECT customer_id, frequency, recency, t FROM late_rfm WHERE t = 0 ORDER BY 1;
SELECT name, metrics ->> 'customers' AS customers,
       metrics ->> 'customers_first_seen_at_calibration_end' AS first_seen_at_end
  FROM customer_value.train('late', 'late_rfm', NULL, 'bgnbd', '{"horizon": 10}');
SELECT customer_id, round(customer_value(r, 'late')::numeric, 4) > 0 AS positive,
       customer_value.p_alive(r, 'late') AS p_alive
  FROM late_rfm r WHERE t = 0 ORDER BY 1;

-- A holdout that ends before the calibration would silently cut the calibration short.
SELECT count(*) FROM customer_value.rfm('late_tx', 'customer_id', 'purchased', 'dollars', '2024-06-30',
                                        '{"holdout_end": "2024-01-01"}');
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.create_rfm('late_rfm2', 'late_tx', 'customer_id', 'purchased', 'dollars', '2024-06-30',
                                 '{"holdout_end": "2024-06-30"}');
\echo :LAST_ERROR_SQLSTATE

-- NULL arguments of functions that also take a NULL-able option are 22004, not internal errors
-- (found by scripts/drills/call_fuzz.sh).
SELECT count(*) FROM customer_value.rfm('late_tx', 'customer_id', 'purchased', NULL, '2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.create_rfm('x_rfm', NULL, 'customer_id', 'purchased', 'dollars', '2024-06-30');
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.create_rfm('x_rfm', 'late_tx', 'customer_id', 'purchased', 'dollars', NULL);
\echo :LAST_ERROR_SQLSTATE

-- A metric that does not apply to the model would compare NULL with NULL when deciding
-- deployment: refused.
CREATE TABLE buyers (customer_id int PRIMARY KEY, orders int, tenure float8, spend float8, churned boolean);
INSERT INTO buyers SELECT customer_id, orders, tenure, spend, orders < 5 FROM regress.customers(300);
SELECT * FROM customer_value.train('m', 'SELECT orders, tenure, spend FROM buyers', 'spend', 'linear', '{"metric": "auc"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'SELECT orders, tenure, churned FROM buyers', 'churned', 'logistic', '{"metric": "r2"}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'late_rfm', 'holdout_spend', 'clv', '{"metric": "auc"}');
\echo :LAST_ERROR_SQLSTATE

-- A SELECT source's key columns are no features, as for a table: each output column is traced
-- to its origin (here buyers.customer_id, the primary key); a computed column is kept.
SELECT version FROM customer_value.train('keyed', 'SELECT * FROM buyers TABLESAMPLE SYSTEM (100)', 'spend', 'linear', '{"exclude": ["churned"]}');
SELECT version FROM customer_value.train('keyed2', 'SELECT customer_id, customer_id % 7 AS weekday, orders, spend FROM buyers WHERE customer_id <= 200', 'spend', 'linear');
SELECT name, features FROM customer_value.model_summary WHERE name IN ('keyed', 'keyed2') ORDER BY 1;

-- Nearly collinear features: least squares would cancel two huge coefficients (and score any
-- row off the pattern absurdly); it is refused, ridge stays stable.
CREATE TABLE collinear AS
SELECT i AS customer_id, (i % 50)::float8 AS x1, 3 * (i % 50) + 1e-7 * ((i * 7) % 5) AS x2,
       (i % 13)::float8 AS x3, 5 + 2 * (i % 50) + (i % 13) + (i % 3) AS spend
  FROM generate_series(1, 400) AS i;
SELECT * FROM customer_value.train('collinear', 'collinear', 'spend', 'linear', '{"exclude": ["customer_id"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT name, algorithm FROM customer_value.train('collinear', 'collinear', 'spend', 'ridge', '{"exclude": ["customer_id"]}');

-- A CLV model scores valid summaries only: recency beyond t or a negative frequency is refused.
SELECT customer_value(r, 'late') FROM (SELECT 2 AS frequency, 5.0 AS recency, 3.0 AS t) r;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.p_alive(r, 'late') FROM (SELECT -1 AS frequency, 1.0 AS recency, 3.0 AS t) r;
\echo :LAST_ERROR_SQLSTATE

-- A holdout of a handful of rows cannot replace the serving version (its metric is noise).
SELECT version, deployed FROM customer_value.train('tiny', 'buyers', 'spend', 'linear', '{"exclude": ["churned"]}');
SELECT version, deployed, (metrics ->> 'n_test')::int AS holdout_rows
  FROM customer_value.train('tiny', 'buyers', 'spend', 'ridge', '{"exclude": ["churned"], "test_size": 0.004}');

-- auto's candidates are machine-learning algorithms; a CLV model learns from an RFM summary.
SELECT * FROM customer_value.train('m', 'buyers', 'spend', 'auto', '{"candidates": ["bgnbd"]}');
\echo :LAST_ERROR_SQLSTATE

-- PL/pgSQL keeps an expression's state across its statements: the model and the row layout are
-- resolved again for each statement, so a set_config, a deploy or an ALTER TABLE in between is
-- seen by the same call site.
CREATE TABLE pl_customers (customer_id int PRIMARY KEY, orders int, tenure float8, spend float8);
INSERT INTO pl_customers SELECT customer_id, orders, tenure, spend + tenure FROM regress.customers(300);
SELECT version FROM customer_value.train('pl_a', 'pl_customers', 'spend', 'linear');
SELECT version FROM customer_value.train('pl_b', 'SELECT orders, spend FROM pl_customers', 'spend', 'linear');
DO $$
DECLARE
    r pl_customers;
    m text;
    v float8;
BEGIN
    SELECT * INTO r FROM pl_customers WHERE customer_id = 7;
    FOREACH m IN ARRAY ARRAY['pl_a', 'pl_b', 'pl_a'] LOOP
        PERFORM set_config('customer_value.model', m, true);
        v := customer_value(r);
        RAISE NOTICE 'customer_value.model = %: % (as named: %)', m, round(v::numeric, 6),
            round(customer_value(r, m)::numeric, 6);
    END LOOP;
END $$;
RESET customer_value.model;
DO $$
DECLARE
    r pl_customers;
    i int;
    v float8;
BEGIN
    FOR i IN 1..3 LOOP
        SELECT * INTO r FROM pl_customers WHERE customer_id = 7;
        v := customer_value(r, 'pl_a');
        RAISE NOTICE 'step %: version %, value %', i,
            (SELECT version FROM customer_value.models WHERE name = 'pl_a' AND deployed), round(v::numeric, 6);
        IF i = 1 THEN
            -- a new version trained on other data, deployed in this transaction
            PERFORM * FROM customer_value.train('pl_a', 'SELECT orders, tenure, spend * 2 AS spend FROM pl_customers', 'spend', 'linear', '{"deploy": "always"}');
        ELSIF i = 2 THEN
            -- the column's type changes under the call site: read as int4 it would be garbage
            ALTER TABLE pl_customers ALTER COLUMN orders TYPE float8;
        END IF;
    END LOOP;
END $$;

-- No thread pool outlives a training inside the backend: gradient boosting on 4.2M values
-- (where the library builds its matrix in parallel) leaves the backend with its one thread.
CREATE TABLE wide AS
SELECT i AS customer_id, (i % 97)::float8 AS f1, (i % 89)::float8 AS f2, (i % 83)::float8 AS f3,
       (i % 79)::float8 AS f4, (i % 73)::float8 AS f5, (i % 71)::float8 AS f6, (i % 67)::float8 AS f7,
       (i % 61)::float8 AS f8, (i % 59)::float8 AS f9, (i % 53)::float8 AS f10,
       ((i % 97) + 2 * (i % 89))::float8 AS spend
  FROM generate_series(1, 420000) AS i;
SELECT version FROM customer_value.train('wide', 'wide', 'spend', 'gbm', '{"n_trees": 2, "exclude": ["customer_id"]}');
-- (the training's own pool ends with it; its threads are given up to 5 s to exit)
DO $$
BEGIN
    FOR i IN 1..50 LOOP
        EXIT WHEN (SELECT count(*) FROM pg_ls_dir('/proc/self/task') AS t) = 1;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT count(*) AS backend_threads FROM pg_ls_dir('/proc/self/task') AS t;
ROLLBACK;

-- A customer_value.* setting made before the library is loaded in a backend is a placeholder
-- Postgres cannot check (item 16). When the library loads it checks them: a misspelt name or an
-- invalid value fails every call, as Postgres' own settings would, until it is corrected or RESET.
\c
\set VERBOSITY default
SET customer_value.max_trainig_rows = 1000;
SELECT customer_value.deployed_id('spend');
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.deployed_id('spend');
\echo :LAST_ERROR_SQLSTATE
RESET customer_value.max_trainig_rows;
SELECT customer_value.deployed_id('no_such_model');
\echo :LAST_ERROR_SQLSTATE
\c
SET customer_value.max_training_rows = 0;
SELECT customer_value.deployed_id('spend');
\echo :LAST_ERROR_SQLSTATE
SET customer_value.max_training_rows = '5MB';
SELECT customer_value.deployed_id('spend');
\echo :LAST_ERROR_SQLSTATE
\c
SET customer_value.max_training_memory = '100kB';
SELECT customer_value.deployed_id('spend');
\echo :LAST_ERROR_SQLSTATE
\c
SET customer_value.narrow_scoring = 'sometimes';
SELECT customer_value.deployed_id('spend');
\echo :LAST_ERROR_SQLSTATE
RESET customer_value.narrow_scoring;
-- Valid values with units load, and once loaded Postgres itself refuses a typo.
SET customer_value.max_training_memory = '2GB';
SET customer_value.progress_interval = '1min';
SELECT customer_value.deployed_id('no_such_model');
SHOW customer_value.max_training_memory;
SHOW customer_value.progress_interval;
SET customer_value.modle = 'spend';
\echo :LAST_ERROR_SQLSTATE

-- Item 11, found by an audit of every error path: user situations that ended in XX000 (or
-- XX001) end in a fitting SQLSTATE.
RESET ALL;
\set VERBOSITY terse
BEGIN;
CREATE TABLE audit_t AS SELECT i AS id, (i % 7)::float8 AS x, (i % 2)::int AS flag, (3 * (i % 7) + i % 3)::float8 AS y
  FROM generate_series(1, 200) AS i;
-- logistic regression learns a class, not a number (also as a candidate of auto)
SELECT * FROM customer_value.train('a1', 'audit_t', 'y', 'logistic');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('a1', 'audit_t', 'y', 'auto', '{"candidates": ["linear", "logistic"]}');
\echo :LAST_ERROR_SQLSTATE
-- jsonb that Postgres accepts but no float8 or parser depth holds
SELECT * FROM customer_value.train('a1', 'audit_t', 'y', 'linear', '{"seed": 1e400}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('a1', 'audit_t', 'y', 'linear', ('{"tiers": ' || repeat('[', 200) || repeat(']', 200) || '}')::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM customer_value.rfm('audit_t', 'id', 'x', 'y', '2024-01-01', '{"x": 1e400}');
\echo :LAST_ERROR_SQLSTATE
-- one column for two RFM roles
SELECT * FROM customer_value.train('a1', 'SELECT x AS frequency, x AS recency, y AS t FROM audit_t', NULL, 'bgnbd',
                                   '{"columns": {"count": "frequency"}}');
\echo :LAST_ERROR_SQLSTATE
-- values so large that a mean or a sum overflows: 22003, not a "corrupted" model
CREATE TABLE huge AS SELECT i AS id, (i % 5)::float8 AS x, 1.7e308 * (i % 2)::float8 AS y, (0.9 + 0.1 * (i % 2)) * 1.7e308::float8 AS big
  FROM generate_series(1, 60) AS i;
SELECT * FROM customer_value.train('a2', 'SELECT id, x, y FROM huge', 'y', 'random_forest', '{"n_trees": 3}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('a2', 'SELECT id, x, big, x AS y FROM huge', 'y', 'linear');
\echo :LAST_ERROR_SQLSTATE
-- float8 customer keys that print alike (extra_float_digits) are not merged into one customer
CREATE TABLE float_log AS SELECT (10 + i % 3)::float8 AS customer_id, DATE '2024-01-01' + i AS day, 10.0 AS amount
  FROM generate_series(1, 90) AS i;
SET LOCAL extra_float_digits = -15;
SELECT * FROM customer_value.train_from_log('a3', 'float_log', 'customer_id', 'day', 'amount', '2024-03-31');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- the extension needs a UTF8 database: refused at CREATE EXTENSION, not mid-call
SELECT current_database() AS regress_db \gset
CREATE DATABASE cv_latin1 ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
\c cv_latin1
SET client_min_messages = warning;
CREATE EXTENSION customer_value;
\echo :LAST_ERROR_SQLSTATE
\c :regress_db
DROP DATABASE cv_latin1;
