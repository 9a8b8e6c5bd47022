//! `customer_value.rfm(...)`: from a transaction log to the RFM summary the CLV models use,
//! computed set-based by Postgres. Rust validates the inputs (with clear errors) and writes the
//! query (`customer_value.rfm_query`); a PL/pgSQL wrapper runs it with `RETURN QUERY EXECUTE`,
//! so millions of transactions stream through Postgres' executor into a tuplestore.
//!
//! Definitions (documented in docs/clv.md, "RFM definitions"):
//! - purchases are collapsed to one per customer per `period` (day by default), values summed
//!   (refunds included);
//! - `frequency` = purchase periods in calibration − 1 (the first purchase is not a repeat);
//! - `recency` = time from the first to the last purchase period, `t` = time from the first
//!   purchase period to `calibration_end`, in `time_unit`s (weeks by default);
//! - `monetary_value` = mean value of the repeat purchase periods (0 without repeats);
//! - `calibration_end` is inclusive: a value at midnight means that whole day.
//!
//! Times are compared as local wall-clock timestamps (in the session's TimeZone): across a
//! daylight-saving change a day is still one day, so recency and t come out in whole days.

use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

use serde_json::Value;

use crate::engine::clv::rfm_options::RfmOptions;
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::SqlType;

use super::args::required;
use super::errors::OrRaise;
use super::source::{missing_column, resolve_source, source_columns};
use super::types::{sql_type_of, type_name};

/// Builds the summary query. `$1` is calibration_end (timestamptz), `$2` holdout_end (or NULL).
/// The summary query and the SQL type of the customer key it returns as text.
struct RfmQuery {
    sql: String,
    key_type: String,
    /// The log's schema-qualified name when it is a relation (not a query).
    relation: Option<String>,
    /// Option `holdout_end` ($2), as given.
    holdout_end: Option<String>,
}

fn build_query(
    source: &str,
    customer_column: &str,
    time_column: &str,
    amount_column: &str,
    options: &Value,
) -> Result<RfmQuery> {
    let o = RfmOptions::parse(options)?;
    let source = resolve_source(source)?;
    let columns = source_columns(&source)?;
    let key_type = check_log_columns(&columns, customer_column, time_column, amount_column)?;
    let sql = summary_sql(
        &source.from_clause,
        (customer_column, time_column, amount_column),
        &o,
    );
    Ok(RfmQuery {
        sql,
        key_type,
        relation: source.qualified_name.clone(),
        holdout_end: o.holdout_end,
    })
}

/// Checks that the log has the three columns, a date or timestamp time and a numeric amount;
/// returns the SQL type of the customer key.
pub(crate) fn check_log_columns(
    columns: &[(String, pg_sys::Oid)],
    customer_column: &str,
    time_column: &str,
    amount_column: &str,
) -> Result<String> {
    let type_of = |what: &str, name: &str| -> Result<pg_sys::Oid> {
        columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| missing_column(what, name, columns))
    };
    let key_type = type_name(type_of("customer", customer_column)?);
    let time_type = unsafe { pg_sys::getBaseType(type_of("time", time_column)?) };
    if ![
        pg_sys::DATEOID,
        pg_sys::TIMESTAMPOID,
        pg_sys::TIMESTAMPTZOID,
    ]
    .contains(&time_type)
    {
        return Err(EngineError::new(
            ErrorKind::DatatypeMismatch,
            format!(
                "time column \"{time_column}\" has type {}; it must be a date or timestamp",
                type_name(time_type)
            ),
        )
        .with_hint(format!("Convert it in a SELECT source, e.g. to_date({time_column}::text, 'YYYYMMDD') AS {time_column}.")));
    }
    let amount_type = sql_type_of(type_of("amount", amount_column)?);
    if !amount_type.is_number() || amount_type == SqlType::Boolean {
        return Err(EngineError::new(
            ErrorKind::DatatypeMismatch,
            format!(
                "amount column \"{amount_column}\" has type {}; it must be numeric",
                amount_type.sql_name()
            ),
        ));
    }
    Ok(key_type)
}

/// The summary query over `from` (customer, time and amount columns as named). `$1` is
/// calibration_end (timestamptz), `$2` holdout_end (or NULL).
fn summary_sql(from: &str, (customer, time, amount): (&str, &str, &str), o: &RfmOptions) -> String {
    // qualified: the query joins the source with its own bounds
    let (c, t, a) = (
        format!("cv_source.{}", quote_identifier(customer)),
        format!("cv_source.{}", quote_identifier(time)),
        format!("cv_source.{}", quote_identifier(amount)),
    );
    let period = o.period;
    let unit_seconds = o.unit_days * 86_400.0;
    // "whole day" rule: a bound at midnight includes that day
    let cutoff = |bound: &str| {
        format!("CASE WHEN {bound} = date_trunc('day', {bound}) THEN {bound} + interval '1 day' ELSE {bound} + interval '1 microsecond' END")
    };
    // One hash aggregation by customer and no join or sort: the aggregate rfm_periods
    // (src/pg/rfm_periods.rs) collapses each customer's transactions into purchase periods on
    // both sides of the cut-off. The key keeps its own type until the output (grouping by text
    // would compare with the collation).
    format!(
        "WITH bounds AS (
    SELECT given.c AS calibration_end,
           {cal_cut} AS calibration_cut,
           {hold_cut} AS holdout_cut
      FROM (SELECT $1::timestamptz::timestamp AS c, $2::timestamptz::timestamp AS h) AS given
), customers AS (
    SELECT {c} AS customer,
           customer_value.rfm_periods(date_trunc('{period}', ({t})::timestamp),
                                      ({a})::float8,
                                      ({t})::timestamp < bounds.calibration_cut,
                                      bounds.calibration_end) AS p,
           min(({t})::timestamp) AS first_purchase,
           max(({t})::timestamp) FILTER (WHERE ({t})::timestamp < bounds.calibration_cut) AS last_purchase
      FROM {from}, bounds
     WHERE {c} IS NOT NULL AND {t} IS NOT NULL
       AND ({t})::timestamp < coalesce(bounds.holdout_cut, bounds.calibration_cut)
     GROUP BY 1
)
SELECT c.customer::text,
       (c.p[1] - 1)::int AS frequency,
       c.p[2] / {unit_seconds} AS recency,
       c.p[3] / {unit_seconds} AS t,
       -- in numeric: the difference of two float sums would show binary rounding (11.769999…)
       CASE WHEN c.p[1] > 1
            THEN ((c.p[4]::numeric - c.p[5]::numeric) / (c.p[1] - 1)::numeric)::float8
            ELSE 0 END AS monetary_value,
       c.first_purchase::timestamptz,
       c.last_purchase::timestamptz,
       c.p[4] AS total_spend,
       c.p[1]::int AS purchases,
       c.p[6]::bigint AS transactions,
       CASE WHEN b.holdout_cut IS NULL THEN NULL ELSE c.p[7]::int END AS holdout_purchases,
       CASE WHEN b.holdout_cut IS NULL THEN NULL ELSE c.p[8] END AS holdout_spend
  FROM customers c, bounds b
 WHERE c.p[1] > 0",
        cal_cut = cutoff("given.c"),
        hold_cut = cutoff("given.h"),
    )
}

/// The SQL `customer_value.rfm()` runs for these arguments ($1 = calibration_end,
/// $2 = holdout_end). Validates the columns and options with clear errors.
#[pg_extern(schema = "customer_value", stable, parallel_unsafe)]
fn rfm_query(
    source: Option<&str>,
    customer_column: Option<&str>,
    time_column: Option<&str>,
    amount_column: Option<&str>,
    options: default!(Option<super::args::JsonOptions>, "'{}'"),
) -> String {
    // not STRICT (options may be NULL): every other NULL is the caller's error, 22004
    let options = super::args::options_of(options).or_raise();
    build_query(
        required(source, "source").or_raise(),
        required(customer_column, "customer_column").or_raise(),
        required(time_column, "time_column").or_raise(),
        required(amount_column, "amount_column").or_raise(),
        &options,
    )
    .or_raise()
    .sql
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.rfm_query(text, text, text, text, jsonb) IS
    'The SQL that customer_value.rfm() runs for these arguments ($1 = calibration_end, $2 = holdout_end)';
"#,
    name = "rfm_query_comment",
    requires = [rfm_query]
);

extension_sql!(
    r#"
CREATE FUNCTION customer_value.rfm(
    source text, customer_column text, time_column text, amount_column text,
    calibration_end timestamptz, options jsonb DEFAULT '{}')
RETURNS TABLE (customer text, frequency int, recency float8, t float8, monetary_value float8,
               first_purchase timestamptz, last_purchase timestamptz, total_spend float8,
               purchases int, transactions bigint, holdout_purchases int, holdout_spend float8)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
AS $fn$
BEGIN
    IF calibration_end IS NULL THEN
        RAISE EXCEPTION 'calibration_end must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- a holdout that ends before the calibration would silently cut the calibration short
    IF (options ->> 'holdout_end')::timestamptz <= calibration_end THEN
        RAISE EXCEPTION 'option "holdout_end" (%) must be after calibration_end (%)',
            options ->> 'holdout_end', calibration_end
            USING ERRCODE = '22023',
                  HINT = 'The holdout is the period after the calibration: purchases after calibration_end up to holdout_end.';
    END IF;
    RETURN QUERY EXECUTE customer_value.rfm_query(source, customer_column, time_column, amount_column, options)
        USING calibration_end, (options ->> 'holdout_end')::timestamptz;
END
$fn$;

COMMENT ON FUNCTION customer_value.rfm(text, text, text, text, timestamptz, jsonb) IS
    'RFM summary of a transaction log, one row per customer: frequency (repeat purchase periods), recency (age at last purchase), t (age at calibration end), monetary_value (mean repeat purchase value), first/last purchase, total spend, purchases, transactions, and holdout purchases/spend up to options->>''holdout_end''';
"#,
    name = "rfm_sql",
    requires = [rfm_query]
);

/// A holdout must end after the calibration (else it would silently cut the calibration short).
fn check_holdout_end(
    calibration_end: pgrx::datum::TimestampWithTimeZone,
    holdout_end: Option<&str>,
) -> Result<()> {
    let Some(holdout_end) = holdout_end else {
        return Ok(());
    };
    let after = Spi::connect(|client| {
        client
            .select(
                "SELECT $2::timestamptz > $1",
                Some(1),
                &[calibration_end.into(), holdout_end.into()],
            )
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
            .unwrap_or(true)
    });
    if after {
        return Ok(());
    }
    Err(EngineError::invalid_parameter(format!(
        "option \"holdout_end\" ({holdout_end}) must be after calibration_end"
    ))
    .with_hint("The holdout is the period after the calibration: purchases after calibration_end up to holdout_end."))
}

/// Materialises an RFM summary as a table whose key column keeps its source name and type
/// (a set-returning function cannot name its columns after its arguments). Returns the number
/// of customers.
#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn create_rfm(
    table_name: Option<&str>,
    source: Option<&str>,
    customer_column: Option<&str>,
    time_column: Option<&str>,
    amount_column: Option<&str>,
    calibration_end: Option<pgrx::datum::TimestampWithTimeZone>,
    options: default!(Option<super::args::JsonOptions>, "'{}'"),
) -> i64 {
    super::store::check_not_standby("create_rfm").or_raise();
    // not STRICT (options may be NULL): every other NULL is the caller's error, 22004
    let table_name = required(table_name, "table_name").or_raise();
    let source = required(source, "source").or_raise();
    let customer_column = required(customer_column, "customer_column").or_raise();
    let time_column = required(time_column, "time_column").or_raise();
    let amount_column = required(amount_column, "amount_column").or_raise();
    let calibration_end = calibration_end.unwrap_or_else(|| {
        super::errors::raise(EngineError::new(
            ErrorKind::NullValue,
            "calibration_end must not be NULL",
        ))
    });
    let options = super::args::options_of(options).or_raise();
    let query = build_query(
        source,
        customer_column,
        time_column,
        amount_column,
        &options,
    )
    .or_raise();
    check_holdout_end(calibration_end, query.holdout_end.as_deref()).or_raise();
    let table_name = quoted_table_name(table_name);
    create_summary_table(&table_name, customer_column, &query, calibration_end).or_raise()
}

/// The table name as Postgres parses an identifier (optionally schema-qualified), each part
/// quoted: nothing but a name can reach the DDL.
pub(crate) fn quoted_table_name(table_name: &str) -> String {
    Spi::connect(|client| {
        client
            .select(
                "SELECT string_agg(quote_ident(part), '.' ORDER BY n) FROM unnest(parse_ident($1)) WITH ORDINALITY AS p(part, n)",
                Some(1),
                &[table_name.into()],
            )
            .or_raise()
            .first()
            .get_one::<String>()
            .or_raise()
            .unwrap_or_default()
    })
}

/// Creates `table_name` holding the summary with the customer key under its source name and
/// type, as primary key; returns the number of customers. On Citus, a summary of a
/// distributed log is distributed by the customer key too, colocated with the log when the log
/// is distributed by that column: each shard's customers are summarised where they are stored.
fn create_summary_table(
    table_name: &str,
    customer_column: &str,
    query: &RfmQuery,
    calibration_end: pgrx::datum::TimestampWithTimeZone,
) -> Result<i64> {
    let key = quote_identifier(customer_column);
    let select = format!(
        "SELECT r.customer::{key_type} AS {key}, r.frequency, r.recency, r.t, r.monetary_value,
                r.first_purchase, r.last_purchase, r.total_spend, r.purchases, r.transactions,
                r.holdout_purchases, r.holdout_spend
           FROM ({query}) AS r",
        key_type = query.key_type,
        query = query.sql,
    );
    let colocation = super::citus::hash_distribution(query.relation.as_deref());
    let params = || -> Vec<pgrx::datum::DatumWithOid<'_>> {
        vec![calibration_end.into(), query.holdout_end.clone().into()]
    };
    Ok(Spi::connect_mut(|client| {
        let no_data = if colocation.is_some() {
            " WITH NO DATA"
        } else {
            ""
        };
        let create = format!("CREATE TABLE {table_name} AS {select}{no_data}");
        client.update(&create, None, &params()).or_raise();
        client
            .update(
                &format!("ALTER TABLE {table_name} ADD PRIMARY KEY ({key})"),
                None,
                &[],
            )
            .or_raise();
        if let Some(log) = &colocation {
            super::citus::distribute_like_log(client, table_name, customer_column, log);
            client
                .update(
                    &format!("INSERT INTO {table_name} {select}"),
                    None,
                    &params(),
                )
                .or_raise();
        }
        client
            .select(&format!("SELECT count(*) FROM {table_name}"), None, &[])
            .or_raise()
            .first()
            .get_one::<i64>()
            .or_raise()
            .unwrap_or(0)
    }))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.create_rfm(text, text, text, text, text, timestamptz, jsonb) IS
    'Creates a table holding customer_value.rfm(...) with the customer key under its source column name and type, as primary key; returns the number of customers';
"#,
    name = "create_rfm_comment",
    requires = [create_rfm]
);
