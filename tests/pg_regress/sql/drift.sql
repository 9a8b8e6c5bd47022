-- Drift: PSI of each feature and of the predictions, today's data against training.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;
CREATE TABLE customers (customer_id int PRIMARY KEY, orders int, tenure float8, vip boolean, spend float8);
INSERT INTO customers
SELECT customer_id, orders, tenure, vip, spend + CASE WHEN vip THEN 30 ELSE 0 END FROM regress.customers(1000);
SELECT version FROM customer_value.train('spend', 'customers', 'spend', 'linear');
-- The training data itself: nothing moved.
SELECT feature, round(psi::numeric, 4) AS psi, drift, training_rows, source_rows
  FROM customer_value.drift('spend', 'customers');
-- Today: orders grew for half of the customers, tenure lost values (NULL), vip unchanged.
CREATE TABLE customers_today AS
SELECT customer_id,
       orders + CASE WHEN customer_id % 2 = 0 THEN 15 ELSE 0 END AS orders,
       CASE WHEN customer_id % 4 = 0 THEN NULL ELSE tenure END AS tenure,
       vip, spend
  FROM customers;
SELECT feature, round(psi::numeric, 3) AS psi, drift,
       round(training_null_share::numeric, 3) AS training_nulls, round(source_null_share::numeric, 3) AS source_nulls
  FROM customer_value.drift('spend', 'customers_today');
-- A query works as a source too, and a small sample of the same population stays stable.
SELECT feature, drift FROM customer_value.drift('spend', 'SELECT * FROM customers WHERE customer_id % 2 = 1');
-- Errors: a missing column, a wrong type, an empty source, an unknown model.
SELECT * FROM customer_value.drift('spend', 'SELECT customer_id, orders, vip FROM customers');
SELECT * FROM customer_value.drift('spend', 'SELECT customer_id, orders, tenure::text AS tenure, vip FROM customers');
SELECT * FROM customer_value.drift('spend', 'SELECT * FROM customers WHERE false');
SELECT * FROM customer_value.drift('nope', 'customers');
-- A model without a stored profile (as trained before 0.2.0) says what to do.
UPDATE customer_value.models SET profile = NULL WHERE name = 'spend';
SELECT * FROM customer_value.drift('spend', 'customers');
ROLLBACK;
