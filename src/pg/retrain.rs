//! `customer_value.retrain(name, options)`: re-runs the serving version's stored spec on
//! today's data and deploys the new version only if it is at least as good as the serving one
//! on the same holdout rows (champion/challenger). Every run is recorded in
//! `customer_value.training_runs` — a failed one too: the attempt runs in a subtransaction, so
//! its failure is rolled back and written down instead of taking the record with it. A cancel
//! or statement timeout still aborts the statement (nothing to record: the transaction ends).

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

use crate::engine::champion::decide;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::metrics::HoldoutMetrics;
use crate::engine::models::Algorithm;
use crate::engine::options::TrainOptions;
use crate::engine::train::metrics_object;

use super::args::required;
use super::errors::OrRaise;
use super::fit::{fit_from_source, Spec};
use super::log::{fit_log, LogSpec};
use super::privilege::{as_spec_author, spec_author};
use super::runs::{now, record_run, RunRecord};
use super::store;
use super::store::{insert_version, DeployDecision};
use super::subxact::run_in_subtransaction;
use crate::engine::model_name::check_model_name;

/// The version whose spec is re-run: the deployed one, else the newest.
struct Basis {
    version: i32,
    deployed: bool,
    spec: Value,
    /// The role that wrote the spec, whose privileges it runs with (None: unknown).
    author: Option<pg_sys::Oid>,
    row: store::ModelRow,
}

fn basis(name: &str) -> Result<Basis> {
    let found = Spi::connect(|client| {
        client
            .select(
                "SELECT version, deployed, spec, id, xmin::text || '/' || ctid::text, author::oid
                   FROM customer_value.models WHERE name = $1
                  ORDER BY deployed DESC, version DESC LIMIT 1",
                None,
                &[name.into()],
            )
            .or_raise()
            .next()
            .map(|row| {
                let version = row.get::<i32>(1).or_raise().unwrap_or(0);
                Basis {
                    version,
                    deployed: row.get::<bool>(2).or_raise().unwrap_or(false),
                    spec: row
                        .get::<JsonB>(3)
                        .or_raise()
                        .map(|j| j.0)
                        .unwrap_or(Value::Null),
                    author: row.get::<pg_sys::Oid>(6).or_raise(),
                    row: store::ModelRow {
                        id: row.get::<i64>(4).or_raise().unwrap_or(0),
                        name: name.to_string(),
                        version,
                        row_version: row.get::<String>(5).or_raise().unwrap_or_default(),
                    },
                }
            })
    });
    found.ok_or_else(|| {
        EngineError::new(
            ErrorKind::UndefinedObject,
            format!("model \"{name}\" does not exist"),
        )
        .with_hint(
            "retrain re-runs a stored model's spec; train it first with customer_value.train(...).",
        )
    })
}

/// The stored spec with `overrides` merged into its options (top-level keys replace).
fn spec_of(name: &str, basis: &Basis, overrides: &Value) -> Result<(Spec, TrainOptions)> {
    let corrupt = |what: &str| {
        EngineError::new(
            ErrorKind::DataCorrupted,
            format!(
                "model \"{name}\" version {} has no usable training spec ({what})",
                basis.version
            ),
        )
        .with_hint("Train it again with customer_value.train(...); retrain works from then on.")
    };
    let source = basis
        .spec
        .get("source")
        .and_then(Value::as_str)
        .ok_or_else(|| corrupt("source"))?;
    let algorithm = basis
        .spec
        .get("algorithm")
        .and_then(Value::as_str)
        .ok_or_else(|| corrupt("algorithm"))?;
    let algorithm = Algorithm::parse(algorithm)?;
    let target = basis
        .spec
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut options = match basis.spec.get("options") {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    match overrides {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                options.insert(k.clone(), v.clone());
            }
        }
        other => {
            return Err(EngineError::invalid_parameter(format!(
                "options must be a JSON object, not {other}"
            )))
        }
    }
    let options = Value::Object(options);
    let parsed = TrainOptions::parse(&options, algorithm)?;
    Ok((
        Spec {
            source: source.to_string(),
            target,
            algorithm,
            options,
        },
        parsed,
    ))
}

struct Attempt {
    version: i32,
    deployed: bool,
    reason: String,
    rows_read: usize,
    metrics: Value,
    champion_version: Option<i32>,
    champion_metrics: Option<Value>,
}

fn attempt(
    name: &str,
    basis: &Basis,
    author: &(pg_sys::Oid, String),
    overrides: &Value,
) -> Result<Attempt> {
    if LogSpec::is_log_spec(&basis.spec) {
        return attempt_from_log(name, basis, author, overrides);
    }
    let (spec, parsed) = spec_of(name, basis, overrides)?;
    let champion = serving_model(basis)?;
    // The spec is its author's code: it runs with the author's privileges, not the caller's.
    let fitted = as_spec_author(author.0, || {
        fit_from_source(&spec, &parsed, champion.as_deref())
    })?;
    let challenger = Challenger {
        source: &spec.source,
        spec: spec.to_json(&fitted.qualified_source),
        outcome: &fitted.outcome,
        profile: &fitted.profile,
        options: &fitted.options,
        champion: &fitted.champion,
        rows_read: fitted.rows_read,
    };
    store_challenger(name, basis, author, challenger)
}

/// The serving version's model, to be scored beside the challenger (none when no version of
/// the model is deployed).
fn serving_model(
    basis: &Basis,
) -> Result<Option<std::rc::Rc<crate::engine::codec::ModelArtifact>>> {
    if basis.deployed {
        store::load(&basis.row).map(Some)
    } else {
        Ok(None)
    }
}

/// A retrained version, before the deploy decision.
struct Challenger<'a> {
    source: &'a str,
    spec: Value,
    outcome: &'a crate::engine::train::TrainOutcome,
    profile: &'a Value,
    options: &'a TrainOptions,
    /// The serving version's metrics on the challenger's holdout, or why it has none.
    champion: &'a Option<std::result::Result<HoldoutMetrics, String>>,
    rows_read: usize,
}

/// Decides champion/challenger and stores the challenger as a new version (deployed or not).
fn store_challenger(
    name: &str,
    basis: &Basis,
    author: &(pg_sys::Oid, String),
    challenger: Challenger,
) -> Result<Attempt> {
    let champion_version = basis.deployed.then_some(basis.version);
    let champion_eval = challenger
        .champion
        .as_ref()
        .map(|r| r.as_ref().map_err(String::as_str));
    let parsed = challenger.options;
    let (deploy, reason) = decide(
        parsed.deploy,
        parsed.metric,
        challenger.outcome.metrics.as_ref(),
        champion_version.zip(champion_eval),
    );
    let stored = insert_version(
        name,
        challenger.source,
        &challenger.spec,
        &author.1,
        challenger.outcome,
        challenger.profile,
        parsed,
        DeployDecision::Decided {
            deploy,
            reason,
            champion: champion_version,
        },
    )?;
    Ok(Attempt {
        version: stored.version,
        deployed: stored.deployed,
        reason: stored.reason,
        rows_read: challenger.rows_read,
        metrics: challenger.outcome.metrics_json(parsed),
        champion_version,
        champion_metrics: champion_json(challenger.champion),
    })
}

/// The stored options of a log model's spec with `overrides` merged in (top-level keys replace).
fn log_options_of(spec: &Value, overrides: &Value) -> Result<Value> {
    let mut options = match spec.get("options") {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    match overrides {
        Value::Null => {}
        Value::Object(map) => options.extend(map.clone()),
        other => {
            return Err(EngineError::invalid_parameter(format!(
                "options must be a JSON object, not {other}"
            )))
        }
    }
    Ok(Value::Object(options))
}

/// A retrain of a model trained from a log: the same log and options as of now (the cut-offs
/// roll forward), the serving version scored on the new backtest window.
fn attempt_from_log(
    name: &str,
    basis: &Basis,
    author: &(pg_sys::Oid, String),
    overrides: &Value,
) -> Result<Attempt> {
    let spec = LogSpec::from_stored(&basis.spec, &basis.row.label())?;
    let options = log_options_of(&basis.spec, overrides)?;
    let champion = serving_model(basis)?;
    let as_of = now();
    let trained = as_spec_author(author.0, || {
        fit_log(&spec, as_of, &options, champion.as_deref())
    })?;
    let challenger = Challenger {
        source: &spec.log,
        spec: spec.to_json(trained.qualified_log(), &trained.as_of(), &options),
        outcome: &trained.outcome,
        profile: &trained.profile,
        options: &trained.options,
        champion: &trained.champion,
        rows_read: trained.rows_read(),
    };
    store_challenger(name, basis, author, challenger)
}

/// The serving version's metrics as stored with a run, or why it could not be scored.
fn champion_json(champion: &Option<std::result::Result<HoldoutMetrics, String>>) -> Option<Value> {
    match champion {
        Some(Ok(m)) => {
            let mut obj = metrics_object(m);
            obj.insert("n".into(), serde_json::json!(m.n));
            Some(Value::Object(obj))
        }
        Some(Err(why)) => Some(serde_json::json!({ "error": why })),
        None => None,
    }
}

// pgrx reads the output column names from this signature, so the row type cannot be an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn retrain(
    name: Option<&str>,
    options: default!(Option<super::args::JsonOptions>, "'{}'"),
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(version, Option<i32>),
        name!(deployed, bool),
        name!(decision, String),
        name!(reason, String),
        name!(metrics, Option<JsonB>),
        name!(champion_version, Option<i32>),
        name!(champion_metrics, Option<JsonB>),
    ),
> {
    let started = now();
    let name = required(name, "model name").or_raise();
    check_model_name(name).or_raise();
    store::check_writable("retrain").or_raise();
    let overrides = super::args::options_of(options).or_raise();
    // An engine error is raised inside the subtransaction too, so it is rolled back like any
    // other failure (a half-done store must not survive).
    // A model that does not exist is the caller's error, not a run to record.
    store::check_visible(name).or_raise();
    // One retrain of a model at a time; deploy and train take the model's own lock only while
    // they write, so an emergency rollback never waits behind a long retrain.
    Spi::connect_mut(|client| store::lock_retrain(client, name));
    let basis = basis(name).or_raise();
    // Who may re-run the spec is the caller's error, not a run to record.
    let author = spec_author(name, basis.author).or_raise();
    let result = run_in_subtransaction(|| attempt(name, &basis, &author, &overrides).or_raise());
    let row = match result {
        Ok(a) => {
            let decision = if a.deployed {
                "deployed"
            } else {
                "not_deployed"
            };
            record_run(&RunRecord {
                model: name,
                version: Some(a.version),
                kind: "retrain",
                started,
                rows_read: Some(a.rows_read as i64),
                metrics: Some(a.metrics.clone()),
                champion_version: a.champion_version,
                champion_metrics: a.champion_metrics.clone(),
                decision,
                reason: Some(a.reason.clone()),
                error: None,
            });
            (
                name.to_string(),
                Some(a.version),
                a.deployed,
                decision.to_string(),
                a.reason,
                Some(JsonB(a.metrics)),
                a.champion_version,
                a.champion_metrics.map(JsonB),
            )
        }
        Err(caught) => failed(
            name,
            started,
            basis.deployed.then_some(basis.version),
            caught.sqlstate,
            caught.message,
        ),
    };
    TableIterator::once(row)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.retrain(text, jsonb) IS
    'Re-runs the serving version''s training spec on today''s data; deploys the new version only if at least as good on the same holdout (champion/challenger), options override the spec (e.g. {"deploy": "always"}); records every run, failed ones too, in customer_value.training_runs';
"#,
    name = "retrain_comment",
    requires = [retrain]
);

extension_sql!(
    r#"
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

COMMENT ON FUNCTION customer_value.unschedule_retraining(text) IS
    'Removes the pg_cron job that retrains the model';
"#,
    name = "unschedule_retraining_sql",
    requires = ["schema"]
);

// Scheduled retraining with pg_cron (optional: these functions look for it when called). The job
// runs `retrain` as the role that scheduled it, in this database; `retrain` then runs the spec as
// its author, so scheduling is refused up front to anyone who could not retrain by hand.
extension_sql!(
    r#"
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

COMMENT ON FUNCTION customer_value.schedule_retraining(text, text, jsonb) IS
    'Schedules customer_value.retrain(name, options) with pg_cron on a cron schedule (e.g. ''0 3 * * *''); the job is named customer_value.retrain:<name>, runs as the caller, and replaces an earlier schedule of that model; returns the pg_cron job id';
"#,
    name = "schedule_retraining_sql",
    requires = ["schema"]
);

type RetrainRow = (
    String,
    Option<i32>,
    bool,
    String,
    String,
    Option<JsonB>,
    Option<i32>,
    Option<JsonB>,
);

/// Records a failed attempt (already rolled back) and reports it.
fn failed(
    name: &str,
    started: pgrx::datum::TimestampWithTimeZone,
    champion_version: Option<i32>,
    sqlstate: String,
    message: String,
) -> RetrainRow {
    pgrx::warning!("retraining model \"{name}\" failed ({sqlstate}): {message}; the serving version is unchanged");
    record_run(&RunRecord {
        model: name,
        version: None,
        kind: "retrain",
        started,
        rows_read: None,
        metrics: None,
        champion_version,
        champion_metrics: None,
        decision: "failed",
        reason: Some(message.clone()),
        error: Some((sqlstate, message.clone())),
    });
    (
        name.to_string(),
        None,
        false,
        "failed".to_string(),
        message,
        None,
        None,
        None,
    )
}
