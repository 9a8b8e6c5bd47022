-- customer_value demo on the CDNOW transaction log (see data/cdnow/README.md).
-- Expects table cdnow_transactions(customer_id, purchase_date, cds, amount), loaded by
-- scripts/demo.sh. Today is 1997-09-30: the model may learn from the log up to that day only;
-- the next 39 weeks (to 1998-06-30) are the future it predicts, used here only to check it.
\set ON_ERROR_STOP on
\pset footer off
\timing off

\echo
\echo '== 1. One call, leak-free: each customer''s spend in the next 39 weeks, learnt from the log as of 1997-09-30'
\echo '   Training examples are feature snapshots at earlier cut-offs, each with the spend of the window after it;'
\echo '   the holdout is a backtest on the last window before 1997-09-30. Nothing after 1997-09-30 is read.'
SELECT name, version, algorithm, deployed,
       metrics -> 'n_train' AS training_examples,
       metrics -> 'backtest' ->> 'window_days' AS window_days,
       metrics -> 'log' -> 'features_left_out' AS features_left_out
  FROM customer_value.train_from_log('cdnow_value', 'cdnow_transactions', 'customer_id', 'purchase_date', 'amount',
                                     '1997-09-30', '{"horizon_days": 273}');

\echo
\echo '   The backtest window, scored by the model and by the two classic answers on the same customers:'
SELECT approach, round((m ->> 'gini')::numeric, 3) AS gini,
       round((m ->> 'total_error_pct')::numeric, 1) AS total_error_pct,
       round((m ->> 'decile_mape')::numeric, 3) AS decile_mape,
       round((m ->> 'top_decile_capture')::numeric, 3) AS top_decile_capture
  FROM customer_value.models,
       LATERAL (VALUES ('the model (' || algorithm || ')', metrics),
                       ('BG/NBD x Gamma-Gamma', metrics -> 'baselines' -> 'bgnbd_gamma_gamma'),
                       ('same as last window', metrics -> 'baselines' -> 'last_window')) AS a(approach, m)
 WHERE name = 'cdnow_value'
 ORDER BY gini DESC;
\echo '   auto tried each candidate on that backtest (target extrapolated to 39 weeks, as the model learns it):'
SELECT t ->> 'algorithm' AS algorithm, coalesce(t ->> 'variant', '') AS variant,
       round((t ->> 'gini')::numeric, 3) AS gini, round((t ->> 'total_error_pct')::numeric, 1) AS total_error_pct,
       t ->> 'seconds' AS seconds
  FROM customer_value.models, jsonb_array_elements(metrics -> 'trials') t
 WHERE name = 'cdnow_value'
 ORDER BY (t ->> 'gini')::float8 DESC;

\echo
\echo '== 2. Nightly scoring is two lines: the feature table of any day, scored in place'
SELECT customer_value.create_log_features('cdnow_features', 'cdnow_value', '1997-09-30') AS customers;
SELECT customer_id, days_since_last, frequency, round(total_spend::numeric, 2) AS spend_so_far,
       round(clv_p_alive::numeric, 3) AS p_alive, round(customer_value(f, 'cdnow_value')::numeric, 2) AS predicted_39_weeks,
       customer_tier(f, 'cdnow_value') AS tier
  FROM cdnow_features f
 ORDER BY customer_value(f, 'cdnow_value') DESC, customer_id
 LIMIT 5;
\echo '   what the model reads most (permutation importance on the backtest window):'
SELECT feature, round(importance::numeric, 3) AS importance
  FROM customer_value.feature_importance('cdnow_value')
 ORDER BY importance DESC
 LIMIT 6;

\echo
\echo '== 3. Nine months later: the predictions against what the customers really spent (1997-10-01 .. 1998-06-30)'
CREATE TABLE cdnow_actual AS
SELECT f.*, coalesce(h.spend, 0) AS holdout_spend
  FROM cdnow_features f
  LEFT JOIN (SELECT customer_id, sum(amount)::float8 AS spend FROM cdnow_transactions
              WHERE purchase_date > '1997-09-30' AND purchase_date <= '1998-06-30' GROUP BY 1) h USING (customer_id);
\echo '   The classic model on the same day, for comparison: RFM summary -> BG/NBD x Gamma-Gamma'
SELECT customer_value.create_rfm('cdnow_rfm', 'cdnow_transactions', 'customer_id', 'purchase_date', 'amount',
                                 '1997-09-30', '{"holdout_end": "1998-06-30"}') AS customers;
SELECT name, algorithm, round((metrics ->> 'log_likelihood')::numeric, 1) AS count_ll,
       round((metrics ->> 'spend_log_likelihood')::numeric, 1) AS spend_ll
  FROM customer_value.train('cdnow_clv', 'cdnow_rfm', 'holdout_spend', 'clv', '{"horizon": 39, "discount_rate": 0}');
SELECT approach, round((m ->> 'predicted_total')::numeric) AS predicted_total, round((m ->> 'actual_total')::numeric) AS actual_total,
       round((m ->> 'total_error_pct')::numeric, 1) AS error_pct, round((m ->> 'gini')::numeric, 3) AS gini,
       round((m ->> 'spearman')::numeric, 3) AS spearman, round((m ->> 'decile_mape')::numeric, 3) AS decile_mape,
       round((m ->> 'top_decile_capture')::numeric, 3) AS top_decile_capture
  FROM (VALUES ('train_from_log', customer_value.evaluate('cdnow_value', 'cdnow_actual', 'holdout_spend')),
               ('BG/NBD x Gamma-Gamma', customer_value.evaluate('cdnow_clv', 'cdnow_rfm', 'holdout_spend'))) AS e(approach, m);
\echo '   Tiers of the log model, and what each tier really spent:'
SELECT customer_tier(c, 'cdnow_value') AS tier, count(*) AS customers,
       round(avg(customer_value(c, 'cdnow_value'))::numeric, 2) AS mean_predicted,
       round(avg(holdout_spend)::numeric, 2) AS mean_actual,
       round((100 * sum(holdout_spend) / sum(sum(holdout_spend)) OVER ())::numeric, 1) AS pct_of_holdout_spend
  FROM cdnow_actual c
 GROUP BY 1
 ORDER BY mean_predicted DESC;
\echo '   Lift by decile of predicted value (decile 1 = highest predicted), both models:'
CREATE TEMP TABLE lift AS
SELECT bucket AS decile, customers, round(mean_predicted::numeric, 2) AS mean_predicted,
       round(mean_actual::numeric, 2) AS mean_actual, round((100 * share_of_actual)::numeric, 1) AS pct_of_actual
  FROM customer_value.lift('cdnow_value', 'cdnow_actual', 'holdout_spend');
CREATE TEMP TABLE clv_lift AS
SELECT bucket AS decile, customers, round(mean_predicted::numeric, 2) AS mean_predicted,
       round(mean_actual::numeric, 2) AS mean_actual, round((100 * share_of_actual)::numeric, 1) AS pct_of_actual
  FROM customer_value.lift('cdnow_clv', 'cdnow_rfm', 'holdout_spend');
SELECT l.decile, l.mean_actual AS log_model_mean_actual, l.pct_of_actual AS log_model_pct,
       c.mean_actual AS clv_mean_actual, c.pct_of_actual AS clv_pct
  FROM lift l JOIN clv_lift c USING (decile) ORDER BY decile;
\if :{?lift_csv}
\o :lift_csv
COPY (SELECT * FROM lift ORDER BY decile) TO STDOUT WITH (FORMAT csv, HEADER);
\o
\endif
\if :{?clv_lift_csv}
\o :clv_lift_csv
COPY (SELECT * FROM clv_lift ORDER BY decile) TO STDOUT WITH (FORMAT csv, HEADER);
\o
\endif

\echo
\echo '== 4. A contrast, and a warning: a customer split is not a time split'
\echo '   train() on a per-customer table whose target is the very 39 weeks being predicted, holding out a'
\echo '   fifth of the customers at random. It learns from the future of the other four fifths - impossible'
\echo '   in production, where nobody''s future is known yet. Its figures measure something else and are'
\echo '   not comparable with the time-split ones above.'
CREATE TABLE cdnow_split AS
SELECT customer_id, frequency, days_since_last, tenure_days, monetary_value, total_spend, spend_90d, holdout_spend
  FROM cdnow_actual;
SELECT name, algorithm, round((metrics ->> 'gini')::numeric, 3) AS gini_on_held_out_customers
  FROM customer_value.train('cdnow_customer_split', 'cdnow_split', 'holdout_spend', 'auto');

\echo
\echo '== 5. The model store: every version, with how it was trained'
SELECT name, version, deployed, algorithm, n_train, n_test, model_bytes
  FROM customer_value.model_summary ORDER BY name, version;
