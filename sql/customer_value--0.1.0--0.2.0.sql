-- customer_value 0.1.0 → 0.2.0: retraining with champion/challenger and a run log, drift,
-- least-privilege roles with per-model access, scheduled retraining (pg_cron).
-- Released: never edit this file; the next release gets its own upgrade script.
\echo Use "ALTER EXTENSION customer_value UPDATE TO '0.2.0'" to load this file. \quit

-- Every version now stores its full training spec (what retrain re-runs) and its training
-- distributions (what drift compares with). 0.1.0 versions get their spec from the columns they
-- already have; they have no profile (drift says to retrain them).
ALTER TABLE customer_value.models ADD COLUMN spec jsonb;
UPDATE customer_value.models
   SET spec = jsonb_build_object('source', source, 'target', target, 'algorithm', algorithm,
                                 'options', CASE WHEN jsonb_typeof(options) = 'object' THEN options ELSE '{}'::jsonb END);
ALTER TABLE customer_value.models ALTER COLUMN spec SET NOT NULL;
ALTER TABLE customer_value.models ADD COLUMN profile jsonb;
COMMENT ON COLUMN customer_value.models.spec IS 'Full training spec, what customer_value.retrain re-runs: source (schema-qualified for a relation), target, algorithm as requested (e.g. auto), options';
COMMENT ON COLUMN customer_value.models.profile IS 'Distributions seen at training (feature and score deciles, NULL shares), the reference of customer_value.drift';

-- Row-level security (below) must apply to whoever reads the summary.
ALTER VIEW customer_value.model_summary SET (security_invoker = true);

-- Every training and retraining run, deployed or not, failed or not.
CREATE SEQUENCE customer_value.training_runs_id_seq;
CREATE TABLE customer_value.training_runs (
    id                 bigint      NOT NULL DEFAULT nextval('customer_value.training_runs_id_seq') PRIMARY KEY,
    model              text        NOT NULL,
    version            int,
    kind               text        NOT NULL,
    started            timestamptz NOT NULL,
    finished           timestamptz NOT NULL,
    rows_read          bigint,
    metrics            jsonb,
    champion_version   int,
    champion_metrics   jsonb,
    decision           text        NOT NULL,
    reason             text,
    error              text,
    sqlstate           text,
    run_by             name        NOT NULL DEFAULT current_user,
    CONSTRAINT training_runs_kind_check CHECK (kind IN ('train', 'retrain')),
    CONSTRAINT training_runs_decision_check CHECK (decision IN ('deployed', 'not_deployed', 'failed'))
);
ALTER SEQUENCE customer_value.training_runs_id_seq OWNED BY customer_value.training_runs.id;
CREATE INDEX training_runs_model_started ON customer_value.training_runs (model, started);
SELECT pg_catalog.pg_extension_config_dump('customer_value.training_runs', '');
SELECT pg_catalog.pg_extension_config_dump('customer_value.training_runs_id_seq', '');

COMMENT ON TABLE customer_value.training_runs IS
    'One row per train/retrain run: what was read, the metrics of the new version and of the serving version on the same holdout, and the decision. A failed retrain is recorded too (a cancelled or killed one rolls back with its transaction).';
COMMENT ON COLUMN customer_value.training_runs.model IS 'Model name';
COMMENT ON COLUMN customer_value.training_runs.version IS 'Version the run created (NULL if it failed)';
COMMENT ON COLUMN customer_value.training_runs.kind IS 'train or retrain';
COMMENT ON COLUMN customer_value.training_runs.started IS 'Wall-clock start of the run';
COMMENT ON COLUMN customer_value.training_runs.finished IS 'Wall-clock end of the run';
COMMENT ON COLUMN customer_value.training_runs.rows_read IS 'Rows read from the source';
COMMENT ON COLUMN customer_value.training_runs.metrics IS 'Holdout metrics of the new version (the challenger)';
COMMENT ON COLUMN customer_value.training_runs.champion_version IS 'Version that was serving when the run started';
COMMENT ON COLUMN customer_value.training_runs.champion_metrics IS 'Metrics of the serving version on the same holdout rows (retrain)';
COMMENT ON COLUMN customer_value.training_runs.decision IS 'deployed, not_deployed or failed';
COMMENT ON COLUMN customer_value.training_runs.reason IS 'Why: the comparison, the deploy option, or the error';
COMMENT ON COLUMN customer_value.training_runs.error IS 'Error message of a failed run';
COMMENT ON COLUMN customer_value.training_runs.sqlstate IS 'SQLSTATE of a failed run';
COMMENT ON COLUMN customer_value.training_runs.run_by IS 'Role that ran it';

-- Per-model access: a model with rows here can be seen and scored only by members of the listed
-- roles (and the store's owner); a model without rows is open to every customer_value_reader.
-- Enforced by row-level security on models and training_runs (see the end of finalize.sql).
CREATE TABLE customer_value.model_access (
    name        text        NOT NULL,
    role        name        NOT NULL,
    granted_by  name        NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, role)
);
SELECT pg_catalog.pg_extension_config_dump('customer_value.model_access', '');
COMMENT ON TABLE customer_value.model_access IS
    'Roles allowed to see and score a model (by name, all versions); no row for a model = every customer_value_reader. Set with customer_value.restrict_model.';
COMMENT ON COLUMN customer_value.model_access.name IS 'Model name';
COMMENT ON COLUMN customer_value.model_access.role IS 'A role whose members may see and score the model';
COMMENT ON COLUMN customer_value.model_access.granted_by IS 'Role that set the restriction';
COMMENT ON COLUMN customer_value.model_access.granted_at IS 'When it was set';

-- New functions (as pgrx generates them in customer_value--0.2.0.sql).
-- customer_value::pg::retrain::retrain
CREATE  FUNCTION customer_value."retrain"(
	"name" TEXT, /* & str */
	"options" jsonb DEFAULT '{}' /* Option < JsonB > */
) RETURNS TABLE (
	"name" TEXT,  /* String */
	"version" INT,  /* Option < i32 > */
	"deployed" bool,  /* bool */
	"decision" TEXT,  /* String */
	"reason" TEXT,  /* String */
	"metrics" jsonb,  /* Option < JsonB > */
	"champion_version" INT,  /* Option < i32 > */
	"champion_metrics" jsonb  /* Option < JsonB > */
)
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'retrain_wrapper';

-- customer_value::pg::admin::restrict_model
CREATE  FUNCTION customer_value."restrict_model"(
	"name" TEXT, /* & str */
	"roles" TEXT[] /* :: std :: option :: Option < Vec < Option < String > > > */
) RETURNS INT /* i32 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'restrict_model_wrapper';

-- customer_value::pg::drift::drift
CREATE  FUNCTION customer_value."drift"(
	"model" TEXT, /* & str */
	"source" TEXT /* & str */
) RETURNS TABLE (
	"feature" TEXT,  /* String */
	"psi" double precision,  /* f64 */
	"drift" TEXT,  /* String */
	"training_null_share" double precision,  /* f64 */
	"source_null_share" double precision,  /* f64 */
	"training_rows" bigint,  /* i64 */
	"source_rows" bigint  /* i64 */
)
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'drift_wrapper';

-- customer_value::pg::admin::feature_importance
CREATE  FUNCTION customer_value."feature_importance"(
	"model" TEXT /* & str */
) RETURNS TABLE (
	"feature" TEXT,  /* String */
	"importance" double precision,  /* f64 */
	"method" TEXT,  /* String */
	"rank" INT  /* i32 */
)
STRICT STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'feature_importance_wrapper';

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

-- customer_value::pg::evaluate::group_report
CREATE  FUNCTION customer_value."group_report"(
	"model" TEXT, /* & str */
	"source" TEXT, /* & str */
	"actual" TEXT, /* & str */
	"group_column" TEXT /* & str */
) RETURNS TABLE (
	"group_value" TEXT,  /* Option < String > */
	"customers" bigint,  /* i64 */
	"mean_predicted" double precision,  /* f64 */
	"mean_actual" double precision,  /* Option < f64 > */
	"mean_error" double precision,  /* Option < f64 > */
	"mae" double precision,  /* Option < f64 > */
	"rmse" double precision,  /* Option < f64 > */
	"tier_shares" jsonb  /* JsonB */
)
STRICT STABLE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'group_report_wrapper';

COMMENT ON FUNCTION customer_value.group_report(text, text, text, text) IS
    'Per value of group_column (fairness, segments): customers, mean predicted vs mean actual, mean error, MAE, RMSE and the share of each tier';
COMMENT ON FUNCTION customer_value.retrain(text, jsonb) IS
    'Re-runs the serving version''s training spec on today''s data; deploys the new version only if at least as good on the same holdout (champion/challenger), options override the spec (e.g. {"deploy": "always"}); records every run, failed ones too, in customer_value.training_runs';
COMMENT ON FUNCTION customer_value.restrict_model(text, text[]) IS
    'Restricts who may see and score a model (all versions) to members of these roles; NULL or an empty array opens it to every customer_value_reader again. Allowed to the model''s owner (who trained its first version) and the store''s owner; returns the number of roles';
COMMENT ON FUNCTION customer_value.drift(text, text) IS
    'Population stability index (PSI) of each feature and of the predictions ("(prediction)" row), source against the distributions the model saw at training; drift is stable (< 0.1), moderate (0.1-0.25) or major (> 0.25)';

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

ALTER TABLE customer_value.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_value.training_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY models_by_access ON customer_value.models FOR SELECT
    USING (NOT EXISTS (SELECT 1 FROM customer_value.model_access a WHERE a.name = models.name)
           OR EXISTS (SELECT 1 FROM customer_value.model_access a
                        JOIN pg_catalog.pg_roles r ON r.rolname = a.role
                       WHERE a.name = models.name
                         AND pg_catalog.pg_has_role(CURRENT_USER, r.oid, 'MEMBER')));
CREATE POLICY training_runs_by_access ON customer_value.training_runs FOR SELECT
    USING (NOT EXISTS (SELECT 1 FROM customer_value.model_access a WHERE a.name = training_runs.model)
           OR EXISTS (SELECT 1 FROM customer_value.model_access a
                        JOIN pg_catalog.pg_roles r ON r.rolname = a.role
                       WHERE a.name = training_runs.model
                         AND pg_catalog.pg_has_role(CURRENT_USER, r.oid, 'MEMBER')));

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
BEGIN
    IF name IS NULL OR cron IS NULL THEN
        RAISE EXCEPTION 'model name and cron schedule must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'extension "pg_cron" is not installed in database "%"', current_database()
            USING ERRCODE = '42704',
                  HINT = format('Install the postgresql-15-cron package, set shared_preload_libraries = ''pg_cron'' and cron.database_name = %L in postgresql.conf, restart, then CREATE EXTENSION pg_cron.', current_database());
    END IF;
    IF NOT EXISTS (SELECT 1 FROM customer_value.models m WHERE m.name = schedule_retraining.name) THEN
        RAISE EXCEPTION 'model "%" does not exist', name USING ERRCODE = '42704';
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
