-- customer_value on a Citus cluster: a coordinator (9700) and two workers (9701, 9702); a
-- fourth node (9703) is added near the end. Scores are computed on the workers, next to the
-- shards, and must equal those of a local copy of the same table.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
CREATE EXTENSION customer_value;
-- CREATE EXTENSION propagates to every worker.
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
GRANT SELECT ON customers TO cv_alice, cv_eve;
SELECT customer_value.restrict_model('spend', ARRAY['cv_finance']);
SELECT nodeport, result FROM run_command_on_placements('customer_value.models', $$SELECT string_agg(DISTINCT allowed_roles::text, ',') FROM %s WHERE name = 'spend'$$) ORDER BY 1;
SET ROLE cv_alice;
SELECT round(sum(customer_value(c, 'spend'))::numeric, 6) AS alice_sum FROM customers c;
RESET ROLE;
SET ROLE cv_eve;
SELECT sum(customer_value(c, 'spend')) FROM customers c;
SELECT count(*) AS eve_sees FROM customer_value.models WHERE name = 'spend';
RESET ROLE;
SELECT customer_value.restrict_model('spend', NULL) AS open_again;

-- Adding a node and rebalancing moves shards, and changes no score.
SELECT citus_add_node('localhost', 9703) > 0 AS added;
SELECT rebalance_table_shards('customers', shard_transfer_mode := 'block_writes');
SELECT count(DISTINCT nodeport) AS nodes_with_shards FROM citus_shards WHERE table_name = 'customers'::regclass;
SELECT count(*) FILTER (WHERE customer_value(c, 'spend') IS DISTINCT FROM l.value) AS different_after_rebalance
  FROM customers c JOIN scored_local l USING (customer_id);
