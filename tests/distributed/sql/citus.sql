-- customer_value on a Citus cluster: a coordinator (9700) and two workers (9701, 9702); a
-- fourth node (9703) is added near the end. Scores are computed on the workers, next to the
-- shards, and must equal those of a local copy of the same table.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
\getenv test_data CV_TEST_DATA
\set transactions_csv :test_data '/cdnow_sample_transactions.csv'
-- The previous release, created on the coordinator, propagates to every worker; so does the
-- upgrade to this one (the rest of this file runs on the upgraded install).
CREATE EXTENSION customer_value VERSION '0.2.0';
SELECT nodeport, result FROM run_command_on_workers($$SELECT extversion FROM pg_extension WHERE extname = 'customer_value'$$) ORDER BY 1;
ALTER EXTENSION customer_value UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'customer_value';
SELECT nodeport, result FROM run_command_on_workers($$SELECT extversion FROM pg_extension WHERE extname = 'customer_value'$$) ORDER BY 1;

CREATE TABLE customers (customer_id int PRIMARY KEY, orders int, tenure float8, region text,
                        churned boolean, spend float8, v float8);
SELECT create_distributed_table('customers', 'customer_id');
INSERT INTO customers (customer_id, orders, tenure, region, churned, spend)
SELECT i, (i * 37) % 23, ((i * 71) % 13)::float8, (ARRAY['north', 'south', 'east'])[1 + i % 3],
       (i * 37) % 23 < 6, 10 + 2 * ((i * 37) % 23) + ((i * 17) % 5) + CASE WHEN i % 3 = 0 THEN 7 ELSE 0 END
  FROM generate_series(1, 3000) AS i;
CREATE TABLE customers_local AS SELECT * FROM customers;

-- Training reads the distributed table through Citus; the model lands in the coordinator's store.
SELECT name, version, deployed FROM customer_value.train('spend', 'customers', 'spend', 'linear', '{"exclude": ["v"]}');
SELECT name, version, deployed FROM customer_value.train('churn', 'customers', 'churned', 'logistic', '{"exclude": ["v", "spend"]}');

-- Before the store is distributed, scoring on the workers says what to do.
SELECT sum(customer_value(c, 'spend')) FROM customers c;

-- distribute(): the store becomes reference tables; calling it again changes nothing.
SELECT * FROM customer_value.distribute();
SELECT * FROM customer_value.distribute();
SELECT logicalrelid, partmethod FROM pg_dist_partition WHERE logicalrelid::text LIKE 'customer_value.%' ORDER BY 1;
SELECT nodeport, result FROM run_command_on_workers($$SELECT string_agg(name || '@' || version, ',' ORDER BY name) FROM customer_value.models$$) ORDER BY 1;

-- Scoring is pushed down to the shards (the call runs in the workers' queries) …
EXPLAIN (COSTS OFF, VERBOSE) SELECT sum(customer_value(c, 'spend')) FROM customers c;
-- … and gives exactly the scores of the local copy, for every scoring function.
CREATE TEMP TABLE scored_distributed AS
SELECT customer_id, customer_value(c, 'spend') AS value, customer_tier(c, 'spend') AS tier,
       customer_value.predict_proba(c, 'churn') AS proba, customer_tier(c, 'churn') AS churn_class,
       customer_value.explain(c, 'spend') AS explained
  FROM customers c;
CREATE TEMP TABLE scored_local AS
SELECT customer_id, customer_value(c, 'spend') AS value, customer_tier(c, 'spend') AS tier,
       customer_value.predict_proba(c, 'churn') AS proba, customer_tier(c, 'churn') AS churn_class,
       customer_value.explain(c, 'spend') AS explained
  FROM customers_local c;
SELECT count(*) AS scored, count(*) FILTER (WHERE l.customer_id IS NULL
           OR d.value IS DISTINCT FROM l.value OR d.tier IS DISTINCT FROM l.tier
           OR d.proba IS DISTINCT FROM l.proba OR d.churn_class IS DISTINCT FROM l.churn_class
           OR d.explained IS DISTINCT FROM l.explained) AS different
  FROM scored_distributed d LEFT JOIN scored_local l USING (customer_id);

-- Deploy and rollback are one distributed transaction: every node serves the same version.
SELECT name, version, deployed FROM customer_value.train('spend', 'customers', 'spend', 'ridge', '{"exclude": ["v"], "alpha": 50, "deploy": "always"}');
SELECT nodeport, result FROM run_command_on_placements('customer_value.models', $$SELECT version FROM %s WHERE name = 'spend' AND deployed$$) ORDER BY 1;
SELECT (SELECT round(sum(customer_value(c, 'spend'))::numeric, 6) FROM customers c)
     = (SELECT round(sum(customer_value(c, 'spend'))::numeric, 6) FROM customers_local c) AS same_after_deploy;
SELECT customer_value.deploy('spend', 1) AS previous;
SELECT nodeport, result FROM run_command_on_placements('customer_value.models', $$SELECT version FROM %s WHERE name = 'spend' AND deployed$$) ORDER BY 1;
SELECT (SELECT round(sum(customer_value(c, 'spend'))::numeric, 6) FROM customers c)
     = (SELECT round(sum(customer_value(c, 'spend'))::numeric, 6) FROM customers_local c) AS same_after_rollback;

-- UPDATE … SET on a distributed table: Citus refuses a STABLE function of the row; the pinned
-- form (an id, evaluated once on the coordinator) runs on the shards.
UPDATE customers c SET v = customer_value(c, 'spend');
UPDATE customers c SET v = customer_value(c, customer_value.deployed_id('spend'));
SELECT count(*) FILTER (WHERE c.v IS DISTINCT FROM l.value) AS different_after_update
  FROM customers c JOIN scored_local l USING (customer_id);

-- Writes belong to the coordinator: a worker refuses them clearly.
SELECT nodeport, success, result FROM run_command_on_workers($$SELECT customer_value.deploy('spend', 2)$$) ORDER BY 1;
SELECT nodeport, success, result FROM run_command_on_workers($$SELECT version FROM customer_value.train('w', 'customers', 'spend', 'linear')$$) ORDER BY 1;

-- Per-model access holds on every node (row-level security on the reference tables).
CREATE ROLE cv_alice LOGIN IN ROLE customer_value_reader;
CREATE ROLE cv_eve LOGIN IN ROLE customer_value_reader;
CREATE ROLE cv_finance NOLOGIN;
GRANT cv_finance TO cv_alice;
GRANT SELECT ON customers, customers_local TO cv_alice, cv_eve;
SELECT customer_value.restrict_model('spend', ARRAY['cv_finance']);
SELECT nodeport, result FROM run_command_on_placements('customer_value.models', $$SELECT string_agg(DISTINCT allowed_roles::text, ',') FROM %s WHERE name = 'spend'$$) ORDER BY 1;
SET ROLE cv_alice;
SELECT (SELECT round(sum(customer_value(c, 'spend'))::numeric, 6) FROM customers c)
     = (SELECT round(sum(customer_value(c, 'spend'))::numeric, 6) FROM customers_local c) AS alice_scores;
RESET ROLE;
SET ROLE cv_eve;
SELECT sum(customer_value(c, 'spend')) FROM customers c;
SELECT count(*) AS eve_sees FROM customer_value.models WHERE name = 'spend';
RESET ROLE;
SELECT customer_value.restrict_model('spend', NULL) AS open_again;

-- CLV from a distributed transaction log (the CDNOW 1/10 sample, distributed by customer).
CREATE TABLE sample_tx (customer_id int, purchased date, cds int, dollars numeric);
SELECT create_distributed_table('sample_tx', 'customer_id');
COPY sample_tx FROM :'transactions_csv' WITH (FORMAT csv, HEADER);
CREATE TABLE sample_tx_local AS SELECT * FROM sample_tx;
-- create_rfm summarises each shard's customers where they are: the summary is distributed by
-- the same key and colocated with the log, and equals the one made from a local copy.
SELECT customer_value.create_rfm('cdnow_rfm', 'sample_tx', 'customer_id', 'purchased', 'dollars',
                                 '1997-09-30', '{"holdout_end": "1998-06-30"}') AS customers;
SELECT customer_value.create_rfm('cdnow_rfm_local', 'sample_tx_local', 'customer_id', 'purchased', 'dollars',
                                 '1997-09-30', '{"holdout_end": "1998-06-30"}') AS customers;
SELECT p.logicalrelid, p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'sample_tx'::regclass) AS colocated_with_log
  FROM pg_dist_partition p WHERE p.logicalrelid = 'cdnow_rfm'::regclass;
SELECT count(*) AS different_summaries FROM (
    (SELECT customer_id, frequency, recency, t, monetary_value FROM cdnow_rfm
     EXCEPT SELECT customer_id, frequency, recency, t, monetary_value FROM cdnow_rfm_local)
    UNION ALL
    (SELECT customer_id, frequency, recency, t, monetary_value FROM cdnow_rfm_local
     EXCEPT SELECT customer_id, frequency, recency, t, monetary_value FROM cdnow_rfm)) d;
-- A CLV fit on a distributed summary reads it grouped (each distinct summary with its count,
-- aggregated on the workers: 1,030 rows reach the coordinator for 2,357 customers) and fits
-- the model of the per-customer fit of the local copy: the same likelihood, so the same
-- optimum (BG/NBD to the bit; Gamma-Gamma sums its terms in another order, so its optimum
-- agrees to the optimizer's tolerance).
SELECT name, metrics ->> 'customers' AS customers, metrics ->> 'summary_rows' AS rows_read,
       round((metrics ->> 'log_likelihood')::numeric, 4) AS log_likelihood
  FROM customer_value.train('clv', 'cdnow_rfm', NULL, 'clv', '{"horizon": 39}');
SELECT name, metrics ->> 'customers' AS customers, metrics ->> 'summary_rows' AS rows_read,
       round((metrics ->> 'log_likelihood')::numeric, 4) AS log_likelihood
  FROM customer_value.train('clv_local', 'cdnow_rfm_local', NULL, 'clv', '{"horizon": 39}');
SELECT g.key, abs(g.value::float8 - l.value::float8) <= 1e-6 * abs(l.value::float8) AS same_parameter
  FROM jsonb_each_text(customer_value.model_params('clv')) g
  JOIN jsonb_each_text(customer_value.model_params('clv_local')) l USING (key)
 WHERE jsonb_typeof(customer_value.model_params('clv') -> g.key) = 'number'
 ORDER BY 1;
SELECT g.t ->> 'name' AS tier, g.t ->> 'share' AS share,
       coalesce(abs((g.t ->> 'min')::float8 - (l.t ->> 'min')::float8) <= 1e-6 * abs((l.t ->> 'min')::float8),
                (g.t ->> 'min') IS NULL AND (l.t ->> 'min') IS NULL) AS same_cut
  FROM jsonb_array_elements((SELECT tiers FROM customer_value.models WHERE name = 'clv')) WITH ORDINALITY AS g(t, n)
  JOIN jsonb_array_elements((SELECT tiers FROM customer_value.models WHERE name = 'clv_local')) WITH ORDINALITY AS l(t, n) USING (n)
 ORDER BY n;
-- The CLV scoring functions run on the workers too, and agree with the local copy.
CREATE TEMP TABLE clv_distributed AS
SELECT customer_id, customer_value(r, 'clv') AS value, customer_value.p_alive(r, 'clv') AS p_alive,
       customer_value.expected_purchases(r, 39, 'clv') AS purchases, customer_value.expected_spend(r, 'clv') AS spend
  FROM cdnow_rfm r;
CREATE TEMP TABLE clv_local AS
SELECT customer_id, customer_value(r, 'clv_local') AS value, customer_value.p_alive(r, 'clv_local') AS p_alive,
       customer_value.expected_purchases(r, 39, 'clv_local') AS purchases, customer_value.expected_spend(r, 'clv_local') AS spend
  FROM cdnow_rfm_local r;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE abs(d.value - l.value) > 1e-6 * greatest(abs(l.value), 1)
                           OR abs(d.p_alive - l.p_alive) > 1e-9
                           OR abs(d.purchases - l.purchases) > 1e-9 * greatest(abs(l.purchases), 1)
                           OR abs(d.spend - l.spend) > 1e-6 * greatest(abs(l.spend), 1)) AS different
  FROM clv_distributed d JOIN clv_local l USING (customer_id);
-- A target needs each customer's own row: grouping then is refused, not silently wrong.
SELECT * FROM customer_value.train('clv_eval', 'cdnow_rfm', 'holdout_spend', 'clv', '{"group": true}');

-- A model learnt from the distributed log (train_from_log): the log is read in one aggregation
-- that Citus runs on the shards, so the model is the one learnt from the local copy; its feature
-- table is distributed and colocated with the log, and scores like the local one.
SELECT name, algorithm, round((metrics ->> 'gini')::numeric, 9) AS backtest_gini, metrics -> 'n_train' AS examples
  FROM customer_value.train_from_log('from_log', 'sample_tx', 'customer_id', 'purchased', 'dollars', '1997-09-30',
                                     '{"horizon_days": 90, "algorithm": "linear"}');
SELECT name, algorithm, round((metrics ->> 'gini')::numeric, 9) AS backtest_gini, metrics -> 'n_train' AS examples
  FROM customer_value.train_from_log('from_log_local', 'sample_tx_local', 'customer_id', 'purchased', 'dollars', '1997-09-30',
                                     '{"horizon_days": 90, "algorithm": "linear"}');
SELECT customer_value.create_log_features('log_features', 'from_log', '1997-09-30') AS customers;
SELECT customer_value.create_log_features('log_features_local', 'from_log_local', '1997-09-30') AS customers;
SELECT p.logicalrelid, p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'sample_tx'::regclass) AS colocated_with_log
  FROM pg_dist_partition p WHERE p.logicalrelid = 'log_features'::regclass;
CREATE TEMP TABLE log_scores AS
SELECT customer_id, customer_value(f, 'from_log') AS value, customer_value.rfm_segment(f, 'from_log') AS segment
  FROM log_features f;
CREATE TEMP TABLE log_scores_local AS
SELECT customer_id, customer_value(f, 'from_log_local') AS value, customer_value.rfm_segment(f, 'from_log_local') AS segment
  FROM log_features_local f;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE abs(d.value - l.value) > 1e-9 * greatest(abs(l.value), 1)) AS different,
       count(*) FILTER (WHERE d.segment IS DISTINCT FROM l.segment) AS different_segments
  FROM log_scores d JOIN log_scores_local l USING (customer_id);
-- RFM segments, counted on the shards: the boundaries travel with the model.
SELECT customer_value.rfm_segment(f, 'from_log') AS segment, count(*) AS customers
  FROM log_features f GROUP BY 1 ORDER BY 2 DESC, 1;

-- Adding a node and rebalancing moves shards, and changes no score.
SELECT citus_add_node('localhost', 9703) > 0 AS added;
SELECT rebalance_table_shards('customers', shard_transfer_mode := 'block_writes');
SELECT count(DISTINCT nodeport) AS nodes_with_shards FROM citus_shards WHERE table_name = 'customers'::regclass;
SELECT count(*) FILTER (WHERE customer_value(c, 'spend') IS DISTINCT FROM l.value) AS different_after_rebalance
  FROM customers c JOIN scored_local l USING (customer_id);

-- Scheduled retraining runs on the coordinator with pg_cron (citus first in
-- shared_preload_libraries): a job retrains the distributed model and every node serves it.
CREATE EXTENSION pg_cron;
SELECT customer_value.schedule_retraining('spend', '* * * * *', '{"deploy": "always"}') > 0 AS scheduled;
DO $$
DECLARE
    waited int := 0;
BEGIN
    WHILE waited < 300 AND NOT EXISTS (
        SELECT 1 FROM customer_value.training_runs WHERE model = 'spend' AND kind = 'retrain')
    LOOP
        PERFORM pg_sleep(0.5);
        waited := waited + 1;
    END LOOP;
END
$$;
SELECT customer_value.unschedule_retraining('spend') AS unscheduled;
SELECT kind, decision, run_by FROM customer_value.training_runs WHERE model = 'spend' AND kind = 'retrain' ORDER BY id LIMIT 1;
SELECT nodeport, result FROM run_command_on_placements('customer_value.models', $$SELECT max(version) FROM %s WHERE name = 'spend' AND deployed$$) ORDER BY 1;
