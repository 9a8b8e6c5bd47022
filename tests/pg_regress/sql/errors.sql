-- Every bad input ends in a clear ERROR with a fitting SQLSTATE (printed after each error).
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
BEGIN;
CREATE TABLE customers (customer_id int PRIMARY KEY, orders int, basket float8, city text,
                        active boolean, flat int, empty_col float8, spend float8, label text);
INSERT INTO customers
SELECT customer_id, orders, basket, 'city ' || customer_id % 3, customer_id % 2 = 0, 1, NULL, 10 + 2 * orders, 'x'
  FROM regress.customers(100);

-- training: unknown source, target, feature columns
SELECT * FROM customer_value.train('m', 'no_such_table', 'spend');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'no_such_column');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"features": ["orders", "bsket"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"exclude": ["cty"]}');
\echo :LAST_ERROR_SQLSTATE
-- a target that is neither a value (number) nor a class (boolean, text)
SELECT * FROM customer_value.train('m', 'SELECT orders, spend, DATE ''2026-01-01'' + orders AS due FROM customers', 'due', 'linear');
\echo :LAST_ERROR_SQLSTATE
-- a feature type this version cannot use (text, dates and timestamps are fine: see features.sql)
SELECT * FROM customer_value.train('m', 'SELECT orders, spend, to_jsonb(city) AS attributes FROM customers', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
-- constant and all-NULL features
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"features": ["orders", "flat"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"features": ["orders", "empty_col"]}');
\echo :LAST_ERROR_SQLSTATE
-- too few rows, and an empty table
SELECT * FROM customer_value.train('m', 'SELECT orders, spend FROM customers LIMIT 5', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'SELECT orders, spend FROM customers WHERE false', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
-- unknown algorithm and options, malformed options
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'xgboost');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'random_forest', '{"n_tree": 10, "exclude": ["city", "label"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"n_trees": 10}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"test_size": 2}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"tiers": [{"name": "a", "share": 0.5}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{not json');
\echo :LAST_ERROR_SQLSTATE
-- bad names and NULL arguments
SELECT * FROM customer_value.train('a@b', 'customers', 'spend');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train(NULL, 'customers', 'spend');
\echo :LAST_ERROR_SQLSTATE
-- a source larger than customer_value.max_training_rows
SET customer_value.max_training_rows = 50;
SELECT * FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"features": ["orders"]}');
\echo :LAST_ERROR_SQLSTATE
RESET customer_value.max_training_rows;
-- more than customer_value.max_training_memory: refused before reading a table (the planner's
-- estimate), as rows arrive from a query — out of memory is an error (53200), never an abort
CREATE TABLE big AS
SELECT i AS id, i % 7 AS a, i % 11 AS b, (i % 13)::float8 AS y FROM generate_series(1, 20000) AS i;
ANALYZE big;
SET customer_value.max_training_memory = '1MB';
SELECT * FROM customer_value.train('m', 'big', 'y', 'linear', '{"exclude": ["id"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', 'SELECT a, b, y FROM big', 'y', 'linear');
\echo :LAST_ERROR_SQLSTATE
RESET customer_value.max_training_memory;
DROP TABLE big;
-- a SELECT source with duplicate column names
SELECT * FROM customer_value.train('m', 'SELECT orders, orders, spend FROM customers', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
-- an error of Postgres' own in the source is passed on as it is: no Rust backtrace in its
-- DETAIL, although the test server runs with RUST_BACKTRACE=1 (scripts/regress.sh)
SELECT * FROM customer_value.train('m', 'SELECT orders, spend, 1 / (orders - orders) AS z FROM customers', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
-- NaN and Infinity in the data
SELECT * FROM customer_value.train('m', $$SELECT orders, CASE WHEN orders = 3 THEN 'NaN' ELSE basket END AS basket, spend FROM customers$$, 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('m', $$SELECT orders, CASE WHEN orders = 3 THEN 'Infinity' ELSE spend END AS spend FROM customers$$, 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE

-- scoring
SELECT customer_value(c) FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT version FROM customer_value.train('m', 'customers', 'spend', 'linear', '{"features": ["orders", "basket", "active"]}');
SELECT customer_value(c, 'no_such_model') FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(c, 'm@7') FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(c, 'm@x') FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(c, 12345::bigint) FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
-- a row without a feature column, and with the wrong type
SELECT customer_value(r, 'm') FROM (SELECT 1 AS orders, 2.0 AS basket) r;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(r, 'm') FROM (SELECT 1 AS orders, 'abc'::text AS basket, true AS active) r;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(r, 'm') FROM (SELECT 1 AS orders, 2.0 AS basket, 1 AS active) r;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(r, 'm') FROM (SELECT 1 AS orders, 'Infinity'::float8 AS basket, true AS active) r;
\echo :LAST_ERROR_SQLSTATE
-- a prediction that overflows is an error, not Infinity
SELECT customer_value(r, 'm') FROM (SELECT 1e308::float8 AS orders, 2.0 AS basket, true AS active) r;
\echo :LAST_ERROR_SQLSTATE
-- two columns of one name: which one was meant cannot be guessed
SELECT customer_value(r, 'm') FROM (SELECT 1 AS orders, 2.0 AS basket, 3.0 AS basket, true AS active) r;
\echo :LAST_ERROR_SQLSTATE
-- a scalar is not a row: Postgres refuses it before the call
SELECT customer_value(42);
\echo :LAST_ERROR_SQLSTATE
-- corrupted and truncated model bytes fail cleanly, never mis-predict
SAVEPOINT intact;
UPDATE customer_value.models SET model = substr(model, 1, 40) WHERE name = 'm';
SELECT customer_value(c, 'm') FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT intact;
UPDATE customer_value.models SET model = overlay(model placing '\xff'::bytea from 30 for 1) WHERE name = 'm';
SELECT customer_value(c, 'm') FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT intact;
UPDATE customer_value.models SET model = '\x0102'::bytea WHERE name = 'm';
SELECT customer_tier(c, 'm') FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT intact;
UPDATE customer_value.models SET model = overlay(model placing '\x0900'::bytea from 9 for 2) WHERE name = 'm';
SELECT customer_value(c, 'm') FROM customers c LIMIT 1;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT intact;
-- deploying what does not exist
SELECT customer_value.deploy('m', 9);
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value.deploy('nope', 1);
\echo :LAST_ERROR_SQLSTATE

-- A training that fails or is cancelled leaves the previous version serving and no rows behind.
SELECT customer_value.deploy('m', 1) AS previously_deployed;
SET LOCAL statement_timeout = '200ms';
SELECT * FROM customer_value.train('m', $$SELECT orders, basket, active, spend FROM customers, generate_series(1, 2000)$$,
                                   'spend', 'random_forest', '{"n_trees": 500}');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT name, version, deployed FROM customer_value.models ORDER BY version;
SELECT round(customer_value(c, 'm')::numeric, 3) AS still_scoring FROM customers c WHERE customer_id = 1;
ROLLBACK;
