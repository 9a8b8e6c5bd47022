//! `customer_value.train_from_log` and `customer_value.create_log_features`: models learnt from
//! a transaction log across time. The glue reads the log collapsed to customer-days (one
//! set-based query, one cursor) into the engine's [`PurchaseLog`]; the engine plans the
//! cut-offs, builds the features and fits ([`crate::engine::train::train_from_log`]). The
//! model's spec keeps the log, its columns and the options, so the feature table of any later
//! day is one call.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal};
use pgrx::JsonB;
use serde_json::{json, Value};

use crate::engine::codec::ModelArtifact;
use crate::engine::drift::TrainingProfile;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::RawValue;
use crate::engine::metrics::HoldoutMetrics;
use crate::engine::model_name::check_model_name;
use crate::engine::options::TrainOptions;
use crate::engine::purchases::attributes::Attributes;
use crate::engine::purchases::options::LogOptions;
use crate::engine::purchases::sequence::{SequenceShape, CHANNELS};
use crate::engine::purchases::snapshot::{Snapshot, FEATURES};
use crate::engine::purchases::{date_text, PurchaseDay, PurchaseLog};
use crate::engine::train::train_from_log as train_log_model;

use super::args::required;
use super::attributes::AttributeSource;
use super::errors::OrRaise;
use super::fit::interrupt_with_progress;
use super::rfm::{check_log_columns, quoted_table_name};
use super::runs::{now, record_run, RunRecord};
use super::source::{resolve_source, scan_values, source_columns};
use super::store::{self, DeployDecision};

/// Where a log model's data come from: the log and its three columns.
#[derive(Debug, Clone)]
pub(crate) struct LogSpec {
    pub log: String,
    pub customer_column: String,
    pub time_column: String,
    pub amount_column: String,
}

impl LogSpec {
    /// The spec stored with a version (`kind` tells it from a `train` spec).
    pub fn to_json(&self, qualified_log: &str, as_of: &str, options: &Value) -> Value {
        json!({
            "kind": "log",
            "source": qualified_log,
            "customer_column": self.customer_column,
            "time_column": self.time_column,
            "amount_column": self.amount_column,
            "as_of": as_of,
            "options": options,
        })
    }

    /// Whether a stored spec is a log model's.
    pub fn is_log_spec(spec: &Value) -> bool {
        spec.get("kind").and_then(Value::as_str) == Some("log")
    }

    /// The log spec of a stored version's spec, or why it has none.
    pub fn from_stored(spec: &Value, label: &str) -> Result<LogSpec> {
        let text = |key: &str| spec.get(key).and_then(Value::as_str).map(str::to_string);
        if !LogSpec::is_log_spec(spec) {
            return Err(EngineError::invalid_parameter(format!(
                "{label} was not trained from a log"
            ))
            .with_hint("create_log_features builds the features of a model trained with customer_value.train_from_log."));
        }
        let corrupt = |what: &str| {
            EngineError::new(
                ErrorKind::DataCorrupted,
                format!("{label} has no usable log spec ({what})"),
            )
        };
        Ok(LogSpec {
            log: text("source").ok_or_else(|| corrupt("source"))?,
            customer_column: text("customer_column").ok_or_else(|| corrupt("customer_column"))?,
            time_column: text("time_column").ok_or_else(|| corrupt("time_column"))?,
            amount_column: text("amount_column").ok_or_else(|| corrupt("amount_column"))?,
        })
    }
}

/// A log read up to `as_of`.
struct ReadLog {
    log: PurchaseLog,
    /// `as_of` as a day number (its date in the session's time zone).
    as_of_day: i32,
    /// The SQL type of the customer key.
    key_type: String,
    /// The log's schema-qualified name when it is a relation.
    relation: Option<String>,
    qualified: String,
    rows: usize,
}

/// `as_of`'s day number, and the exclusive upper bound of the history it includes as a
/// timestamp literal: the whole day when `as_of` is a midnight (as `rfm`'s calibration_end).
fn as_of_bounds(as_of: TimestampWithTimeZone) -> Result<(i32, String)> {
    Spi::connect(|client| {
        let row = client
            .select(
                "SELECT CASE WHEN isfinite($1) THEN ($1::timestamp::date - date '1970-01-01')::int4 END,
                        CASE WHEN isfinite($1) THEN
                            (CASE WHEN $1::timestamp = date_trunc('day', $1::timestamp)
                                  THEN $1::timestamp + interval '1 day'
                                  ELSE $1::timestamp + interval '1 microsecond' END)::text END",
                Some(1),
                &[as_of.into()],
            )
            .or_raise()
            .first();
        let day = row.get::<i32>(1).or_raise();
        let cut = row.get::<String>(2).or_raise();
        day.zip(cut).ok_or_else(|| {
            EngineError::invalid_parameter(format!(
                "as_of must be a finite date or timestamp, got {as_of}"
            ))
        })
    })
}

/// Reads `spec.log` up to and including `as_of`, collapsed to customer-days.
fn read_log(spec: &LogSpec, as_of: TimestampWithTimeZone) -> Result<ReadLog> {
    let source = resolve_source(&spec.log)?;
    let columns = source_columns(&source)?;
    let key_type = check_log_columns(
        &columns,
        &spec.customer_column,
        &spec.time_column,
        &spec.amount_column,
    )?;
    let (as_of_day, cut) = as_of_bounds(as_of)?;
    let (c, t, a) = (
        quote_identifier(&spec.customer_column),
        quote_identifier(&spec.time_column),
        quote_identifier(&spec.amount_column),
    );
    // one aggregation: line items → customer-days, in key order (a customer's days together)
    let days = format!(
        "(SELECT k::text AS customer, dense_rank() OVER (ORDER BY k)::float8 AS key_rank,
                 d::float8 AS day, coalesce(sum(a), 0)::float8 AS amount,
                 (-coalesce(sum(a) FILTER (WHERE a < 0), 0))::float8 AS refund,
                 count(*)::float8 AS lines, count(*) FILTER (WHERE a IS NULL)::float8 AS null_amounts
            FROM (SELECT {c} AS k, (({t})::timestamp::date - date '1970-01-01') AS d,
                         ({a})::float8 AS a
                    FROM {from}
                   WHERE {c} IS NOT NULL AND {t} IS NOT NULL
                     AND ({t})::timestamp < {cut}::timestamp) AS cv_lines
           GROUP BY k, d ORDER BY k, d) AS cv_days",
        from = source.from_clause,
        cut = quote_literal(&cut),
    );
    let (log, rows) = collect_days(spec, &days)?;
    Ok(ReadLog {
        log,
        as_of_day,
        key_type,
        qualified: source
            .qualified_name
            .clone()
            .unwrap_or_else(|| spec.log.clone()),
        relation: source.qualified_name,
        rows,
    })
}

/// The customer-days of the query `days` as a [`PurchaseLog`], and the log rows they stand for.
fn collect_days(spec: &LogSpec, days: &str) -> Result<(PurchaseLog, usize)> {
    let columns: Vec<String> = [
        "customer",
        "key_rank",
        "day",
        "amount",
        "refund",
        "lines",
        "null_amounts",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut log = PurchaseLog::default();
    let mut rows = 0usize;
    let mut last_rank = 0.0;
    scan_values(days, &columns, &mut |v| {
        let RawValue::Text(key) = v[0] else {
            return Err(EngineError::new(ErrorKind::Internal, "a NULL customer key"));
        };
        let key = String::from_utf8_lossy(key);
        let number = |i: usize| v[i].number().unwrap_or(0.0);
        let (rank, day) = (number(1), number(2) as i32);
        if rank != last_rank && log.last_key() == Some(&*key) {
            return Err(keys_print_alike(spec, &key));
        }
        last_rank = rank;
        if number(6) > 0.0 {
            return Err(null_amount(spec, &key, day));
        }
        rows += number(5) as usize;
        log.push(
            &key,
            PurchaseDay {
                day,
                amount: number(3),
                refund: number(4),
                lines: number(5) as u32,
            },
        )
    })?;
    Ok((log, rows))
}

/// Two customers are told apart by their key's text (the feature table casts it back): keys
/// that print alike (e.g. float8 keys under a low extra_float_digits) would be one customer.
fn keys_print_alike(spec: &LogSpec, key: &str) -> EngineError {
    EngineError::new(
        ErrorKind::CardinalityViolation,
        format!(
            "two different values of customer column \"{}\" print as the same text \"{key}\"",
            spec.customer_column
        ),
    )
    .with_hint("Use a key whose text tells customers apart: an integer or text column, or RESET extra_float_digits.")
}

fn null_amount(spec: &LogSpec, key: &str, day: i32) -> EngineError {
    EngineError::new(
        ErrorKind::NullValue,
        format!(
            "amount column \"{}\" is NULL for customer {key} on {}",
            spec.amount_column,
            date_text(day)
        ),
    )
    .with_hint(format!(
        "A purchase needs an amount: leave such rows out or fill them in a SELECT source, e.g. coalesce({}, 0).",
        spec.amount_column
    ))
}

/// Trains a model on the log as of `as_of`: features at earlier cut-offs, the spend of the
/// following window as target, a backtest on the most recent window with the classic CLV
/// model and the naive prediction beside it.
#[allow(clippy::too_many_arguments)]
#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn train_from_log(
    name: Option<&str>,
    log: Option<&str>,
    customer_column: Option<&str>,
    time_column: Option<&str>,
    amount_column: Option<&str>,
    as_of: Option<TimestampWithTimeZone>,
    options: default!(Option<super::args::JsonOptions>, "'{}'"),
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
    check_model_name(name).or_raise();
    store::check_writable("train_from_log").or_raise();
    let spec = LogSpec {
        log: required(log, "log").or_raise().to_string(),
        customer_column: required(customer_column, "customer_column")
            .or_raise()
            .to_string(),
        time_column: required(time_column, "time_column").or_raise().to_string(),
        amount_column: required(amount_column, "amount_column")
            .or_raise()
            .to_string(),
    };
    let as_of = as_of.unwrap_or_else(|| {
        super::errors::raise(EngineError::new(
            ErrorKind::NullValue,
            "as_of must not be NULL",
        ))
    });
    let options_json = super::args::options_of(options).or_raise();
    let trained = fit_log(&spec, as_of, &options_json, None).or_raise();
    let stored = store::insert_version(
        name,
        &spec.log,
        &spec.to_json(
            &trained.read.qualified,
            &date_text(trained.read.as_of_day),
            &options_json,
        ),
        &super::privilege::caller_name(),
        &trained.outcome,
        &trained.profile,
        &trained.options,
        DeployDecision::VersusServing,
    )
    .or_raise();
    let metrics = trained.outcome.metrics_json(&trained.options);
    record_training(name, started, &trained, &stored, &metrics);
    TableIterator::once((
        name.to_string(),
        stored.version,
        trained.outcome.artifact.algorithm.name().to_string(),
        JsonB(metrics),
        stored.deployed,
        stored.id,
    ))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.train_from_log(text, text, text, text, text, timestamptz, jsonb) IS
    'Trains a new version of a model from a transaction log (one row per purchase or line item), leak-free: features at earlier cut-offs, the spend of the following window as target, a backtest on the most recent window before as_of with BG/NBD × Gamma-Gamma and the last window''s spend as baselines (metrics->''baselines''); options: horizon_days (365), window_days, cutoffs, cutoff_step_days, count_model, algorithm (auto), attributes (a source of static customer attributes) and the usual training options; returns name, version, algorithm, metrics, deployed, id';
"#,
    name = "train_from_log_comment",
    requires = [train_from_log]
);

/// The run log's record of a training.
fn record_training(
    name: &str,
    started: pgrx::datum::TimestampWithTimeZone,
    trained: &TrainedLog,
    stored: &store::Stored,
    metrics: &Value,
) {
    record_run(&RunRecord {
        model: name,
        version: Some(stored.version),
        kind: "train",
        started,
        rows_read: Some(trained.read.rows as i64),
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
}

/// A log model fitted, with what the store keeps beside it.
pub(crate) struct TrainedLog {
    pub outcome: crate::engine::train::TrainOutcome,
    pub options: TrainOptions,
    pub profile: Value,
    read: ReadLog,
    /// The serving model's metrics on the same backtest window, or why it has none.
    pub champion: Option<std::result::Result<HoldoutMetrics, String>>,
}

impl TrainedLog {
    pub fn rows_read(&self) -> usize {
        self.read.rows
    }

    pub fn qualified_log(&self) -> &str {
        &self.read.qualified
    }

    pub fn as_of(&self) -> String {
        date_text(self.read.as_of_day)
    }
}

/// Reads the log as of `as_of` and trains on it as `options` say; with a serving `champion`
/// (a retrain), it is scored on the same backtest window.
pub(crate) fn fit_log(
    spec: &LogSpec,
    as_of: TimestampWithTimeZone,
    options: &Value,
    champion: Option<&ModelArtifact>,
) -> Result<TrainedLog> {
    let (log_options, rest) = LogOptions::split(options)?;
    let algorithm = log_options.algorithm;
    let mut parsed = log_options.training_options(&rest)?;
    parsed.gbm.threads = super::guc::training_threads();
    let read = read_log(spec, as_of)?;
    let attributes = match attribute_source(&log_options, spec)? {
        Some(source) => source.read(&read.log)?,
        None => Attributes::none(),
    };
    let trained = train_log_model(
        &read.log,
        &attributes,
        read.as_of_day,
        &log_options,
        algorithm,
        &parsed,
        champion,
        &mut interrupt_with_progress(),
    )?;
    let outcome = trained.outcome;
    let profile = serde_json::to_value(TrainingProfile {
        features: trained.feature_profiles,
        prediction: outcome.prediction_profile.clone(),
    })
    .map_err(|e| EngineError::new(ErrorKind::Internal, format!("cannot encode profile: {e}")))?;
    Ok(TrainedLog {
        outcome,
        options: parsed,
        profile,
        read,
        champion: trained.champion,
    })
}

/// The attributes source the options name, resolved against the log's customer column.
fn attribute_source(options: &LogOptions, spec: &LogSpec) -> Result<Option<AttributeSource>> {
    options
        .attributes
        .as_deref()
        .map(|source| AttributeSource::resolve(source, &spec.customer_column))
        .transpose()
}

/// The stored spec of the model `model` names, and its options.
fn stored_spec(model: &str) -> Result<(LogSpec, LogOptions, String)> {
    let row = store::resolve(model)?;
    let spec: Option<Value> = Spi::connect(|client| {
        client
            .select(
                &format!(
                    "SELECT spec FROM {} WHERE id = $1",
                    super::citus::store_location().models()
                ),
                Some(1),
                &[row.id.into()],
            )
            .or_raise()
            .first()
            .get_one::<JsonB>()
            .or_raise()
            .map(|j| j.0)
    });
    let spec = spec.unwrap_or(Value::Null);
    let label = row.label();
    let log_spec = LogSpec::from_stored(&spec, &label)?;
    let (log_options, _) = LogOptions::split(spec.get("options").unwrap_or(&Value::Null))?;
    Ok((log_spec, log_options, label))
}

/// Creates `table_name` with every customer's features as of `as_of`, keyed by the log's
/// customer column (its name and type, primary key): `customer_value(f, model)` scores it.
#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn create_log_features(
    table_name: Option<&str>,
    model: Option<&str>,
    as_of: Option<TimestampWithTimeZone>,
) -> i64 {
    store::check_not_standby("create_log_features").or_raise();
    let table_name = quoted_table_name(required(table_name, "table_name").or_raise());
    let model = required(model, "model").or_raise();
    let as_of = as_of.unwrap_or_else(|| {
        super::errors::raise(EngineError::new(
            ErrorKind::NullValue,
            "as_of must not be NULL",
        ))
    });
    let (spec, log_options, _) = stored_spec(model).or_raise();
    let read = read_log(&spec, as_of).or_raise();
    if read.log.n_customers() == 0 {
        super::errors::raise(EngineError::insufficient_data(format!(
            "the log has no purchase on or before as_of ({})",
            date_text(read.as_of_day)
        )));
    }
    let snapshot = Snapshot::at(
        &read.log,
        read.as_of_day,
        log_options.horizon_days,
        log_options.count_model,
        &mut interrupt_with_progress(),
    )
    .or_raise();
    let attributes = attribute_source(&log_options, &spec).or_raise();
    let inputs = FeatureInputs {
        snapshot: &snapshot,
        attributes: attributes.as_ref(),
        sequence: log_options.sequence,
    };
    create_feature_table(&table_name, &spec, &read, &inputs).or_raise()
}

/// What the feature table holds beside the log features.
struct FeatureInputs<'a> {
    snapshot: &'a Snapshot,
    attributes: Option<&'a AttributeSource>,
    /// The histories of a sequence model, as the `float8[]` columns [`CHANNELS`].
    sequence: Option<SequenceShape>,
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.create_log_features(text, text, timestamptz) IS
    'Creates a table of every customer''s features as of as_of, computed from the log of a model trained with train_from_log, keyed by the log''s customer column (primary key); customer_value(f, model), customer_tier(f, model) and explain(f, model) score it; returns the number of customers';
"#,
    name = "create_log_features_comment",
    requires = [create_log_features]
);

/// Every customer's history as of the snapshot: per channel, one flat array of `length`
/// values per customer, in the snapshot's order.
fn histories_of(log: &PurchaseLog, snapshot: &Snapshot, shape: SequenceShape) -> [Vec<f64>; 2] {
    let mut out = [
        vec![0.0; snapshot.len() * shape.length],
        vec![0.0; snapshot.len() * shape.length],
    ];
    let [purchases, spend] = &mut out;
    let periods = purchases
        .chunks_exact_mut(shape.length)
        .zip(spend.chunks_exact_mut(shape.length));
    for (i, (p, s)) in periods.enumerate() {
        shape.fill(log.history(snapshot.customers[i]), snapshot.cutoff, [p, s]);
    }
    out
}

/// The INSERT of the feature table's rows: the keys ($1) and one float8 array per log feature,
/// unnested, with the attributes joined by the key's text; a history channel arrives as one
/// flat array of `length` values per customer (the next parameters), cut into its row's slice.
fn insert_features_sql(
    table_name: &str,
    key_type: &str,
    attributes: Option<&AttributeSource>,
    sequence_length: Option<usize>,
) -> String {
    let unnest: Vec<String> = (0..=FEATURES.len())
        .map(|i| format!("${}::float8[]", i + 1))
        .collect();
    let names: Vec<String> = FEATURES.iter().map(|f| quote_identifier(*f)).collect();
    let mut features: Vec<String> = names.iter().map(|n| format!("u.{n}")).collect();
    if let Some(length) = sequence_length {
        for c in 0..CHANNELS.len() {
            let parameter = FEATURES.len() + 2 + c;
            features.push(format!(
                "(${parameter}::float8[])[((u.ord - 1) * {length} + 1):(u.ord * {length})]"
            ));
        }
    }
    let (attribute_columns, join) = match attributes {
        Some(a) => (
            format!(", {}", a.select_list("a").join(", ")),
            a.left_join("a", "u.k"),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "INSERT INTO {table_name} SELECT u.k::{key_type}, {features}{attribute_columns}
           FROM unnest($1::text[], {arrays}) WITH ORDINALITY AS u(k, {names}, ord) {join}",
        features = features.join(", "),
        arrays = unnest[1..].join(", "),
        names = names.join(", "),
    )
}

/// Creates the feature table and fills it from the snapshot; returns its rows.
fn create_feature_table(
    table_name: &str,
    spec: &LogSpec,
    read: &ReadLog,
    inputs: &FeatureInputs<'_>,
) -> Result<i64> {
    let FeatureInputs {
        snapshot,
        attributes,
        sequence,
    } = *inputs;
    let key = quote_identifier(&spec.customer_column);
    let column = spec.customer_column.as_str();
    if FEATURES.contains(&column) || CHANNELS.contains(&column) {
        return Err(EngineError::invalid_parameter(format!(
            "the customer column \"{}\" has the name of a feature",
            spec.customer_column
        ))
        .with_hint("Rename it in a SELECT source, e.g. SELECT id AS customer_id, ..."));
    }
    let mut definitions: Vec<String> = FEATURES
        .iter()
        .map(|f| format!("{} float8", quote_identifier(f)))
        .collect();
    if sequence.is_some() {
        definitions.extend(CHANNELS.iter().map(|c| format!("{c} float8[]")));
    }
    definitions.extend(
        attributes
            .map(AttributeSource::definitions)
            .unwrap_or_default(),
    );
    let keys: Vec<String> = snapshot
        .customers
        .iter()
        .map(|&c| read.log.key(c).to_string())
        .collect();
    let column_values = |j: usize| -> Vec<Option<f64>> {
        (0..snapshot.len()).map(|i| snapshot.row(i)[j]).collect()
    };
    let insert = insert_features_sql(
        table_name,
        &read.key_type,
        attributes,
        sequence.map(|s| s.length),
    );
    let histories = sequence.map(|shape| histories_of(&read.log, snapshot, shape));
    let colocation = super::citus::hash_distribution(read.relation.as_deref());
    Spi::connect_mut(|client| {
        client
            .update(
                &format!(
                    "CREATE TABLE {table_name} ({key} {key_type} PRIMARY KEY, {columns})",
                    key_type = read.key_type,
                    columns = definitions.join(", ")
                ),
                None,
                &[],
            )
            .or_raise();
        if let Some(log) = &colocation {
            super::citus::distribute_like_log(client, table_name, &spec.customer_column, log);
        }
        let mut args: Vec<pgrx::datum::DatumWithOid> = vec![keys.clone().into()];
        for j in 0..FEATURES.len() {
            args.push(column_values(j).into());
        }
        for channel in histories.into_iter().flatten() {
            args.push(channel.into());
        }
        client.update(&insert, None, &args).or_raise();
    });
    Ok(snapshot.len() as i64)
}
