//! Feature schema and the training table: which columns a model reads, how each value is
//! encoded as a number, and how a missing value is imputed. The same [`FeatureSpec`]s are stored
//! inside the model bytes and applied at scoring time, so training and scoring cannot disagree.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{EngineError, ErrorKind, Result};

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
    /// A one-dimensional array of numbers (e.g. `integer[]`), by its SQL name: an array feature
    /// ([`ArrayShape`]).
    NumberArray(String),
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
            SqlType::NumberArray(name) | SqlType::Other(name) => name,
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
    /// Position `position` (0-based, oldest first) of a numeric array column, in arrays of
    /// `length` elements (`pad`: shorter ones padded on the left with 0, longer ones cut to their
    /// last elements; see [`ArrayShape`]). Appended: stored models decode by index.
    Element {
        column: String,
        position: u32,
        length: u32,
        pad: bool,
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
        } else if let SqlType::NumberArray(_) = sql_type {
            // the shape is known after the pre-pass over the training rows
            Ok(Encoding::Element {
                column: column.to_string(),
                position: 0,
                length: 0,
                pad: false,
            })
        } else {
            Err(EngineError::new(
                ErrorKind::NotSupported,
                format!(
                    "feature column \"{column}\" has type {}, which customer_value cannot use as a feature",
                    sql_type.sql_name()
                ),
            )
            .with_detail("Features must be numeric, boolean, text (categories), date/timestamp or numeric array columns.")
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
            Encoding::Element { .. } => "array_element",
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
            Encoding::Element { .. } => matches!(sql_type, SqlType::NumberArray(_)),
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
            Encoding::Indicator { column, .. } | Encoding::Element { column, .. } => column,
            _ => &self.name,
        }
    }

    /// The array shape and position of an array element feature.
    pub fn array_element(&self) -> Option<(ArrayShape, usize)> {
        match &self.encoding {
            Encoding::Element {
                position,
                length,
                pad,
                ..
            } => Some((
                ArrayShape {
                    length: *length as usize,
                    pad: *pad,
                },
                *position as usize,
            )),
            _ => None,
        }
    }
}

/// Most categories of a text column kept for target encoding (the rest count as unseen).
pub const MAX_CATEGORIES: usize = 1000;
/// Default most categories one-hot encoded; more are target (mean) encoded.
pub const DEFAULT_MAX_ONE_HOT: usize = 10;
/// Smoothing of target encoding: a category's mean is shrunk toward the overall mean as if it
/// had this many more rows at the overall mean.
pub const TARGET_MEAN_SMOOTHING: f64 = 20.0;

mod array;
mod dataset;
mod encoder;
mod table;

pub use array::{ArrayShape, ArrayStats, MAX_ARRAY_LENGTH};
pub use dataset::{Dataset, F32Rows};
pub use encoder::{encoders, FeatureEncoder, Purpose, RawValue};
pub use table::{DatasetWithProfiles, Imputation, RawTable};

/// The `features` jsonb: the schema a scoring row must match.
pub fn schema_json(features: &[FeatureSpec]) -> Value {
    Value::Array(
        features
            .iter()
            .map(|f| {
                let mut entry = json!({
                    "name": f.name,
                    "column": f.column(),
                    "type": f.sql_type,
                    "encoding": f.encoding.name(),
                    "impute": match (&f.encoding, f.impute) {
                        (Encoding::Indicator { .. }, _) => "category share",
                        (Encoding::TargetMean { .. }, _) => "overall mean",
                        (_, Some(_)) => "training value",
                        (_, None) => "refuse",
                    },
                    "impute_value": f.impute,
                });
                match &f.encoding {
                    Encoding::Indicator { category, .. } => {
                        entry["category"] = json!(category);
                    }
                    Encoding::TargetMean { categories, .. } => {
                        entry["categories"] = json!(categories.len());
                    }
                    Encoding::DaysBefore { as_of } => {
                        entry["as_of_epoch_days"] = json!(as_of);
                    }
                    Encoding::Element {
                        position,
                        length,
                        pad,
                        ..
                    } => {
                        entry["position"] = json!(position + 1);
                        entry["length"] = json!(length);
                        entry["pad"] = json!(pad);
                    }
                    _ => {}
                }
                entry
            })
            .collect(),
    )
}
