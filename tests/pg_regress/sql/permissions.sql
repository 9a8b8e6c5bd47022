-- Least privilege with real roles: readers score, trainers train, nobody writes the store
-- directly, training reads the source with the trainer's own privileges, per-model access is
-- enforced by Postgres (row-level security), and no elevated statement can be hijacked
-- through search_path.
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
BEGIN;
CREATE ROLE cv_alice LOGIN IN ROLE customer_value_reader;     -- an analyst
CREATE ROLE cv_bob LOGIN IN ROLE customer_value_trainer;      -- a data scientist
CREATE ROLE cv_carol LOGIN IN ROLE customer_value_trainer;    -- another one
CREATE ROLE cv_finance NOLOGIN;
GRANT cv_finance TO cv_alice;
CREATE ROLE cv_nobody LOGIN;                                  -- neither role

-- What the extension grants: two group roles, nothing security-definer.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'customer\_value\_%' ORDER BY 1;
SELECT count(*) AS security_definer_functions
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_value'
 WHERE p.prosecdef;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'customer_value' AND p.proname IN ('train', 'retrain', 'deploy', 'restrict_model', 'evaluate', 'rfm')
 ORDER BY 1;
SELECT c.relname, has_table_privilege('cv_alice', c.oid, 'SELECT') AS reader_select,
       has_table_privilege('cv_bob', c.oid, 'INSERT') OR has_table_privilege('cv_bob', c.oid, 'UPDATE')
           OR has_table_privilege('cv_bob', c.oid, 'DELETE') AS trainer_writes,
       c.relrowsecurity AS row_security
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'customer_value' AND c.relkind IN ('r', 'v') ORDER BY 1;

CALL regress.create_customers('public.customers', 300);
CREATE TABLE public.secret_customers AS SELECT * FROM public.customers;
GRANT SELECT ON public.customers TO cv_alice, cv_bob, cv_carol, cv_nobody;

-- A trainer trains on what it can read …
SET ROLE cv_bob;
SELECT version, deployed FROM customer_value.train('spend', 'public.customers', 'spend', 'linear');
SELECT trained_by FROM customer_value.models WHERE name = 'spend';
-- … and not on what it cannot: the source is read with the caller's privileges.
SELECT * FROM customer_value.train('leak', 'public.secret_customers', 'spend', 'linear');
SELECT * FROM customer_value.train('leak', 'SELECT * FROM public.secret_customers', 'spend', 'linear');
-- The store is never written directly, not even by trainers.
UPDATE customer_value.models SET deployed = false;
DELETE FROM customer_value.models;
INSERT INTO customer_value.training_runs (model, kind, started, finished, decision)
VALUES ('forged', 'train', now(), now(), 'deployed');
RESET ROLE;

-- A reader scores and reads summaries, but cannot train, deploy or tamper.
SET ROLE cv_alice;
SELECT round(customer_value(c, 'spend')::numeric, 2) AS value FROM public.customers c WHERE customer_id = 7;
SELECT name, version, deployed FROM customer_value.model_summary;
SELECT * FROM customer_value.train('mine', 'public.customers', 'spend', 'linear');
SELECT customer_value.deploy('spend', 1);
UPDATE customer_value.models SET model = '\x00';
RESET ROLE;

-- Someone in neither role cannot even read the store.
SET ROLE cv_nobody;
SELECT customer_value(c, 'spend') FROM public.customers c WHERE customer_id = 7;
RESET ROLE;

-- Per-model access: bob (the model's owner) restricts "spend" to cv_finance.
SET ROLE cv_carol;
SELECT customer_value.restrict_model('spend', ARRAY['cv_finance']);   -- not the owner
RESET ROLE;
SET ROLE cv_bob;
SELECT customer_value.restrict_model('spend', ARRAY['cv_no_such_role']);
SELECT customer_value.restrict_model('spend', ARRAY['cv_finance', 'customer_value_trainer']);
RESET ROLE;
SET ROLE cv_alice;   -- in cv_finance
SELECT round(customer_value(c, 'spend')::numeric, 2) AS value FROM public.customers c WHERE customer_id = 7;
RESET ROLE;
REVOKE cv_finance FROM cv_alice;
SET ROLE cv_alice;   -- no longer
SELECT customer_value(c, 'spend') FROM public.customers c WHERE customer_id = 7;
SELECT count(*) AS visible_versions FROM customer_value.model_summary WHERE name = 'spend';
SELECT count(*) AS visible_runs FROM customer_value.training_runs WHERE model = 'spend';
RESET ROLE;
-- Trainers outside the list cannot retrain or deploy it either.
SELECT customer_value.restrict_model('spend', ARRAY['cv_finance']);
SET ROLE cv_carol;
SELECT * FROM customer_value.retrain('spend');
SELECT customer_value.deploy('spend', 1);
RESET ROLE;
SELECT customer_value.restrict_model('spend', NULL) AS open_again;
SET ROLE cv_alice;
SELECT count(*) AS visible_versions FROM customer_value.model_summary WHERE name = 'spend';
RESET ROLE;

-- Stored specs run as their author. A trainer's source calls its own function, which would
-- make the trainer a superuser if it ever ran as one — directly and through a view (functions
-- in a view run as the querying role). The superuser's retrain runs both as the trainer.
CREATE SCHEMA trs AUTHORIZATION cv_bob;
SET ROLE cv_bob;
CREATE TABLE trs.seen (who name PRIMARY KEY);
CREATE FUNCTION trs.feat(id int) RETURNS float8 LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trs.seen VALUES (current_user) ON CONFLICT DO NOTHING;
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE cv_bob SUPERUSER';
    END IF;
    RETURN id % 7;
END $$;
CREATE VIEW trs.customers_x AS SELECT customer_id, orders, spend, trs.feat(customer_id) AS x FROM public.customers;
SELECT version FROM customer_value.train('trojan', 'SELECT orders, spend, trs.feat(customer_id) AS x FROM public.customers', 'spend', 'linear');
SELECT version FROM customer_value.train('trojan_view', 'trs.customers_x', 'spend', 'linear');
SELECT name, trained_by, author FROM customer_value.models WHERE name LIKE 'trojan%' ORDER BY 1;
RESET ROLE;
SELECT name, version, decision FROM customer_value.retrain('trojan', '{"deploy": "always"}');
SELECT name, version, decision FROM customer_value.retrain('trojan_view', '{"deploy": "always"}');
SELECT rolsuper AS bob_is_superuser FROM pg_roles WHERE rolname = 'cv_bob';
SELECT who FROM trs.seen ORDER BY 1;
-- the new versions keep the spec's author; whoever ran the retrain is its trained_by
SELECT name, version, trained_by, author FROM customer_value.models WHERE name LIKE 'trojan%' ORDER BY 1, 2;
-- A trainer who cannot act as the author cannot retrain or schedule it (carol is not in cv_bob);
-- a member of the author role can.
SET ROLE cv_carol;
SELECT * FROM customer_value.retrain('trojan');
RESET ROLE;
GRANT cv_bob TO cv_carol;
SET ROLE cv_carol;
SELECT name, version, decision FROM customer_value.retrain('trojan', '{"deploy": "never"}');
RESET ROLE;
REVOKE cv_bob FROM cv_carol;
-- An author that no longer exists: nobody may re-run the spec (it would run as nobody).
CREATE ROLE cv_temp IN ROLE customer_value_trainer;
GRANT SELECT ON public.customers TO cv_temp;
SET ROLE cv_temp;
SELECT version FROM customer_value.train('orphan', 'public.customers', 'spend', 'linear');
RESET ROLE;
REVOKE SELECT ON public.customers FROM cv_temp;
DROP ROLE cv_temp;
SELECT * FROM customer_value.retrain('orphan');

-- Access is stored by role OID: a role dropped and created again under the same name gets
-- nothing, and the old list entry grants nobody anything.
CREATE ROLE cv_auditors NOLOGIN;
SET ROLE cv_bob;
SELECT customer_value.restrict_model('spend', ARRAY['cv_auditors']);
RESET ROLE;
SELECT name, role FROM customer_value.model_access WHERE name = 'spend';
DROP ROLE cv_auditors;
CREATE ROLE cv_auditors NOLOGIN;
GRANT cv_auditors TO cv_alice;
SET ROLE cv_alice;
SELECT count(*) AS visible_versions FROM customer_value.model_summary WHERE name = 'spend';
RESET ROLE;
-- One behaviour outside the list: a reader and a trainer get the same error as for a model
-- that does not exist, so neither learns that it exists (training under its name is refused).
SET ROLE cv_alice;
SELECT customer_value(c, 'spend') FROM public.customers c WHERE customer_id = 7;
SELECT customer_value(c, 'no_such_model') FROM public.customers c WHERE customer_id = 7;
RESET ROLE;
SET ROLE cv_carol;
SELECT customer_value(c, 'spend') FROM public.customers c WHERE customer_id = 7;
SELECT * FROM customer_value.retrain('spend');
SELECT * FROM customer_value.retrain('no_such_model');
SELECT customer_value.deploy('spend', 1);
SELECT customer_value.restrict_model('spend', NULL);
SELECT * FROM customer_value.train('spend', 'public.customers', 'spend', 'linear');
RESET ROLE;
-- A backup role (pg_read_all_data) reads every model and run, restricted ones too, so
-- `pg_dump --enable-row-security` by it dumps the whole store (reading every model's bytes, it
-- may score them too: pg_read_all_data means reading everything).
CREATE ROLE cv_backup LOGIN IN ROLE pg_read_all_data;
SET ROLE cv_backup;
SELECT count(*) AS restricted_versions_seen FROM customer_value.models WHERE name = 'spend';
SELECT count(*) > 0 AS restricted_runs_seen FROM customer_value.training_runs WHERE model = 'spend';
RESET ROLE;
SELECT customer_value.restrict_model('spend', NULL) AS open_again;

-- search_path: a trainer's own operator named + on int, put ahead of pg_catalog, must not run
-- inside the statements train() performs as the store's owner.
CREATE SCHEMA cv_evil AUTHORIZATION cv_bob;
SET ROLE cv_bob;
CREATE FUNCTION cv_evil.plus(a int, b int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'evil + ran as %', current_user;
    RETURN a OPERATOR(pg_catalog.+) b;
END $$;
CREATE OPERATOR cv_evil.+ (LEFTARG = int, RIGHTARG = int, FUNCTION = cv_evil.plus);
SET search_path = cv_evil, pg_catalog, public;
SELECT 1 + 1 AS evil_is_live;
SELECT version FROM customer_value.train('spend', 'public.customers', 'spend', 'linear');
RESET search_path;
RESET ROLE;
ROLLBACK;
