-- Churn classification (a boolean target), predict_proba, explanations and feature importance.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;
-- churn is likelier with few orders and long inactivity; tenure is noise
CREATE TABLE customers (customer_id int PRIMARY KEY, orders int, days_inactive float8, tenure float8, churned boolean);
INSERT INTO customers
SELECT customer_id, orders, days_inactive, tenure, orders * 4 - days_inactive + (customer_id * 29) % 31 - 15 < 0
  FROM regress.customers(3000);
SELECT round(avg(churned::int), 3) AS churn_rate FROM customers;
-- A boolean target makes a classifier; metrics: auc, log_loss, accuracy, f1, calibration.
SELECT algorithm, (metrics ->> 'auc')::float8 > 0.9 AS auc_above_09,
       (metrics ->> 'log_loss')::float8 < 0.4 AS good_log_loss,
       jsonb_array_length(metrics -> 'calibration') AS calibration_buckets,
       metrics ->> 'selection_metric' AS selected_by
  FROM customer_value.train('churn_lr', 'customers', 'churned', 'logistic');
SELECT task, target FROM customer_value.models WHERE name = 'churn_lr';
SELECT algorithm, (metrics ->> 'auc')::float8 > 0.9 AS auc_above_09
  FROM customer_value.train('churn_gbm', 'customers', 'churned', 'gbm', '{"n_trees": 60, "max_depth": 3}');
SELECT algorithm, (metrics ->> 'auc')::float8 > 0.9 AS auc_above_09, jsonb_array_length(metrics -> 'trials') AS trials
  FROM customer_value.train('churn_auto', 'customers', 'churned', 'auto', '{"n_trees": 30}');
-- predict_proba is the probability of churned = true; customer_tier is the predicted class.
SELECT customer_id, churned, round(customer_value.predict_proba(c, 'churn_lr')::numeric, 2) AS p,
       customer_tier(c, 'churn_lr') AS predicted
  FROM customers c WHERE customer_id IN (1, 2, 3, 4, 5) ORDER BY customer_id;
SELECT count(*) FILTER (WHERE customer_tier(c, 'churn_gbm')::boolean = churned)::float8 / count(*) > 0.85 AS accurate
  FROM customers c;
-- explain: baseline + Σ contributions = prediction, exactly, for every row and model kind
-- (TreeSHAP for trees, on the log-odds scale for classifiers)
SELECT m.name, e ->> 'scale' AS scale,
       max(abs((e ->> 'baseline')::float8
               + (SELECT sum(value::float8) FROM jsonb_each_text(e -> 'contributions'))
               - (e ->> 'prediction')::float8)) < 1e-9 AS adds_up
  FROM (VALUES ('churn_lr'), ('churn_gbm')) AS m(name),
       LATERAL (SELECT customer_value.explain(c, m.name) AS e FROM customers c WHERE customer_id <= 200) x
 GROUP BY 1, 2 ORDER BY 1;
SELECT jsonb_object_keys(customer_value.explain(c, 'churn_gbm') -> 'contributions') AS feature
  FROM customers c WHERE customer_id = 1 ORDER BY 1;
-- for one customer: which feature pushed the churn risk up most
SELECT key AS feature FROM customers c, jsonb_each(customer_value.explain(c, 'churn_lr') -> 'contributions')
 WHERE customer_id = 2 ORDER BY value::float8 DESC LIMIT 1;
-- feature importance: the noise column ranks last
SELECT feature, method, rank FROM customer_value.feature_importance('churn_gbm') ORDER BY method, rank;
-- value models explain in their own units
SELECT customer_value.train('spend', 'SELECT customer_id, orders, tenure, orders * 10 + tenure AS spend FROM customers', 'spend', 'linear') IS NOT NULL AS trained;
SELECT e ->> 'scale' AS scale, round((e -> 'contributions' ->> 'orders')::numeric, 6) AS orders_part,
       round(((e ->> 'baseline')::float8 + (e -> 'contributions' ->> 'orders')::float8
              + (e -> 'contributions' ->> 'tenure')::float8 - (e ->> 'value')::float8)::numeric, 9) AS residual
  FROM (SELECT customer_value.explain(c, 'spend') AS e FROM customers c WHERE customer_id = 1) x;
-- Errors
SELECT * FROM customer_value.train('x', 'customers', 'churned', 'linear');
SELECT * FROM customer_value.train('x', 'customers', 'orders', 'logistic', '{"task": "classification"}');
-- (a text label with two values is a binary classifier; its classes in alphabetical order)
SELECT algorithm, (metrics ->> 'auc')::float8 > 0.9 AS auc_above_09
  FROM customer_value.train('text_label', 'SELECT orders, days_inactive, tenure, churned::text AS label FROM customers', 'label', 'gbm');
SELECT DISTINCT customer_tier(c, 'text_label') AS predicted_class
  FROM (SELECT orders, days_inactive, tenure FROM customers) c ORDER BY 1;
SELECT * FROM customer_value.train('x', 'customers', 'churned', 'gbm', '{"target_transform": "log1p"}');
SELECT * FROM customer_value.train('x', 'customers', 'churned', 'gbm', '{"task": "guess"}');
SELECT customer_value.predict_proba(c, 'spend') FROM customers c WHERE customer_id = 1;
SELECT customer_value.train('net', 'customers', 'churned', 'mlp', '{"epochs": 3}') IS NOT NULL AS trained;
SELECT customer_value.explain(c, 'net') FROM customers c WHERE customer_id = 1;
ROLLBACK;
-- Multi-class: a text label (here a tier) — one binary model per class; customer_tier gives the
-- most likely class, customer_value / predict_proba its probability; metrics accuracy, log_loss,
-- macro f1.
BEGIN;
CREATE TABLE members (customer_id int PRIMARY KEY, orders int, days_inactive float8, tenure float8, label text);
INSERT INTO members
SELECT customer_id, orders, days_inactive, tenure,
       CASE WHEN orders >= 15 THEN 'gold' WHEN orders >= 7 THEN 'silver' ELSE 'bronze' END
  FROM regress.customers(1500);
SELECT algorithm, (metrics ->> 'accuracy')::float8 > 0.9 AS accurate, metrics ->> 'selection_metric' AS selected_by,
       metrics ? 'auc' AS has_auc, (metrics ->> 'log_loss')::float8 < 0.5 AS good_log_loss
  FROM customer_value.train('label', 'members', 'label', 'gbm', '{"n_trees": 30}');
SELECT task, customer_value.model_params('label') ->> 'classes' AS classes FROM customer_value.models WHERE name = 'label';
SELECT label, customer_tier(m, 'label') AS predicted, round(customer_value.predict_proba(m, 'label')::numeric, 1) AS p
  FROM members m WHERE customer_id IN (1, 2, 3, 10) ORDER BY customer_id;
SELECT count(*) FILTER (WHERE customer_tier(m, 'label') = label)::float8 / count(*) > 0.9 AS mostly_right FROM members m;
SELECT algorithm FROM customer_value.train('label_lr', 'members', 'label', 'logistic');
SELECT decision FROM customer_value.retrain('label');
SELECT customer_value.explain(m, 'label') FROM members m WHERE customer_id = 1;
SELECT * FROM customer_value.train('x', 'SELECT orders, tenure, ''same''::text AS label FROM members', 'label', 'gbm');
SELECT * FROM customer_value.train('x', 'members', 'label', 'linear');
ROLLBACK;
