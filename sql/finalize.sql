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
