//! The model store (`customer_value.models`): finding a model by name, `name@version` or id,
//! loading its decoded form through the backend cache, and writing a new version.

use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::Value;

use crate::engine::champion::decide_values;
use crate::engine::codec::ModelArtifact;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::schema_json;
use crate::engine::options::TrainOptions;
use crate::engine::train::TrainOutcome;

use super::cache;
use super::citus::store_location;
use super::errors::OrRaise;

/// One row of `customer_value.models`, enough to load and to name it in messages.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub id: i64,
    pub name: String,
    pub version: i32,
    /// Identifies this physical row version (`xmin` and `ctid`): changes whenever the row is
    /// rewritten, even within one transaction, so the cache can never serve stale bytes.
    pub row_version: String,
}

impl ModelRow {
    pub fn label(&self) -> String {
        format!("model \"{}\" version {}", self.name, self.version)
    }
}

/// Serialises changes to the versions of `name` until the end of the transaction: concurrent
/// trainings get distinct version numbers, and deployment flips stay consistent.
pub fn lock_name(client: &mut SpiClient<'_>, name: &str) {
    client
        .update(
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('customer_value.models:' || $1))",
            None,
            &[name.into()],
        )
        .or_raise();
}

/// Serialises retrains of `name` until the end of the transaction (a lock of its own: deploys
/// and trainings of the name do not wait for it).
pub fn lock_retrain(client: &mut SpiClient<'_>, name: &str) {
    client
        .update(
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('customer_value.retrain:' || $1))",
            None,
            &[name.into()],
        )
        .or_raise();
}

/// Refuses up front a call that would write the store where it cannot be written: on a hot
/// standby (25006, instead of failing at the first write after minutes of work) or on a
/// Citus worker (the coordinator writes the store).
pub fn check_writable(what: &str) -> Result<()> {
    check_not_standby(what)?;
    super::citus::require_coordinator(what)
}

/// Refuses (25006) a call that writes when this server is a hot standby.
pub fn check_not_standby(what: &str) -> Result<()> {
    // SAFETY: RecoveryInProgress reads shared memory state; no preconditions.
    if unsafe { pgrx::pg_sys::RecoveryInProgress() } {
        return Err(EngineError::new(
            ErrorKind::ReadOnly,
            format!("cannot run {what} on a hot standby"),
        )
        .with_detail("It writes to the database; a standby is read-only.")
        .with_hint("Run it on the primary; the standby scores with the models it replicates."));
    }
    Ok(())
}

/// The roles `name` is restricted to (`customer_value.model_access`), as text for a
/// `regrole[]` parameter — by name, so that on Citus each node stores its own id of each role;
/// None when the model is open to every reader. Read as the store's owner.
pub fn allowed_roles(client: &SpiClient<'_>, name: &str) -> Option<String> {
    client
        .select(
            "SELECT pg_catalog.array_agg(a.role ORDER BY a.role)::text
               FROM customer_value.model_access a WHERE a.name = $1",
            Some(1),
            &[name.into()],
        )
        .or_raise()
        .first()
        .get_one::<String>()
        .or_raise()
}

/// Splits `name@version`; a bare name means the deployed version.
pub fn parse_spec(spec: &str) -> Result<(String, Option<i32>)> {
    match spec.rsplit_once('@') {
        None => Ok((spec.to_string(), None)),
        Some((name, version)) => {
            let v = version.parse::<i32>().ok().filter(|v| *v >= 1).ok_or_else(|| {
                EngineError::invalid_parameter(format!(
                    "invalid model reference \"{spec}\": the version after '@' must be a positive integer"
                ))
            })?;
            Ok((name.to_string(), Some(v)))
        }
    }
}

const ROW_COLUMNS: &str = "id, name, version, xmin::text || '/' || ctid::text";

fn read_row(
    client: &SpiClient<'_>,
    query: &str,
    args: Vec<pgrx::datum::DatumWithOid<'_>>,
) -> Option<ModelRow> {
    let table = client.select(query, Some(1), &args).or_raise();
    let row = table.into_iter().next()?;
    Some(ModelRow {
        id: row.get::<i64>(1).or_raise()?,
        name: row.get::<String>(2).or_raise()?,
        version: row.get::<i32>(3).or_raise()?,
        row_version: row.get::<String>(4).or_raise()?,
    })
}

fn existing_names(client: &SpiClient<'_>) -> Vec<String> {
    let models = store_location();
    let table = client
        .select(
            &format!(
                "SELECT DISTINCT name FROM {} ORDER BY name LIMIT 20",
                models.models()
            ),
            None,
            &[],
        )
        .or_raise();
    table
        .into_iter()
        .filter_map(|r| r.get::<String>(1).ok().flatten())
        .collect()
}

fn no_such_model(client: &SpiClient<'_>, name: &str) -> EngineError {
    if store_location().undistributed_worker() {
        return super::citus::not_distributed(name);
    }
    let names = existing_names(client);
    let err = EngineError::new(
        ErrorKind::UndefinedObject,
        format!("model \"{name}\" does not exist"),
    );
    if names.is_empty() {
        err.with_hint("No model has been trained yet; train one with customer_value.train(...).")
    } else {
        err.with_hint(format!("Existing models: {}.", names.join(", ")))
    }
}

/// Resolves `name` (deployed version) or `name@version`.
pub fn resolve(spec: &str) -> Result<ModelRow> {
    let (name, version) = parse_spec(spec)?;
    let models = store_location();
    let models = models.models();
    Spi::connect(|client| {
        let found = match version {
            Some(v) => read_row(
                client,
                &format!("SELECT {ROW_COLUMNS} FROM {models} WHERE name = $1 AND version = $2"),
                vec![name.as_str().into(), v.into()],
            ),
            None => read_row(
                client,
                &format!("SELECT {ROW_COLUMNS} FROM {models} WHERE name = $1 AND deployed"),
                vec![name.as_str().into()],
            ),
        };
        if let Some(row) = found {
            return Ok(row);
        }
        let versions: Option<i64> = client
            .select(
                &format!("SELECT count(*) FROM {models} WHERE name = $1"),
                None,
                &[name.as_str().into()],
            )
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise();
        match (versions.unwrap_or(0), version) {
            (0, _) => Err(no_such_model(client, &name)),
            (n, Some(v)) => Err(EngineError::new(
                ErrorKind::UndefinedObject,
                format!("model \"{name}\" has no version {v}"),
            )
            .with_hint(format!("It has {n} version(s); see customer_value.model_summary."))),
            (_, None) => Err(EngineError::new(
                ErrorKind::UndefinedObject,
                format!("model \"{name}\" has no deployed version"),
            )
            .with_hint(format!(
                "Deploy one with customer_value.deploy('{name}', <version>), or name a version as '{name}@<version>'."
            ))),
        }
    })
}

/// Resolves a model by its immutable id.
pub fn resolve_id(id: i64) -> Result<ModelRow> {
    let models = store_location();
    Spi::connect(|client| {
        read_row(
            client,
            &format!(
                "SELECT {ROW_COLUMNS} FROM {} WHERE id = $1",
                models.models()
            ),
            vec![id.into()],
        )
        .ok_or_else(|| {
            if models.undistributed_worker() {
                return super::citus::not_distributed(&format!("id {id}"));
            }
            EngineError::new(
                ErrorKind::UndefinedObject,
                format!("model id {id} does not exist"),
            )
        })
    })
}

/// The model `customer_value(row)` uses without a model argument: `customer_value.model` if
/// set, else the only deployed model.
pub fn resolve_default() -> Result<ModelRow> {
    if let Some(spec) = super::guc::default_model() {
        return resolve(&spec);
    }
    let models = store_location();
    let deployed: Vec<String> = Spi::connect(|client| {
        client
            .select(
                &format!(
                    "SELECT name FROM {} WHERE deployed ORDER BY name",
                    models.models()
                ),
                None,
                &[],
            )
            .or_raise()
            .filter_map(|r| r.get::<String>(1).ok().flatten())
            .collect()
    });
    match deployed.as_slice() {
        [] => Err(EngineError::new(ErrorKind::UndefinedObject, "no model is deployed")
            .with_hint("Train one with customer_value.train(...), or name a model as the second argument.")),
        [only] => resolve(only),
        many => Err(EngineError::invalid_parameter(format!(
            "no model named and {} models are deployed: {}",
            many.len(),
            many.join(", ")
        ))
        .with_hint(format!(
            "Name the model as the second argument, e.g. customer_value(c, '{}'), or SET customer_value.model = '{}'.",
            many[0], many[0]
        ))),
    }
}

/// The decoded model for `row`, from the backend cache or decoded now.
pub fn load(row: &ModelRow) -> Result<Rc<ModelArtifact>> {
    if let Some(model) = cache::get(row.id, &row.row_version) {
        return Ok(model);
    }
    // A read-only SELECT through `client.select`: `Spi::get_one*` would mark the transaction
    // mutable (assign an xid), which a parallel worker must never do.
    let models = store_location();
    let bytes: Vec<u8> = Spi::connect(|client| {
        client
            .select(
                &format!("SELECT model FROM {} WHERE id = $1", models.models()),
                Some(1),
                &[row.id.into()],
            )
            .or_raise()
            .next()
            .and_then(|r| r.get::<Vec<u8>>(1).or_raise())
    })
    .ok_or_else(|| {
        EngineError::new(
            ErrorKind::UndefinedObject,
            format!("{} has no model bytes", row.label()),
        )
    })?;
    let model = ModelArtifact::decode(&bytes).map_err(|mut e| {
        e.message = format!("{} cannot be loaded: {}", row.label(), e.message);
        if e.kind == ErrorKind::DataCorrupted && e.hint.is_none() {
            e.hint = Some(format!(
                "The stored bytes were damaged; deploy another version with customer_value.deploy('{}', <version>) or retrain.",
                row.name
            ));
        }
        e
    })?;
    let model = Rc::new(model);
    cache::put(row.id, &row.row_version, Rc::clone(&model));
    Ok(model)
}

/// Versions of `name` the caller can see, and versions that exist (counted as the store's
/// owner): fewer visible than existing means the model is restricted from the caller.
fn visible_and_existing(name: &str) -> (i64, i64) {
    let count = || {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT count(*) FROM customer_value.models WHERE name = $1",
                    None,
                    &[name.into()],
                )
                .or_raise()
                .first()
                .get_one::<i64>()
                .or_raise()
                .unwrap_or(0)
        })
    };
    let visible = count();
    let existing = super::privilege::as_extension_owner(count);
    (visible, existing)
}

/// Whether the caller can see `name`: a model restricted from the caller is reported exactly
/// as one that does not exist (42704, the same message and hint), so nobody outside its list
/// learns that it exists. Returns whether the model exists (and is visible).
pub fn check_visible(name: &str) -> Result<bool> {
    let (visible, existing) = visible_and_existing(name);
    if existing > visible {
        return Err(Spi::connect(|client| no_such_model(client, name)));
    }
    Ok(existing > 0)
}

/// Refuses (42501) to add a version to `name` when the name belongs to a model restricted from
/// the caller (a name is one namespace: this alone tells that such a model exists, as
/// CREATE TABLE does for a table one cannot read). Returns whether the model exists.
pub fn check_trainable(name: &str) -> Result<bool> {
    let (visible, existing) = visible_and_existing(name);
    if existing > visible {
        return Err(EngineError::new(
            ErrorKind::InsufficientPrivilege,
            format!("permission denied to train model \"{name}\""),
        )
        .with_detail(
            "The name belongs to a model restricted to other roles (customer_value.model_access).",
        )
        .with_hint("Choose another model name."));
    }
    Ok(existing > 0)
}

/// How [`insert_version`] decides whether the new version is deployed.
pub(crate) enum DeployDecision {
    /// `train`: by the deploy option, comparing holdout metrics with the serving version's.
    VersusServing,
    /// `retrain`: already decided on a common holdout against `champion` (the version that
    /// was serving when the retrain started). Not deployed over a version deployed meanwhile
    /// (e.g. an emergency rollback, which never waits for a retrain).
    Decided {
        deploy: bool,
        reason: String,
        champion: Option<i32>,
    },
}

pub(crate) struct Stored {
    pub id: i64,
    pub version: i32,
    pub deployed: bool,
    pub reason: String,
    pub serving_version: Option<i32>,
}

/// Stores `outcome` as the next version of `name`, deciding deployment under a per-name lock so
/// concurrent trainings of one name get distinct versions and one deployed row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_version(
    name: &str,
    source: &str,
    spec: &Value,
    author: &str,
    outcome: &TrainOutcome,
    profile: &Value,
    options: &TrainOptions,
    decision: DeployDecision,
) -> Result<Stored> {
    let bytes = outcome.artifact.encode()?;
    let metrics = outcome.metrics_json(options);
    // who trains, read before acting as the store's owner below
    let trained_by = super::privilege::caller_name();
    check_trainable(name)?;
    // Version numbering, the serving version and the writes all see the whole store (as its
    // owner): a caller's row-level view must not make two versions collide.
    super::privilege::as_extension_owner(|| {
        Spi::connect_mut(|client| {
            lock_name(client, name);
            let version = next_version(client, name);
            let serving = serving_version(client, name);
            let (deploy, reason) = deploy_decision(decision, &serving, outcome, options);
            if !deploy {
                pgrx::notice!("model \"{name}\" version {version} is not deployed: {reason}");
            }
            if deploy {
                client
                    .update(
                        "UPDATE customer_value.models SET deployed = false WHERE name = $1 AND deployed",
                        None,
                        &[name.into()],
                    )
                    .or_raise();
            }
            let row = NewVersion {
                name,
                version,
                source,
                spec,
                author,
                artifact: &outcome.artifact,
                bytes,
                metrics,
                profile,
                trained_by: &trained_by,
                deploy,
            };
            let id = insert_row(client, &row);
            super::narrow::models_changed();
            Ok(Stored {
                id,
                version,
                deployed: deploy,
                reason,
                serving_version: serving.0,
            })
        })
    })
}

fn next_version(client: &SpiClient<'_>, name: &str) -> i32 {
    client
        .select(
            "SELECT coalesce(max(version), 0) + 1 FROM customer_value.models WHERE name = $1",
            None,
            &[name.into()],
        )
        .or_raise()
        .first()
        .get_one::<i32>()
        .or_raise()
        .unwrap_or(1)
}

/// The deployed version of `name` and its metrics, if one is deployed.
fn serving_version(client: &SpiClient<'_>, name: &str) -> (Option<i32>, Option<Value>) {
    client
        .select(
            "SELECT version, metrics FROM customer_value.models WHERE name = $1 AND deployed",
            None,
            &[name.into()],
        )
        .or_raise()
        .next()
        .map(|row| {
            (
                row.get::<i32>(1).or_raise(),
                row.get::<JsonB>(2).or_raise().map(|j| j.0),
            )
        })
        .unwrap_or((None, None))
}

/// Whether the new version is deployed, and why (the engine compares the metrics).
fn deploy_decision(
    decision: DeployDecision,
    serving: &(Option<i32>, Option<Value>),
    outcome: &TrainOutcome,
    options: &TrainOptions,
) -> (bool, String) {
    let version_text =
        |v: Option<i32>| v.map_or("no version".to_string(), |v| format!("version {v}"));
    match decision {
        DeployDecision::Decided {
            deploy,
            reason,
            champion,
        } => {
            if deploy && serving.0 != champion {
                (
                    false,
                    format!(
                        "{} was deployed while this retrain ran; it is kept (the retrain had compared with {})",
                        version_text(serving.0),
                        version_text(champion)
                    ),
                )
            } else {
                (deploy, reason)
            }
        }
        DeployDecision::VersusServing => {
            let metric = options.metric;
            let old_value = serving
                .1
                .as_ref()
                .and_then(|m| m.get(metric.key()))
                .and_then(Value::as_f64);
            decide_values(
                options.deploy,
                metric,
                outcome
                    .metrics
                    .as_ref()
                    .and_then(|m| m.get(metric).map(|v| (v, m.n))),
                serving.0.map(|version| (version, Ok(old_value))),
                "(each on its own holdout)",
            )
        }
    }
}

/// A version's row as written to `customer_value.models`.
struct NewVersion<'a> {
    name: &'a str,
    version: i32,
    source: &'a str,
    spec: &'a Value,
    author: &'a str,
    artifact: &'a ModelArtifact,
    bytes: Vec<u8>,
    metrics: Value,
    profile: &'a Value,
    trained_by: &'a str,
    deploy: bool,
}

fn insert_row(client: &mut SpiClient<'_>, row: &NewVersion<'_>) -> i64 {
    let a = row.artifact;
    client
        .update(
            "INSERT INTO customer_value.models
               (name, version, algorithm, task, target, source, features, options, metrics,
                tiers, model, deployed, spec, trained_by, profile, author, allowed_roles)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                     $16::pg_catalog.regrole, $17::pg_catalog.regrole[])
             RETURNING id",
            None,
            &[
                row.name.into(),
                row.version.into(),
                a.algorithm.name().into(),
                a.task.name().into(),
                a.target.clone().into(),
                row.source.into(),
                JsonB(schema_json(&a.features)).into(),
                JsonB(row.spec.get("options").cloned().unwrap_or(Value::Null)).into(),
                JsonB(row.metrics.clone()).into(),
                JsonB(a.tiers.to_json()).into(),
                row.bytes.clone().into(),
                row.deploy.into(),
                JsonB(row.spec.clone()).into(),
                row.trained_by.into(),
                JsonB(row.profile.clone()).into(),
                row.author.into(),
                allowed_roles(client, row.name).into(),
            ],
        )
        .or_raise()
        .first()
        .get_one::<i64>()
        .or_raise()
        .unwrap_or(0)
}
