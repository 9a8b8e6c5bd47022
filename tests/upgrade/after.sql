-- Runs after ALTER EXTENSION customer_value UPDATE: every old model scores identically, and
-- the new functions work on the old models.
\set ON_ERROR_STOP on
SELECT extversion FROM pg_extension WHERE extname = 'customer_value';
CREATE TEMP TABLE scores_after AS
SELECT m.name, c.customer_id, customer_value(c, m.name) AS value, customer_tier(c, m.name) AS tier,
       customer_value(c, m.id) AS value_by_id
  FROM customers c CROSS JOIN customer_value.models m WHERE m.name <> 'clv' AND m.deployed
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
-- every version has the author of its spec: the retrained version of the trainer's model is
-- the trainer's spec, whoever ran the retrain …
SELECT name, version, trained_by, author FROM customer_value.models ORDER BY name, version;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM customer_value.models WHERE author IS NULL) OR
       EXISTS (SELECT 1 FROM customer_value.models
                WHERE name = 'by_trainer' AND author <> 'cv_upgrade_trainer'::regrole) THEN
        RAISE EXCEPTION 'authors were not recorded as expected';
    END IF;
END $$;
-- … access is by role OID, the dropped role's row is gone, and the copies RLS reads are set
SELECT name, role FROM customer_value.model_access ORDER BY 1, 2;
SELECT name, version, allowed_roles FROM customer_value.models WHERE allowed_roles IS NOT NULL ORDER BY 1, 2;
SELECT model, kind, allowed_roles FROM customer_value.training_runs WHERE allowed_roles IS NOT NULL ORDER BY 1, 2;
-- retrain and drift work on the old versions
SELECT name, version, decision FROM customer_value.retrain('rf', '{"deploy": "never"}');
SELECT name, version, decision FROM customer_value.retrain('by_trainer', '{"deploy": "never"}');
SELECT name, author FROM customer_value.models WHERE name = 'by_trainer' ORDER BY version DESC LIMIT 1;
SELECT count(*) AS drift_rows FROM customer_value.drift('gbm', 'customers');
