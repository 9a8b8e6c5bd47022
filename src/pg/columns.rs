//! How the glue reads a column's raw value — a number (numbers as they are, booleans as 0/1,
//! dates and timestamps as days since 1970-01-01), a text, or NULL — in its two forms: as SQL
//! for the cursor reads of training, evaluation and drift ([`raw_value_sql`]), and from a datum
//! for scoring rows in place ([`Reader`]). What a raw value means for a model is the engine's
//! business (`engine::features::FeatureEncoder`).

use pgrx::pg_sys;
use pgrx::spi::quote_identifier;

use crate::engine::features::{FeatureSpec, SqlType};

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

/// A model feature's raw value in SQL, read from a column of `sql_type`: an array element at
/// its position in the array as the model reads it (see [`element_value_sql`]), any other
/// feature as [`raw_value_sql`] of its column.
pub fn feature_value_sql(feature: &FeatureSpec, sql_type: &SqlType) -> String {
    match feature.array_element() {
        Some((shape, position)) => element_value_sql(feature.column(), position, shape.length),
        None => raw_value_sql(feature.column(), sql_type),
    }
}

/// Position `position` (0-based, oldest first) of array column `column` as a model of arrays
/// of `length` reads it — the array's last `length` elements, padded on the left with 0 — as
/// float8; NULL for a NULL array. The arrays' shape is checked before (`array_stats_sql`).
pub fn element_value_sql(column: &str, position: usize, length: usize) -> String {
    let c = quote_identifier(column);
    let back = length.saturating_sub(position + 1);
    format!(
        "(CASE WHEN {c} IS NULL THEN NULL ELSE COALESCE(({c})[pg_catalog.array_upper({c}, 1) - {back}]::float8, 0) END)"
    )
}

/// One row of the shape of array column `column` over a source (an `ArrayStats`): the
/// shortest and longest array, the rows with a NULL element and the most dimensions.
pub fn array_stats_sql(column: &str, from_clause: &str) -> String {
    let c = quote_identifier(column);
    format!(
        "SELECT pg_catalog.min(pg_catalog.cardinality({c}))::int8,
                pg_catalog.max(pg_catalog.cardinality({c}))::int8,
                pg_catalog.count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest({c}) AS e WHERE e IS NULL)),
                COALESCE(pg_catalog.max(pg_catalog.array_ndims({c})), 0)::int8
           FROM {from_clause}"
    )
}

/// How to read the elements of an array column of numbers in place (scoring).
#[derive(Debug, Clone, Copy)]
pub struct ArrayReader {
    element: Reader,
    element_type: pg_sys::Oid,
    length: i16,
    by_value: bool,
    align: std::ffi::c_char,
}

impl ArrayReader {
    /// The reader of arrays of `type_id`, when it is an array type of numbers.
    pub fn for_type(type_id: pg_sys::Oid) -> Option<ArrayReader> {
        // SAFETY: catalog lookups; each returns InvalidOid or fills the out-parameters
        unsafe {
            let element_type = pg_sys::get_element_type(pg_sys::getBaseType(type_id));
            if element_type == pg_sys::InvalidOid {
                return None;
            }
            let sql_type = super::types::sql_type_of(element_type);
            let element = Reader::for_type(&sql_type).filter(|_| sql_type.is_number())?;
            let (mut length, mut by_value, mut align) = (0i16, false, 0 as std::ffi::c_char);
            pg_sys::get_typlenbyvalalign(element_type, &mut length, &mut by_value, &mut align);
            Some(ArrayReader {
                element,
                element_type,
                length,
                by_value,
                align,
            })
        }
    }

    /// Reads the elements of the (non-NULL) array `datum` into `out`, in storage order, NULL
    /// elements as `None`; returns its number of dimensions.
    ///
    /// # Safety
    /// `datum` must be a non-NULL array of the type this reader was made for.
    pub unsafe fn read(&self, datum: pg_sys::Datum, out: &mut Vec<Option<f64>>) -> usize {
        unsafe {
            let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
            let mut values: *mut pg_sys::Datum = std::ptr::null_mut();
            let mut nulls: *mut bool = std::ptr::null_mut();
            let mut n: i32 = 0;
            pg_sys::deconstruct_array(
                array,
                self.element_type,
                self.length.into(),
                self.by_value,
                self.align,
                &mut values,
                &mut nulls,
                &mut n,
            );
            out.clear();
            for k in 0..n.max(0) as usize {
                out.push(if *nulls.add(k) {
                    None
                } else {
                    Some(self.element.read(*values.add(k)))
                });
            }
            if !values.is_null() {
                pg_sys::pfree(values.cast());
            }
            if !nulls.is_null() {
                pg_sys::pfree(nulls.cast());
            }
            (*array).ndim.max(0) as usize
        }
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
            SqlType::NumberArray(_) | SqlType::Other(_) => return None,
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
