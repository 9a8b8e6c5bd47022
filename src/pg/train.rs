//! `customer_value.train(name, source, target, algorithm, options)`: read the source through an
//! SPI cursor in bounded batches, train with the engine, store a new version and deploy it when
//! it is at least as good as the serving one. Everything happens in the caller's transaction, so
//! a failed or cancelled training leaves no partial rows and the previous version serving.

use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use pgrx::JsonB;
use serde_json::Value;

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{RawTable, SqlType};
use crate::engine::models::Algorithm;
use crate::engine::options::{DeployPolicy, TrainOptions};
use crate::engine::train::{features_json, train as train_model, TrainOutcome};

use super::errors::OrRaise;
use super::types::sql_type_of;

/// Rows fetched per batch: bounds the memory of the SPI tuple table.
const BATCH_ROWS: i64 = 10_000;

/// A source relation or query, ready to be put after FROM.
struct Source {
    from_clause: String,
    primary_key: Vec<String>,
}

pub(crate) fn looks_like_query(source: &str) -> bool {
    let first = source
        .trim_start()
        .trim_start_matches('(')
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(first.as_str(), "select" | "with" | "values" | "table")
}

fn resolve_source(source: &str) -> Result<Source> {
    if looks_like_query(source) {
        return Ok(Source {
            from_clause: format!("({source}) AS cv_source"),
            primary_key: vec![],
        });
    }
    let oid: Option<pg_sys::Oid> = Spi::connect(|client| {
        client
            .select("SELECT to_regclass($1)::oid", Some(1), &[source.into()])
            .or_raise()
            .first()
            .get_one::<pg_sys::Oid>()
            .or_raise()
    });
    let Some(oid) = oid else {
        return Err(EngineError::new(
            ErrorKind::UndefinedTable,
            format!("source relation \"{source}\" does not exist"),
        )
        .with_hint("Give a table or view name (schema-qualified if needed) or a SELECT query."));
    };
    let name: String = Spi::connect(|client| {
        client
            .select("SELECT $1::regclass::text", Some(1), &[oid.into()])
            .or_raise()
            .first()
            .get_one::<String>()
            .or_raise()
            .unwrap_or_default()
    });
    let primary_key = Spi::connect(|client| {
        client
            .select(
                "SELECT a.attname::text FROM pg_catalog.pg_index i
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                  WHERE i.indrelid = $1 AND i.indisprimary",
                None,
                &[oid.into()],
            )
            .or_raise()
            .filter_map(|r| r.get::<String>(1).ok().flatten())
            .collect::<Vec<_>>()
    });
    Ok(Source {
        from_clause: name,
        primary_key,
    })
}

/// Column names and types of the source, from a plan that returns no rows.
fn source_columns(source: &Source) -> Result<Vec<(String, pg_sys::Oid)>> {
    let columns = Spi::connect(|client| {
        let table = client
            .select(
                &format!("SELECT * FROM {} LIMIT 0", source.from_clause),
                None,
                &[],
            )
            .or_raise();
        let n = table.columns().or_raise();
        (1..=n)
            .map(|i| {
                (
                    table.column_name(i).or_raise(),
                    table.column_type_oid(i).or_raise().value(),
                )
            })
            .collect::<Vec<_>>()
    });
    for (i, (name, _)) in columns.iter().enumerate() {
        if columns[..i].iter().any(|(n, _)| n == name) {
            return Err(EngineError::new(
                ErrorKind::DuplicateColumn,
                format!("source has more than one column named \"{name}\""),
            )
            .with_hint("Give every column a distinct name (… AS name) in the SELECT."));
        }
    }
    Ok(columns)
}

fn missing_column(what: &str, name: &str, columns: &[(String, pg_sys::Oid)]) -> EngineError {
    EngineError::new(
        ErrorKind::UndefinedColumn,
        format!("{what} column \"{name}\" does not exist in the source"),
    )
    .with_detail(format!(
        "The source's columns are: {}.",
        columns
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

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

fn as_float8(column: &str, sql_type: &SqlType) -> String {
    let quoted = quote_identifier(column);
    if *sql_type == SqlType::Boolean {
        format!("({quoted})::int::float8")
    } else {
        format!("({quoted})::float8")
    }
}

/// Reads target and features through a cursor, `BATCH_ROWS` at a time, checking for interrupts
/// between batches.
fn read_table(source: &Source, target: &str, features: Vec<(String, SqlType)>) -> Result<RawTable> {
    let mut select: Vec<String> = vec![format!("({})::float8", quote_identifier(target))];
    select.extend(features.iter().map(|(n, t)| as_float8(n, t)));
    let query = format!("SELECT {} FROM {}", select.join(", "), source.from_clause);
    let mut table = RawTable::new(target, features)?;
    let width = table.feature_names().len();
    let cursor = Spi::connect(|client| client.open_cursor(query.as_str(), &[]).detach_into_name());
    let mut row_values: Vec<Option<f64>> = vec![None; width];
    loop {
        pgrx::check_for_interrupts!();
        let fetched = Spi::connect(|client| -> Result<usize> {
            let mut cursor = client.find_cursor(&cursor).or_raise();
            let batch = cursor.fetch(BATCH_ROWS).or_raise();
            let n = batch.len();
            for row in batch {
                let y = row.get::<f64>(1).or_raise();
                for (j, slot) in row_values.iter_mut().enumerate() {
                    *slot = row.get::<f64>(j + 2).or_raise();
                }
                table.push_row(&row_values, y)?;
            }
            if n > 0 {
                cursor.detach_into_name();
            }
            Ok(n)
        })?;
        if fetched == 0 {
            break;
        }
    }
    Ok(table)
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.contains('@') || name.len() > 200 {
        return Err(EngineError::invalid_parameter(format!(
            "invalid model name \"{name}\""
        ))
        .with_detail("A model name is 1 to 200 characters and cannot contain '@' (used for name@version)."));
    }
    Ok(())
}

fn required<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str> {
    value.ok_or_else(|| EngineError::new(ErrorKind::NullValue, format!("{what} must not be NULL")))
}

/// A metric for a message: six decimals, or scientific notation for tiny values.
fn format_metric(value: Option<f64>) -> String {
    match value {
        None => "null".into(),
        Some(v) if v == 0.0 || v.abs() >= 1e-3 => format!("{v:.6}"),
        Some(v) => format!("{v:.3e}"),
    }
}

struct Stored {
    id: i64,
    version: i32,
    deployed: bool,
}

/// Stores `outcome` as the next version of `name`, deciding deployment under a per-name lock so
/// concurrent trainings of one name get distinct versions and one deployed row.
fn store(
    name: &str,
    source: &str,
    options_json: &Value,
    outcome: &TrainOutcome,
    options: &TrainOptions,
) -> Result<Stored> {
    let bytes = outcome.artifact.encode()?;
    let metrics = outcome.metrics_json(options);
    Spi::connect_mut(|client| {
        client
            .update(
                "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('customer_value.models:' || $1))",
                None,
                &[name.into()],
            )
            .or_raise();
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
        let new_value = outcome.metrics.get(metric);
        let deploy = match (options.deploy, &serving) {
            (DeployPolicy::Always, _) => true,
            (DeployPolicy::Never, _) => false,
            (DeployPolicy::Auto, (None, _)) => true,
            (DeployPolicy::Auto, (Some(serving_version), serving_metrics)) => {
                let old_value = serving_metrics
                    .as_ref()
                    .and_then(|m| m.0.get(metric.key()))
                    .and_then(Value::as_f64);
                let better = metric.at_least_as_good(new_value, old_value);
                if !better {
                    pgrx::notice!(
                        "model \"{name}\" version {version} is not deployed: holdout {} {} is worse than deployed version {serving_version}'s {}",
                        metric.key(),
                        format_metric(new_value),
                        format_metric(old_value),
                    );
                }
                better
            }
        };
        if deploy {
            client
                .update(
                    "UPDATE customer_value.models SET deployed = false WHERE name = $1 AND deployed",
                    None,
                    &[name.into()],
                )
                .or_raise();
        }
        let a = &outcome.artifact;
        let id: i64 = client
            .update(
                "INSERT INTO customer_value.models
                   (name, version, algorithm, task, target, source, features, options, metrics, tiers, model, deployed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
                    JsonB(options_json.clone()).into(),
                    JsonB(metrics).into(),
                    JsonB(a.tiers.to_json()).into(),
                    bytes.into(),
                    deploy.into(),
                ],
            )
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise()
            .unwrap_or(0);
        Ok(Stored {
            id,
            version,
            deployed: deploy,
        })
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
    let name = required(name, "model name").or_raise();
    check_name(name).or_raise();
    let source_text = required(source, "source").or_raise();
    let target = required(target, "target column").or_raise();
    let algorithm = Algorithm::parse(algorithm.unwrap_or("auto")).or_raise();
    let options_json = options.map(|j| j.0).unwrap_or(Value::Null);
    let parsed = TrainOptions::parse(&options_json, algorithm).or_raise();

    let source = resolve_source(source_text).or_raise();
    let columns = source_columns(&source).or_raise();
    let Some((_, target_type)) = columns.iter().find(|(n, _)| n == target) else {
        super::errors::raise(missing_column("target", target, &columns));
    };
    let target_sql_type = sql_type_of(*target_type);
    if !target_sql_type.is_number() {
        super::errors::raise(
            EngineError::new(
                ErrorKind::DatatypeMismatch,
                format!(
                    "target column \"{target}\" has type {}; a value model needs a numeric target",
                    target_sql_type.sql_name()
                ),
            )
            .with_hint("Use an integer, floating-point or numeric column (e.g. spend), or cast it in a SELECT source."),
        );
    }
    let features = choose_features(&columns, target, &source, &parsed).or_raise();
    let raw = read_table(&source, target, features).or_raise();
    let (specs, dataset) = raw.into_dataset().or_raise();
    let outcome = train_model(
        specs,
        &dataset,
        algorithm,
        Some(target),
        &parsed,
        &mut || {
            pgrx::check_for_interrupts!();
        },
    )
    .or_raise();
    let stored = store(name, source_text, &options_json, &outcome, &parsed).or_raise();
    let metrics = outcome.metrics_json(&parsed);
    TableIterator::once((
        name.to_string(),
        stored.version,
        outcome.artifact.algorithm.name().to_string(),
        JsonB(metrics),
        stored.deployed,
        stored.id,
    ))
}
