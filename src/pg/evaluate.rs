//! Evaluation of any stored model on any relation: `customer_value.evaluate` (metrics) and
//! `customer_value.lift` (a table ready for a BI chart). The relation is scored with
//! `customer_value(row, model)` itself, so evaluation sees exactly what scoring gives.

use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal};
use pgrx::JsonB;
use serde_json::json;

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::metrics::{lift as lift_table, normalized_gini, HoldoutMetrics, Totals};
use crate::engine::stats::pearson;

use super::errors::OrRaise;
use super::source::{missing_column, resolve_source, scan_columns, source_columns};
use super::store;
use super::types::sql_type_of;

/// `customer_value(cv_source, <model>)` qualified with the extension's schema, so it resolves
/// whatever the caller's search_path; `model` is an SQL literal (a quoted name or an id).
pub(crate) fn score_expression(model: &str) -> String {
    let schema: String = Spi::connect(|client| {
        client
            .select(
                "SELECT n.nspname::text FROM pg_catalog.pg_extension e
                   JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                  WHERE e.extname = 'customer_value'",
                None,
                &[],
            )
            .or_raise()
            .first()
            .get_one::<String>()
            .or_raise()
            .unwrap_or_else(|| "public".into())
    });
    format!(
        "{}.customer_value(cv_source, {model})",
        quote_identifier(&schema)
    )
}

/// What `evaluate` and `lift` read: predictions and actual values for every row of `source`
/// whose actual value is not NULL, and the naive ranking column's values on the same rows.
struct ScoredPairs {
    predicted: Vec<f64>,
    observed: Vec<f64>,
    skipped: usize,
    /// The naive baseline: the source's `total_spend` or `monetary_value` column and its values.
    naive: Option<(&'static str, Vec<f64>)>,
}

/// The columns a naive ranking is read from, first present wins: a customer's spend so far.
const NAIVE_RANKING_COLUMNS: [&str; 2] = ["total_spend", "monetary_value"];

fn scored_pairs(model: &str, source: &str, actual: &str) -> Result<ScoredPairs> {
    // resolve first: a missing model is reported as such, not as a scoring error
    store::resolve(model)?;
    let resolved = resolve_source(source)?;
    let columns = source_columns(&resolved)?;
    let Some((_, oid)) = columns.iter().find(|(n, _)| n == actual) else {
        return Err(missing_column("actual", actual, &columns));
    };
    let actual_type = sql_type_of(*oid);
    if !actual_type.is_number() {
        return Err(EngineError::new(
            ErrorKind::DatatypeMismatch,
            format!(
                "actual column \"{actual}\" has type {}; it must be numeric",
                actual_type.sql_name()
            ),
        ));
    }
    let naive_column = NAIVE_RANKING_COLUMNS.into_iter().find(|name| {
        *name != actual
            && columns
                .iter()
                .any(|(n, t)| n == name && sql_type_of(*t).is_number())
    });
    let score = score_expression(&quote_literal(model));
    let mut exprs = vec![score, format!("({})::float8", quote_identifier(actual))];
    if let Some(name) = naive_column {
        exprs.push(format!("({})::float8", quote_identifier(name)));
    }
    let mut out = ScoredPairs {
        predicted: Vec::new(),
        observed: Vec::new(),
        skipped: 0,
        naive: naive_column.map(|name| (name, Vec::new())),
    };
    scan_columns(&resolved.from_clause, &exprs, &mut |v| {
        match (v[0], v[1]) {
            (Some(p), Some(a)) => {
                out.predicted.push(p);
                out.observed.push(a);
                if let Some((_, naive)) = &mut out.naive {
                    // a NULL spend ranks last
                    naive.push(v[2].unwrap_or(f64::NEG_INFINITY));
                }
            }
            _ => out.skipped += 1,
        }
        Ok(())
    })?;
    if out.observed.is_empty() {
        return Err(EngineError::insufficient_data(format!(
            "no rows to evaluate: the source has no row with a non-NULL \"{actual}\""
        )));
    }
    Ok(out)
}

/// Holdout metrics of `model` on `source` against its column `actual`.
#[pg_extern(schema = "customer_value", stable, parallel_unsafe)]
fn evaluate(model: &str, source: &str, actual: &str) -> JsonB {
    let pairs = scored_pairs(model, source, actual).or_raise();
    let (observed, predicted) = (&pairs.observed, &pairs.predicted);
    let m = HoldoutMetrics::compute(observed, predicted);
    let totals = Totals::compute(observed, predicted);
    // every Gini is read against the naive ranking by spend so far, when the source has it;
    // under a key that names the column, so every value of the object stays a number
    let naive = pairs.naive.as_ref().map(|(column, values)| {
        (
            format!("naive_gini_by_{column}"),
            normalized_gini(observed, values),
        )
    });
    let mut out = json!({
        "n": observed.len(),
        "skipped_null_actual": pairs.skipped,
        "predicted_total": totals.predicted,
        "actual_total": totals.actual,
        "total_error_pct": totals.error_pct,
        "mae": m.mae,
        "rmse": m.rmse,
        "r2": m.r2,
        "pearson": pearson(observed, predicted),
        "spearman": m.spearman,
        "gini": m.gini,
        "top_decile_capture": m.top_decile_capture,
        "decile_mape": m.decile_mape,
    });
    if let (Some((key, gini)), Some(map)) = (naive, out.as_object_mut()) {
        map.insert(key, json!(gini));
    }
    JsonB(out)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.evaluate(text, text, text) IS
    'Metrics of a model on any relation against its column `actual`: n, predicted/actual totals and % error, MAE, RMSE, R², Pearson, Spearman, normalized Gini, top-decile capture, decile MAPE, and the Gini of the naive ranking by the source''s total_spend or monetary_value column (naive_gini_by_<column>) when it has one';
"#,
    name = "evaluate_comment",
    requires = [evaluate]
);

/// Lift table: customers ranked by prediction in `buckets` groups, best first.
// pgrx reads the output column names from this signature, so the row type cannot be an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(schema = "customer_value", stable, parallel_unsafe)]
fn lift(
    model: &str,
    source: &str,
    actual: &str,
    buckets: default!(i32, 10),
) -> TableIterator<
    'static,
    (
        name!(bucket, i32),
        name!(customers, i64),
        name!(mean_predicted, f64),
        name!(mean_actual, f64),
        name!(share_of_actual, Option<f64>),
        name!(cumulative_share_of_actual, Option<f64>),
    ),
> {
    if !(1..=10_000).contains(&buckets) {
        super::errors::raise(EngineError::invalid_parameter(format!(
            "buckets must be between 1 and 10000, got {buckets}"
        )));
    }
    let pairs = scored_pairs(model, source, actual).or_raise();
    let rows = lift_table(&pairs.observed, &pairs.predicted, buckets as usize);
    TableIterator::new(rows.into_iter().map(|r| {
        (
            r.bucket as i32,
            r.customers as i64,
            r.mean_predicted,
            r.mean_actual,
            r.share_of_actual,
            r.cumulative_share_of_actual,
        )
    }))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.lift(text, text, text, int) IS
    'Lift table of a model on a relation: customers ranked by prediction in `buckets` groups (best first) with mean predicted, mean actual and share of actual value';
"#,
    name = "lift_comment",
    requires = [lift]
);

/// One row of `group_report`.
type GroupRow = (
    Option<String>,
    i64,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    JsonB,
);

/// A fairness / segment report: per value of `group_column`, how many customers, the mean
/// prediction against the mean actual value, the errors, and the share of each tier. One
/// set-based query scored with `customer_value(row, model)` itself.
// pgrx reads the output column names from this signature, so the row type cannot be an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(schema = "customer_value", stable, parallel_unsafe)]
fn group_report(
    model: &str,
    source: &str,
    actual: &str,
    group_column: &str,
) -> TableIterator<
    'static,
    (
        name!(group_value, Option<String>),
        name!(customers, i64),
        name!(mean_predicted, f64),
        name!(mean_actual, Option<f64>),
        name!(mean_error, Option<f64>),
        name!(mae, Option<f64>),
        name!(rmse, Option<f64>),
        name!(tier_shares, JsonB),
    ),
> {
    let rows = group_rows(model, source, actual, group_column).or_raise();
    TableIterator::new(rows)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.group_report(text, text, text, text) IS
    'Per value of group_column (fairness, segments): customers, mean predicted vs mean actual, mean error, MAE, RMSE and the share of each tier';
"#,
    name = "group_report_comment",
    requires = [group_report]
);

fn group_rows(model: &str, source: &str, actual: &str, group: &str) -> Result<Vec<GroupRow>> {
    store::resolve(model)?;
    let resolved = resolve_source(source)?;
    let columns = source_columns(&resolved)?;
    let Some((_, oid)) = columns.iter().find(|(n, _)| n == actual) else {
        return Err(missing_column("actual", actual, &columns));
    };
    let actual_type = sql_type_of(*oid);
    let actual_expr = if actual_type == crate::engine::features::SqlType::Boolean {
        format!("({})::int::float8", quote_identifier(actual))
    } else if actual_type.is_number() {
        format!("({})::float8", quote_identifier(actual))
    } else {
        return Err(EngineError::new(
            ErrorKind::DatatypeMismatch,
            format!(
                "actual column \"{actual}\" has type {}; it must be numeric or boolean",
                actual_type.sql_name()
            ),
        ));
    };
    if !columns.iter().any(|(n, _)| n == group) {
        return Err(missing_column("group", group, &columns));
    }
    let literal = quote_literal(model);
    let score = score_expression(&literal);
    let tier = score.replacen(".customer_value(", ".customer_tier(", 1);
    let query = format!(
        "WITH scored AS (
             SELECT ({group})::text AS g, {score} AS p, {actual_expr} AS a, {tier} AS t
               FROM {from}),
         tiers AS (
             SELECT g, pg_catalog.jsonb_object_agg(t, share ORDER BY t) AS shares
               FROM (SELECT g, t, count(*)::float8 / sum(count(*)) OVER (PARTITION BY g) AS share
                       FROM scored GROUP BY g, t) x
              GROUP BY g)
         SELECT s.g, count(*), avg(s.p), avg(s.a), avg(s.p - s.a), avg(abs(s.p - s.a)),
                sqrt(avg((s.p - s.a) ^ 2)), min(tr.shares::text)::jsonb
           FROM scored s JOIN tiers tr ON tr.g IS NOT DISTINCT FROM s.g
          GROUP BY s.g
          ORDER BY s.g NULLS LAST",
        group = quote_identifier(group),
        from = resolved.from_clause,
    );
    let rows = Spi::connect(|client| {
        let table = client.select(&query, None, &[]).or_raise();
        table
            .map(|r| {
                (
                    r.get::<String>(1).or_raise(),
                    r.get::<i64>(2).or_raise().unwrap_or(0),
                    r.get::<f64>(3).or_raise().unwrap_or(f64::NAN),
                    r.get::<f64>(4).or_raise(),
                    r.get::<f64>(5).or_raise(),
                    r.get::<f64>(6).or_raise(),
                    r.get::<f64>(7).or_raise(),
                    r.get::<JsonB>(8)
                        .or_raise()
                        .unwrap_or(JsonB(serde_json::json!({}))),
                )
            })
            .collect::<Vec<_>>()
    });
    if rows.is_empty() {
        return Err(EngineError::insufficient_data(
            "the source has no rows to report on",
        ));
    }
    Ok(rows)
}
