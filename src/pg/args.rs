//! Checks of SQL arguments shared by the functions.

use crate::engine::error::{EngineError, ErrorKind, Result};

/// `value`, or a 22004 error naming `what` when it is NULL.
pub(crate) fn required<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str> {
    value.ok_or_else(|| EngineError::new(ErrorKind::NullValue, format!("{what} must not be NULL")))
}

/// A jsonb options argument, parsed here rather than by pgrx's `JsonB`: Postgres' jsonb holds
/// numbers beyond float8 (`1e400`) and nesting deeper than serde_json's 128 levels, on which
/// pgrx's conversion panics before our code runs (an XX000). Here they are a clear 22023.
pub(crate) struct JsonOptions(std::result::Result<serde_json::Value, String>);

impl JsonOptions {
    /// The options, or why they cannot be read.
    pub fn value(self) -> Result<serde_json::Value> {
        self.0.map_err(|why| {
            EngineError::invalid_parameter(format!("options cannot be read: {why}")).with_hint(
                "Numbers must fit a float8 (about ±1.8e308) and objects nest at most 128 deep.",
            )
        })
    }
}

/// The options of a nullable jsonb argument: NULL reads as no options.
pub(crate) fn options_of(options: Option<JsonOptions>) -> Result<serde_json::Value> {
    options.map_or(Ok(serde_json::Value::Null), JsonOptions::value)
}

impl pgrx::FromDatum for JsonOptions {
    unsafe fn from_polymorphic_datum(
        datum: pgrx::pg_sys::Datum,
        is_null: bool,
        _: pgrx::pg_sys::Oid,
    ) -> Option<JsonOptions> {
        if is_null {
            return None;
        }
        // jsonb's text form (a cstring in the current memory context) is JSON text
        let text: Option<&core::ffi::CStr> =
            pgrx::direct_function_call(pgrx::pg_sys::jsonb_out, &[Some(datum)]);
        let parsed = match text {
            Some(cstr) => {
                let parsed = match cstr.to_str() {
                    Ok(t) => serde_json::from_str(t).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                pgrx::pg_sys::pfree(cstr.as_ptr() as *mut core::ffi::c_void);
                parsed
            }
            None => Err("no text form".to_string()),
        };
        Some(JsonOptions(parsed))
    }
}

unsafe impl pgrx::pgrx_sql_entity_graph::metadata::SqlTranslatable for JsonOptions {
    const TYPE_IDENT: &'static str = pgrx::pgrx_sql_entity_graph::pgrx_resolved_type!(JsonOptions);
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: std::result::Result<
        pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef,
        pgrx::pgrx_sql_entity_graph::metadata::ArgumentError,
    > = Ok(pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: std::result::Result<
        pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef,
        pgrx::pgrx_sql_entity_graph::metadata::ReturnsError,
    > = Ok(pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef::One(
        pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::literal("jsonb"),
    ));
}

unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for JsonOptions {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        // only reached for a non-NULL argument; a NULL reads as no options all the same
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or(JsonOptions(Ok(serde_json::Value::Null)))
    }

    unsafe fn unbox_nullable_arg(
        arg: pgrx::callconv::Arg<'_, 'fcx>,
    ) -> pgrx::nullable::Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}
