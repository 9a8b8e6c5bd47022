-- customer_value demo on the CDNOW transaction log (see data/cdnow/README.md).
-- Expects table cdnow_transactions(customer_id, purchase_date, cds, amount), loaded by
-- scripts/demo.sh. Calibration period: up to 1997-09-30; holdout: the next 39 weeks.
\set ON_ERROR_STOP on
\pset footer off
\timing off

\echo
\echo '== 1. Per-customer features for the calibration period, in plain SQL'
CREATE TABLE cdnow_customers AS
WITH days AS (   -- one purchase per customer per day, values summed (the literature's convention)
    SELECT customer_id, purchase_date, sum(amount)::float8 AS amount, sum(cds) AS cds
      FROM cdnow_transactions
     GROUP BY customer_id, purchase_date
), marked AS (
    SELECT d.*, min(purchase_date) OVER (PARTITION BY customer_id) AS first_day
      FROM days d
)
SELECT customer_id,
       (count(*) FILTER (WHERE purchase_date <= '1997-09-30') - 1)::int          AS frequency,
       (max(purchase_date) FILTER (WHERE purchase_date <= '1997-09-30') - min(first_day)) / 7.0
                                                                                   AS recency,
       ('1997-09-30'::date - min(first_day)) / 7.0                                 AS t,
       coalesce(avg(amount) FILTER (WHERE purchase_date > first_day
                                      AND purchase_date <= '1997-09-30'), 0)       AS monetary_value,
       sum(amount) FILTER (WHERE purchase_date <= '1997-09-30')                    AS total_spend,
       sum(cds) FILTER (WHERE purchase_date <= '1997-09-30')::int                  AS total_cds,
       max(amount) FILTER (WHERE purchase_date = first_day)                        AS first_amount,
       ('1997-09-30'::date - max(purchase_date) FILTER (WHERE purchase_date <= '1997-09-30'))
                                                                                   AS days_since_last,
       coalesce(sum(amount) FILTER (WHERE purchase_date > '1997-09-30'), 0)        AS holdout_spend
  FROM marked
 GROUP BY customer_id;
ALTER TABLE cdnow_customers ADD PRIMARY KEY (customer_id);
SELECT count(*) AS customers,
       round(avg(frequency), 3) AS mean_repeat_days,
       round(sum(total_spend)::numeric, 2) AS calibration_spend,
       round(sum(holdout_spend)::numeric, 2) AS holdout_spend
  FROM cdnow_customers;

\echo
\echo '== 2. Train on 4 of every 5 customers; the 5th are kept aside for an honest evaluation'
\echo '   One call: auto tries linear, ridge, random_forest and gbm and keeps the best on its own holdout.'
SELECT name, version, algorithm, deployed,
       round((metrics ->> 'rmse')::numeric, 2) AS rmse,
       round((metrics ->> 'mae')::numeric, 2) AS mae,
       round((metrics ->> 'r2')::numeric, 3) AS r2,
       round((metrics ->> 'spearman')::numeric, 3) AS spearman,
       round((metrics ->> 'gini')::numeric, 3) AS gini,
       round((metrics ->> 'top_decile_capture')::numeric, 3) AS top_decile_capture
  FROM customer_value.train('cdnow_spend',
                            'SELECT * FROM cdnow_customers WHERE customer_id % 5 <> 0',
                            'holdout_spend', 'auto', '{"exclude": ["customer_id"]}');

\echo
\echo '   every candidate, on the same internal holdout:'
SELECT t ->> 'algorithm' AS algorithm,
       round((t ->> 'rmse')::numeric, 2) AS rmse,
       round((t ->> 'r2')::numeric, 3) AS r2,
       round((t ->> 'gini')::numeric, 3) AS gini,
       round((t ->> 'top_decile_capture')::numeric, 3) AS top_decile_capture,
       t ->> 'seconds' AS seconds
  FROM customer_value.models, jsonb_array_elements(metrics -> 'trials') t
 WHERE name = 'cdnow_spend'
 ORDER BY (t ->> 'rmse')::float8;

\echo
\echo '== 3. Evaluation on the customers the model never saw (customer_id % 5 = 0)'
CREATE TEMP TABLE unseen AS
SELECT customer_id, customer_value(c) AS predicted, holdout_spend AS actual
  FROM cdnow_customers c WHERE customer_id % 5 = 0;
SELECT count(*) AS customers,
       round(sum(predicted)::numeric) AS predicted_total,
       round(sum(actual)::numeric) AS actual_total,
       round(sqrt(avg((predicted - actual) ^ 2))::numeric, 2) AS rmse,
       round(avg(abs(predicted - actual))::numeric, 2) AS mae,
       round(corr(predicted, actual)::numeric, 3) AS pearson
  FROM unseen;
\echo '   lift by decile of predicted value (decile 1 = highest predicted):'
CREATE TEMP TABLE lift AS
SELECT decile, count(*) AS customers,
       round(avg(predicted)::numeric, 2) AS mean_predicted,
       round(avg(actual)::numeric, 2) AS mean_actual,
       round((100 * sum(actual) / sum(sum(actual)) OVER ())::numeric, 1) AS pct_of_actual
  FROM (SELECT ntile(10) OVER (ORDER BY predicted DESC, customer_id) AS decile, predicted, actual FROM unseen) d
 GROUP BY decile;
SELECT * FROM lift ORDER BY decile;
\if :{?lift_csv}
\o :lift_csv
COPY (SELECT * FROM lift ORDER BY decile) TO STDOUT WITH (FORMAT csv, HEADER);
\o
\endif

\echo
\echo '== 4. Score every customer in place, by column name; tier sizes and what each tier really spent'
SELECT customer_tier(c) AS tier,
       count(*) AS customers,
       round(avg(customer_value(c))::numeric, 2) AS mean_predicted,
       round(avg(holdout_spend)::numeric, 2) AS mean_actual,
       round((100 * sum(holdout_spend) / sum(sum(holdout_spend)) OVER ())::numeric, 1) AS pct_of_holdout_spend
  FROM cdnow_customers c
 GROUP BY 1
 ORDER BY mean_predicted DESC;

\echo
\echo '== 5. The top 10 customers by predicted 39-week spend'
SELECT customer_id, frequency, round(recency, 1) AS recency, round(total_spend::numeric, 2) AS calibration_spend,
       round(customer_value(c)::numeric, 2) AS predicted, customer_tier(c) AS tier,
       round(holdout_spend::numeric, 2) AS actual
  FROM cdnow_customers c
 ORDER BY customer_value(c) DESC
 LIMIT 10;

\echo
\echo '== 6. The model store'
SELECT name, version, deployed, algorithm, n_train, n_test, features, model_bytes
  FROM customer_value.model_summary;

\echo
\echo '== 7. Customer lifetime value, the probabilistic way: RFM summary -> BG/NBD x Gamma-Gamma'
\echo '   The RFM summary of the calibration period, with the 39-week holdout, straight from the log:'
SELECT customer_value.create_rfm('cdnow_rfm', 'cdnow_transactions', 'customer_id', 'purchase_date', 'amount',
                                 '1997-09-30', '{"holdout_end": "1998-06-30"}') AS customers;
SELECT customer_id, frequency, round(recency::numeric, 2) AS recency, round(t::numeric, 2) AS t,
       round(monetary_value::numeric, 2) AS monetary_value, holdout_purchases, round(holdout_spend::numeric, 2) AS holdout_spend
  FROM cdnow_rfm ORDER BY customer_id LIMIT 5;

\echo '   Fit the count model (repeat purchases over the next 39 weeks) and the CLV model:'
SELECT name, algorithm, round((metrics ->> 'log_likelihood')::numeric, 1) AS log_likelihood
  FROM customer_value.train('cdnow_purchases', 'cdnow_rfm', 'holdout_purchases', 'bgnbd', '{"horizon": 39}');
SELECT name, algorithm, round((metrics ->> 'log_likelihood')::numeric, 1) AS count_ll,
       round((metrics ->> 'spend_log_likelihood')::numeric, 1) AS spend_ll
  FROM customer_value.train('cdnow_clv', 'cdnow_rfm', 'holdout_spend', 'clv', '{"horizon": 39, "discount_rate": 0}');
SELECT key AS parameter, round(value::numeric, 4) AS value
  FROM jsonb_each_text(customer_value.model_params('cdnow_clv'))
 WHERE key IN ('r', 'alpha', 'a', 'b', 'p', 'q', 'gamma') ORDER BY key;

\echo '   Holdout: predicted vs actual repeat purchases and spend over the 39 weeks, all 23,570 customers:'
SELECT 'purchases' AS quantity, e.* FROM (
SELECT round((m ->> 'predicted_total')::numeric) AS predicted_total, round((m ->> 'actual_total')::numeric) AS actual_total,
       round((m ->> 'total_error_pct')::numeric, 1) AS error_pct, round((m ->> 'mae')::numeric, 3) AS mae,
       round((m ->> 'pearson')::numeric, 3) AS pearson, round((m ->> 'spearman')::numeric, 3) AS spearman,
       round((m ->> 'gini')::numeric, 3) AS gini, round((m ->> 'top_decile_capture')::numeric, 3) AS top_decile_capture
  FROM customer_value.evaluate('cdnow_purchases', 'cdnow_rfm', 'holdout_purchases') AS m) e
UNION ALL
SELECT 'spend ($)', e.* FROM (
SELECT round((m ->> 'predicted_total')::numeric), round((m ->> 'actual_total')::numeric),
       round((m ->> 'total_error_pct')::numeric, 1), round((m ->> 'mae')::numeric, 3),
       round((m ->> 'pearson')::numeric, 3), round((m ->> 'spearman')::numeric, 3),
       round((m ->> 'gini')::numeric, 3), round((m ->> 'top_decile_capture')::numeric, 3)
  FROM customer_value.evaluate('cdnow_clv', 'cdnow_rfm', 'holdout_spend') AS m) e;

\echo '   Tiers by CLV, and what each really spent in the holdout:'
SELECT customer_tier(c, 'cdnow_clv') AS tier, count(*) AS customers,
       round(avg(customer_value(c, 'cdnow_clv'))::numeric, 2) AS mean_clv,
       round(avg(customer_value.p_alive(c, 'cdnow_clv'))::numeric, 3) AS mean_p_alive,
       round(avg(holdout_spend)::numeric, 2) AS mean_actual_spend
  FROM cdnow_rfm c GROUP BY 1 ORDER BY mean_clv DESC;

\echo '   Lift table (deciles of predicted CLV):'
CREATE TEMP TABLE clv_lift AS
SELECT bucket AS decile, customers, round(mean_predicted::numeric, 2) AS mean_predicted,
       round(mean_actual::numeric, 2) AS mean_actual, round((100 * share_of_actual)::numeric, 1) AS pct_of_actual
  FROM customer_value.lift('cdnow_clv', 'cdnow_rfm', 'holdout_spend');
SELECT * FROM clv_lift ORDER BY decile;
\if :{?clv_lift_csv}
\o :clv_lift_csv
COPY (SELECT * FROM clv_lift ORDER BY decile) TO STDOUT WITH (FORMAT csv, HEADER);
\o
\endif
