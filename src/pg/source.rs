//! Sources of data: a table, view or query named by the user, its columns, and the one cursor
//! reader that streams its rows in bounded batches.

use pgrx::prelude::*;

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::RawValue;

use super::errors::OrRaise;

/// Rows fetched per batch: bounds the memory of the SPI tuple table.
const BATCH_ROWS: i64 = 10_000;

/// A source relation or query, ready to be put after FROM.
pub struct Source {
    pub from_clause: String,
    pub primary_key: Vec<String>,
    /// A relation's schema-qualified name (a query: `None`), so a stored spec resolves the same
    /// relation whatever the search_path of a later (scheduled) retrain.
    pub qualified_name: Option<String>,
}

pub fn looks_like_query(source: &str) -> bool {
    let first = source
        .trim_start()
        .trim_start_matches('(')
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(first.as_str(), "select" | "with" | "values" | "table")
}

pub fn resolve_source(source: &str) -> Result<Source> {
    if looks_like_query(source) {
        return Ok(Source {
            from_clause: format!("({source}) AS cv_source"),
            primary_key: key_columns_of_query(source),
            qualified_name: None,
        });
    }
    let oid: Option<pg_sys::Oid> = Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.to_regclass($1)::oid",
                Some(1),
                &[source.into()],
            )
            .or_raise()
            .first()
            .get_one::<pg_sys::Oid>()
            .or_raise()
    });
    let missing = || {
        EngineError::new(
            ErrorKind::UndefinedTable,
            format!("source relation \"{source}\" does not exist"),
        )
        .with_hint("Give a table or view name (schema-qualified if needed) or a SELECT query.")
    };
    let Some(oid) = oid else {
        return Err(missing());
    };
    // held to the end of the transaction, as the read that follows would: a concurrent DROP
    // waits, or has happened and the names below are not found
    unsafe { pg_sys::LockRelationOid(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE) };
    let names: Option<(String, String)> = Spi::connect(|client| {
        let table = client
            .select(
                "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                        c.oid::pg_catalog.regclass::text
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = $1",
                Some(1),
                &[oid.into()],
            )
            .or_raise();
        table.into_iter().next().and_then(|row| {
            row.get::<String>(1)
                .ok()
                .flatten()
                .zip(row.get::<String>(2).ok().flatten())
        })
    });
    let Some((qualified_name, name)) = names else {
        return Err(missing());
    };
    let primary_key = Spi::connect(|client| {
        client
            .select(
                "SELECT a.attname::text FROM pg_catalog.pg_index i
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                  WHERE i.indrelid = $1 AND i.indisprimary",
                None,
                &[oid.into()],
            )
            .or_raise()
            .filter_map(|r| r.get::<String>(1).ok().flatten())
            .collect::<Vec<_>>()
    });
    Ok(Source {
        // the same alias as a query source, so `cv_source` is the whole row in both
        from_clause: format!("{name} AS cv_source"),
        primary_key,
        qualified_name: Some(qualified_name),
    })
}

/// The output columns of `query` that are, unchanged, a column of a table's primary key — as
/// for a table source, they are no features (`SELECT * FROM t TABLESAMPLE …` must not learn from
/// t's id). Postgres' parse analysis records each output column's origin table and column (what
/// it sends clients in a row description); a computed column has none.
fn key_columns_of_query(query: &str) -> Vec<String> {
    let Ok(text) = std::ffi::CString::new(query) else {
        return Vec::new();
    };
    let origins: Vec<(String, pg_sys::Oid, i16)> = Spi::connect(|_client| {
        // SAFETY: inside an SPI connection; SPI_prepare raises a Postgres ERROR for a bad query
        // (reported as for any source); the plan and its lists are only read, then freed.
        unsafe {
            let plan = pg_sys::SPI_prepare(text.as_ptr(), 0, std::ptr::null_mut());
            if plan.is_null() {
                return Vec::new();
            }
            let mut found = Vec::new();
            let sources = pgrx::PgList::<pg_sys::CachedPlanSource>::from_pg(
                pg_sys::SPI_plan_get_plan_sources(plan),
            );
            if let Some(source) = sources.get_ptr(sources.len().saturating_sub(1)) {
                let queries = pgrx::PgList::<pg_sys::Query>::from_pg((*source).query_list);
                if let Some(query) = queries.get_ptr(queries.len().saturating_sub(1)) {
                    let targets = pgrx::PgList::<pg_sys::TargetEntry>::from_pg((*query).targetList);
                    for entry in targets.iter_ptr() {
                        let entry = &*entry;
                        if entry.resjunk
                            || entry.resname.is_null()
                            || entry.resorigtbl == pg_sys::InvalidOid
                        {
                            continue;
                        }
                        let name = std::ffi::CStr::from_ptr(entry.resname)
                            .to_string_lossy()
                            .into_owned();
                        found.push((name, entry.resorigtbl, entry.resorigcol));
                    }
                }
            }
            pg_sys::SPI_freeplan(plan);
            found
        }
    });
    origins
        .into_iter()
        .filter(|(_, table, column)| {
            Spi::connect(|client| {
                client
                    .select(
                        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                                         WHERE i.indrelid = $1 AND i.indisprimary
                                           AND $2::int2 = ANY (i.indkey::int2[]))",
                        Some(1),
                        &[(*table).into(), (*column).into()],
                    )
                    .or_raise()
                    .first()
                    .get_one::<bool>()
                    .or_raise()
                    .unwrap_or(false)
            })
        })
        .map(|(name, _, _)| name)
        .collect()
}

/// Column names and types of the source, from a plan that returns no rows.
pub fn source_columns(source: &Source) -> Result<Vec<(String, pg_sys::Oid)>> {
    let columns = Spi::connect(|client| {
        let table = client
            .select(
                &format!("SELECT * FROM {} LIMIT 0", source.from_clause),
                None,
                &[],
            )
            .or_raise();
        let n = table.columns().or_raise();
        (1..=n)
            .map(|i| {
                (
                    table.column_name(i).or_raise(),
                    table.column_type_oid(i).or_raise().value(),
                )
            })
            .collect::<Vec<_>>()
    });
    for (i, (name, _)) in columns.iter().enumerate() {
        if columns[..i].iter().any(|(n, _)| n == name) {
            return Err(EngineError::new(
                ErrorKind::DuplicateColumn,
                format!("source has more than one column named \"{name}\""),
            )
            .with_hint("Give every column a distinct name (… AS name) in the SELECT."));
        }
    }
    Ok(columns)
}

pub fn missing_column(what: &str, name: &str, columns: &[(String, pg_sys::Oid)]) -> EngineError {
    EngineError::new(
        ErrorKind::UndefinedColumn,
        format!("{what} column \"{name}\" does not exist in the source"),
    )
    .with_detail(format!(
        "The source's columns are: {}.",
        columns
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The planner's estimate of a table source's rows (`pg_class.reltuples`, times the share of a
/// sample), when it has one: checked against the training memory budget before any row is
/// read. A view's or a query's rows are only counted as they arrive (an estimate through joins
/// and filters can be far off); so are a table never analyzed and a Citus distributed table
/// (whose coordinator holds no statistics of the shards).
pub fn estimated_rows(source: &Source, sample: Option<f64>) -> Option<u64> {
    let relation = source.qualified_name.as_deref()?;
    let rows: Option<f64> = Spi::connect(|client| {
        client
            .select(
                "SELECT (SELECT c.reltuples::float8 FROM pg_catalog.pg_class c
                          WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('r', 'm'))",
                Some(1),
                &[relation.into()],
            )
            .or_raise()
            .first()
            .get_one::<f64>()
            .or_raise()
    });
    let rows = rows? * sample.unwrap_or(1.0);
    (rows.is_finite() && rows >= 1.0).then_some(rows as u64)
}

/// Streams `SELECT <columns> FROM <source>` through a cursor, `BATCH_ROWS` at a time, checking
/// for interrupts between batches. Each column must be float8 or text (see
/// [`super::columns::raw_value_sql`]); `on_row` gets the row's values as read. This module's one
/// reader of user data: memory stays bounded by the batch, whatever the source's size.
pub fn scan_values(
    from_clause: &str,
    columns: &[String],
    on_row: &mut dyn FnMut(&[RawValue<'_>]) -> Result<()>,
) -> Result<()> {
    let query = format!("SELECT {} FROM {}", columns.join(", "), from_clause);
    let cursor = Spi::connect(|client| client.open_cursor(query.as_str(), &[]).detach_into_name());
    let max_rows = super::guc::MAX_TRAINING_ROWS.get().max(0) as usize;
    let mut rows_read = 0usize;
    loop {
        pgrx::check_for_interrupts!();
        let fetched = Spi::connect(|client| -> Result<usize> {
            let mut cursor = client.find_cursor(&cursor).or_raise();
            let batch = cursor.fetch(BATCH_ROWS).or_raise();
            let n = batch.len();
            rows_read += n;
            if rows_read > max_rows {
                return Err(too_many_rows(max_rows));
            }
            if n > 0 {
                // SAFETY: `batch` keeps SPI_tuptable alive; it holds n tuples.
                unsafe { deform_batch(pg_sys::SPI_tuptable, n, columns.len(), on_row)? };
            }
            let _ = &batch; // the tuple table stays valid up to here
            if n > 0 {
                cursor.detach_into_name();
            }
            Ok(n)
        })?;
        if fetched == 0 {
            return Ok(());
        }
    }
}

/// [`scan_values`] for columns that are all float8: each value as a number (NULL: `None`).
pub fn scan_columns(
    from_clause: &str,
    columns: &[String],
    on_row: &mut dyn FnMut(&[Option<f64>]) -> Result<()>,
) -> Result<()> {
    let mut numbers: Vec<Option<f64>> = vec![None; columns.len()];
    scan_values(from_clause, columns, &mut |values| {
        for (slot, value) in numbers.iter_mut().zip(values) {
            *slot = match value {
                RawValue::Null => None,
                RawValue::Number(v) => Some(*v),
                RawValue::Text(_) => return Err(not_float8_or_text()),
            };
        }
        on_row(&numbers)
    })
}

fn too_many_rows(max_rows: usize) -> EngineError {
    EngineError::new(
        ErrorKind::TooManyRows,
        format!("the source has more than {max_rows} rows (customer_value.max_training_rows)"),
    )
    .with_detail("Training and evaluation hold the rows they read in memory.")
    .with_hint("Train on a sample drawn where the rows are stored, e.g. options => '{\"sample\": 0.1}' (a table source), or raise customer_value.max_training_rows.")
}

fn not_float8_or_text() -> EngineError {
    EngineError::new(
        ErrorKind::Internal,
        "a scan reads float8 columns (and text where it asks for them)",
    )
}

/// Deforms the `n` tuples of an SPI tuple table once each, in place (~4× faster than a typed
/// get per value), and hands each row's values to `on_row`.
///
/// # Safety
/// `table` must be a valid SPI tuple table holding `n` tuples, alive for the whole call.
unsafe fn deform_batch(
    table: *mut pg_sys::SPITupleTable,
    n: usize,
    width: usize,
    on_row: &mut dyn FnMut(&[RawValue<'_>]) -> Result<()>,
) -> Result<()> {
    unsafe {
        let tupdesc = (*table).tupdesc;
        let natts = (*tupdesc).natts as usize;
        let attrs = (*tupdesc).attrs.as_slice(natts);
        let text: Vec<bool> = attrs
            .iter()
            .map(|a| a.atttypid == pg_sys::TEXTOID)
            .collect();
        if natts != width
            || attrs
                .iter()
                .any(|a| a.atttypid != pg_sys::FLOAT8OID && a.atttypid != pg_sys::TEXTOID)
        {
            return Err(not_float8_or_text());
        }
        let mut datums = vec![pg_sys::Datum::from(0usize); natts];
        let mut nulls = vec![false; natts];
        let mut row: Vec<RawValue<'_>> = Vec::with_capacity(natts);
        for r in 0..n {
            let tuple = *(*table).vals.add(r);
            pg_sys::heap_deform_tuple(tuple, tupdesc, datums.as_mut_ptr(), nulls.as_mut_ptr());
            row.clear();
            for j in 0..natts {
                row.push(if nulls[j] {
                    RawValue::Null
                } else if text[j] {
                    let packed = pg_sys::pg_detoast_datum_packed(datums[j].cast_mut_ptr());
                    RawValue::Text(pgrx::varlena::varlena_to_byte_slice(packed))
                } else {
                    RawValue::Number(f64::from_bits(datums[j].value() as u64))
                });
            }
            on_row(&row)?;
        }
        Ok(())
    }
}

/// `source` restricted to the share `sample` of its rows (option `sample`), drawn where the
/// rows are stored: `TABLESAMPLE BERNOULLI … REPEATABLE (seed)` on a table, which Citus runs on
/// each shard. A query or a view cannot be sampled this way (say so, and how).
pub fn sampled(source: Source, sample: Option<f64>, seed: u64) -> Result<Source> {
    let Some(share) = sample else {
        return Ok(source);
    };
    let refuse = |what: &str| {
        Err(EngineError::new(
            ErrorKind::NotSupported,
            format!("option \"sample\" needs a table as the source, not {what}"),
        )
        .with_hint("Sample inside the query instead, e.g. 'SELECT * FROM customers TABLESAMPLE BERNOULLI (10) REPEATABLE (42)'."))
    };
    let Some(relation) = source.qualified_name.as_deref() else {
        return refuse("a query");
    };
    let kind: Option<String> = Spi::connect(|client| {
        client
            .select(
                "SELECT relkind::text FROM pg_catalog.pg_class WHERE oid = pg_catalog.to_regclass($1)",
                Some(1),
                &[relation.into()],
            )
            .or_raise()
            .next()
            .and_then(|row| row.get::<String>(1).ok().flatten())
    });
    if !matches!(kind.as_deref(), Some("r" | "p" | "m")) {
        return refuse("a view");
    }
    Ok(Source {
        from_clause: format!(
            "{} TABLESAMPLE BERNOULLI ({:?}) REPEATABLE ({})",
            source.from_clause,
            share * 100.0,
            seed % (1 << 31)
        ),
        ..source
    })
}
