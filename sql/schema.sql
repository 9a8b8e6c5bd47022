-- customer_value: the model store. Runs right after schema customer_value is created.

-- Names, categories and messages pass through Rust strings, which are UTF-8: in a database of
-- another encoding a name such as 'modèle' could not be read. Refused up front, not mid-call.
DO $$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'customer_value needs a UTF8 database; this one is %', current_setting('server_encoding')
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Create the database with ENCODING ''UTF8'' (e.g. CREATE DATABASE shop ENCODING ''UTF8'' TEMPLATE template0).';
    END IF;
END
$$;

COMMENT ON SCHEMA customer_value IS
    'customer_value extension: the model store and every function except the scoring functions customer_value(row) and customer_tier(row)';

CREATE SEQUENCE customer_value.models_id_seq;

CREATE TABLE customer_value.models (
    id          bigint      NOT NULL DEFAULT nextval('customer_value.models_id_seq') PRIMARY KEY,
    name        text        NOT NULL,
    version     int         NOT NULL,
    algorithm   text        NOT NULL,
    task        text        NOT NULL,
    target      text,
    source      text        NOT NULL,
    features    jsonb       NOT NULL,
    options     jsonb       NOT NULL DEFAULT '{}',
    metrics     jsonb       NOT NULL,
    tiers       jsonb       NOT NULL,
    model       bytea       NOT NULL,
    trained_by  name        NOT NULL DEFAULT current_user,
    trained_at  timestamptz NOT NULL DEFAULT now(),
    deployed    boolean     NOT NULL DEFAULT false,
    spec        jsonb       NOT NULL,
    profile     jsonb,
    author      regrole,
    allowed_roles regrole[],
    CONSTRAINT models_name_version_key UNIQUE (name, version),
    CONSTRAINT models_name_check CHECK (name <> '' AND strpos(name, '@') = 0),
    CONSTRAINT models_version_check CHECK (version >= 1)
);
ALTER SEQUENCE customer_value.models_id_seq OWNED BY customer_value.models.id;

-- At most one deployed version per model name, enforced by the database.
CREATE UNIQUE INDEX models_one_deployed_per_name ON customer_value.models (name) WHERE deployed;

-- Models are user data: pg_dump must keep them.
SELECT pg_catalog.pg_extension_config_dump('customer_value.models', '');
SELECT pg_catalog.pg_extension_config_dump('customer_value.models_id_seq', '');

COMMENT ON TABLE customer_value.models IS
    'Trained models, one row per (name, version). Versions are immutable; "deployed" marks the version customer_value(row, name) uses.';
COMMENT ON COLUMN customer_value.models.id IS 'Immutable model id, usable with customer_value(row, model_id)';
COMMENT ON COLUMN customer_value.models.name IS 'Model name (no "@": name@version pins a version)';
COMMENT ON COLUMN customer_value.models.version IS 'Version number within the name, from 1';
COMMENT ON COLUMN customer_value.models.algorithm IS 'Algorithm that produced the model (auto resolves to the chosen one)';
COMMENT ON COLUMN customer_value.models.task IS 'What the model predicts: regression (a value), classification (a class and its probability) or clv (a CLV model fitted on an RFM summary)';
COMMENT ON COLUMN customer_value.models.target IS 'Target column the model learned';
COMMENT ON COLUMN customer_value.models.source IS 'Source table, view or query it was trained on';
COMMENT ON COLUMN customer_value.models.features IS 'Feature schema: name, SQL type, encoding and imputation of each input column';
COMMENT ON COLUMN customer_value.models.options IS 'Training options as given';
COMMENT ON COLUMN customer_value.models.metrics IS 'Holdout metrics: rmse, mae, r2, spearman, gini, top_decile_capture, n_train, n_test (and trials for auto)';
COMMENT ON COLUMN customer_value.models.tiers IS 'Tier cut points, best tier first: name, min (lowest prediction in the tier), share';
COMMENT ON COLUMN customer_value.models.model IS 'Self-describing model bytes: magic, format version, length, CRC-32, payload';
COMMENT ON COLUMN customer_value.models.trained_by IS 'Role that trained the model';
COMMENT ON COLUMN customer_value.models.trained_at IS 'When the model was trained';
COMMENT ON COLUMN customer_value.models.deployed IS 'Whether this is the deployed version of its name (at most one per name)';
COMMENT ON COLUMN customer_value.models.spec IS 'Full training spec, what customer_value.retrain re-runs: source (schema-qualified for a relation), target, algorithm as requested (e.g. auto), options';
COMMENT ON COLUMN customer_value.models.author IS 'Role that wrote the training spec: retrain runs the spec with this role''s privileges, and only for members of it';
COMMENT ON COLUMN customer_value.models.allowed_roles IS 'Roles whose members may see and score this model (copied from customer_value.model_access by restrict_model; NULL = every customer_value_reader)';
COMMENT ON COLUMN customer_value.models.profile IS 'Distributions seen at training (feature and score deciles, NULL shares), the reference of customer_value.drift';

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
    allowed_roles      regrole[],
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
COMMENT ON COLUMN customer_value.training_runs.allowed_roles IS 'Roles whose members may see this run: those of its model (NULL = every customer_value_reader)';

CREATE VIEW customer_value.model_summary WITH (security_invoker = true) AS
SELECT m.id,
       m.name,
       m.version,
       m.deployed,
       m.algorithm,
       m.task,
       m.target,
       (m.metrics ->> 'rmse')::float8               AS rmse,
       (m.metrics ->> 'mae')::float8                AS mae,
       (m.metrics ->> 'r2')::float8                 AS r2,
       (m.metrics ->> 'spearman')::float8           AS spearman,
       (m.metrics ->> 'gini')::float8               AS gini,
       (m.metrics ->> 'top_decile_capture')::float8 AS top_decile_capture,
       (m.metrics ->> 'n_train')::bigint            AS n_train,
       (m.metrics ->> 'n_test')::bigint             AS n_test,
       ARRAY(SELECT f ->> 'name'
               FROM jsonb_array_elements(m.features) WITH ORDINALITY AS e(f, n)
              ORDER BY n)                           AS features,
       ARRAY(SELECT t ->> 'name'
               FROM jsonb_array_elements(m.tiers) WITH ORDINALITY AS e(t, n)
              ORDER BY n)                           AS tiers,
       octet_length(m.model)                        AS model_bytes,
       m.source,
       m.trained_by,
       m.trained_at
  FROM customer_value.models AS m;

COMMENT ON VIEW customer_value.model_summary IS
    'One row per model version with its holdout metrics flattened into columns, for BI tools';

-- Per-model access: a model with rows here can be seen and scored only by members of the listed
-- roles (and the store's owner); a model without rows is open to every customer_value_reader.
-- Roles are stored by OID: a role dropped and created again under the same name gets nothing.
-- restrict_model copies the list into models.allowed_roles and training_runs.allowed_roles,
-- which row-level security reads (policies without subqueries, as Citus requires; see
-- finalize.sql).
CREATE TABLE customer_value.model_access (
    name        text        NOT NULL,
    role        regrole     NOT NULL,
    granted_by  name        NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, role)
);
SELECT pg_catalog.pg_extension_config_dump('customer_value.model_access', '');
COMMENT ON TABLE customer_value.model_access IS
    'Roles allowed to see and score a model (by name, all versions); no row for a model = every customer_value_reader. Set with customer_value.restrict_model.';
COMMENT ON COLUMN customer_value.model_access.name IS 'Model name';
COMMENT ON COLUMN customer_value.model_access.role IS 'A role whose members may see and score the model (by OID)';
COMMENT ON COLUMN customer_value.model_access.granted_by IS 'Role that set the restriction';
COMMENT ON COLUMN customer_value.model_access.granted_at IS 'When it was set';
