-- Numeric arrays as features (a browsing history, visits by week): an array column of fixed
-- length L becomes L features, oldest first. The length comes from training; an array of
-- another length is an error, unless the model was trained with "pad" (shorter arrays padded
-- on the left with 0, longer ones keep their newest elements).
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;
CREATE TABLE shoppers (
    shopper_id    int PRIMARY KEY,
    age           int,
    browse_counts int[],     -- pages viewed in each of the last 5 weeks, oldest first
    spend         float8
);
-- spend follows the two most recent weeks of browsing: 10 per page last week, 5 the week before
INSERT INTO shoppers
SELECT i, 20 + i % 50, b, 3 + 5 * b[4] + 10 * b[5] + 0.2 * (i % 50)
  FROM generate_series(1, 600) AS i,
       LATERAL (SELECT ARRAY[i % 3, (i * 7) % 5, (i * 11) % 4, (i * 13) % 6, (i * 17) % 7] AS b) x;
SELECT algorithm, round((metrics ->> 'r2')::numeric, 4) AS r2
  FROM customer_value.train('browsing', 'shoppers', 'spend', 'linear');
-- one feature per position, named column[position]; the schema says the length
SELECT f ->> 'name' AS feature, f ->> 'column' AS column, f ->> 'type' AS type,
       f ->> 'encoding' AS encoding, f ->> 'position' AS position, f ->> 'length' AS length
  FROM customer_value.models m, jsonb_array_elements(m.features) f WHERE m.name = 'browsing';
-- the coefficients find the two recent weeks
SELECT key AS feature, round(value::numeric, 3) AS coefficient
  FROM jsonb_each_text(customer_value.model_params('browsing') -> 'coefficients') ORDER BY key;
-- scoring reads the array in place: from the table, from a row built in the query, from any
-- numeric array type (numeric[], float8[]); a NULL array is imputed like any NULL
SELECT round(customer_value(s, 'browsing')::numeric, 3) AS value
  FROM shoppers s WHERE shopper_id = 7;
SELECT round(customer_value(r, 'browsing')::numeric, 3) AS value
  FROM (SELECT 27 AS age, ARRAY[1, 0, 3, 2, 6] AS browse_counts) r;
SELECT round(customer_value(r, 'browsing')::numeric, 3) AS value
  FROM (SELECT 27 AS age, '{1, 0, 3, 2, 6}'::numeric[] AS browse_counts) r;
SELECT customer_value(r, 'browsing') IS NOT NULL AS imputed
  FROM (SELECT 27 AS age, NULL::int[] AS browse_counts) r;
-- a whole table scored both ways agrees: the planner's narrow path (the table's row) and the
-- whole row (a subquery's record)
SELECT count(*) AS rows, max(abs(narrow.v - whole.v)) AS largest_difference
  FROM (SELECT shopper_id, customer_value(s, 'browsing') AS v FROM shoppers s) narrow
  JOIN (SELECT shopper_id, customer_value(x, 'browsing') AS v FROM (SELECT * FROM shoppers OFFSET 0) x) whole
 USING (shopper_id);
-- bad arrays name the column and the fault
SELECT customer_value(r, 'browsing') FROM (SELECT 27 AS age, ARRAY[1, 2, 3, 4] AS browse_counts) r;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(r, 'browsing') FROM (SELECT 27 AS age, ARRAY[1, 2, NULL, 4, 5] AS browse_counts) r;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(r, 'browsing') FROM (SELECT 27 AS age, ARRAY[[1, 2, 3, 4, 5]] AS browse_counts) r;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(r, 'browsing') FROM (SELECT 27 AS age, ARRAY['1', '2', '3', '4', '5'] AS browse_counts) r;
\echo :LAST_ERROR_SQLSTATE
SELECT customer_value(r, 'browsing') FROM (SELECT 27 AS age, 5 AS browse_counts) r;
\echo :LAST_ERROR_SQLSTATE
-- retraining reads the arrays again; the serving version is scored on the same rows
-- (champion/challenger), then arrays that stop fitting it leave it unscored, with the reason
SELECT version, decision, champion_version, (champion_metrics ->> 'n')::int AS champion_n
  FROM customer_value.retrain('browsing');
UPDATE shoppers SET browse_counts = browse_counts || 0 WHERE shopper_id % 2 = 0;
SELECT version, decision, reason FROM customer_value.retrain('browsing', '{"pad": true}');
UPDATE shoppers SET browse_counts = browse_counts[1:5];
-- trees read the positions too
SELECT algorithm, (metrics ->> 'r2')::float8 > 0.9 AS learned
  FROM customer_value.train('browsing_gbm', 'shoppers', 'spend', 'gbm');
SELECT round(customer_value(r, 'browsing_gbm')::numeric, 0) > 0 AS scored
  FROM (SELECT 27 AS age, ARRAY[1, 0, 3, 2, 6] AS browse_counts) r;

-- gru and cnn read the arrays as a history (each array column a channel, oldest period first)
-- beside the static features; the same errors guard their arrays
SELECT algorithm, (metrics ->> 'r2')::float8 > 0.9 AS learned
  FROM customer_value.train('browsing_gru', 'shoppers', 'spend', 'gru');
SELECT algorithm, (metrics ->> 'r2')::float8 > 0.9 AS learned
  FROM customer_value.train('browsing_cnn', 'shoppers', 'spend', 'cnn', '{"kernel_width": 2, "units": 8}');
SELECT p ->> 'encoder' AS encoder, p ->> 'periods' AS periods, p -> 'channels' AS channels,
       p ->> 'static_features' AS static_features
  FROM (VALUES (customer_value.model_params('browsing_gru')), (customer_value.model_params('browsing_cnn'))) AS v(p);
SELECT abs(customer_value(s, 'browsing_gru') - s.spend) < 0.2 * s.spend AS close
  FROM shoppers s WHERE shopper_id = 7;
-- both paths agree for the networks too
SELECT max(abs(customer_value(s, 'browsing_gru') - customer_value(x, 'browsing_gru'))) AS gru_difference,
       max(abs(customer_value(s, 'browsing_cnn') - customer_value(x, 'browsing_cnn'))) AS cnn_difference
  FROM shoppers s JOIN (SELECT * FROM shoppers OFFSET 0) x USING (shopper_id);
-- explain: integrated gradients from the training means to the row, per period of the
-- history and per static column; the path integral's small rounding is reported as residual
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(e -> 'contributions') k) AS keys,
       e ->> 'method' AS method,
       abs((e ->> 'baseline')::float8 + (SELECT sum(value::float8) FROM jsonb_each_text(e -> 'contributions'))
           + (e ->> 'residual')::float8 - (e ->> 'prediction')::float8) < 1e-9 AS adds_up,
       abs((e ->> 'residual')::float8) < 0.02 * abs((e ->> 'prediction')::float8 - (e ->> 'baseline')::float8) AS residual_small
  FROM (SELECT customer_value.explain(s, 'browsing_gru') AS e FROM shoppers s WHERE shopper_id = 7) x;
-- spend follows the last two weeks (then age, 0.2 a year): the largest contributions, on average
-- over 100 shoppers, are theirs — for both networks
SELECT m AS model, string_agg(key, ', ' ORDER BY rank) AS largest
  FROM (SELECT m, key, rank() OVER (PARTITION BY m ORDER BY avg(abs(value::float8)) DESC) AS rank
          FROM (VALUES ('browsing_gru'), ('browsing_cnn')) AS v(m),
               LATERAL (SELECT customer_value.explain(s, v.m) AS e FROM shoppers s WHERE shopper_id <= 100) x,
               LATERAL jsonb_each_text(x.e -> 'contributions') c
         GROUP BY m, key) r
 WHERE rank <= 3
 GROUP BY m ORDER BY m;
SELECT customer_value(r, 'browsing_cnn') FROM (SELECT 27 AS age, ARRAY[1, 2, 3] AS browse_counts) r;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('no_history', 'SELECT shopper_id, age, spend FROM shoppers', 'spend', 'gru');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('no_history', 'shoppers', 'spend', 'cnn', '{"kernel_width": 9}');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('no_history', 'shoppers', 'spend', 'gru', '{"units": 0}');
\echo :LAST_ERROR_SQLSTATE

-- histories of different lengths: refused at training, unless "pad"
CREATE TABLE visitors (visitor_id int PRIMARY KEY, weeks float8[], spend float8);
INSERT INTO visitors
SELECT i, w, 2 + 4 * w[cardinality(w)]
  FROM generate_series(1, 300) AS i,
       LATERAL (SELECT array_agg(((i * k) % 5)::float8 ORDER BY k) AS w
                  FROM generate_series(1, 2 + i % 4) AS k) x;
SELECT * FROM customer_value.train('visits', 'visitors', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
SELECT algorithm, round((metrics ->> 'r2')::numeric, 4) AS r2
  FROM customer_value.train('visits', 'visitors', 'spend', 'linear', '{"pad": true}');
SELECT f ->> 'name' AS feature, f ->> 'length' AS length, f ->> 'pad' AS pad
  FROM customer_value.models m, jsonb_array_elements(m.features) f WHERE m.name = 'visits';
-- a short history is padded on the left; a long one keeps its newest weeks: only the last
-- week counts here, so all three score alike
SELECT weeks, round(customer_value(r, 'visits')::numeric, 3) AS value
  FROM (VALUES (ARRAY[3]::float8[]), (ARRAY[1, 2, 3]::float8[]), (ARRAY[4, 4, 4, 4, 4, 4, 4, 3]::float8[])) AS r(weeks)
 ORDER BY cardinality(weeks);
-- NULL elements and matrices are refused at training by column name
CREATE TABLE gappy (id int PRIMARY KEY, weeks int[], spend float8);
INSERT INTO gappy SELECT i, ARRAY[i % 3, CASE WHEN i % 10 = 0 THEN NULL ELSE i % 4 END], i % 7 FROM generate_series(1, 100) i;
SELECT * FROM customer_value.train('gappy', 'gappy', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('gappy', 'SELECT id, ARRAY[[weeks[1], 1], [2, 3]] AS weeks, spend FROM gappy WHERE id % 10 <> 0', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
-- an array of text is no feature
SELECT * FROM customer_value.train('gappy', 'SELECT id, weeks::text[] AS weeks, spend FROM gappy WHERE id % 10 <> 0', 'spend', 'linear');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM customer_value.train('gappy', 'gappy', 'spend', 'linear', '{"pad": "yes"}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
