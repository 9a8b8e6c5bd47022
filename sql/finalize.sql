-- customer_value: scoring functions and documentation. Runs last when the extension is created.
--
-- The scoring functions take a whole row (`record`) and read it in place; they are declared
-- here rather than generated, because pgrx would copy every row before the call. They are
-- created unqualified, in the extension's schema (public by default), so analysts and BI tools
-- call customer_value(c) and customer_tier(c) without a schema.

CREATE FUNCTION customer_value("row" record) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_value_default_wrapper';
CREATE FUNCTION customer_value("row" record, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_value_named_wrapper';
-- A model id names one immutable version, so this variant is honestly IMMUTABLE (Citus can push
-- it down to shards and use it in UPDATE ... SET).
CREATE FUNCTION customer_value("row" record, model_id bigint) RETURNS float8
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_value_by_id_wrapper';

CREATE FUNCTION customer_tier("row" record) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_tier_default_wrapper';
CREATE FUNCTION customer_tier("row" record, model text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_tier_named_wrapper';
CREATE FUNCTION customer_tier("row" record, model_id bigint) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_tier_by_id_wrapper';

COMMENT ON FUNCTION customer_value(record) IS
    'Predicted value of a customer row with the default model (customer_value.model, else the only deployed model); features are matched by column name';
COMMENT ON FUNCTION customer_value(record, text) IS
    'Predicted value of a customer row with the deployed version of the named model, or name@version for a pinned version';
COMMENT ON FUNCTION customer_value(record, bigint) IS
    'Predicted value of a customer row with the model of this id (immutable: one fixed version)';
COMMENT ON FUNCTION customer_tier(record) IS
    'Value tier (e.g. VIP/high/medium/low) of a customer row with the default model';
COMMENT ON FUNCTION customer_tier(record, text) IS
    'Value tier of a customer row with the deployed version of the named model, or name@version';
COMMENT ON FUNCTION customer_tier(record, bigint) IS
    'Value tier of a customer row with the model of this id (immutable: one fixed version)';
COMMENT ON FUNCTION customer_value.train(text, text, text, text, jsonb) IS
    'Trains a new version of a model from a table, view or SELECT, stores it with holdout metrics and tiers, and deploys it if at least as good as the deployed version; returns name, version, algorithm, metrics, deployed, id';
COMMENT ON FUNCTION customer_value.deploy(text, int) IS
    'Makes a stored version the deployed version of its model (also used to roll back); returns the previously deployed version';
COMMENT ON FUNCTION customer_value.model_params(text) IS
    'Fitted parameters of a model (name or name@version): intercept and coefficients by feature for linear models, size for tree ensembles';

-- Classifiers and explanations.
CREATE FUNCTION customer_value.predict_proba("row" record) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_proba_default_wrapper';
CREATE FUNCTION customer_value.predict_proba("row" record, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_proba_named_wrapper';
CREATE FUNCTION customer_value.explain("row" record) RETURNS jsonb
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_explain_default_wrapper';
CREATE FUNCTION customer_value.explain("row" record, model text) RETURNS jsonb
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_explain_named_wrapper';
COMMENT ON FUNCTION customer_value.predict_proba(record) IS
    'Probability of the positive class (e.g. churned = true) of a customer row, with the default classifier';
COMMENT ON FUNCTION customer_value.predict_proba(record, text) IS
    'Probability of the positive class of a customer row, with the named classifier (name or name@version)';
COMMENT ON FUNCTION customer_value.explain(record) IS
    'Why this prediction: {"baseline", "prediction", "contributions": {feature: value}, "scale", "value"} with baseline + sum of contributions = prediction (exact: linear coefficients or TreeSHAP), default model';
COMMENT ON FUNCTION customer_value.explain(record, text) IS
    'Why this prediction, with the named model: per-feature contributions adding up to prediction - baseline';
COMMENT ON FUNCTION customer_value.feature_importance(text) IS
    'Importance of each feature measured on the holdout at training: permutation (loss increase when shuffled) for every model, gain share for gbm; ranked';

-- CLV quantities of one customer row (frequency, recency, t [, monetary_value] by name).
CREATE FUNCTION customer_value.expected_purchases("row" record, periods float8) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_expected_purchases_default_wrapper';
CREATE FUNCTION customer_value.expected_purchases("row" record, periods float8, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_expected_purchases_named_wrapper';
CREATE FUNCTION customer_value.p_alive("row" record) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_p_alive_default_wrapper';
CREATE FUNCTION customer_value.p_alive("row" record, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_p_alive_named_wrapper';
CREATE FUNCTION customer_value.expected_spend("row" record) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_expected_spend_default_wrapper';
CREATE FUNCTION customer_value.expected_spend("row" record, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_expected_spend_named_wrapper';

COMMENT ON FUNCTION customer_value.expected_purchases(record, float8) IS
    'Expected repeat purchases of a customer in the next `periods` time units, with the default CLV model (bgnbd, pareto_nbd or clv)';
COMMENT ON FUNCTION customer_value.expected_purchases(record, float8, text) IS
    'Expected repeat purchases of a customer in the next `periods` time units, with the named CLV model';
COMMENT ON FUNCTION customer_value.p_alive(record) IS
    'Probability that the customer is still active (alive) at the end of calibration, with the default CLV model';
COMMENT ON FUNCTION customer_value.p_alive(record, text) IS
    'Probability that the customer is still active (alive) at the end of calibration, with the named CLV model';
COMMENT ON FUNCTION customer_value.expected_spend(record) IS
    'Expected value of the customer''s future purchases (Gamma-Gamma), with the default spend or clv model';
COMMENT ON FUNCTION customer_value.expected_spend(record, text) IS
    'Expected value of the customer''s future purchases (Gamma-Gamma), with the named spend or clv model';

-- The RFM summary: Rust validates and writes the query, Postgres runs it set-based.
CREATE FUNCTION customer_value.rfm(
    source text, customer_column text, time_column text, amount_column text,
    calibration_end timestamptz, options jsonb DEFAULT '{}')
RETURNS TABLE (customer text, frequency int, recency float8, t float8, monetary_value float8,
               first_purchase timestamptz, last_purchase timestamptz, total_spend float8,
               purchases int, transactions bigint, holdout_purchases int, holdout_spend float8)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
AS $fn$
BEGIN
    IF calibration_end IS NULL THEN
        RAISE EXCEPTION 'calibration_end must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- a holdout that ends before the calibration would silently cut the calibration short
    IF (options ->> 'holdout_end')::timestamptz <= calibration_end THEN
        RAISE EXCEPTION 'option "holdout_end" (%) must be after calibration_end (%)',
            options ->> 'holdout_end', calibration_end
            USING ERRCODE = '22023',
                  HINT = 'The holdout is the period after the calibration: purchases after calibration_end up to holdout_end.';
    END IF;
    RETURN QUERY EXECUTE customer_value.rfm_query(source, customer_column, time_column, amount_column, options)
        USING calibration_end, (options ->> 'holdout_end')::timestamptz;
END
$fn$;

COMMENT ON FUNCTION customer_value.rfm(text, text, text, text, timestamptz, jsonb) IS
    'RFM summary of a transaction log, one row per customer: frequency (repeat purchase periods), recency (age at last purchase), t (age at calibration end), monetary_value (mean repeat purchase value), first/last purchase, total spend, purchases, transactions, and holdout purchases/spend up to options->>''holdout_end''';
COMMENT ON FUNCTION customer_value.rfm_query(text, text, text, text, jsonb) IS
    'The SQL that customer_value.rfm() runs for these arguments ($1 = calibration_end, $2 = holdout_end)';
COMMENT ON FUNCTION customer_value.create_rfm(text, text, text, text, text, timestamptz, jsonb) IS
    'Creates a table holding customer_value.rfm(...) with the customer key under its source column name and type, as primary key; returns the number of customers';

COMMENT ON FUNCTION customer_value.evaluate(text, text, text) IS
    'Metrics of a model on any relation against its column `actual`: n, predicted/actual totals and % error, MAE, RMSE, R², Pearson, Spearman, normalized Gini, top-decile capture';
COMMENT ON FUNCTION customer_value.lift(text, text, text, int) IS
    'Lift table of a model on a relation: customers ranked by prediction in `buckets` groups (best first) with mean predicted, mean actual and share of actual value';

COMMENT ON FUNCTION customer_value.retrain(text, jsonb) IS
    'Re-runs the serving version''s training spec on today''s data; deploys the new version only if at least as good on the same holdout (champion/challenger), options override the spec (e.g. {"deploy": "always"}); records every run, failed ones too, in customer_value.training_runs';
COMMENT ON FUNCTION customer_value.restrict_model(text, text[]) IS
    'Restricts who may see and score a model (all versions) to members of these roles; NULL or an empty array opens it to every customer_value_reader again. Allowed to the model''s owner (who trained its first version) and the store''s owner; returns the number of roles';

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
-- these policies on reference tables, and every node decides alike).
CREATE FUNCTION customer_value.is_member_of_any(roles regrole[]) RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_is_member_of_any_wrapper';
COMMENT ON FUNCTION customer_value.is_member_of_any(regrole[]) IS
    'Whether the current user is a member of any of these roles (roles that no longer exist match nobody); used by the store''s row-level security';
ALTER TABLE customer_value.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_value.training_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY models_by_access ON customer_value.models FOR SELECT
    USING (allowed_roles IS NULL OR customer_value.is_member_of_any(allowed_roles));
CREATE POLICY training_runs_by_access ON customer_value.training_runs FOR SELECT
    USING (allowed_roles IS NULL OR customer_value.is_member_of_any(allowed_roles));

-- Functions that change the store: trainers only (the owner keeps them as owner).
REVOKE EXECUTE ON FUNCTION customer_value.train(text, text, text, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.retrain(text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.deploy(text, int) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.restrict_model(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION customer_value.train(text, text, text, text, jsonb) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.retrain(text, jsonb) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.deploy(text, int) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.restrict_model(text, text[]) TO customer_value_trainer;

-- ---------------------------------------------------------------------------------------------
-- Scheduled retraining with pg_cron (optional: these functions look for it when called). The
-- job runs as the role that scheduled it, with that role's privileges, in this database.
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION customer_value.schedule_retraining(name text, cron text, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    job_id bigint;
    spec_author regrole;
BEGIN
    IF name IS NULL OR cron IS NULL THEN
        RAISE EXCEPTION 'model name and cron schedule must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'extension "pg_cron" is not installed in database "%"', current_database()
            USING ERRCODE = '42704',
                  HINT = format('Install the postgresql-15-cron package, set shared_preload_libraries = ''pg_cron'' and cron.database_name = %L in postgresql.conf, restart, then CREATE EXTENSION pg_cron.', current_database());
    END IF;
    SELECT m.author INTO spec_author FROM customer_value.models m
     WHERE m.name = schedule_retraining.name ORDER BY m.deployed DESC, m.version DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" does not exist', name USING ERRCODE = '42704';
    END IF;
    -- The job re-runs the spec as its author (see retrain): refuse now, not at 3 a.m.
    IF spec_author IS NULL OR NOT pg_catalog.pg_has_role(current_user, spec_author::oid, 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied to retrain model "%"', name
            USING ERRCODE = '42501',
                  DETAIL = format('Its training spec was written by role %s and runs with that role''s privileges; %s is not a member of it.',
                                  coalesce(spec_author::text, '(unknown)'), current_user),
                  HINT = 'Ask the author (or a member of it) to schedule it, or train your own version with customer_value.train(...).';
    END IF;
    -- cron.schedule(job_name, …) replaces an existing job of that name: rescheduling is one call.
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job_id
        USING 'customer_value.retrain:' || name, cron,
              format('SELECT * FROM customer_value.retrain(%L, %L::jsonb)', name, coalesce(options, '{}'::jsonb));
    RETURN job_id;
END
$fn$;

CREATE FUNCTION customer_value.unschedule_retraining(name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    job_name text := 'customer_value.retrain:' || name;
    found_job boolean;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'extension "pg_cron" is not installed in database "%"', current_database()
            USING ERRCODE = '42704',
                  HINT = 'Retraining can only be scheduled (and unscheduled) with pg_cron.';
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1 AND username = current_user)'
        INTO found_job USING job_name;
    IF NOT found_job THEN
        RAISE EXCEPTION 'no retraining is scheduled for model "%"', name
            USING ERRCODE = '42704', HINT = 'Scheduled jobs are listed in cron.job (job names start with customer_value.retrain:).';
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' USING job_name;
    RETURN true;
END
$fn$;

COMMENT ON FUNCTION customer_value.schedule_retraining(text, text, jsonb) IS
    'Schedules customer_value.retrain(name, options) with pg_cron on a cron schedule (e.g. ''0 3 * * *''); the job is named customer_value.retrain:<name>, runs as the caller, and replaces an earlier schedule of that model; returns the pg_cron job id';
COMMENT ON FUNCTION customer_value.unschedule_retraining(text) IS
    'Removes the pg_cron job that retrains the model';
REVOKE EXECUTE ON FUNCTION customer_value.schedule_retraining(text, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION customer_value.unschedule_retraining(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION customer_value.schedule_retraining(text, text, jsonb) TO customer_value_trainer;
GRANT EXECUTE ON FUNCTION customer_value.unschedule_retraining(text) TO customer_value_trainer;

COMMENT ON FUNCTION customer_value.drift(text, text) IS
    'Population stability index (PSI) of each feature and of the predictions ("(prediction)" row), source against the distributions the model saw at training; drift is stable (< 0.1), moderate (0.1-0.25) or major (> 0.25)';

COMMENT ON FUNCTION customer_value.group_report(text, text, text, text) IS
    'Per value of group_column (fairness, segments): customers, mean predicted vs mean actual, mean error, MAE, RMSE and the share of each tier';

-- ---------------------------------------------------------------------------------------------
-- Citus: the store on every node, and the pinned form of scoring for UPDATE on distributed
-- tables.
-- ---------------------------------------------------------------------------------------------
COMMENT ON FUNCTION customer_value.distribute() IS
    'On a Citus coordinator: makes the model store (models, training_runs, model_access) reference tables, so every node holds every model and scores next to its shards; idempotent';
COMMENT ON FUNCTION customer_value.deployed_id(text) IS
    'Id of the deployed version of a model (or of name@version), for the pinned form customer_value(c, customer_value.deployed_id(''name'')) that Citus accepts in UPDATE on distributed tables';
REVOKE EXECUTE ON FUNCTION customer_value.distribute() FROM PUBLIC;
