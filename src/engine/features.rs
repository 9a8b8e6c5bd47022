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
    /// text, varchar, char: a category.
    Text,
    Date,
    Timestamp,
    TimestampTz,
    /// Any other type, by its SQL name (e.g. `jsonb`).
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
            SqlType::Text => "text",
            SqlType::Date => "date",
            SqlType::Timestamp => "timestamp without time zone",
            SqlType::TimestampTz => "timestamp with time zone",
            SqlType::Other(name) => name,
        }
    }

    pub fn is_time(&self) -> bool {
        matches!(
            self,
            SqlType::Date | SqlType::Timestamp | SqlType::TimestampTz
        )
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Encoding {
    Number,
    Boolean,
    /// One-hot indicator of a text column: 1 when `column` holds `category`, 0 when it holds
    /// another category seen in training; a NULL or a category never seen in training gets
    /// `share` (this category's share of the training rows), i.e. the average customer — never
    /// an error, never silently one of the known categories. The most frequent category has no
    /// indicator (it is the reference level, all indicators 0).
    Indicator {
        column: String,
        category: String,
        known: Vec<String>,
        share: f64,
    },
    /// Target (mean) encoding of a high-cardinality text column: each category's smoothed mean
    /// target on the training rows; `fallback` (the overall mean) for NULL and unseen values.
    TargetMean {
        categories: Vec<String>,
        means: Vec<f64>,
        fallback: f64,
    },
    /// A date or timestamp as its age in days at `as_of` (days since 1970-01-01, stored with the
    /// model), so "days since last order" keeps its meaning when scored later.
    DaysBefore {
        as_of: f64,
    },
}

impl Encoding {
    /// The encoding for a column of `sql_type`, or a clear error for a type v0.1 cannot use.
    pub fn for_column(column: &str, sql_type: &SqlType) -> Result<Encoding> {
        if sql_type.is_number() {
            Ok(Encoding::Number)
        } else if *sql_type == SqlType::Boolean {
            Ok(Encoding::Boolean)
        } else if *sql_type == SqlType::Text {
            // the categories are known after reading; a placeholder until then
            Ok(Encoding::TargetMean {
                categories: Vec::new(),
                means: Vec::new(),
                fallback: 0.0,
            })
        } else if sql_type.is_time() {
            Ok(Encoding::DaysBefore { as_of: 0.0 })
        } else {
            Err(EngineError::new(
                ErrorKind::NotSupported,
                format!(
                    "feature column \"{column}\" has type {}, which customer_value cannot use as a feature",
                    sql_type.sql_name()
                ),
            )
            .with_detail("Features must be numeric, boolean, text (categories) or date/timestamp columns.")
            .with_hint(format!(
                "Cast the column to a number in a SELECT source, or leave it out with options => '{{\"exclude\": [\"{column}\"]}}'."
            )))
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Number => "number",
            Encoding::Boolean => "boolean",
            Encoding::Indicator { .. } => "one_hot",
            Encoding::TargetMean { .. } => "target_mean",
            Encoding::DaysBefore { .. } => "days_before",
        }
    }

    /// Whether a scoring column of `sql_type` can feed a feature trained with this encoding.
    /// Number features accept any numeric type (a view may cast int to numeric); boolean
    /// features accept only boolean, because 0/1 integers would silently change meaning; a
    /// category needs text, an age a date or timestamp.
    pub fn accepts(&self, sql_type: &SqlType) -> bool {
        match self {
            Encoding::Number => sql_type.is_number(),
            Encoding::Boolean => *sql_type == SqlType::Boolean,
            Encoding::Indicator { .. } | Encoding::TargetMean { .. } => *sql_type == SqlType::Text,
            Encoding::DaysBefore { .. } => sql_type.is_time(),
        }
    }

    /// The encoded value of a text value (`None` = SQL NULL).
    pub fn encode_text(&self, value: Option<&str>) -> f64 {
        match self {
            Encoding::Indicator {
                category,
                known,
                share,
                ..
            } => match value {
                Some(v) if v == category => 1.0,
                Some(v) if known.iter().any(|k| k == v) => 0.0,
                _ => *share,
            },
            Encoding::TargetMean {
                categories,
                means,
                fallback,
            } => value
                .and_then(|v| categories.iter().position(|c| c == v))
                .and_then(|i| means.get(i).copied())
                .unwrap_or(*fallback),
            _ => f64::NAN,
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

impl FeatureSpec {
    /// The column the feature is read from (a one-hot indicator reads its text column).
    pub fn column(&self) -> &str {
        match &self.encoding {
            Encoding::Indicator { column, .. } => column,
            _ => &self.name,
        }
    }
}

/// Feature specs, the dataset, and each feature's distribution as read.
pub type DatasetWithProfiles = (
    Vec<FeatureSpec>,
    Dataset,
    Vec<(String, crate::engine::drift::BinProfile)>,
);

/// Most categories of a text column kept for target encoding (the rest count as unseen).
pub const MAX_CATEGORIES: usize = 1000;
/// Default most categories one-hot encoded; more are target (mean) encoded.
pub const DEFAULT_MAX_ONE_HOT: usize = 10;
/// Smoothing of target encoding: a category's mean is shrunk toward the overall mean as if it
/// had this many more rows at the overall mean.
pub const TARGET_MEAN_SMOOTHING: f64 = 20.0;

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
    /// Per text column: its categories, most frequent first; its values are 1-based codes.
    categories: Vec<Vec<String>>,
    /// The reference time of date features, in days since 1970-01-01; their values arrive as
    /// days since 1970-01-01 too.
    as_of: f64,
    max_one_hot: usize,
    imputation: Vec<(String, Imputation)>,
}

/// How a feature column's NULLs are filled (`options->'impute'`); the value is computed on
/// the training rows, stored with the model and used identically when scoring.
#[derive(Debug, Clone, PartialEq)]
pub enum Imputation {
    Median,
    Mean,
    /// The most frequent value (ties: the smallest).
    Mode,
    Constant(f64),
}

impl Imputation {
    pub fn parse(value: &serde_json::Value) -> Option<Imputation> {
        match value {
            serde_json::Value::String(s) => match s.as_str() {
                "median" => Some(Imputation::Median),
                "mean" => Some(Imputation::Mean),
                "mode" => Some(Imputation::Mode),
                _ => None,
            },
            serde_json::Value::Number(n) => n
                .as_f64()
                .filter(|v| v.is_finite())
                .map(Imputation::Constant),
            _ => None,
        }
    }

    fn value(&self, present: &[f64]) -> f64 {
        match self {
            Imputation::Median => stats::median(present),
            Imputation::Mean => present.iter().sum::<f64>() / present.len().max(1) as f64,
            Imputation::Mode => {
                let mut sorted = present.to_vec();
                sorted.sort_by(f64::total_cmp);
                let (mut best, mut best_n) = (sorted[0], 0usize);
                let mut i = 0;
                while i < sorted.len() {
                    let mut j = i;
                    while j < sorted.len() && sorted[j] == sorted[i] {
                        j += 1;
                    }
                    if j - i > best_n {
                        best = sorted[i];
                        best_n = j - i;
                    }
                    i = j;
                }
                best
            }
            Imputation::Constant(v) => *v,
        }
    }
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
        let categories = vec![Vec::new(); names.len()];
        Ok(RawTable {
            names,
            types,
            target_name: target_name.to_string(),
            columns,
            target: Vec::new(),
            categories,
            as_of: 0.0,
            max_one_hot: DEFAULT_MAX_ONE_HOT,
            imputation: Vec::new(),
        })
    }

    pub fn n_rows(&self) -> usize {
        self.target.len()
    }

    /// The categories of text column `j`, most frequent first (values are 1-based codes).
    pub fn set_categories(&mut self, j: usize, categories: Vec<String>) {
        if let Some(c) = self.categories.get_mut(j) {
            *c = categories;
        }
    }

    /// The reference time of date features (days since 1970-01-01).
    pub fn set_as_of(&mut self, days: f64) {
        self.as_of = days;
    }

    pub fn set_max_one_hot(&mut self, n: usize) {
        self.max_one_hot = n;
    }

    /// How NULLs of named columns are imputed (others: the median).
    pub fn set_imputation(&mut self, rules: Vec<(String, Imputation)>) -> Result<()> {
        for (column, _) in &rules {
            match self.names.iter().position(|n| n == column) {
                None => {
                    return Err(EngineError::new(
                        ErrorKind::UndefinedColumn,
                        format!("option \"impute\" names \"{column}\", which is not a feature column"),
                    )
                    .with_detail(format!("The feature columns are: {}.", self.names.join(", "))))
                }
                Some(j) if self.types[j] == SqlType::Text => {
                    return Err(EngineError::invalid_parameter(format!(
                        "option \"impute\" cannot apply to text column \"{column}\""
                    ))
                    .with_detail("A NULL category is scored like an unseen one: at the training shares (one-hot) or the overall mean (target encoding)."))
                }
                Some(_) => {}
            }
        }
        self.imputation = rules;
        Ok(())
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
        self.into_dataset_with_profiles()
            .map(|(specs, data, _)| (specs, data))
    }

    /// [`RawTable::into_dataset`], plus each feature's distribution before imputation (NULL
    /// kept; a target-encoded column by category code) for drift.
    pub fn into_dataset_with_profiles(mut self) -> Result<DatasetWithProfiles> {
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
        // built column by column (a text column may become several), then laid out by row
        let mut specs: Vec<FeatureSpec> = Vec::new();
        let mut encoded: Vec<Vec<f64>> = Vec::new();
        let mut pending_target_means = Vec::new();
        let mut profiles = Vec::new();
        let profile = crate::engine::drift::BinProfile::of;
        // Memory: each raw column (16 bytes a value) is released as soon as it is encoded, and
        // each encoded column as soon as it is laid out, so the peak stays near two copies of
        // the 8-byte matrix rather than four.
        let raw_columns = std::mem::take(&mut self.columns);
        for (j, column) in raw_columns.into_iter().enumerate() {
            let name = &self.names[j];
            let sql_type = &self.types[j];
            let kept: Vec<Option<f64>> = keep
                .iter()
                .map(|&i| column[i])
                .map(|v| {
                    if sql_type.is_time() {
                        v.map(|days| self.as_of - days)
                    } else {
                        v
                    }
                })
                .collect();
            let present: Vec<f64> = kept.iter().flatten().copied().collect();
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
                let shown = match sql_type {
                    SqlType::Text => format!(
                        "\"{}\"",
                        self.categories[j]
                            .get(first as usize - 1)
                            .map(String::as_str)
                            .unwrap_or("?")
                    ),
                    _ => first.to_string(),
                };
                return Err(EngineError::insufficient_data(format!(
                    "feature column \"{name}\" is constant ({shown}) in every training row"
                ))
                .with_detail("A constant column carries no information about the target.")
                .with_hint(format!(
                    "Leave it out with options => '{{\"exclude\": [\"{name}\"]}}'."
                )));
            }
            if *sql_type == SqlType::Text {
                let categories = &self.categories[j];
                if categories.len() <= self.max_one_hot {
                    // one indicator per category but the most frequent (the reference level)
                    let counts: Vec<usize> = (1..=categories.len())
                        .map(|code| present.iter().filter(|v| **v == code as f64).count())
                        .collect();
                    let total = present.len() as f64;
                    for (c, category) in categories.iter().enumerate().skip(1) {
                        let share = counts[c] as f64 / total;
                        let code = (c + 1) as f64;
                        let values: Vec<f64> = kept
                            .iter()
                            .map(|v| match v {
                                Some(v) => f64::from(u8::from(*v == code)),
                                None => share,
                            })
                            .collect();
                        let as_options: Vec<Option<f64>> =
                            values.iter().map(|v| Some(*v)).collect();
                        profiles.push((format!("{name}={category}"), profile(&as_options)));
                        encoded.push(values);
                        specs.push(FeatureSpec {
                            name: format!("{name}={category}"),
                            sql_type: sql_type.sql_name().to_string(),
                            encoding: Encoding::Indicator {
                                column: name.clone(),
                                category: category.clone(),
                                known: categories.clone(),
                                share,
                            },
                            impute: None,
                        });
                    }
                } else {
                    // codes for now: the means are computed on the training rows only, after the
                    // holdout split (`Dataset::encode_target_means`)
                    pending_target_means.push(encoded.len());
                    profiles.push((name.clone(), profile(&kept)));
                    encoded.push(kept.iter().map(|v| v.unwrap_or(f64::NAN)).collect());
                    specs.push(FeatureSpec {
                        name: name.clone(),
                        sql_type: sql_type.sql_name().to_string(),
                        encoding: Encoding::TargetMean {
                            categories: categories.clone(),
                            means: Vec::new(),
                            fallback: 0.0,
                        },
                        impute: None,
                    });
                }
                continue;
            }
            let rule = self
                .imputation
                .iter()
                .find(|(c, _)| c == name)
                .map_or(&Imputation::Median, |(_, r)| r);
            let impute = rule.value(&present);
            profiles.push((name.clone(), profile(&kept)));
            encoded.push(kept.iter().map(|v| v.unwrap_or(impute)).collect());
            specs.push(FeatureSpec {
                name: name.clone(),
                sql_type: sql_type.sql_name().to_string(),
                encoding: if sql_type.is_time() {
                    Encoding::DaysBefore { as_of: self.as_of }
                } else {
                    Encoding::for_column(name, sql_type)?
                },
                impute: Some(impute),
            });
        }
        let p = encoded.len();
        let mut x = vec![0.0; n * p];
        for (j, column) in encoded.into_iter().enumerate() {
            for (row, v) in column.into_iter().enumerate() {
                x[row * p + j] = v;
            }
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
                pending_target_means,
            },
            profiles,
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
    /// Columns that still hold category codes (NaN: NULL or unseen) and await target encoding.
    pub pending_target_means: Vec<usize>,
}

impl Dataset {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Replaces the category codes of the pending target-encoded columns with each category's
    /// smoothed mean target over `training_rows` (never the holdout, whose metrics would
    /// otherwise see their own targets), and records the means in the feature specs.
    pub fn encode_target_means(&mut self, specs: &mut [FeatureSpec], training_rows: &[usize]) {
        let p = self.n_features;
        for &j in &self.pending_target_means {
            let Some(FeatureSpec {
                encoding:
                    Encoding::TargetMean {
                        categories,
                        means,
                        fallback,
                    },
                ..
            }) = specs.get_mut(j)
            else {
                continue;
            };
            let k = categories.len();
            let (mut sums, mut counts) = (vec![0.0; k], vec![0usize; k]);
            let mut overall = 0.0;
            for &i in training_rows {
                let (code, y) = (self.x[i * p + j], self.y[i]);
                overall += y;
                if code.is_finite() && code >= 1.0 && (code as usize) <= k {
                    sums[code as usize - 1] += y;
                    counts[code as usize - 1] += 1;
                }
            }
            let overall = overall / training_rows.len().max(1) as f64;
            *means = sums
                .iter()
                .zip(&counts)
                .map(|(s, c)| {
                    (s + TARGET_MEAN_SMOOTHING * overall) / (*c as f64 + TARGET_MEAN_SMOOTHING)
                })
                .collect();
            *fallback = overall;
            for i in 0..self.n_rows {
                let code = self.x[i * p + j];
                self.x[i * p + j] = if code.is_finite() && code >= 1.0 && (code as usize) <= k {
                    means[code as usize - 1]
                } else {
                    overall
                };
            }
        }
        self.pending_target_means.clear();
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
            pending_target_means: self.pending_target_means.clone(),
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

#[cfg(test)]
mod encoding_tests {
    use super::*;

    fn table() -> RawTable {
        let mut raw = RawTable::new(
            "y",
            vec![
                ("segment".into(), SqlType::Text),
                ("city".into(), SqlType::Text),
                ("last".into(), SqlType::Date),
            ],
        )
        .unwrap();
        // segment codes: 1 = a (most frequent), 2 = b, 3 = c; city has 12 categories
        raw.set_categories(0, vec!["a".into(), "b".into(), "c".into()]);
        raw.set_categories(1, (0..12).map(|i| format!("c{i}")).collect());
        raw.set_as_of(20_000.0);
        for i in 0..60 {
            let segment = [Some(1.0), Some(1.0), Some(2.0), Some(3.0), None][i % 5];
            let city = Some((i % 12 + 1) as f64);
            let last = Some(20_000.0 - i as f64);
            raw.push_row(&[segment, city, last], Some(i as f64))
                .unwrap();
        }
        raw
    }

    #[test]
    fn one_hot_indicators_skip_the_reference_level_and_give_unknowns_the_shares() {
        let (specs, data) = table().into_dataset().unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["segment=b", "segment=c", "city", "last"]);
        // 48 non-NULL segments: 24 a, 12 b, 12 c → shares 0.25, 0.25
        let Encoding::Indicator { share, .. } = &specs[0].encoding else {
            panic!("indicator expected")
        };
        assert_eq!(*share, 0.25);
        assert_eq!(data.row(0)[..2], [0.0, 0.0]); // a: the reference level
        assert_eq!(data.row(2)[..2], [1.0, 0.0]); // b
        assert_eq!(data.row(4)[..2], [0.25, 0.25]); // NULL: the shares
                                                    // scoring encodes text the same way, and an unseen category like NULL
        assert_eq!(specs[0].encoding.encode_text(Some("b")), 1.0);
        assert_eq!(specs[0].encoding.encode_text(Some("a")), 0.0);
        assert_eq!(specs[0].encoding.encode_text(Some("zzz")), 0.25);
        assert_eq!(specs[0].encoding.encode_text(None), 0.25);
        assert_eq!(specs[0].column(), "segment");
        // dates become ages at as_of: row i was i days before
        assert_eq!(data.row(7)[3], 7.0);
        assert_eq!(specs[3].encoding, Encoding::DaysBefore { as_of: 20_000.0 });
    }

    #[test]
    fn target_means_come_from_the_training_rows_only() {
        let (mut specs, mut data) = table().into_dataset().unwrap();
        assert_eq!(data.pending_target_means, vec![2]);
        // train on rows 0..12 only: city c(k) holds row k − 1 with y = k − 1
        let train: Vec<usize> = (0..12).collect();
        data.encode_target_means(&mut specs, &train);
        let Encoding::TargetMean {
            means, fallback, ..
        } = &specs[2].encoding
        else {
            panic!("target mean expected")
        };
        // overall mean of y 0..11 = 5.5; c1 (code 1) has one row y = 0:
        // (0 + 20 · 5.5) / (1 + 20) = 110 / 21
        assert_eq!(*fallback, 5.5);
        assert!((means[0] - 110.0 / 21.0).abs() < 1e-12);
        // rows outside the training rows use the same means (row 12 is city c1 again)
        assert!((data.row(12)[2] - 110.0 / 21.0).abs() < 1e-12);
        assert_eq!(specs[2].encoding.encode_text(Some("c0")), means[0]);
        assert_eq!(specs[2].encoding.encode_text(Some("nowhere")), 5.5);
        assert!(data.pending_target_means.is_empty());
    }
}
