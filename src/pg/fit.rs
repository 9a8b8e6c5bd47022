//! Reading a source and fitting a spec: the part of `train` that `retrain` shares. The source is
//! read through one cursor ([`scan_values`]) as raw values; the engine settles the target,
//! encodes the features and fits. With a serving model (champion/challenger), its inputs are
//! read in the same pass and it is scored on the same evaluation rows.

use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use serde_json::Value;

use crate::engine::champion::score_champion;
use crate::engine::clv::data::Customer;
use crate::engine::codec::ModelArtifact;
use crate::engine::drift::{BinProfile, TrainingProfile};
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{
    encoders, ArrayShape, ArrayStats, Encoding, FeatureEncoder, FeatureSpec, Purpose, RawTable,
    RawValue, SqlType, MAX_CATEGORIES,
};
use crate::engine::memory::BYTES_PER_CUSTOMER;
use crate::engine::metrics::HoldoutMetrics;
use crate::engine::models::Algorithm;
use crate::engine::options::TrainOptions;
use crate::engine::target::{settle_target, TargetReading};
use crate::engine::train::{train_clv, train_owned, TrainOutcome};

use super::columns::{array_stats_sql, element_value_sql, feature_value_sql, raw_value_sql};
use super::errors::OrRaise;
use super::progress::Progress;
use super::source::{
    estimated_rows, missing_column, resolve_source, sampled, scan_values, source_columns, Source,
};
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

/// The most frequent values of text column `column` (at most MAX_CATEGORIES), most frequent
/// first (ties by value, so the order is stable).
pub(crate) fn categories_of(source: &Source, column: &str) -> Vec<String> {
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

/// The shape of array column `column` of `source`, from one pass over its rows: what training
/// takes as the feature's length, or why its arrays cannot be a feature.
pub(crate) fn array_shape(source: &Source, column: &str, pad: bool) -> Result<ArrayShape> {
    let query = array_stats_sql(column, &source.from_clause);
    let stats = Spi::connect(|client| {
        let row = client.select(&query, Some(1), &[]).or_raise().first();
        let get = |i: usize| row.get::<i64>(i).or_raise().map(|v| v.max(0) as u64);
        ArrayStats {
            lengths: get(1).zip(get(2)).map(|(a, b)| (a as usize, b as usize)),
            rows_with_null_elements: get(3).unwrap_or(0),
            most_dimensions: get(4).unwrap_or(0) as usize,
        }
    });
    ArrayShape::from_training(column, &stats, pad)
}

/// One column the training read selects: a feature column as it is, or one position of an
/// array column.
struct ReadColumn {
    name: String,
    sql_type: SqlType,
    element: Option<(String, ArrayShape, usize)>,
}

/// The feature columns with each array column spread into its positions, oldest first.
fn spread_arrays(
    source: &Source,
    features: Vec<(String, SqlType)>,
    pad: bool,
) -> Result<Vec<ReadColumn>> {
    let mut out = Vec::with_capacity(features.len());
    for (name, sql_type) in features {
        if !matches!(sql_type, SqlType::NumberArray(_)) {
            out.push(ReadColumn {
                name,
                sql_type,
                element: None,
            });
            continue;
        }
        let shape = array_shape(source, &name, pad)?;
        for position in 0..shape.length {
            out.push(ReadColumn {
                name: ArrayShape::element_name(&name, position),
                sql_type: sql_type.clone(),
                element: Some((name.clone(), shape, position)),
            });
        }
    }
    Ok(out)
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

/// The target column as it is read: its name, SQL and how its values are read.
struct TargetColumn {
    name: String,
    select: String,
    reading: TargetReading,
}

/// Settles the options from the target column (the engine decides; the glue reads the
/// column's type and, when asked, its distinct labels).
fn settle(
    spec: &Spec,
    parsed: &TrainOptions,
    source: &Source,
    columns: &[(String, pg_sys::Oid)],
) -> Result<(TrainOptions, Option<TargetColumn>)> {
    let mut options = parsed.clone();
    let Some(target) = spec.target.as_deref() else {
        return Ok((options, None));
    };
    let Some((_, oid)) = columns.iter().find(|(n, _)| n == target) else {
        return Err(missing_column("target", target, columns));
    };
    let sql_type = sql_type_of(*oid);
    let reading = settle_target(target, &sql_type, spec.algorithm, &mut options, &mut || {
        categories_of(source, target)
    })?;
    let column = TargetColumn {
        name: target.to_string(),
        select: raw_value_sql(target, &sql_type),
        reading,
    };
    Ok((options, Some(column)))
}

/// The serving model's inputs, read from today's source beside the training columns.
struct ChampionInputs {
    select: Vec<String>,
    encoders: Vec<FeatureEncoder>,
}

impl ChampionInputs {
    /// The serving model's inputs as source columns, or why the source no longer has them (or
    /// the target no longer has its classes).
    fn of(
        champion: &ModelArtifact,
        options: &TrainOptions,
        source: &Source,
        columns: &[(String, pg_sys::Oid)],
    ) -> std::result::Result<ChampionInputs, String> {
        let classes_now = if options.classes.is_empty() && champion.classes.len() == 2 {
            vec![
                options.class_labels.0.clone(),
                options.class_labels.1.clone(),
            ]
        } else {
            options.classes.clone()
        };
        if champion.task == crate::engine::codec::Task::Classification
            && champion.classes != classes_now
        {
            return Err(format!(
                "its classes ({}) are not today's ({})",
                champion.classes.join(", "),
                classes_now.join(", ")
            ));
        }
        let mut select = Vec::with_capacity(champion.features.len());
        for f in &champion.features {
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
            if let Some((trained, 0)) = f.array_element() {
                arrays_still_fit(source, column, trained)?;
            }
            select.push(feature_value_sql(f, &sql_type));
        }
        Ok(ChampionInputs {
            select,
            encoders: encoders(&champion.features, Purpose::Scoring),
        })
    }

    /// One row's inputs encoded as the serving model reads them (`None`: a NULL it refuses).
    fn encode(&self, values: &[RawValue<'_>]) -> Vec<Option<f64>> {
        self.encoders
            .iter()
            .zip(values)
            .map(|(e, v)| e.encode(*v))
            .collect()
    }
}

/// Whether the arrays of `column` today are what a model of arrays of shape `trained` reads:
/// else why not, as `customer_value(row)` would refuse them.
fn arrays_still_fit(
    source: &Source,
    column: &str,
    trained: ArrayShape,
) -> std::result::Result<(), String> {
    let now = array_shape(source, column, true).map_err(|e| e.message)?;
    if trained.pad || now.length == trained.length && array_shape(source, column, false).is_ok() {
        return Ok(());
    }
    Err(format!(
        "its array column \"{column}\" no longer holds arrays of {} elements only",
        trained.length
    ))
}

/// What reading and fitting produced.
struct FitRead {
    outcome: TrainOutcome,
    rows_read: usize,
    feature_profiles: Vec<(String, BinProfile)>,
    /// The target on the evaluation rows, and the serving model's inputs there.
    actual: Vec<f64>,
    champion_rows: Vec<Vec<Option<f64>>>,
}

/// Reads the source and fits `spec`; with a `champion`, also scores it on the evaluation rows.
pub(crate) fn fit_from_source(
    spec: &Spec,
    parsed: &TrainOptions,
    champion: Option<&ModelArtifact>,
) -> Result<Fitted> {
    let source = sampled(resolve_source(&spec.source)?, parsed.sample, parsed.seed)?;
    let columns = source_columns(&source)?;
    let (mut options, target) = settle(spec, parsed, &source, &columns)?;
    options.gbm.threads = super::guc::training_threads();
    let inputs = champion.map(|c| ChampionInputs::of(c, &options, &source, &columns));
    let usable = match &inputs {
        Some(Ok(inputs)) => Some(inputs),
        _ => None,
    };
    let read = if spec.algorithm.is_clv() {
        fit_rfm(
            spec.algorithm,
            &source,
            &columns,
            target.as_ref(),
            &options,
            usable,
        )?
    } else {
        let target = target.ok_or_else(|| {
            EngineError::new(ErrorKind::Internal, "a model without a target column")
        })?;
        fit_table(spec.algorithm, &source, &columns, &target, &options, usable)?
    };
    let champion = match (champion, inputs) {
        (Some(model), Some(Ok(_))) => {
            Some(score_champion(model, &read.champion_rows, &read.actual).map_err(|e| e.message))
        }
        (_, Some(Err(why))) => Some(Err(why)),
        _ => None,
    };
    let profile = serde_json::to_value(TrainingProfile {
        features: read.feature_profiles,
        prediction: read.outcome.prediction_profile.clone(),
    })
    .map_err(|e| EngineError::new(ErrorKind::Internal, format!("cannot encode profile: {e}")))?;
    Ok(Fitted {
        outcome: read.outcome,
        options,
        profile,
        rows_read: read.rows_read,
        qualified_source: source.qualified_name.unwrap_or_else(|| spec.source.clone()),
        champion,
    })
}

/// The rows of `all` at `rows` (the evaluation rows), in that order.
fn at_rows<T: Clone>(all: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().filter_map(|&i| all.get(i).cloned()).collect()
}

/// Cancellation and progress between units of training work.
pub(crate) fn interrupt_with_progress() -> impl FnMut() {
    let mut progress = Progress::new("training");
    move || {
        pgrx::check_for_interrupts!();
        progress.step();
    }
}

/// Reads a table of features and a target, and trains a machine-learning model.
fn fit_table(
    algorithm: Algorithm,
    source: &Source,
    columns: &[(String, pg_sys::Oid)],
    target: &TargetColumn,
    options: &TrainOptions,
    champion: Option<&ChampionInputs>,
) -> Result<FitRead> {
    let features = choose_features(columns, &target.name, source, options)?;
    let (raw, champion_all) = read_table(source, target, features, champion, options)?;
    let rows_read = raw.n_rows();
    let (specs, dataset, feature_profiles) = raw.into_dataset_with_profiles()?;
    let (outcome, actual) = train_owned(
        specs,
        dataset,
        algorithm,
        Some(&target.name),
        options,
        &mut interrupt_with_progress(),
    )?;
    let champion_rows = at_rows(&champion_all, &outcome.evaluation_rows);
    Ok(FitRead {
        outcome,
        rows_read,
        feature_profiles,
        actual,
        champion_rows,
    })
}

/// Reads target and features into a [`RawTable`], plus the serving model's inputs (encoded)
/// of every row with a target — the rows the dataset keeps, in the same order.
fn read_table(
    source: &Source,
    target: &TargetColumn,
    features: Vec<(String, SqlType)>,
    champion: Option<&ChampionInputs>,
    options: &TrainOptions,
) -> Result<(RawTable, Vec<Vec<Option<f64>>>)> {
    let columns = spread_arrays(source, features, options.pad)?;
    let mut select: Vec<String> = vec![target.select.clone()];
    let mut categories = Vec::new();
    for (j, c) in columns.iter().enumerate() {
        if c.sql_type == SqlType::Text {
            categories.push((j, categories_of(source, &c.name)));
        }
        select.push(match &c.element {
            Some((array, shape, position)) => element_value_sql(array, *position, shape.length),
            None => raw_value_sql(&c.name, &c.sql_type),
        });
    }
    let has_dates = columns.iter().any(|c| c.sql_type.is_time());
    let n_features = columns.len();
    let elements: Vec<_> = columns.iter().map(|c| c.element.clone()).collect();
    let features = columns.into_iter().map(|c| (c.name, c.sql_type)).collect();
    let mut table = RawTable::new(&target.name, features)?;
    for (j, element) in elements.into_iter().enumerate() {
        if let Some((array, shape, position)) = element {
            table.set_array_element(j, &array, shape, position);
        }
    }
    let budget = super::guc::training_budget();
    if let Some(rows) = estimated_rows(source, options.sample) {
        budget.check_rows(rows, table.bytes_per_row(), true)?;
    }
    table.set_budget(budget);
    for (j, cats) in categories {
        table.set_categories(j, cats);
    }
    if let TargetReading::Classes(classes) = &target.reading {
        table.set_target_classes(classes);
    }
    table.set_max_one_hot(options.max_one_hot);
    table.set_threads(options.gbm.threads);
    table.set_imputation(options.impute.clone())?;
    if has_dates || options.as_of.is_some() {
        table.set_as_of(as_of_days(options.as_of.as_deref())?);
    }
    if let Some(c) = champion {
        select.extend(c.select.iter().cloned());
    }
    let mut champion_rows = Vec::new();
    let mut progress = Progress::new("reading");
    scan_values(&source.from_clause, &select, &mut |values| {
        progress.tick(table.n_rows() + 1);
        let kept = table.push_values(&values[1..1 + n_features], values[0])?;
        if let (Some(c), true) = (champion, kept) {
            champion_rows.push(c.encode(&values[1 + n_features..]));
        }
        Ok(())
    })?;
    Ok((table, champion_rows))
}

/// Reads an RFM summary and fits a CLV model; a target (if given) evaluates it.
fn fit_rfm(
    algorithm: Algorithm,
    source: &Source,
    columns: &[(String, pg_sys::Oid)],
    target: Option<&TargetColumn>,
    options: &TrainOptions,
    champion: Option<&ChampionInputs>,
) -> Result<FitRead> {
    let summary = read_rfm(source, columns, algorithm, target, options, champion)?;
    let feature_profiles = rfm_profiles(&summary.specs, &summary.customers);
    let target_values = target
        .map(|t| t.name.as_str())
        .zip(summary.actual.as_deref());
    let outcome = train_clv(
        summary.specs,
        &summary.customers,
        target_values,
        algorithm,
        options,
        &mut interrupt_with_progress(),
    )?;
    let rows = &outcome.evaluation_rows;
    let actual = at_rows(&summary.actual.unwrap_or_default(), rows)
        .into_iter()
        .flatten()
        .collect();
    let champion_rows = at_rows(&summary.champion_rows, rows);
    Ok(FitRead {
        outcome,
        rows_read: summary.customers.len(),
        feature_profiles,
        actual,
        champion_rows,
    })
}

/// Each RFM column's distribution (weighted by the counts of a grouped summary), for drift.
fn rfm_profiles(specs: &[FeatureSpec], customers: &[Customer]) -> Vec<(String, BinProfile)> {
    let getters: [fn(&Customer) -> f64; 4] = [
        |c| c.frequency,
        |c| c.recency,
        |c| c.t,
        |c| c.monetary_value,
    ];
    let counts: Vec<f64> = customers.iter().map(|c| c.count).collect();
    let grouped = counts.iter().any(|&c| c != 1.0);
    specs
        .iter()
        .zip(getters)
        .map(|(spec, get)| {
            let profile = if grouped {
                let values: Vec<f64> = customers.iter().map(get).collect();
                BinProfile::of_counted(&values, &counts)
            } else {
                let values: Vec<Option<f64>> = customers.iter().map(|c| Some(get(c))).collect();
                BinProfile::of(&values)
            };
            (spec.name.clone(), profile)
        })
        .collect()
}

/// An RFM summary as read.
struct RfmSummary {
    specs: Vec<FeatureSpec>,
    customers: Vec<Customer>,
    /// The target column's values, when one is given.
    actual: Option<Vec<Option<f64>>>,
    /// The serving model's inputs of every row (not for a grouped read).
    champion_rows: Vec<Vec<Option<f64>>>,
}

/// The RFM columns a CLV model reads (`options->'columns'` names them): frequency, recency, t
/// and for spend models monetary_value, checked to exist and be numeric.
fn rfm_specs(
    columns: &[(String, pg_sys::Oid)],
    algorithm: Algorithm,
    options: &TrainOptions,
) -> Result<Vec<FeatureSpec>> {
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
    Ok(specs)
}

/// The FROM clause and select list of an RFM read: the summary columns and the count, one row
/// per customer or — grouped — one row per distinct summary with its count; on Citus the
/// grouping runs on the workers and only the distinct summaries reach the coordinator.
fn rfm_query(
    source: &Source,
    roles: &[String],
    count: Option<&str>,
    grouped: bool,
) -> (String, Vec<String>) {
    let mut select: Vec<String> = roles
        .iter()
        .map(|n| raw_value_sql(n, &SqlType::Double))
        .collect();
    let count_expr = match count {
        Some(column) => raw_value_sql(column, &SqlType::Double),
        None => "1::float8".to_string(),
    };
    if !grouped {
        select.push(count_expr);
        return (source.from_clause.clone(), select);
    }
    let keys: Vec<String> = (1..=select.len()).map(|i| i.to_string()).collect();
    let inner = format!(
        "SELECT {}, pg_catalog.sum({count_expr})::float8 AS cv_count FROM {} GROUP BY {}",
        select.join(", "),
        source.from_clause,
        keys.join(", ")
    );
    let mut select: Vec<String> = (1..=roles.len())
        .map(|i| format!("cv_grouped.c{i}"))
        .collect();
    let aliases: Vec<String> = (1..=roles.len()).map(|i| format!("c{i}")).collect();
    select.push("cv_grouped.cv_count".into());
    let from = format!("({inner}) AS cv_grouped ({}, cv_count)", aliases.join(", "));
    (from, select)
}

/// Reads an RFM summary for the CLV models, the target if one is given, and the serving
/// model's inputs.
fn read_rfm(
    source: &Source,
    columns: &[(String, pg_sys::Oid)],
    algorithm: Algorithm,
    target: Option<&TargetColumn>,
    options: &TrainOptions,
    champion: Option<&ChampionInputs>,
) -> Result<RfmSummary> {
    let specs = rfm_specs(columns, algorithm, options)?;
    let grouped = read_grouped(source, options, target.is_some())?;
    let roles: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let count = options.clv.columns.count.as_deref();
    let (from, mut select) = rfm_query(source, &roles, count, grouped);
    let mut names: Vec<&str> = roles.iter().map(String::as_str).collect();
    names.push(count.unwrap_or("count"));
    let n_summary = select.len();
    if let Some(t) = target {
        select.push(t.select.clone());
    }
    let champion = if grouped { None } else { champion };
    if let Some(c) = champion {
        select.extend(c.select.iter().cloned());
    }
    let first_champion = select.len() - champion.map_or(0, |c| c.select.len());
    let mut summary = RfmSummary {
        specs,
        customers: Vec::new(),
        actual: target.map(|_| Vec::new()),
        champion_rows: Vec::new(),
    };
    let mut numbers: Vec<Option<f64>> = Vec::with_capacity(n_summary);
    let budget = super::guc::training_budget();
    if let Some(rows) = estimated_rows(source, options.sample).filter(|_| !grouped) {
        budget.check_rows(rows, BYTES_PER_CUSTOMER, true)?;
    }
    scan_values(&from, &select, &mut |values| {
        let row = summary.customers.len() + 1;
        budget.check_rows(row as u64, BYTES_PER_CUSTOMER, false)?;
        numbers.clear();
        numbers.extend(values[..n_summary].iter().map(|v| v.number()));
        summary
            .customers
            .push(Customer::from_row(&numbers, &names, row)?);
        if let Some(actual) = summary.actual.as_mut() {
            let v = values[n_summary].number();
            if let Some(v) = v.filter(|v| !v.is_finite()) {
                return Err(EngineError::new(
                    ErrorKind::NonFiniteValue,
                    format!("target column holds {v} in row {row} of the source"),
                ));
            }
            actual.push(v);
        }
        if let Some(c) = champion {
            summary
                .champion_rows
                .push(c.encode(&values[first_champion..]));
        }
        Ok(())
    })?;
    Ok(summary)
}

/// Whether to read the RFM summary grouped (see [`read_rfm`]): as the `group` option says,
/// by default when the source is a Citus distributed table. A target (evaluation compares
/// each customer's own value) or a count column is per row, so neither combines with it.
fn read_grouped(source: &Source, options: &TrainOptions, has_target: bool) -> Result<bool> {
    let refuse = |why: &str| {
        Err(EngineError::invalid_parameter(format!(
            "option \"group\" cannot be combined with {why}"
        ))
        .with_hint("Evaluate a grouped fit with customer_value.evaluate(...) on the per-customer table instead."))
    };
    if options.clv.columns.count.is_some() && has_target {
        return refuse("a target column when the source has a count column");
    }
    match options.clv.group {
        Some(true) if has_target => refuse("a target column"),
        Some(group) => Ok(group),
        None if has_target => Ok(false),
        None => Ok(super::citus::is_distributed_relation(
            source.qualified_name.as_deref(),
        )),
    }
}

/// A training request: the spec stored with the version (and re-run by `retrain`).
pub(crate) struct Spec {
    pub source: String,
    pub target: Option<String>,
    pub algorithm: Algorithm,
    pub options: Value,
}

impl Spec {
    /// The spec of a `train` call. CLV models learn from an RFM summary: a target is optional
    /// and only evaluates them; every other model needs one.
    pub fn new(
        source: &str,
        target: Option<&str>,
        algorithm: Algorithm,
        options: Value,
    ) -> Result<Spec> {
        let target = if algorithm.is_clv() {
            target
        } else {
            Some(super::args::required(target, "target column")?)
        };
        Ok(Spec {
            source: source.to_string(),
            target: target.map(str::to_string),
            algorithm,
            options: if options.is_null() {
                serde_json::json!({})
            } else {
                options
            },
        })
    }

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
