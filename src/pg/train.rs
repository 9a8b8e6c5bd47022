//! `customer_value.train(name, source, target, algorithm, options)`: read the source through an
//! SPI cursor in bounded batches, train with the engine, store a new version and deploy it when
//! it is at least as good as the serving one. Everything happens in the caller's transaction, so
//! a failed or cancelled training leaves no partial rows and the previous version serving.

use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use pgrx::JsonB;
use serde_json::Value;

use crate::engine::clv::data::Customer;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{Encoding, FeatureSpec, RawTable, SqlType};
use crate::engine::models::Algorithm;
use crate::engine::options::{DeployPolicy, TrainOptions};
use crate::engine::train::{features_json, train as train_model, train_clv, TrainOutcome};

use super::errors::OrRaise;
use super::source::{missing_column, resolve_source, scan_columns, source_columns, Source};
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

fn as_float8(column: &str, sql_type: &SqlType) -> String {
    let quoted = quote_identifier(column);
    if *sql_type == SqlType::Boolean {
        format!("({quoted})::int::float8")
    } else {
        format!("({quoted})::float8")
    }
}

/// Reads target and features into a [`RawTable`].
fn read_table(source: &Source, target: &str, features: Vec<(String, SqlType)>) -> Result<RawTable> {
    let mut select: Vec<String> = vec![format!("({})::float8", quote_identifier(target))];
    select.extend(features.iter().map(|(n, t)| as_float8(n, t)));
    let mut table = RawTable::new(target, features)?;
    scan_columns(&source.from_clause, &select, &mut |values| {
        table.push_row(&values[1..], values[0])
    })?;
    Ok(table)
}

/// An RFM summary as read: feature specs, customers, and the target column's values if any.
type RfmRead = (Vec<FeatureSpec>, Vec<Customer>, Option<Vec<Option<f64>>>);

/// Reads an RFM summary for the CLV models: the columns `options->'columns'` names (frequency,
/// recency, t and for spend models monetary_value), and the target if one is given.
fn read_rfm(
    source: &Source,
    columns: &[(String, pg_sys::Oid)],
    algorithm: Algorithm,
    target: Option<&str>,
    options: &TrainOptions,
) -> Result<RfmRead> {
    let c = &options.clv.columns;
    let mut roles: Vec<&str> = vec![&c.frequency, &c.recency, &c.t];
    if matches!(algorithm, Algorithm::GammaGamma | Algorithm::Clv) {
        roles.push(&c.monetary_value);
    }
    let mut specs = Vec::new();
    for name in &roles {
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
        specs.push(FeatureSpec {
            name: name.to_string(),
            sql_type: sql_type.sql_name().to_string(),
            encoding: Encoding::Number,
            impute: None,
        });
    }
    let mut select: Vec<String> = roles
        .iter()
        .map(|n| format!("({})::float8", quote_identifier(n)))
        .collect();
    if let Some(t) = target {
        select.push(format!("({})::float8", quote_identifier(t)));
    }
    let mut customers = Vec::new();
    let mut actual: Vec<Option<f64>> = Vec::new();
    let mut row = 0usize;
    scan_columns(&source.from_clause, &select, &mut |values| {
        row += 1;
        for (i, v) in values[..roles.len()].iter().enumerate() {
            match v {
                None => {
                    return Err(EngineError::new(
                        ErrorKind::NullValue,
                        format!(
                            "RFM column \"{}\" is NULL in row {row} of the source",
                            roles[i]
                        ),
                    ))
                }
                Some(v) if !v.is_finite() => {
                    return Err(EngineError::new(
                        ErrorKind::NonFiniteValue,
                        format!(
                            "RFM column \"{}\" holds {v} in row {row} of the source",
                            roles[i]
                        ),
                    ))
                }
                _ => {}
            }
        }
        let get = |i: usize| values[i].unwrap_or(0.0);
        customers.push(Customer {
            frequency: get(0),
            recency: get(1),
            t: get(2),
            monetary_value: if roles.len() > 3 { get(3) } else { 0.0 },
        });
        if target.is_some() {
            let v = values[roles.len()];
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
    Ok((specs, customers, target.map(|_| actual)))
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
        let new_value = outcome.metrics.as_ref().and_then(|m| m.get(metric));
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
    let algorithm = Algorithm::parse(algorithm.unwrap_or("auto")).or_raise();
    let options_json = options.map(|j| j.0).unwrap_or(Value::Null);
    let parsed = TrainOptions::parse(&options_json, algorithm).or_raise();
    // CLV models learn from an RFM summary; a target is optional and only evaluates them.
    let target = if algorithm.is_clv() {
        target
    } else {
        Some(required(target, "target column").or_raise())
    };

    let source = resolve_source(source_text).or_raise();
    let columns = source_columns(&source).or_raise();
    if let Some(target) = target {
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
    }
    let mut interrupt = || {
        pgrx::check_for_interrupts!();
    };
    let outcome = if algorithm.is_clv() {
        let (specs, customers, actual) =
            read_rfm(&source, &columns, algorithm, target, &parsed).or_raise();
        let target = target.zip(actual.as_deref());
        train_clv(
            specs,
            &customers,
            target,
            algorithm,
            &parsed,
            &mut interrupt,
        )
        .or_raise()
    } else {
        let target = target.unwrap_or_default();
        let features = choose_features(&columns, target, &source, &parsed).or_raise();
        let raw = read_table(&source, target, features).or_raise();
        let (specs, dataset) = raw.into_dataset().or_raise();
        train_model(
            specs,
            &dataset,
            algorithm,
            Some(target),
            &parsed,
            &mut interrupt,
        )
        .or_raise()
    };
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
