//! `customer_value.drift(model, source)`: population stability index of each feature and of the
//! predictions, today's `source` against the distributions stored with the model at training.

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::engine::drift::{level, BinProfile, TrainingProfile};
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{Encoding, FeatureEncoder, Purpose};

use super::columns::{feature_value_sql, raw_value_sql};
use super::errors::OrRaise;
use super::evaluate::score_expression;
use super::source::{missing_column, resolve_source, scan_values, source_columns};
use super::store::{self, ModelRow};
use super::types::sql_type_of;

/// The name of the predictions' row in drift's output.
const PREDICTION_ROW: &str = "(prediction)";

fn training_profile(row: &ModelRow) -> Result<TrainingProfile> {
    let stored: Option<JsonB> = Spi::connect(|client| {
        client
            .select(
                "SELECT profile FROM customer_value.models WHERE id = $1",
                Some(1),
                &[row.id.into()],
            )
            .or_raise()
            .first()
            .get_one::<JsonB>()
            .or_raise()
    });
    let Some(JsonB(value)) = stored else {
        return Err(EngineError::new(
            ErrorKind::NotSupported,
            format!("{} has no training profile to compare with", row.label()),
        )
        .with_detail("Models trained before customer_value 0.2.0 did not record their feature distributions.")
        .with_hint(format!("Retrain it: SELECT * FROM customer_value.retrain('{}');", row.name)));
    };
    serde_json::from_value(value).map_err(|e| {
        EngineError::corrupted(format!(
            "{}'s training profile is damaged: {e}",
            row.label()
        ))
    })
}

/// Now, in days since 1970-01-01 (the reference of today's ages).
fn now_days() -> Result<f64> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT (pg_catalog.date_part('epoch', pg_catalog.now()) / 86400)::float8",
                Some(1),
                &[],
            )
            .or_raise()
            .first()
            .get_one::<f64>()
            .or_raise()
    })
    .ok_or_else(|| EngineError::new(ErrorKind::Internal, "now() is NULL"))
}

struct DriftRow {
    feature: String,
    psi: f64,
    training_null_share: f64,
    source_null_share: f64,
}

fn compute(model: &str, source: &str) -> Result<(Vec<DriftRow>, i64, i64)> {
    let row = store::resolve(model)?;
    let profile = training_profile(&row)?;
    let resolved = resolve_source(source)?;
    let columns = source_columns(&resolved)?;
    let model = store::load(&row)?;
    // today's values as the profile was built at training: ages as of now, categories by code
    let now_days = now_days()?;
    let mut select = Vec::new();
    let mut encoders = Vec::new();
    for (name, _) in &profile.features {
        // the profile is per model feature; a one-hot indicator reads its text column
        let spec = model.features.iter().find(|f| f.name == *name);
        let column = spec.map_or(name.as_str(), |f| f.column());
        let Some((_, oid)) = columns.iter().find(|(n, _)| n == column) else {
            return Err(missing_column("feature", column, &columns));
        };
        let sql_type = sql_type_of(*oid);
        let trained_ok = spec.is_none_or(|f| f.encoding.accepts(&sql_type));
        if !trained_ok || Encoding::for_column(column, &sql_type).is_err() {
            return Err(EngineError::new(
                ErrorKind::DatatypeMismatch,
                format!(
                    "feature column \"{column}\" has type {}; the model was trained on {}",
                    sql_type.sql_name(),
                    spec.map_or("a number", |f| f.sql_type.as_str())
                ),
            ));
        }
        select.push(match spec {
            Some(f) => feature_value_sql(f, &sql_type),
            None => raw_value_sql(column, &sql_type),
        });
        encoders.push(spec.map(|f| FeatureEncoder::new(f, Purpose::Profile { now_days })));
    }
    select.push(score_expression(&row.id.to_string()));
    let mut values: Vec<Vec<Option<f64>>> = vec![Vec::new(); select.len()];
    scan_values(&resolved.from_clause, &select, &mut |row| {
        for (j, (column, v)) in values.iter_mut().zip(row).enumerate() {
            column.push(match encoders.get(j) {
                Some(Some(encoder)) => encoder.encode(*v),
                _ => v.number(),
            });
        }
        Ok(())
    })?;
    let source_rows = values.first().map_or(0, Vec::len);
    if source_rows == 0 {
        return Err(EngineError::insufficient_data(
            "the source has no rows to compare with the training data",
        ));
    }
    let profiles: Vec<(&str, &BinProfile)> = profile
        .features
        .iter()
        .map(|(n, p)| (n.as_str(), p))
        .chain(std::iter::once((PREDICTION_ROW, &profile.prediction)))
        .collect();
    let rows = profiles
        .iter()
        .zip(&values)
        .map(|((name, p), column)| {
            let (shares, nulls) = p.count(column.iter().copied());
            DriftRow {
                feature: name.to_string(),
                psi: p.psi(&shares, nulls),
                training_null_share: p.null_share,
                source_null_share: nulls,
            }
        })
        .collect();
    Ok((rows, profile.prediction.rows as i64, source_rows as i64))
}

// pgrx reads the output column names from this signature, so the row type cannot be an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(schema = "customer_value", stable, parallel_unsafe)]
fn drift(
    model: &str,
    source: &str,
) -> TableIterator<
    'static,
    (
        name!(feature, String),
        name!(psi, f64),
        name!(drift, String),
        name!(training_null_share, f64),
        name!(source_null_share, f64),
        name!(training_rows, i64),
        name!(source_rows, i64),
    ),
> {
    let (rows, training_rows, source_rows) = compute(model, source).or_raise();
    TableIterator::new(rows.into_iter().map(move |r| {
        (
            r.feature,
            r.psi,
            level(r.psi).to_string(),
            r.training_null_share,
            r.source_null_share,
            training_rows,
            source_rows,
        )
    }))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.drift(text, text) IS
    'Population stability index (PSI) of each feature and of the predictions ("(prediction)" row), source against the distributions the model saw at training; drift is stable (< 0.1), moderate (0.1-0.25) or major (> 0.25)';
"#,
    name = "drift_comment",
    requires = [drift]
);
