//! `customer_value.train(name, source, target, algorithm, options)`: read the source through an
//! SPI cursor in bounded batches, train with the engine, store a new version and deploy it when
//! it is at least as good as the serving one. Everything happens in the caller's transaction, so
//! a failed or cancelled training leaves no partial rows and the previous version serving.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal};
use pgrx::JsonB;
use serde_json::Value;

use crate::engine::champion::{decide_values, score_champion};
use crate::engine::clv::data::Customer;
use crate::engine::codec::{ModelArtifact, Task};
use crate::engine::drift::{BinProfile, TrainingProfile};
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{Encoding, FeatureSpec, RawTable, SqlType, MAX_CATEGORIES};

/// Most classes of a text target.
const MAX_CLASSES: usize = 50;
use crate::engine::metrics::HoldoutMetrics;
use crate::engine::models::Algorithm;
use crate::engine::options::TrainOptions;
use crate::engine::train::{features_json, train as train_model, train_clv, TrainOutcome};

use super::errors::{raise, OrRaise};
use super::progress::Progress;
use super::source::{
    missing_column, resolve_source, sampled, scan_columns, source_columns, Source,
};
use super::store;
use super::types::sql_type_of;

/// Picks the feature columns: `options->'features'` exactly, or every column but the target,
/// the primary key and `options->'exclude'`.
fn choose_features(
    columns: &[(String, pg_sys::Oid)],
    target: &str,
    source: &Source,
    options: &TrainOptions,
) -> Result<Vec<(String, SqlType)>> {
    let type_of = |name: &str| {
        columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| sql_type_of(*t))
    };
    for name in &options.exclude {
        if type_of(name).is_none() {
            return Err(missing_column("excluded", name, columns));
        }
    }
    let names: Vec<String> = match &options.features {
        Some(features) => {
            for (i, name) in features.iter().enumerate() {
                if type_of(name).is_none() {
                    return Err(missing_column("feature", name, columns));
                }
                if name == target {
                    return Err(EngineError::invalid_parameter(format!(
                        "the target column \"{target}\" cannot also be a feature"
                    )));
                }
                if features[..i].contains(name) {
                    return Err(EngineError::invalid_parameter(format!(
                        "feature column \"{name}\" is listed twice"
                    )));
                }
            }
            features.clone()
        }
        None => columns
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                n != target && !source.primary_key.contains(n) && !options.exclude.contains(n)
            })
            .collect(),
    };
    Ok(names
        .into_iter()
        .map(|n| {
            let t = type_of(&n).unwrap_or(SqlType::Other("unknown".into()));
            (n, t)
        })
        .collect())
}

pub(crate) fn as_float8(column: &str, sql_type: &SqlType) -> String {
    let quoted = quote_identifier(column);
    if *sql_type == SqlType::Boolean {
        format!("({quoted})::int::float8")
    } else if sql_type.is_time() {
        // days since 1970-01-01, as scoring reads a date or timestamp
        format!("(pg_catalog.date_part('epoch', {quoted}) / 86400)::float8")
    } else {
        format!("({quoted})::float8")
    }
}

fn text_array(values: &[String]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(String::as_str)
        .map(quote_literal)
        .collect();
    format!("ARRAY[{}]::text[]", items.join(", "))
}

/// A text column as the 1-based code of its category (NULL for NULL and other values).
pub(crate) fn category_code(column: &str, categories: &[String]) -> String {
    format!(
        "pg_catalog.array_position({}, ({})::text)::float8",
        text_array(categories),
        quote_identifier(column)
    )
}

/// The feature's encoded value in SQL, as scoring computes it (NULL kept where the model
/// imputes), for reading a serving model's inputs from today's data.
pub(crate) fn encoded_value_sql(feature: &FeatureSpec, sql_type: &SqlType) -> String {
    let column = quote_identifier(feature.column());
    match &feature.encoding {
        Encoding::Indicator {
            category,
            known,
            share,
            ..
        } => format!(
            "(CASE WHEN ({column})::text = {} THEN 1 WHEN ({column})::text = ANY ({}) THEN 0 ELSE {share:?} END)::float8",
            quote_literal(category),
            text_array(known)
        ),
        Encoding::TargetMean {
            categories,
            means,
            fallback,
        } => {
            let means: Vec<String> = means.iter().map(|m| format!("{m:?}")).collect();
            format!(
                "coalesce((ARRAY[{}]::float8[])[pg_catalog.array_position({}, ({column})::text)], {fallback:?})",
                means.join(", "),
                text_array(categories)
            )
        }
        Encoding::DaysBefore { as_of } => format!(
            "({as_of:?} - pg_catalog.date_part('epoch', {column}) / 86400)::float8"
        ),
        Encoding::Number | Encoding::Boolean => as_float8(feature.column(), sql_type),
    }
}

/// The most frequent values of text column `column` (at most MAX_CATEGORIES), most frequent
/// first (ties by value, so the order is stable).
fn categories_of(source: &Source, column: &str) -> Vec<String> {
    let query = format!(
        "SELECT v FROM (SELECT ({col})::text AS v FROM {from}) s WHERE v IS NOT NULL
          GROUP BY v ORDER BY count(*) DESC, v LIMIT {limit}",
        col = quote_identifier(column),
        from = source.from_clause,
        limit = MAX_CATEGORIES
    );
    Spi::connect(|client| {
        client
            .select(&query, None, &[])
            .or_raise()
            .filter_map(|r| r.get::<String>(1).ok().flatten())
            .collect()
    })
}

/// The reference time of date features, in days since 1970-01-01: `options->>'as_of'`, else now.
fn as_of_days(as_of: Option<&str>) -> Result<f64> {
    // Postgres parses the text (every date/time format it knows); a bad one is caught in a
    // subtransaction and reported as this option's error
    let days: Option<f64> = super::subxact::run_in_subtransaction(|| {
        Spi::connect(|client| {
            let (query, args): (&str, Vec<pgrx::datum::DatumWithOid>) = match as_of {
                Some(text) => (
                    "SELECT (pg_catalog.date_part('epoch', $1::timestamptz) / 86400)::float8",
                    vec![text.into()],
                ),
                None => (
                    "SELECT (pg_catalog.date_part('epoch', pg_catalog.now()) / 86400)::float8",
                    vec![],
                ),
            };
            client
                .select(query, Some(1), &args)
                .map(|t| t.first().get_one::<f64>().ok().flatten())
                .ok()
                .flatten()
        })
    })
    .ok()
    .flatten();
    days.filter(|d| d.is_finite()).ok_or_else(|| {
        EngineError::invalid_parameter(format!(
            "option \"as_of\" must be a date or timestamp, got \"{}\"",
            as_of.unwrap_or("")
        ))
    })
}

/// Reads target and features into a [`RawTable`], plus the `extra` columns (the serving
/// model's inputs, for champion/challenger) of every row whose target is not NULL — the rows
/// the dataset keeps, in the same order.
fn read_table(
    source: &Source,
    target: (&str, String),
    features: Vec<(String, SqlType)>,
    extra: &[String],
    options: &TrainOptions,
) -> Result<(RawTable, Vec<Vec<Option<f64>>>)> {
    let (target, target_select) = target;
    let mut select: Vec<String> = vec![target_select];
    let mut categories = Vec::new();
    let mut has_dates = false;
    for (j, (name, sql_type)) in features.iter().enumerate() {
        if *sql_type == SqlType::Text {
            let cats = categories_of(source, name);
            select.push(category_code(name, &cats));
            categories.push((j, cats));
        } else {
            has_dates |= sql_type.is_time();
            select.push(as_float8(name, sql_type));
        }
    }
    select.extend(extra.iter().cloned());
    let n_features = features.len();
    let mut table = RawTable::new(target, features)?;
    for (j, cats) in categories {
        table.set_categories(j, cats);
    }
    table.set_max_one_hot(options.max_one_hot);
    table.set_imputation(options.impute.clone())?;
    if has_dates || options.as_of.is_some() {
        table.set_as_of(as_of_days(options.as_of.as_deref())?);
    }
    let mut extra_rows = Vec::new();
    let mut progress = Progress::new("reading");
    scan_columns(&source.from_clause, &select, &mut |values| {
        progress.tick(table.n_rows() + 1);
        if !extra.is_empty() && values[0].is_some() {
            extra_rows.push(values[1 + n_features..].to_vec());
        }
        table.push_row(&values[1..1 + n_features], values[0])
    })?;
    Ok((table, extra_rows))
}

/// An RFM summary as read: feature specs, customers, the target column's values if any, and
/// the extra columns of every row.
type RfmRead = (
    Vec<FeatureSpec>,
    Vec<Customer>,
    Option<Vec<Option<f64>>>,
    Vec<Vec<Option<f64>>>,
);

/// Reads an RFM summary for the CLV models: the columns `options->'columns'` names (frequency,
/// recency, t and for spend models monetary_value), and the target if one is given.
fn read_rfm(
    source: &Source,
    columns: &[(String, pg_sys::Oid)],
    algorithm: Algorithm,
    target: Option<&str>,
    options: &TrainOptions,
    extra: &[String],
) -> Result<RfmRead> {
    let c = &options.clv.columns;
    let mut roles: Vec<&str> = vec![&c.frequency, &c.recency, &c.t];
    if matches!(algorithm, Algorithm::GammaGamma | Algorithm::Clv) {
        roles.push(&c.monetary_value);
    }
    let mut specs = Vec::new();
    for name in roles.iter().copied().chain(c.count.as_deref()) {
        let Some((_, oid)) = columns.iter().find(|(n, _)| n == name) else {
            return Err(missing_column("RFM", name, columns).with_hint(
                "The CLV models read frequency, recency, t (and monetary_value) as customer_value.rfm() returns them; map other names with options => '{\"columns\": {\"frequency\": \"x\", …}}'.",
            ));
        };
        let sql_type = sql_type_of(*oid);
        if !sql_type.is_number() {
            return Err(EngineError::new(
                ErrorKind::DatatypeMismatch,
                format!(
                    "RFM column \"{name}\" has type {}; it must be numeric",
                    sql_type.sql_name()
                ),
            ));
        }
        if Some(name) != c.count.as_deref() {
            specs.push(FeatureSpec {
                name: name.to_string(),
                sql_type: sql_type.sql_name().to_string(),
                encoding: Encoding::Number,
                impute: None,
            });
        }
    }
    let grouped = read_grouped(source, options, target)?;
    let mut select: Vec<String> = roles
        .iter()
        .map(|n| format!("({})::float8", quote_identifier(n)))
        .collect();
    let count_expr = match &c.count {
        Some(column) => format!("({})::float8", quote_identifier(column)),
        None => "1::float8".to_string(),
    };
    let from = if grouped {
        // one row per distinct summary with its count; on Citus the grouping runs on the
        // workers and only the distinct summaries reach the coordinator
        let keys: Vec<String> = (1..=select.len()).map(|i| i.to_string()).collect();
        let inner = format!(
            "SELECT {}, pg_catalog.sum({count_expr})::float8 AS cv_count FROM {} GROUP BY {}",
            select.join(", "),
            source.from_clause,
            keys.join(", ")
        );
        select = (1..=roles.len())
            .map(|i| format!("cv_grouped.c{i}"))
            .collect();
        let aliases: Vec<String> = (1..=roles.len()).map(|i| format!("c{i}")).collect();
        select.push("cv_grouped.cv_count".into());
        format!("({inner}) AS cv_grouped ({}, cv_count)", aliases.join(", "))
    } else {
        select.push(count_expr);
        source.from_clause.clone()
    };
    let count_at = roles.len();
    if let Some(t) = target {
        select.push(format!("({})::float8", quote_identifier(t)));
    }
    let first_extra = select.len();
    let extra: &[String] = if grouped { &[] } else { extra };
    select.extend(extra.iter().cloned());
    let mut extra_rows = Vec::new();
    let mut customers = Vec::new();
    let mut actual: Vec<Option<f64>> = Vec::new();
    let mut row = 0usize;
    scan_columns(&from, &select, &mut |values| {
        row += 1;
        for (i, v) in values[..=count_at].iter().enumerate() {
            let column = roles
                .get(i)
                .copied()
                .or(c.count.as_deref())
                .unwrap_or("count");
            match v {
                None => {
                    return Err(EngineError::new(
                        ErrorKind::NullValue,
                        format!("RFM column \"{column}\" is NULL in row {row} of the source"),
                    ))
                }
                Some(v) if !v.is_finite() => {
                    return Err(EngineError::new(
                        ErrorKind::NonFiniteValue,
                        format!("RFM column \"{column}\" holds {v} in row {row} of the source"),
                    ))
                }
                _ => {}
            }
        }
        let get = |i: usize| values[i].unwrap_or(0.0);
        customers.push(Customer {
            count: get(count_at),
            ..Customer::one(
                get(0),
                get(1),
                get(2),
                if roles.len() > 3 { get(3) } else { 0.0 },
            )
        });
        if !extra.is_empty() {
            extra_rows.push(values[first_extra..].to_vec());
        }
        if target.is_some() {
            let v = values[count_at + 1];
            if let Some(v) = v {
                if !v.is_finite() {
                    return Err(EngineError::new(
                        ErrorKind::NonFiniteValue,
                        format!("target column holds {v} in row {row} of the source"),
                    ));
                }
            }
            actual.push(v);
        }
        Ok(())
    })?;
    Ok((specs, customers, target.map(|_| actual), extra_rows))
}

/// Whether to read the RFM summary grouped (see [`read_rfm`]): as the `group` option says,
/// by default when the source is a Citus distributed table. A target (evaluation compares
/// each customer's own value) or a count column is per row, so neither combines with it.
fn read_grouped(source: &Source, options: &TrainOptions, target: Option<&str>) -> Result<bool> {
    let refuse = |why: &str| {
        Err(EngineError::invalid_parameter(format!(
            "option \"group\" cannot be combined with {why}"
        ))
        .with_hint("Evaluate a grouped fit with customer_value.evaluate(...) on the per-customer table instead."))
    };
    if options.clv.columns.count.is_some() && target.is_some() {
        return refuse("a target column when the source has a count column");
    }
    match options.clv.group {
        Some(true) if target.is_some() => refuse("a target column"),
        Some(group) => Ok(group),
        None if target.is_some() => Ok(false),
        None => Ok(super::citus::is_distributed_relation(
            source.qualified_name.as_deref(),
        )),
    }
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.contains('@') || name.len() > 200 {
        return Err(EngineError::invalid_parameter(format!(
            "invalid model name \"{name}\""
        ))
        .with_detail("A model name is 1 to 200 characters and cannot contain '@' (used for name@version)."));
    }
    Ok(())
}

pub(crate) fn required<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str> {
    value.ok_or_else(|| EngineError::new(ErrorKind::NullValue, format!("{what} must not be NULL")))
}

/// How [`store`] decides whether the new version is deployed.
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

/// What a training run wrote and why: one row of `customer_value.training_runs`.
pub(crate) struct RunRecord<'a> {
    pub model: &'a str,
    pub version: Option<i32>,
    pub kind: &'static str,
    pub started: TimestampWithTimeZone,
    pub rows_read: Option<i64>,
    pub metrics: Option<Value>,
    pub champion_version: Option<i32>,
    pub champion_metrics: Option<Value>,
    pub decision: &'static str,
    pub reason: Option<String>,
    pub error: Option<(String, String)>,
}

pub(crate) fn now() -> TimestampWithTimeZone {
    Spi::connect(|client| {
        client
            .select("SELECT pg_catalog.clock_timestamp()", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<TimestampWithTimeZone>()
            .or_raise()
    })
    .unwrap_or_else(|| {
        raise(EngineError::new(
            ErrorKind::Internal,
            "clock_timestamp() is NULL",
        ))
    })
}

pub(crate) fn record_run(run: &RunRecord<'_>) {
    let (error, sqlstate) = match &run.error {
        Some((sqlstate, message)) => (Some(message.clone()), Some(sqlstate.clone())),
        None => (None, None),
    };
    super::privilege::as_extension_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "INSERT INTO customer_value.training_runs
                       (model, version, kind, started, finished, rows_read, metrics,
                        champion_version, champion_metrics, decision, reason, error, sqlstate, run_by,
                        allowed_roles)
                     VALUES ($1, $2, $3, $4, pg_catalog.clock_timestamp(), $5, $6, $7, $8, $9, $10, $11, $12, $13,
                             $14::pg_catalog.regrole[])",
                    None,
                    &[
                        run.model.into(),
                        run.version.into(),
                        run.kind.into(),
                        run.started.into(),
                        run.rows_read.into(),
                        run.metrics.clone().map(JsonB).into(),
                        run.champion_version.into(),
                        run.champion_metrics.clone().map(JsonB).into(),
                        run.decision.into(),
                        run.reason.clone().into(),
                        error.into(),
                        sqlstate.into(),
                        super::privilege::caller_name().into(),
                        store::allowed_roles(client, run.model).into(),
                    ],
                )
                .or_raise();
        })
    });
}

/// Stores `outcome` as the next version of `name`, deciding deployment under a per-name lock so
/// concurrent trainings of one name get distinct versions and one deployed row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store(
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
    let caller = super::privilege::caller_name();
    store::check_trainable(name)?;
    // Version numbering, the serving version and the writes all see the whole store (as its
    // owner): a caller's row-level view must not make two versions collide.
    super::privilege::as_extension_owner(|| {
        Spi::connect_mut(|client| {
            store::lock_name(client, name);
            let version: i32 = client
            .select(
                "SELECT coalesce(max(version), 0) + 1 FROM customer_value.models WHERE name = $1",
                None,
                &[name.into()],
            )
            .or_raise()
            .first()
            .get_one::<i32>()
            .or_raise()
            .unwrap_or(1);
            let serving: (Option<i32>, Option<JsonB>) = client
            .select(
                "SELECT version, metrics FROM customer_value.models WHERE name = $1 AND deployed",
                None,
                &[name.into()],
            )
            .or_raise()
            .next()
            .map(|row| (row.get::<i32>(1).or_raise(), row.get::<JsonB>(2).or_raise()))
            .unwrap_or((None, None));
            let metric = options.metric;
            let (deploy, reason) = match decision {
                DeployDecision::Decided {
                    deploy,
                    reason,
                    champion,
                } => {
                    if deploy && serving.0 != champion {
                        let now_serving = serving
                            .0
                            .map_or("no version".to_string(), |v| format!("version {v}"));
                        (
                            false,
                            format!(
                                "{now_serving} was deployed while this retrain ran; it is kept (the retrain had compared with {})",
                                champion.map_or("no version".to_string(), |v| format!("version {v}"))
                            ),
                        )
                    } else {
                        (deploy, reason)
                    }
                }
                DeployDecision::VersusServing => {
                    let old_value = serving
                        .1
                        .as_ref()
                        .and_then(|m| m.0.get(metric.key()))
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
            };
            if !deploy {
                pgrx::notice!("model \"{name}\" version {version} is not deployed: {reason}");
            }
            let a = &outcome.artifact;
            let id: i64 = {
                if deploy {
                    client
                    .update(
                        "UPDATE customer_value.models SET deployed = false WHERE name = $1 AND deployed",
                        None,
                        &[name.into()],
                    )
                    .or_raise();
                }
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
                            name.into(),
                            version.into(),
                            a.algorithm.name().into(),
                            a.task.name().into(),
                            a.target.clone().into(),
                            source.into(),
                            JsonB(features_json(&a.features)).into(),
                            JsonB(spec.get("options").cloned().unwrap_or(Value::Null)).into(),
                            JsonB(metrics).into(),
                            JsonB(a.tiers.to_json()).into(),
                            bytes.into(),
                            deploy.into(),
                            JsonB(spec.clone()).into(),
                            caller.as_str().into(),
                            JsonB(profile.clone()).into(),
                            author.into(),
                            store::allowed_roles(client, name).into(),
                        ],
                    )
                    .or_raise()
                    .first()
                    .get_one::<i64>()
                    .or_raise()
                    .unwrap_or(0)
            };
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

/// A training request: the spec stored with the version (and re-run by `retrain`).
pub(crate) struct Spec {
    pub source: String,
    pub target: Option<String>,
    pub algorithm: Algorithm,
    pub options: Value,
}

impl Spec {
    pub fn to_json(&self, qualified_source: &str) -> Value {
        serde_json::json!({
            "source": qualified_source,
            "target": self.target,
            "algorithm": self.algorithm.name(),
            "options": self.options,
        })
    }
}

/// A model fitted from its source, and (when a serving model was given) that model's metrics
/// on the same evaluation rows, or why it could not be scored there.
pub(crate) struct Fitted {
    pub outcome: TrainOutcome,
    /// The options as applied (task and metric settled from the target's type).
    pub options: TrainOptions,
    /// Feature and prediction distributions at training, stored for `customer_value.drift`.
    pub profile: Value,
    pub rows_read: usize,
    pub qualified_source: String,
    pub champion: Option<std::result::Result<HoldoutMetrics, String>>,
}

/// The serving model's inputs as source columns, or why the source no longer has them.
fn champion_columns(
    champion: &ModelArtifact,
    columns: &[(String, pg_sys::Oid)],
) -> std::result::Result<Vec<String>, String> {
    champion
        .features
        .iter()
        .map(|f| {
            let column = f.column();
            let Some((_, oid)) = columns.iter().find(|(n, _)| n == column) else {
                return Err(format!(
                    "its feature column \"{column}\" is missing from the source"
                ));
            };
            let sql_type = sql_type_of(*oid);
            if !f.encoding.accepts(&sql_type) {
                return Err(format!(
                    "its feature column \"{column}\" now has type {}, it was trained on {}",
                    sql_type.sql_name(),
                    f.sql_type
                ));
            }
            Ok(encoded_value_sql(f, &sql_type))
        })
        .collect()
}

/// Reads the source and fits `spec`; with a `champion`, also scores it on the evaluation rows.
pub(crate) fn fit_from_source(
    spec: &Spec,
    parsed: &TrainOptions,
    champion: Option<&ModelArtifact>,
) -> Result<Fitted> {
    let algorithm = spec.algorithm;
    let target = spec.target.as_deref();
    let source = sampled(resolve_source(&spec.source)?, parsed.sample, parsed.seed)?;
    let columns = source_columns(&source)?;
    let mut parsed = parsed.clone();
    let mut target_sql_type = SqlType::Double;
    let mut target_expr: Option<String> = None;
    if let Some(target) = target {
        let Some((_, target_type)) = columns.iter().find(|(n, _)| n == target) else {
            return Err(missing_column("target", target, &columns));
        };
        target_sql_type = sql_type_of(*target_type);
        // the task follows the target's type unless options say otherwise: a boolean (e.g.
        // churned) is a classification target, a number a value
        let inferred = if target_sql_type == SqlType::Boolean || target_sql_type == SqlType::Text {
            Task::Classification
        } else if target_sql_type.is_number() {
            Task::Regression
        } else {
            return Err(EngineError::new(
                ErrorKind::DatatypeMismatch,
                format!(
                    "target column \"{target}\" has type {}; the target must be a number (a value), a boolean or text (a class)",
                    target_sql_type.sql_name()
                ),
            )
            .with_hint("Use a numeric column (e.g. spend), a boolean (e.g. churned) or a text label (e.g. tier), or cast it in a SELECT source."));
        };
        let task = parsed.task.unwrap_or(inferred);
        if algorithm.is_clv() {
            // CLV models compare their value with a numeric target
            if !target_sql_type.is_number() {
                return Err(EngineError::new(
                    ErrorKind::DatatypeMismatch,
                    format!("target column \"{target}\" of a CLV model must be numeric"),
                ));
            }
        } else {
            if task == Task::Regression && !target_sql_type.is_number() {
                return Err(EngineError::new(
                    ErrorKind::DatatypeMismatch,
                    format!(
                        "target column \"{target}\" has type {}; a value model needs a numeric target",
                        target_sql_type.sql_name()
                    ),
                ));
            }
            parsed.task = Some(task);
            if task == Task::Classification && !parsed.metric_given {
                parsed.metric = crate::engine::metrics::Metric::Auc;
            }
            parsed.class_labels = if target_sql_type == SqlType::Boolean {
                ("false".into(), "true".into())
            } else {
                ("0".into(), "1".into())
            };
            if target_sql_type == SqlType::Text {
                // a text label: its values (alphabetical) are the classes, coded 0..k-1
                let mut classes = categories_of(&source, target);
                classes.sort();
                match classes.len() {
                    0 | 1 => {
                        return Err(EngineError::insufficient_data(format!(
                            "target column \"{target}\" has {} distinct value(s); a classifier needs at least 2",
                            classes.len()
                        )))
                    }
                    n if n > MAX_CLASSES => {
                        return Err(EngineError::invalid_parameter(format!(
                            "target column \"{target}\" has more than {MAX_CLASSES} distinct values; a classifier takes at most {MAX_CLASSES}"
                        ))
                        .with_hint("Group rare labels, or predict a number instead."))
                    }
                    2 => {
                        parsed.class_labels = (classes[0].clone(), classes[1].clone());
                    }
                    _ => {
                        if !parsed.metric_given {
                            parsed.metric = crate::engine::metrics::Metric::Accuracy;
                        }
                        parsed.classes = classes.clone();
                    }
                }
                target_expr = Some(format!("({} - 1)", category_code(target, &classes)));
            }
        }
    }
    let parsed = &parsed;
    let champion_inputs = champion.map(|c| {
        let classes_now = if parsed.classes.is_empty() && c.classes.len() == 2 {
            vec![parsed.class_labels.0.clone(), parsed.class_labels.1.clone()]
        } else {
            parsed.classes.clone()
        };
        if c.task == Task::Classification && c.classes != classes_now {
            return Err(format!(
                "its classes ({}) are not today's ({})",
                c.classes.join(", "),
                classes_now.join(", ")
            ));
        }
        champion_columns(c, &columns)
    });
    let extra: &[String] = match &champion_inputs {
        Some(Ok(cols)) => cols,
        _ => &[],
    };
    let mut progress = Progress::new("training");
    let mut interrupt = || {
        pgrx::check_for_interrupts!();
        progress.step();
    };
    let mut feature_profiles = Vec::new();
    let (outcome, rows_read, actual, champion_raw) = if algorithm.is_clv() {
        let (specs, customers, actual, extra_rows) =
            read_rfm(&source, &columns, algorithm, target, parsed, extra)?;
        let rows_read = customers.len();
        let column = |get: fn(&Customer) -> f64| -> Vec<Option<f64>> {
            customers.iter().map(|c| Some(get(c))).collect()
        };
        let getters: [fn(&Customer) -> f64; 4] = [
            |c| c.frequency,
            |c| c.recency,
            |c| c.t,
            |c| c.monetary_value,
        ];
        let counts: Vec<f64> = customers.iter().map(|c| c.count).collect();
        let grouped = counts.iter().any(|&c| c != 1.0);
        for (spec, get) in specs.iter().zip(getters) {
            let profile = if grouped {
                let values: Vec<f64> = customers.iter().map(get).collect();
                BinProfile::of_counted(&values, &counts)
            } else {
                BinProfile::of(&column(get))
            };
            feature_profiles.push((spec.name.clone(), profile));
        }
        let target_values = target.zip(actual.as_deref());
        let outcome = train_clv(
            specs,
            &customers,
            target_values,
            algorithm,
            parsed,
            &mut interrupt,
        )?;
        let all_actual: Vec<Option<f64>> = actual.unwrap_or_default();
        let evaluated: Vec<f64> = outcome
            .evaluation_rows
            .iter()
            .filter_map(|&i| all_actual.get(i).copied().flatten())
            .collect();
        let raw: Vec<Vec<Option<f64>>> = outcome
            .evaluation_rows
            .iter()
            .filter_map(|&i| extra_rows.get(i).cloned())
            .collect();
        (outcome, rows_read, evaluated, raw)
    } else {
        let target = target.unwrap_or_default();
        let features = choose_features(&columns, target, &source, parsed)?;
        let target_select = target_expr
            .clone()
            .unwrap_or_else(|| as_float8(target, &target_sql_type));
        let (raw, extra_rows) =
            read_table(&source, (target, target_select), features, extra, parsed)?;
        let rows_read = raw.n_rows();
        let (specs, dataset, profiles) = raw.into_dataset_with_profiles()?;
        feature_profiles = profiles;
        let outcome = train_model(
            specs,
            &dataset,
            algorithm,
            Some(target),
            parsed,
            &mut interrupt,
        )?;
        let evaluated: Vec<f64> = outcome
            .evaluation_rows
            .iter()
            .map(|&i| dataset.y[i])
            .collect();
        let raw: Vec<Vec<Option<f64>>> = outcome
            .evaluation_rows
            .iter()
            .filter_map(|&i| extra_rows.get(i).cloned())
            .collect();
        (outcome, rows_read, evaluated, raw)
    };
    let champion_result = match (champion, champion_inputs) {
        (Some(model), Some(Ok(_))) => {
            Some(score_champion(model, &champion_raw, &actual).map_err(|e| e.message))
        }
        (_, Some(Err(why))) => Some(Err(why)),
        _ => None,
    };
    let profile = serde_json::to_value(TrainingProfile {
        features: feature_profiles,
        prediction: outcome.prediction_profile.clone(),
    })
    .map_err(|e| EngineError::new(ErrorKind::Internal, format!("cannot encode profile: {e}")))?;
    Ok(Fitted {
        outcome,
        options: parsed.clone(),
        profile,
        rows_read,
        qualified_source: source.qualified_name.unwrap_or_else(|| spec.source.clone()),
        champion: champion_result,
    })
}

#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn train(
    name: Option<&str>,
    source: Option<&str>,
    target: Option<&str>,
    algorithm: default!(Option<&str>, "'auto'"),
    options: default!(Option<JsonB>, "'{}'"),
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(version, i32),
        name!(algorithm, String),
        name!(metrics, JsonB),
        name!(deployed, bool),
        name!(id, i64),
    ),
> {
    let started = now();
    let name = required(name, "model name").or_raise();
    check_name(name).or_raise();
    store::check_writable("train").or_raise();
    let source_text = required(source, "source").or_raise();
    let algorithm = Algorithm::parse(algorithm.unwrap_or("auto")).or_raise();
    let options_json = options.map(|j| j.0).unwrap_or(Value::Null);
    let parsed = TrainOptions::parse(&options_json, algorithm).or_raise();
    // CLV models learn from an RFM summary; a target is optional and only evaluates them.
    let target = if algorithm.is_clv() {
        target
    } else {
        Some(required(target, "target column").or_raise())
    };
    let spec = Spec {
        source: source_text.to_string(),
        target: target.map(str::to_string),
        algorithm,
        options: if options_json.is_null() {
            serde_json::json!({})
        } else {
            options_json.clone()
        },
    };
    let fitted = fit_from_source(&spec, &parsed, None).or_raise();
    let outcome = &fitted.outcome;
    let stored = store(
        name,
        source_text,
        &spec.to_json(&fitted.qualified_source),
        &super::privilege::caller_name(),
        outcome,
        &fitted.profile,
        &fitted.options,
        DeployDecision::VersusServing,
    )
    .or_raise();
    let metrics = outcome.metrics_json(&fitted.options);
    record_run(&RunRecord {
        model: name,
        version: Some(stored.version),
        kind: "train",
        started,
        rows_read: Some(fitted.rows_read as i64),
        metrics: Some(metrics.clone()),
        champion_version: stored.serving_version,
        champion_metrics: None,
        decision: if stored.deployed {
            "deployed"
        } else {
            "not_deployed"
        },
        reason: Some(stored.reason.clone()),
        error: None,
    });
    TableIterator::once((
        name.to_string(),
        stored.version,
        outcome.artifact.algorithm.name().to_string(),
        JsonB(metrics),
        stored.deployed,
        stored.id,
    ))
}
