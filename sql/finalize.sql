-- customer_value: roles, privileges and row-level security. Runs last when the extension is
-- created, once every function exists.
--
-- Every function is declared beside the Rust code that implements it, with its COMMENT: the
-- generated ones by #[pg_extern], the others (the scoring functions that read a whole row in
-- place, and the PL/pgSQL wrappers rfm, schedule_retraining, unschedule_retraining) in an
-- extension_sql! block next to it. This file only says who may call what.

-- ---------------------------------------------------------------------------------------------
-- Privileges: least privilege with two group roles (created once per cluster, kept when they
-- already exist, e.g. from another database's install). Admin stays with the extension owner.
-- ---------------------------------------------------------------------------------------------
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'customer_value_reader') THEN
        CREATE ROLE customer_value_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'customer_value_trainer') THEN
        CREATE ROLE customer_value_trainer NOLOGIN;
    END IF;
END
$roles$;
COMMENT ON ROLE customer_value_reader IS 'customer_value: may score with customer_value(row)/customer_tier(row) and read model summaries';
COMMENT ON ROLE customer_value_trainer IS 'customer_value: may also train, retrain, deploy and schedule models (member of customer_value_reader)';
GRANT customer_value_reader TO customer_value_trainer;

-- The store: readable by readers (scoring reads it with the caller's privileges, so row-level
-- security below decides which models a role can use); written by nobody directly. train,
-- retrain, deploy and restrict_model perform their own fixed statements as the owner.
REVOKE ALL ON ALL TABLES IN SCHEMA customer_value FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA customer_value FROM PUBLIC;
GRANT USAGE ON SCHEMA customer_value TO customer_value_reader;
GRANT SELECT ON customer_value.models, customer_value.model_summary, customer_value.training_runs,
                customer_value.model_access
   TO customer_value_reader;

-- Row-level security reads the access list copied into each row (no subquery: Citus accepts
-- these policies on reference tables, and every node decides alike). Members of
-- pg_read_all_data (backup roles) read every model, so `pg_dump --enable-row-security` by such a
-- role dumps the whole store (a plain pg_dump needs the owner or BYPASSRLS: it turns row
-- security off, which Postgres refuses for a role the policies apply to).
ALTER TABLE customer_value.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_value.training_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY models_by_access ON customer_value.models FOR SELECT
    USING (allowed_roles IS NULL OR customer_value.is_member_of_any(allowed_roles)
           OR pg_catalog.pg_has_role('pg_read_all_data', 'MEMBER'));
CREATE POLICY training_runs_by_access ON customer_value.training_runs FOR SELECT
    USING (allowed_roles IS NULL OR customer_value.is_member_of_any(allowed_roles)
           OR pg_catalog.pg_has_role('pg_read_all_data', 'MEMBER'));

-- Functions that change the store: trainers only (the owner keeps them as owner).
REVOKE EXECUTE ON FUNCTION customer_value.train(text, text, text, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.train_from_log(text, text, text, text, text, timestamptz, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.retrain(text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.deploy(text, int) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.restrict_model(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION customer_value.train(text, text, text, text, jsonb) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.train_from_log(text, text, text, text, text, timestamptz, jsonb) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.retrain(text, jsonb) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.deploy(text, int) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.restrict_model(text, text[]) TO customer_value_trainer;

-- Scheduling retraining (src/pg/retrain.rs): trainers only.
REVOKE EXECUTE ON FUNCTION customer_value.schedule_retraining(text, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.unschedule_retraining(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION customer_value.schedule_retraining(text, text, jsonb) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.unschedule_retraining(text) TO customer_value_trainer;

-- ---------------------------------------------------------------------------------------------
-- Citus: the store on every node, and the pinned form of scoring for UPDATE on distributed
-- tables.
-- ---------------------------------------------------------------------------------------------
REVOKE EXECUTE ON FUNCTION customer_value.distribute() FROM PUBLIC;
