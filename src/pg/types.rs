//! SQL type identification shared by training and scoring.

use std::ffi::CStr;

use pgrx::pg_sys;

use crate::engine::features::SqlType;

/// The engine's view of a column type (domains resolve to their base type).
pub fn sql_type_of(type_oid: pg_sys::Oid) -> SqlType {
    let base = unsafe { pg_sys::getBaseType(type_oid) };
    match base {
        pg_sys::INT2OID => SqlType::SmallInt,
        pg_sys::INT4OID => SqlType::Integer,
        pg_sys::INT8OID => SqlType::BigInt,
        pg_sys::FLOAT4OID => SqlType::Real,
        pg_sys::FLOAT8OID => SqlType::Double,
        pg_sys::NUMERICOID => SqlType::Numeric,
        pg_sys::BOOLOID => SqlType::Boolean,
        // char(n) is left out: its padding differs between ::text (training) and its raw bytes
        pg_sys::TEXTOID | pg_sys::VARCHAROID => SqlType::Text,
        pg_sys::DATEOID => SqlType::Date,
        pg_sys::TIMESTAMPOID => SqlType::Timestamp,
        pg_sys::TIMESTAMPTZOID => SqlType::TimestampTz,
        other if is_number_array(other) => SqlType::NumberArray(type_name(other)),
        other => SqlType::Other(type_name(other)),
    }
}

/// Whether `base` is an array type of numbers (`integer[]`, `numeric[]`, …; of a domain over a
/// number too).
fn is_number_array(base: pg_sys::Oid) -> bool {
    let element = unsafe { pg_sys::get_element_type(base) };
    element != pg_sys::InvalidOid && sql_type_of(element).is_number()
}

/// `format_type_be`: the SQL spelling of a type.
pub fn type_name(type_oid: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::format_type_be(type_oid);
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}
