-- Gradient boosting, the MLP and the log1p target, through train() like every algorithm.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;
-- spend depends on orders non-linearly (a threshold) and on tenure; many customers spend 0.
CREATE TABLE customers (customer_id int PRIMARY KEY, orders int, tenure float8, vip boolean, spend float8);
INSERT INTO customers
SELECT i, (i * 37) % 23, ((i * 71) % 13)::float8, i % 7 = 0,
       CASE WHEN (i * 37) % 23 < 6 THEN 0
            ELSE 40 + 3 * ((i * 71) % 13) + CASE WHEN i % 7 = 0 THEN 60 ELSE 0 END END
  FROM generate_series(1, 2000) AS i;
-- The threshold defeats a line and suits trees; every model keeps its holdout metrics.
SELECT algorithm, round((metrics ->> 'r2')::numeric, 2) AS r2
  FROM customer_value.train('lin', 'customers', 'spend', 'linear');
SELECT algorithm, (metrics ->> 'r2')::float8 > 0.99 AS near_perfect
  FROM customer_value.train('boost', 'customers', 'spend', 'gbm', '{"n_trees": 50, "max_depth": 3, "learning_rate": 0.3}');
SELECT customer_value.model_params('boost') - 'model' - 'version' AS params;
SELECT customer_id, spend, round(customer_value(c, 'boost')::numeric) AS predicted, customer_tier(c, 'boost') AS tier
  FROM customers c WHERE customer_id IN (1, 2, 7, 14) ORDER BY customer_id;
SELECT algorithm, (metrics ->> 'r2')::float8 > 0.95 AS good
  FROM customer_value.train('net', 'customers', 'spend', 'mlp', '{"hidden_layers": [16, 8], "epochs": 300, "patience": 30, "learning_rate": 0.01}');
SELECT customer_value.model_params('net') ->> 'hidden_layers' AS hidden_layers;
-- auto tries gbm too and records every trial
SELECT algorithm, jsonb_array_length(metrics -> 'trials') AS trials
  FROM customer_value.train('best', 'customers', 'spend', 'auto', '{"n_trees": 30}');
-- log1p: fitted on ln(1 + spend), predictions and metrics on the spend scale (never below -1)
SELECT algorithm, metrics ? 'rmse' AS has_rmse
  FROM customer_value.train('logged', 'customers', 'spend', 'gbm', '{"target_transform": "log1p", "n_trees": 30}');
SELECT min(customer_value(c, 'logged')) > -1 AS above_minus_one FROM customers c;
-- Bad options are named.
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'gbm', '{"learning_rate": 2}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'gbm', '{"max_depth": 40}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'gbm', '{"hidden_layers": [8]}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'mlp', '{"hidden_layers": "wide"}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'mlp', '{"validation_fraction": 0.9}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'linear', '{"target_transform": "sqrt"}');
UPDATE customers SET spend = -5 WHERE customer_id = 3;
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'linear', '{"target_transform": "log1p"}');
ROLLBACK;
