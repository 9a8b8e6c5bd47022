-- Runs after ALTER EXTENSION customer_value UPDATE: every old model scores identically, and
-- the new functions work on the old models.
\set ON_ERROR_STOP on
SELECT extversion FROM pg_extension WHERE extname = 'customer_value';
CREATE TEMP TABLE scores_after AS
SELECT m.name, c.customer_id, customer_value(c, m.name) AS value, customer_tier(c, m.name) AS tier,
       customer_value(c, m.id) AS value_by_id
  FROM customers c CROSS JOIN customer_value.models m WHERE m.name <> 'clv'
UNION ALL
SELECT 'clv', r.customer_id, customer_value(r, 'clv'), customer_tier(r, 'clv'), customer_value.p_alive(r, 'clv')
  FROM rfm r;
SELECT count(*) AS compared,
       count(*) FILTER (WHERE a.value IS DISTINCT FROM b.value OR a.tier IS DISTINCT FROM b.tier
                          OR a.value_by_id IS DISTINCT FROM b.value_by_id) AS different
  FROM scores_before b JOIN scores_after a USING (name, customer_id);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM scores_before b LEFT JOIN scores_after a USING (name, customer_id)
                WHERE a.name IS NULL OR a.value IS DISTINCT FROM b.value OR a.tier IS DISTINCT FROM b.tier
                   OR a.value_by_id IS DISTINCT FROM b.value_by_id) THEN
        RAISE EXCEPTION 'an old model scores differently after the upgrade';
    END IF;
END $$;
-- old versions got their spec from their columns, so retrain works on them …
SELECT name, spec FROM customer_value.models ORDER BY name;
SELECT name, version, decision FROM customer_value.retrain('rf', '{"deploy": "never"}');
SELECT model, version, kind, decision FROM customer_value.training_runs;
-- … and drift says what to do for a model trained before profiles existed
DO $$
BEGIN
    PERFORM * FROM customer_value.drift('lin', 'customers');
    RAISE EXCEPTION 'drift on a 0.1.0 model should have failed';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'drift on a 0.1.0 model: %', SQLERRM;
END $$;
