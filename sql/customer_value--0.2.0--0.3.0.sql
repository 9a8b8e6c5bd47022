-- customer_value 0.2.0 → 0.3.0.
\echo Use "ALTER EXTENSION customer_value UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------------------
-- Stored specs run as their author (retrain): every version records the role that wrote its
-- spec. For versions written by 0.2.0 the author is the role that trained the oldest version of
-- the same name with the same source — a 0.2.0 retrain recorded its caller in trained_by, but
-- it re-ran a spec someone else wrote. Roles that no longer exist leave it NULL (retrain then
-- asks for a new train).
-- ---------------------------------------------------------------------------------------------
ALTER TABLE customer_value.models ADD COLUMN author regrole;
UPDATE customer_value.models m
   SET author = (SELECT r.oid FROM customer_value.models o
                   JOIN pg_catalog.pg_roles r ON r.rolname = o.trained_by
                  WHERE o.name = m.name AND o.spec -> 'source' = m.spec -> 'source'
                  ORDER BY o.version LIMIT 1);
COMMENT ON COLUMN customer_value.models.author IS 'Role that wrote the training spec: retrain runs the spec with this role''s privileges, and only for members of it';

-- ---------------------------------------------------------------------------------------------
-- Per-model access by role OID (a role dropped and created again gets nothing), and policies
-- without subqueries (Citus accepts them on reference tables): each row carries its model's
-- access list. Rows naming roles that no longer exist granted nothing and are dropped.
-- ---------------------------------------------------------------------------------------------
DELETE FROM customer_value.model_access a
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = a.role);
DROP POLICY models_by_access ON customer_value.models;
DROP POLICY training_runs_by_access ON customer_value.training_runs;
ALTER TABLE customer_value.model_access ALTER COLUMN role TYPE regrole USING role::regrole;
COMMENT ON COLUMN customer_value.model_access.role IS 'A role whose members may see and score the model (by OID)';
ALTER TABLE customer_value.models ADD COLUMN allowed_roles regrole[];
COMMENT ON COLUMN customer_value.models.allowed_roles IS 'Roles whose members may see and score this model (copied from customer_value.model_access by restrict_model; NULL = every customer_value_reader)';
ALTER TABLE customer_value.training_runs ADD COLUMN allowed_roles regrole[];
COMMENT ON COLUMN customer_value.training_runs.allowed_roles IS 'Roles whose members may see this run: those of its model (NULL = every customer_value_reader)';
UPDATE customer_value.models m
   SET allowed_roles = (SELECT pg_catalog.array_agg(a.role ORDER BY a.role)
                          FROM customer_value.model_access a WHERE a.name = m.name);
UPDATE customer_value.training_runs t
   SET allowed_roles = (SELECT pg_catalog.array_agg(a.role ORDER BY a.role)
                          FROM customer_value.model_access a WHERE a.name = t.model);

CREATE FUNCTION customer_value.is_member_of_any(roles regrole[]) RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_is_member_of_any_wrapper';
COMMENT ON FUNCTION customer_value.is_member_of_any(regrole[]) IS
    'Whether the current user is a member of any of these roles (roles that no longer exist match nobody); used by the store''s row-level security';
CREATE POLICY models_by_access ON customer_value.models FOR SELECT
    USING (allowed_roles IS NULL OR customer_value.is_member_of_any(allowed_roles)
           OR pg_catalog.pg_has_role('pg_read_all_data', 'MEMBER'));
CREATE POLICY training_runs_by_access ON customer_value.training_runs FOR SELECT
    USING (allowed_roles IS NULL OR customer_value.is_member_of_any(allowed_roles)
           OR pg_catalog.pg_has_role('pg_read_all_data', 'MEMBER'));

-- schedule_retraining refuses up front a caller who cannot act as the spec's author.
CREATE OR REPLACE FUNCTION customer_value.schedule_retraining(name text, cron text, options jsonb DEFAULT '{}')
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

-- ---------------------------------------------------------------------------------------------
-- Citus: the store on every node, and the pinned form of scoring for UPDATE on distributed
-- tables (as pgrx generates them in customer_value--0.3.0.sql).
-- ---------------------------------------------------------------------------------------------
CREATE FUNCTION customer_value."distribute"() RETURNS TABLE (
	"relation" TEXT,
	"action" TEXT
)
STRICT
LANGUAGE c
AS 'MODULE_PATHNAME', 'distribute_wrapper';
CREATE FUNCTION customer_value."deployed_id"(
	"model" TEXT
) RETURNS bigint
STABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'deployed_id_wrapper';
COMMENT ON FUNCTION customer_value.distribute() IS
    'On a Citus coordinator: makes the model store (models, training_runs, model_access) reference tables, so every node holds every model and scores next to its shards; idempotent';
COMMENT ON FUNCTION customer_value.deployed_id(text) IS
    'Id of the deployed version of a model (or of name@version), for the pinned form customer_value(c, customer_value.deployed_id(''name'')) that Citus accepts in UPDATE on distributed tables';
REVOKE EXECUTE ON FUNCTION customer_value.distribute() FROM PUBLIC;

-- rfm refuses a holdout_end that is not after calibration_end (22023).
CREATE OR REPLACE FUNCTION customer_value.rfm(
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

-- The task column's description (it said every model was a regression).
COMMENT ON COLUMN customer_value.models.task IS 'What the model predicts: regression (a value), classification (a class and its probability) or clv (a CLV model fitted on an RFM summary)';

-- ---------------------------------------------------------------------------------------------
-- Models learnt from a transaction log across time (src/pg/log.rs).
-- ---------------------------------------------------------------------------------------------
CREATE  FUNCTION customer_value."train_from_log"(
	"name" TEXT, /* Option < & str > */
	"log" TEXT, /* Option < & str > */
	"customer_column" TEXT, /* Option < & str > */
	"time_column" TEXT, /* Option < & str > */
	"amount_column" TEXT, /* Option < & str > */
	"as_of" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"options" jsonb DEFAULT '{}' /* Option < JsonB > */
) RETURNS TABLE (
	"name" TEXT,  /* String */
	"version" INT,  /* i32 */
	"algorithm" TEXT,  /* String */
	"metrics" jsonb,  /* JsonB */
	"deployed" bool,  /* bool */
	"id" bigint  /* i64 */
)
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'train_from_log_wrapper';
COMMENT ON FUNCTION customer_value.train_from_log(text, text, text, text, text, timestamptz, jsonb) IS
    'Trains a new version of a model from a transaction log (one row per purchase or line item), leak-free: features at earlier cut-offs, the spend of the following window as target, a backtest on the most recent window before as_of with BG/NBD × Gamma-Gamma and the last window''s spend as baselines (metrics->''baselines''); options: horizon_days (365), window_days, cutoffs, cutoff_step_days, count_model, algorithm (auto), attributes (a source of static customer attributes) and the usual training options; returns name, version, algorithm, metrics, deployed, id';
REVOKE EXECUTE ON FUNCTION customer_value.train_from_log(text, text, text, text, text, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION customer_value.train_from_log(text, text, text, text, text, timestamptz, jsonb) TO customer_value_trainer;
CREATE  FUNCTION customer_value."create_log_features"(
	"table_name" TEXT, /* Option < & str > */
	"model" TEXT, /* Option < & str > */
	"as_of" timestamp with time zone /* Option < TimestampWithTimeZone > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'create_log_features_wrapper';
COMMENT ON FUNCTION customer_value.create_log_features(text, text, timestamptz) IS
    'Creates a table of every customer''s features as of as_of, computed from the log of a model trained with train_from_log, keyed by the log''s customer column (primary key); customer_value(f, model), customer_tier(f, model) and explain(f, model) score it; returns the number of customers';

-- evaluate reports the decile MAPE and the naive ranking's Gini.
COMMENT ON FUNCTION customer_value.evaluate(text, text, text) IS
    'Metrics of a model on any relation against its column `actual`: n, predicted/actual totals and % error, MAE, RMSE, R², Pearson, Spearman, normalized Gini, top-decile capture, decile MAPE, and the Gini of the naive ranking by the source''s total_spend or monetary_value column (naive_gini_by_<column>) when it has one';

-- The modified BG/NBD count model (algorithm and count_model mbgnbd).
COMMENT ON FUNCTION customer_value.expected_purchases(record, float8) IS
    'Expected repeat purchases of a customer in the next `periods` time units, with the default CLV model (bgnbd, mbgnbd, pareto_nbd or clv)';

-- RFM segments: quintile scores cut on the training population, stored with the model (format
-- version 3), and the named segment of the marketing grid.
CREATE FUNCTION customer_value.rfm_segment("row" record) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_segment_default_wrapper';
COMMENT ON FUNCTION customer_value.rfm_segment(record) IS
    'RFM segment (champions, loyal, potential_loyalist, new, promising, need_attention, about_to_sleep, cannot_lose, at_risk, hibernating) of a customer row, from quintile scores cut on the default model''s training population';
CREATE FUNCTION customer_value.rfm_segment("row" record, model text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_segment_named_wrapper';
COMMENT ON FUNCTION customer_value.rfm_segment(record, text) IS
    'RFM segment of a customer row, from the quintile boundaries stored with the named model (name or name@version)';
CREATE FUNCTION customer_value.rfm_score("row" record) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_score_default_wrapper';
COMMENT ON FUNCTION customer_value.rfm_score(record) IS
    'RFM score of a customer row as three digits, recency, frequency and monetary quintile (5 best), e.g. 535, with the default model''s boundaries';
CREATE FUNCTION customer_value.rfm_score("row" record, model text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_score_named_wrapper';
COMMENT ON FUNCTION customer_value.rfm_score(record, text) IS
    'RFM score of a customer row as three digits (recency, frequency, monetary; 5 best), with the named model''s boundaries';

-- Narrowed scoring calls (#13): the planner support function of every scoring function turns a
-- call on a table's whole row into a call on only the columns the model reads.
CREATE FUNCTION customer_value.score_support(internal) RETURNS internal
    LANGUAGE c STRICT
    AS 'MODULE_PATHNAME', 'cv_score_support_wrapper';
COMMENT ON FUNCTION customer_value.score_support(internal) IS
    'Planner support of the scoring functions: a call on a table''s whole row becomes a call on only the columns the model reads';
CREATE FUNCTION customer_value.score_columns_float8(operation int4, model text, model_id bigint, periods float8, columns text[], VARIADIC "any") RETURNS float8
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_score_columns_float8_wrapper';
COMMENT ON FUNCTION customer_value.score_columns_float8(int4, text, bigint, float8, text[], "any") IS
    'What the planner turns customer_value(row), predict_proba, expected_purchases, p_alive and expected_spend on a table''s row into: the same result from only the columns the model reads (see EXPLAIN VERBOSE); not meant to be called directly';
CREATE FUNCTION customer_value.score_columns_text(operation int4, model text, model_id bigint, periods float8, columns text[], VARIADIC "any") RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_score_columns_text_wrapper';
COMMENT ON FUNCTION customer_value.score_columns_text(int4, text, bigint, float8, text[], "any") IS
    'What the planner turns customer_tier(row), rfm_segment and rfm_score on a table''s row into: the same result from only the columns the model reads; not meant to be called directly';
CREATE FUNCTION customer_value.score_columns_jsonb(operation int4, model text, model_id bigint, periods float8, columns text[], VARIADIC "any") RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_score_columns_jsonb_wrapper';
COMMENT ON FUNCTION customer_value.score_columns_jsonb(int4, text, bigint, float8, text[], "any") IS
    'What the planner turns explain(row) on a table''s row into: the same result from only the columns the model reads; not meant to be called directly';
ALTER FUNCTION customer_value(record) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value(record, text) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value(record, bigint) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_tier(record) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_tier(record, text) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_tier(record, bigint) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.predict_proba(record) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.predict_proba(record, text) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.explain(record) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.explain(record, text) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.expected_purchases(record, float8) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.expected_purchases(record, float8, text) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.p_alive(record) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.p_alive(record, text) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.expected_spend(record) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.expected_spend(record, text) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.rfm_segment(record) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.rfm_segment(record, text) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.rfm_score(record) SUPPORT customer_value.score_support;
ALTER FUNCTION customer_value.rfm_score(record, text) SUPPORT customer_value.score_support;

-- rfm() groups the log once by customer with the aggregate rfm_periods (issue #13).
CREATE FUNCTION customer_value.rfm_periods_step(internal, timestamp, float8, boolean, timestamp) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_step_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_step(internal, timestamp, float8, boolean, timestamp) IS
    'Transition function of customer_value.rfm_periods';
CREATE FUNCTION customer_value.rfm_periods_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_combine_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_combine(internal, internal) IS
    'Combine function of customer_value.rfm_periods (parallel aggregation)';
CREATE FUNCTION customer_value.rfm_periods_serialize(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_serialize_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_serialize(internal) IS
    'Serialisation function of customer_value.rfm_periods (parallel aggregation)';
CREATE FUNCTION customer_value.rfm_periods_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_deserialize_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_deserialize(bytea, internal) IS
    'Deserialisation function of customer_value.rfm_periods (parallel aggregation)';
CREATE FUNCTION customer_value.rfm_periods_final(internal) RETURNS float8[]
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_final_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_final(internal) IS
    'Final function of customer_value.rfm_periods';
CREATE AGGREGATE customer_value.rfm_periods(period_start timestamp, amount float8, calibration boolean, calibration_end timestamp) (
    SFUNC = customer_value.rfm_periods_step,
    STYPE = internal,
    -- the state without its period vectors (outside the context): what hash aggregation plans with
    SSPACE = 200,
    FINALFUNC = customer_value.rfm_periods_final,
    COMBINEFUNC = customer_value.rfm_periods_combine,
    SERIALFUNC = customer_value.rfm_periods_serialize,
    DESERIALFUNC = customer_value.rfm_periods_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE customer_value.rfm_periods(timestamp, float8, boolean, timestamp) IS
    'One customer''s purchase periods, summarised as rfm() reads them: {distinct calibration periods, seconds from the first to the last, seconds from the first to calibration_end, calibration spend, spend in the first period, calibration transactions, distinct holdout periods, holdout spend}';

-- explain: the sequence models' integrated gradients and their residual (issue #14)
COMMENT ON FUNCTION customer_value.explain(record) IS
    'Why this prediction: {"baseline", "prediction", "contributions": {feature: value}, "scale", "value"} with baseline + sum of contributions = prediction (exact: linear coefficients or TreeSHAP; gru and cnn: integrated gradients by period of the history, plus their "residual"), default model';
COMMENT ON FUNCTION customer_value.explain(record, text) IS
    'Why this prediction, with the named model: per-feature contributions adding up to prediction - baseline (with "residual" for the integrated gradients of gru and cnn)';
