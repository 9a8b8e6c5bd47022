//! Static customer attributes (`options->'attributes'`): columns of another table (a segment,
//! a region, a signup channel) joined to the log's customers by the customer key and learnt
//! from beside the log's features. They are the same at every cut-off — the caller vouches
//! that they were known then (an attribute derived from later purchases would leak the future).

use std::collections::HashMap;

use super::snapshot::FEATURES;
use super::PurchaseLog;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{RawValue, SqlType, MAX_CATEGORIES};
use crate::engine::memory::try_filled;

/// An attribute value as stored (a text is owned here, unlike a [`RawValue`]).
#[derive(Debug, Clone, PartialEq)]
enum Stored {
    Null,
    Number(f64),
    Text(Box<[u8]>),
}

impl Stored {
    fn of(value: RawValue<'_>) -> Stored {
        match value {
            RawValue::Null => Stored::Null,
            RawValue::Number(v) => Stored::Number(v),
            RawValue::Text(t) => Stored::Text(t.into()),
        }
    }

    fn raw(&self) -> RawValue<'_> {
        match self {
            Stored::Null => RawValue::Null,
            Stored::Number(v) => RawValue::Number(*v),
            Stored::Text(t) => RawValue::Text(t),
        }
    }
}

/// The attribute columns and each log customer's values (NULL for a customer the attributes
/// do not list).
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    columns: Vec<(String, SqlType)>,
    /// Row-major: `columns.len()` values per log customer.
    values: Vec<Stored>,
    /// Log customers with a row.
    matched: usize,
    /// Attribute rows whose key has no purchase in the log (they cannot be learnt from).
    unmatched: usize,
}

impl Attributes {
    /// No attributes.
    pub fn none() -> Attributes {
        Attributes::default()
    }

    /// Attributes of `columns` for the customers of `log`, to be filled with [`Self::push`].
    /// A column must be a number, boolean or text (a date would need its age at each cut-off)
    /// and must not have a log feature's name.
    pub fn new(columns: Vec<(String, SqlType)>, log: &PurchaseLog) -> Result<Attributes> {
        for (name, sql_type) in &columns {
            if FEATURES.contains(&name.as_str()) {
                return Err(EngineError::new(
                    ErrorKind::DuplicateColumn,
                    format!("attribute column \"{name}\" has the name of a log feature"),
                )
                .with_hint("Rename it in a SELECT source, e.g. SELECT customer_id, segment_spend AS attr_spend FROM ..."));
            }
            if sql_type.is_time() {
                return Err(EngineError::new(
                    ErrorKind::NotSupported,
                    format!(
                        "attribute column \"{name}\" is a {}; attributes are numbers, booleans or text",
                        sql_type.sql_name()
                    ),
                )
                .with_hint("Give an age in days instead (it would change with each cut-off; the log's tenure_days is one)."));
            }
        }
        let values = try_filled(
            columns.len() * log.n_customers(),
            Stored::Null,
            "the attributes",
        )?;
        Ok(Attributes {
            columns,
            values,
            matched: 0,
            unmatched: 0,
        })
    }

    pub fn columns(&self) -> &[(String, SqlType)] {
        &self.columns
    }

    /// Customer `c`'s value of attribute `a`.
    pub fn value(&self, c: usize, a: usize) -> RawValue<'_> {
        self.values
            .get(c * self.columns.len() + a)
            .map_or(RawValue::Null, Stored::raw)
    }

    /// Whether `a` names an attribute column, and which.
    pub fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == column)
    }

    /// The values of text attribute `a` over the log's customers, most frequent first (ties
    /// by value), at most [`MAX_CATEGORIES`]: the categories a model learns (as for a table).
    pub fn categories(&self, a: usize) -> Vec<String> {
        let width = self.columns.len();
        let mut counts: HashMap<&[u8], usize> = HashMap::new();
        for row in self.values.chunks(width.max(1)) {
            if let Some(Stored::Text(t)) = row.get(a) {
                *counts.entry(t).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(t, n)| (String::from_utf8_lossy(t).into_owned(), n))
            .collect();
        ranked.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        ranked.truncate(MAX_CATEGORIES);
        ranked.into_iter().map(|(t, _)| t).collect()
    }

    /// Log customers with a row, and rows without a customer in the log.
    pub fn coverage(&self) -> (usize, usize) {
        (self.matched, self.unmatched)
    }
}

/// Fills [`Attributes`] row by row: each key once.
pub struct AttributeReader<'a> {
    attributes: Attributes,
    index: HashMap<&'a str, usize>,
    seen: Vec<bool>,
    key_column: &'a str,
}

impl<'a> AttributeReader<'a> {
    pub fn new(attributes: Attributes, log: &'a PurchaseLog, key_column: &'a str) -> Self {
        let index = (0..log.n_customers()).map(|c| (log.key(c), c)).collect();
        AttributeReader {
            seen: vec![false; log.n_customers()],
            attributes,
            index,
            key_column,
        }
    }

    /// One attribute row: the customer key as text and its values in column order.
    pub fn push(&mut self, key: &str, values: &[RawValue<'_>]) -> Result<()> {
        let width = self.attributes.columns.len();
        let Some(&c) = self.index.get(key) else {
            self.attributes.unmatched += 1;
            return Ok(());
        };
        if std::mem::replace(&mut self.seen[c], true) {
            return Err(EngineError::new(
                ErrorKind::CardinalityViolation,
                format!(
                    "the attributes have more than one row for customer {key} (column \"{}\")",
                    self.key_column
                ),
            )
            .with_hint("Give one row per customer, e.g. SELECT DISTINCT ON (customer_id) ... ORDER BY customer_id, updated_at DESC."));
        }
        for (a, v) in values.iter().take(width).enumerate() {
            if let RawValue::Number(x) = v {
                if !x.is_finite() {
                    return Err(EngineError::new(
                        ErrorKind::NonFiniteValue,
                        format!(
                            "attribute \"{}\" of customer {key} is {x}",
                            self.attributes.columns[a].0
                        ),
                    ));
                }
            }
            self.attributes.values[c * width + a] = Stored::of(*v);
        }
        self.attributes.matched += 1;
        Ok(())
    }

    pub fn finish(self) -> Attributes {
        self.attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::purchases::PurchaseDay;

    fn log() -> PurchaseLog {
        let mut log = PurchaseLog::default();
        for (key, day) in [("1", 1), ("1", 5), ("2", 3)] {
            let d = PurchaseDay {
                day,
                amount: 10.0,
                refund: 0.0,
                lines: 1,
            };
            log.push(key, d).unwrap();
        }
        log
    }

    #[test]
    fn joins_by_key_and_counts_what_does_not_match() {
        let log = log();
        let columns = vec![
            ("segment".to_string(), SqlType::Text),
            ("age".to_string(), SqlType::Integer),
        ];
        let mut reader = AttributeReader::new(Attributes::new(columns, &log).unwrap(), &log, "id");
        reader
            .push("2", &[RawValue::Text(b"web"), RawValue::Number(41.0)])
            .unwrap();
        reader
            .push("9", &[RawValue::Text(b"shop"), RawValue::Null])
            .unwrap();
        let err = reader
            .push("2", &[RawValue::Text(b"web"), RawValue::Number(41.0)])
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::CardinalityViolation);
        let attributes = reader.finish();
        assert_eq!(attributes.value(1, 0), RawValue::Text(b"web"));
        assert_eq!(attributes.value(1, 1), RawValue::Number(41.0));
        assert_eq!(attributes.value(0, 0), RawValue::Null);
        assert_eq!(attributes.coverage(), (1, 1));
        assert_eq!(attributes.position("age"), Some(1));
        assert_eq!(attributes.categories(0), vec!["web".to_string()]);
    }

    #[test]
    fn feature_names_and_dates_are_refused() {
        let log = log();
        let named = vec![("total_spend".to_string(), SqlType::Double)];
        let err = Attributes::new(named, &log).unwrap_err();
        assert_eq!(err.kind, ErrorKind::DuplicateColumn);
        let dated = vec![("signup".to_string(), SqlType::Date)];
        let err = Attributes::new(dated, &log).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotSupported);
    }
}
