-- Gradient boosting, the MLP and the log1p target, through train() like every algorithm.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;
-- spend depends on orders non-linearly (a threshold) and on tenure; many customers spend 0.
CREATE TABLE customers (customer_id int PRIMARY KEY, orders int, tenure float8, vip boolean, spend float8);
INSERT INTO customers
SELECT customer_id, orders, tenure, vip,
       CASE WHEN orders < 6 THEN 0 ELSE 40 + 3 * tenure + CASE WHEN vip THEN 60 ELSE 0 END END
  FROM regress.customers(2000);
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
-- Hyperparameter search: k-fold cross-validation on the training rows, best combination refit;
-- every combination's score is stored with the model.
SELECT algorithm, metrics -> 'search' ->> 'method' AS method, metrics -> 'search' ->> 'folds' AS folds,
       jsonb_array_length(metrics -> 'search' -> 'trials') AS combinations,
       (SELECT bool_and((t ->> 'cv_mean')::float8 > 0) FROM jsonb_array_elements(metrics -> 'search' -> 'trials') t) AS all_scored,
       metrics -> 'search' -> 'best' ? 'max_depth' AS best_has_depth
  FROM customer_value.train('tuned', 'customers', 'spend', 'gbm',
       '{"n_trees": 20, "search": {"params": {"max_depth": [2, 4], "learning_rate": [0.1, 0.3]}, "folds": 3}}');
SELECT jsonb_array_length(metrics -> 'search' -> 'trials') AS random_trials
  FROM customer_value.train('tuned2', 'customers', 'spend', 'random_forest',
       '{"search": {"method": "random", "trials": 2, "params": {"max_depth": [3, 5, 8], "n_trees": [5, 10]}}}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'gbm', '{"search": {"params": {"alpha": [1, 2]}}}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'gbm', '{"search": {"params": {"max_depth": [2, 99]}}}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'gbm', '{"search": {"params": {"max_depth": []}}}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'gbm', '{"search": {"params": {"max_depth": [2]}, "folds": 1}}');
SELECT * FROM customer_value.train('x', 'customers', 'spend', 'linear', '{"search": {"params": {"alpha": [1]}}}');
-- auto within a time budget: once it is spent, further candidates are skipped (and say so)
SELECT t ->> 'algorithm' AS algorithm, t ->> 'error' AS skipped
  FROM customer_value.train('budget', 'customers', 'spend', 'auto',
       '{"candidates": ["random_forest", "linear"], "time_budget": 0.001}') r,
       jsonb_array_elements(r.metrics -> 'trials') t;
-- A group report: per segment, mean predicted vs actual, errors and tier shares.
SELECT group_value, customers, round(mean_predicted::numeric, 1) AS mean_predicted,
       round(mean_actual::numeric, 1) AS mean_actual, round(mae::numeric, 1) AS mae,
       (SELECT round(sum(value::float8)::numeric, 6) FROM jsonb_each_text(tier_shares)) AS shares_sum,
       tier_shares ? 'VIP' AS has_vip
  FROM customer_value.group_report('boost', 'customers', 'spend', 'vip');
SELECT * FROM customer_value.group_report('boost', 'customers', 'spend', 'segment');
SELECT * FROM customer_value.group_report('boost', 'customers', 'nope', 'vip');
SELECT * FROM customer_value.group_report('boost', 'SELECT *, spend::text AS s FROM customers', 's', 'vip');
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
