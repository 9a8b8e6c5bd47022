//! Feature schema and the training table: which columns a model reads, how each value is
//! encoded as a number, and how a missing value is imputed. The same [`FeatureSpec`]s are stored
//! inside the model bytes and applied at scoring time, so training and scoring cannot disagree.

use serde::{Deserialize, Serialize};

use super::error::{EngineError, ErrorKind, Result};
use super::stats;

/// The SQL types the Postgres layer can hand to the engine, by family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    Numeric,
    Boolean,
    /// Any other type, by its SQL name (e.g. `text`, `date`).
    Other(String),
}

impl SqlType {
    /// The type's SQL name, as `format_type` prints it.
    pub fn sql_name(&self) -> &str {
        match self {
            SqlType::SmallInt => "smallint",
            SqlType::Integer => "integer",
            SqlType::BigInt => "bigint",
            SqlType::Real => "real",
            SqlType::Double => "double precision",
            SqlType::Numeric => "numeric",
            SqlType::Boolean => "boolean",
            SqlType::Other(name) => name,
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(
            self,
            SqlType::SmallInt
                | SqlType::Integer
                | SqlType::BigInt
                | SqlType::Real
                | SqlType::Double
                | SqlType::Numeric
        )
    }
}

/// How a column's value becomes a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// Any integer, float or numeric column, used as its value.
    Number,
    /// A boolean column: true = 1, false = 0.
    Boolean,
}

impl Encoding {
    /// The encoding for a column of `sql_type`, or a clear error for a type v0.1 cannot use.
    pub fn for_column(column: &str, sql_type: &SqlType) -> Result<Encoding> {
        if sql_type.is_number() {
            Ok(Encoding::Number)
        } else if *sql_type == SqlType::Boolean {
            Ok(Encoding::Boolean)
        } else {
            Err(EngineError::new(
                ErrorKind::NotSupported,
                format!(
                    "feature column \"{column}\" has type {}, which customer_value cannot use as a feature",
                    sql_type.sql_name()
                ),
            )
            .with_detail("Features must be integer, floating-point, numeric or boolean columns.")
            .with_hint(format!(
                "Cast the column to a number in a SELECT source, or leave it out with options => '{{\"exclude\": [\"{column}\"]}}'."
            )))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Number => "number",
            Encoding::Boolean => "boolean",
        }
    }

    /// Whether a scoring column of `sql_type` can feed a feature trained with this encoding.
    /// Number features accept any numeric type (a view may cast int to numeric); boolean
    /// features accept only boolean, because 0/1 integers would silently change meaning.
    pub fn accepts(self, sql_type: &SqlType) -> bool {
        match self {
            Encoding::Number => sql_type.is_number(),
            Encoding::Boolean => *sql_type == SqlType::Boolean,
        }
    }
}

/// One model input: the column it is read from, how it is encoded and imputed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Column name, matched exactly (Postgres folds unquoted names to lower case).
    pub name: String,
    /// SQL type of the column at training time, for messages and the `features` jsonb.
    pub sql_type: String,
    pub encoding: Encoding,
    /// Value used for SQL NULL (the training median of the column), or `None` when a NULL
    /// cannot be given a meaning and is refused (the CLV models' RFM columns).
    pub impute: Option<f64>,
}

/// A training table as read from Postgres: feature columns and the target, NULL kept as `None`.
///
/// Values are checked as they arrive so that a NaN or infinity is reported with its column and
/// row, not discovered later as a mysterious fit failure.
#[derive(Debug, Clone)]
pub struct RawTable {
    names: Vec<String>,
    types: Vec<SqlType>,
    target_name: String,
    columns: Vec<Vec<Option<f64>>>,
    target: Vec<Option<f64>>,
}

impl RawTable {
    pub fn new(target_name: &str, features: Vec<(String, SqlType)>) -> Result<RawTable> {
        let mut names = Vec::with_capacity(features.len());
        let mut types = Vec::with_capacity(features.len());
        for (name, sql_type) in features {
            Encoding::for_column(&name, &sql_type)?;
            names.push(name);
            types.push(sql_type);
        }
        if names.is_empty() {
            return Err(EngineError::insufficient_data(
                "no feature columns to train on",
            )
            .with_detail(format!(
                "Every column of the source is the target \"{target_name}\", part of the primary key, or excluded."
            )));
        }
        let columns = vec![Vec::new(); names.len()];
        Ok(RawTable {
            names,
            types,
            target_name: target_name.to_string(),
            columns,
            target: Vec::new(),
        })
    }

    pub fn n_rows(&self) -> usize {
        self.target.len()
    }

    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// Appends one row. `features` must have one entry per feature column.
    pub fn push_row(&mut self, features: &[Option<f64>], target: Option<f64>) -> Result<()> {
        if features.len() != self.names.len() {
            return Err(EngineError::new(
                ErrorKind::Internal,
                format!(
                    "row has {} feature values, expected {}",
                    features.len(),
                    self.names.len()
                ),
            ));
        }
        let row_number = self.target.len() + 1;
        for (i, value) in features.iter().enumerate() {
            if let Some(v) = value {
                if !v.is_finite() {
                    return Err(non_finite(&self.names[i], *v, row_number));
                }
            }
            self.columns[i].push(*value);
        }
        if let Some(v) = target {
            if !v.is_finite() {
                return Err(non_finite(&self.target_name, v, row_number));
            }
        }
        self.target.push(target);
        Ok(())
    }

    /// Drops rows whose target is NULL, imputes feature NULLs with the column median and checks
    /// that every feature can teach the model something.
    /// Each feature's distribution as read (NULLs included), for drift.
    pub fn profiles(&self) -> Vec<(String, crate::engine::drift::BinProfile)> {
        self.names
            .iter()
            .zip(&self.columns)
            .map(|(name, column)| (name.clone(), crate::engine::drift::BinProfile::of(column)))
            .collect()
    }

    pub fn into_dataset(self) -> Result<(Vec<FeatureSpec>, Dataset)> {
        let keep: Vec<usize> = (0..self.target.len())
            .filter(|&i| self.target[i].is_some())
            .collect();
        let dropped_null_target = self.target.len() - keep.len();
        if self.target.is_empty() {
            return Err(EngineError::insufficient_data(
                "the source has no rows to train on",
            ));
        }
        if keep.is_empty() {
            return Err(EngineError::insufficient_data(format!(
                "no rows to train on: the target column \"{}\" is NULL in all {} rows",
                self.target_name,
                self.target.len()
            )));
        }
        let n = keep.len();
        let p = self.names.len();
        let mut specs = Vec::with_capacity(p);
        let mut x = vec![0.0; n * p];
        for (j, column) in self.columns.iter().enumerate() {
            let present: Vec<f64> = keep.iter().filter_map(|&i| column[i]).collect();
            let name = &self.names[j];
            if present.is_empty() {
                return Err(EngineError::insufficient_data(format!(
                    "feature column \"{name}\" is NULL in every training row"
                ))
                .with_hint(format!(
                    "Leave it out with options => '{{\"exclude\": [\"{name}\"]}}'."
                )));
            }
            let first = present[0];
            if present.iter().all(|&v| v == first) {
                return Err(EngineError::insufficient_data(format!(
                    "feature column \"{name}\" is constant ({first}) in every training row"
                ))
                .with_detail("A constant column carries no information about the target.")
                .with_hint(format!(
                    "Leave it out with options => '{{\"exclude\": [\"{name}\"]}}'."
                )));
            }
            let impute = stats::median(&present);
            for (row, &i) in keep.iter().enumerate() {
                x[row * p + j] = column[i].unwrap_or(impute);
            }
            specs.push(FeatureSpec {
                name: name.clone(),
                sql_type: self.types[j].sql_name().to_string(),
                encoding: Encoding::for_column(name, &self.types[j])?,
                impute: Some(impute),
            });
        }
        let y = keep.iter().filter_map(|&i| self.target[i]).collect();
        Ok((
            specs,
            Dataset {
                n_rows: n,
                n_features: p,
                x,
                y,
                dropped_null_target,
            },
        ))
    }
}

fn non_finite(column: &str, value: f64, row_number: usize) -> EngineError {
    EngineError::new(
        ErrorKind::NonFiniteValue,
        format!("column \"{column}\" holds {value} in row {row_number} of the source"),
    )
    .with_detail("NaN and infinite values cannot be used for training.")
    .with_hint("Filter or replace them in a SELECT source.")
}

/// A complete numeric training set: row-major features and the target.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub n_rows: usize,
    pub n_features: usize,
    /// Row-major: row i is `x[i * n_features .. (i + 1) * n_features]`.
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Rows skipped because their target was NULL.
    pub dropped_null_target: usize,
}

impl Dataset {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.n_features..(i + 1) * self.n_features]
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let p = self.n_features;
        let mut x = Vec::with_capacity(indices.len() * p);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend_from_slice(self.row(i));
            y.push(self.y[i]);
        }
        Dataset {
            n_rows: indices.len(),
            n_features: p,
            x,
            y,
            dropped_null_target: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RawTable {
        RawTable::new(
            "spend",
            vec![
                ("a".to_string(), SqlType::Integer),
                ("b".to_string(), SqlType::Boolean),
            ],
        )
        .unwrap()
    }

    #[test]
    fn nulls_are_imputed_with_the_median_and_null_targets_dropped() {
        let mut t = table();
        t.push_row(&[Some(1.0), Some(1.0)], Some(10.0)).unwrap();
        t.push_row(&[None, Some(0.0)], Some(20.0)).unwrap();
        t.push_row(&[Some(5.0), None], Some(30.0)).unwrap();
        t.push_row(&[Some(3.0), Some(0.0)], None).unwrap();
        t.push_row(&[Some(2.0), Some(1.0)], Some(40.0)).unwrap();
        let (specs, data) = t.into_dataset().unwrap();
        assert_eq!(data.n_rows, 4);
        assert_eq!(data.dropped_null_target, 1);
        // median of a over kept rows {1, 5, 2} = 2; of b over {1, 0, 1} = 1
        assert_eq!(specs[0].impute, Some(2.0));
        assert_eq!(specs[1].impute, Some(1.0));
        assert_eq!(data.row(1), &[2.0, 0.0]);
        assert_eq!(data.row(2), &[5.0, 1.0]);
        assert_eq!(data.y, vec![10.0, 20.0, 30.0, 40.0]);
        assert_eq!(specs[1].encoding, Encoding::Boolean);
    }

    #[test]
    fn constant_and_all_null_columns_are_refused_by_name() {
        let mut t = table();
        t.push_row(&[Some(1.0), None], Some(1.0)).unwrap();
        t.push_row(&[Some(2.0), None], Some(2.0)).unwrap();
        let err = t.into_dataset().unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        assert!(
            err.message.contains("\"b\" is NULL in every"),
            "{}",
            err.message
        );

        let mut t = table();
        t.push_row(&[Some(7.0), Some(1.0)], Some(1.0)).unwrap();
        t.push_row(&[Some(7.0), Some(0.0)], Some(2.0)).unwrap();
        let err = t.into_dataset().unwrap_err();
        assert!(
            err.message.contains("\"a\" is constant (7)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn non_finite_values_name_column_and_row() {
        let mut t = table();
        t.push_row(&[Some(1.0), Some(1.0)], Some(1.0)).unwrap();
        let err = t
            .push_row(&[Some(f64::NAN), Some(1.0)], Some(1.0))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NonFiniteValue);
        assert_eq!(err.message, "column \"a\" holds NaN in row 2 of the source");
        let err = t
            .push_row(&[Some(1.0), Some(1.0)], Some(f64::INFINITY))
            .unwrap_err();
        assert!(
            err.message.contains("\"spend\" holds inf"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unsupported_types_are_refused_with_the_column_named() {
        let err =
            RawTable::new("y", vec![("city".into(), SqlType::Other("text".into()))]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotSupported);
        assert!(err.message.contains("\"city\" has type text"));
    }

    #[test]
    fn boolean_features_refuse_numbers_and_number_features_accept_any_number() {
        assert!(Encoding::Number.accepts(&SqlType::Numeric));
        assert!(Encoding::Number.accepts(&SqlType::SmallInt));
        assert!(!Encoding::Number.accepts(&SqlType::Boolean));
        assert!(!Encoding::Boolean.accepts(&SqlType::Integer));
        assert!(!Encoding::Number.accepts(&SqlType::Other("text".into())));
    }
}
