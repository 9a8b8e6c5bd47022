//! Static customer attributes of a log model (`options->'attributes'`): a table, view or query
//! with the log's customer column and the attributes, read once (one cursor) into the engine's
//! [`Attributes`] for the log's customers, and joined into the feature table by the same key.

use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

use crate::engine::error::{EngineError, Result};
use crate::engine::features::{Encoding, RawValue, SqlType};
use crate::engine::purchases::attributes::{AttributeReader, Attributes};
use crate::engine::purchases::PurchaseLog;

use super::columns::raw_value_sql;
use super::errors::OrRaise;
use super::source::{missing_column, resolve_source, scan_values, source_columns, Source};
use super::types::sql_type_of;

/// An attribute source as resolved: its FROM clause, the key and the attribute columns with
/// their SQL types (as the engine reads them, and as Postgres names them).
pub(crate) struct AttributeSource {
    source: Source,
    key: String,
    columns: Vec<(String, SqlType, String)>,
}

impl AttributeSource {
    /// Resolves `source` and checks it has the customer column `key` and usable attributes.
    pub fn resolve(source: &str, key: &str) -> Result<AttributeSource> {
        let resolved = resolve_source(source)?;
        let all = source_columns(&resolved)?;
        if !all.iter().any(|(n, _)| n == key) {
            return Err(missing_column("attributes' customer", key, &all)
                .with_hint("The attributes are joined to the log by its customer column: give it the same name (… AS customer_id)."));
        }
        let mut columns = Vec::new();
        for (name, oid) in all.iter().filter(|(n, _)| n != key) {
            let sql_type = sql_type_of(*oid);
            Encoding::for_column(name, &sql_type)?;
            columns.push((name.clone(), sql_type, type_name(*oid)));
        }
        if columns.is_empty() {
            return Err(EngineError::invalid_parameter(format!(
                "the attributes source \"{source}\" has no column besides \"{key}\""
            )));
        }
        Ok(AttributeSource {
            source: resolved,
            key: key.to_string(),
            columns,
        })
    }

    /// The attributes of `log`'s customers.
    pub fn read(&self, log: &PurchaseLog) -> Result<Attributes> {
        let engine_columns = self
            .columns
            .iter()
            .map(|(n, t, _)| (n.clone(), t.clone()))
            .collect();
        let attributes = Attributes::new(engine_columns, log)?;
        let mut reader = AttributeReader::new(attributes, log, &self.key);
        let mut select = vec![format!("({})::text", quote_identifier(&self.key))];
        select.extend(self.columns.iter().map(|(n, t, _)| raw_value_sql(n, t)));
        scan_values(&self.source.from_clause, &select, &mut |row| {
            match row[0] {
                RawValue::Text(key) => reader.push(&String::from_utf8_lossy(key), &row[1..]),
                _ => Ok(()), // a NULL key matches no customer
            }
        })?;
        Ok(reader.finish())
    }

    /// Column definitions of the attributes in the feature table.
    pub fn definitions(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|(n, _, t)| format!("{} {t}", quote_identifier(n)))
            .collect()
    }

    /// The attribute columns, qualified by `alias`.
    pub fn select_list(&self, alias: &str) -> Vec<String> {
        self.columns
            .iter()
            .map(|(n, _, _)| format!("{alias}.{}", quote_identifier(n)))
            .collect()
    }

    /// A join of the attributes as `alias` on the key's text equal to `key_text`.
    pub fn left_join(&self, alias: &str, key_text: &str) -> String {
        format!(
            "LEFT JOIN (SELECT ({key})::text AS cv_attribute_key, {columns} FROM {from}) AS {alias}
               ON {alias}.cv_attribute_key = {key_text}",
            key = quote_identifier(&self.key),
            columns = self
                .columns
                .iter()
                .map(|(n, _, _)| quote_identifier(n))
                .collect::<Vec<_>>()
                .join(", "),
            from = self.source.from_clause,
        )
    }
}

/// Postgres' name of a type, for a column definition.
fn type_name(oid: pg_sys::Oid) -> String {
    Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.format_type($1, NULL)",
                Some(1),
                &[oid.into()],
            )
            .or_raise()
            .next()
            .and_then(|row| row.get::<String>(1).ok().flatten())
    })
    .unwrap_or_else(|| "text".to_string())
}
