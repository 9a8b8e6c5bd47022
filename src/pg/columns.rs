//! How the glue reads a column's raw value — a number (numbers as they are, booleans as 0/1,
//! dates and timestamps as days since 1970-01-01), a text, or NULL — in its two forms: as SQL
//! for the cursor reads of training, evaluation and drift ([`raw_value_sql`]), and from a datum
//! for scoring rows in place ([`Reader`]). What a raw value means for a model is the engine's
//! business (`engine::features::FeatureEncoder`).

use pgrx::pg_sys;
use pgrx::spi::quote_identifier;

use crate::engine::features::SqlType;

/// `column` of `sql_type` as its raw value in SQL: float8, or text for a text column.
pub fn raw_value_sql(column: &str, sql_type: &SqlType) -> String {
    let quoted = quote_identifier(column);
    if *sql_type == SqlType::Boolean {
        format!("({quoted})::int::float8")
    } else if sql_type.is_time() {
        format!("(pg_catalog.date_part('epoch', {quoted}) / 86400)::float8")
    } else if *sql_type == SqlType::Text {
        format!("({quoted})::text")
    } else {
        format!("({quoted})::float8")
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Reader {
    Float8,
    Float4,
    Int2,
    Int4,
    Int8,
    Numeric,
    Bool,
    /// date: days since 2000-01-01 (int4)
    Date,
    /// timestamp / timestamptz: microseconds since 2000-01-01 (int8)
    Timestamp,
    /// text-like: read through the slot's category map
    Text,
}

/// Days from 1970-01-01 to 2000-01-01, Postgres' date and timestamp epoch.
const POSTGRES_EPOCH_DAYS: f64 = 10_957.0;

impl Reader {
    pub fn for_type(sql_type: &SqlType) -> Option<Reader> {
        Some(match sql_type {
            SqlType::Double => Reader::Float8,
            SqlType::Real => Reader::Float4,
            SqlType::SmallInt => Reader::Int2,
            SqlType::Integer => Reader::Int4,
            SqlType::BigInt => Reader::Int8,
            SqlType::Numeric => Reader::Numeric,
            SqlType::Boolean => Reader::Bool,
            SqlType::Date => Reader::Date,
            SqlType::Timestamp | SqlType::TimestampTz => Reader::Timestamp,
            SqlType::Text => Reader::Text,
            SqlType::Other(_) => return None,
        })
    }

    #[inline]
    pub unsafe fn read(self, datum: pg_sys::Datum) -> f64 {
        match self {
            Reader::Float8 => f64::from_bits(datum.value() as u64),
            Reader::Float4 => f32::from_bits(datum.value() as u32) as f64,
            Reader::Int2 => datum.value() as i16 as f64,
            Reader::Int4 => datum.value() as i32 as f64,
            Reader::Int8 => datum.value() as i64 as f64,
            Reader::Bool => {
                if datum.value() & 0xff != 0 {
                    1.0
                } else {
                    0.0
                }
            }
            Reader::Numeric => unsafe {
                pgrx::direct_function_call::<f64>(pg_sys::numeric_float8, &[Some(datum)])
                    .unwrap_or(f64::NAN)
            },
            // days since 1970-01-01, like the training read (extract(epoch …) / 86400);
            // ±infinity dates become non-finite and are refused below
            Reader::Date => match datum.value() as i32 {
                i32::MAX => f64::INFINITY,
                i32::MIN => f64::NEG_INFINITY,
                d => d as f64 + POSTGRES_EPOCH_DAYS,
            },
            Reader::Timestamp => match datum.value() as i64 {
                i64::MAX => f64::INFINITY,
                i64::MIN => f64::NEG_INFINITY,
                us => us as f64 / 86_400_000_000.0 + POSTGRES_EPOCH_DAYS,
            },
            Reader::Text => f64::NAN,
        }
    }
}
