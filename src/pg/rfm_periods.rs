//! `customer_value.rfm_periods(period_start, amount, calibration, calibration_end)`: the
//! aggregate `rfm()`'s query groups the log by customer with. Its state is the engine's
//! [`PurchasePeriods`], allocated in the aggregate's memory context (and dropped when that
//! context is reset, so spilled hash batches and cancels free it); combine, serialise and
//! deserialise make it a parallel (partial) aggregate.
//!
//! The functions take `fcinfo` directly: an `internal` state is a pointer Postgres hands back on
//! every call, and the aggregate context is only known through `AggCheckCallContext`.

use pgrx::fcinfo::{pg_arg_is_null, pg_getarg, pg_getarg_datum_raw};
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;

use crate::engine::clv::purchase_periods::PurchasePeriods;
use crate::engine::error::{EngineError, ErrorKind};

use super::errors::{raise, OrRaise};

/// The aggregate's memory context; an error when called as a plain function.
unsafe fn aggregate_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut context = std::ptr::null_mut();
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut context) } == 0 {
        raise(
            EngineError::new(
                ErrorKind::PrerequisiteState,
                "customer_value.rfm_periods' support functions run only inside the aggregate",
            )
            .with_hint("Call customer_value.rfm_periods(...) or customer_value.rfm(...)."),
        );
    }
    context
}

/// A new state in the aggregate context, dropped when that context is reset or deleted.
unsafe fn new_state(
    fcinfo: pg_sys::FunctionCallInfo,
    state: PurchasePeriods,
) -> *mut PurchasePeriods {
    let context = unsafe { aggregate_context(fcinfo) };
    PgMemoryContexts::For(context).leak_and_drop_on_delete(state)
}

/// Argument `n` as the state pointer it holds, or None for NULL.
unsafe fn state_arg<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    n: usize,
) -> Option<&'a mut PurchasePeriods> {
    unsafe {
        if pg_arg_is_null(fcinfo, n) {
            return None;
        }
        pg_getarg_datum_raw(fcinfo, n)
            .cast_mut_ptr::<PurchasePeriods>()
            .as_mut()
    }
}

/// Argument `n`, a timestamp, as its microseconds; None for NULL.
unsafe fn timestamp_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<i64> {
    unsafe {
        if pg_arg_is_null(fcinfo, n) {
            return None;
        }
        Some(pg_getarg_datum_raw(fcinfo, n).value() as i64)
    }
}

fn internal(state: *mut PurchasePeriods) -> pgrx::Internal {
    pgrx::Internal::from(Some(pg_sys::Datum::from(state)))
}

/// Transition: (state, period_start, amount, calibration, calibration_end). A transaction
/// without a period or side is skipped (rfm()'s query never passes one); a NULL amount counts 0;
/// a NULL calibration_end is an error (22004): t would have no end.
#[pg_extern(sql = false)]
fn cv_rfm_periods_step(fcinfo: pg_sys::FunctionCallInfo) -> pgrx::Internal {
    unsafe {
        let state = state_arg(fcinfo, 0).map(|s| s as *mut PurchasePeriods);
        let period = timestamp_arg(fcinfo, 1);
        let calibration = pg_getarg::<bool>(fcinfo, 3);
        let (Some(period), Some(calibration)) = (period, calibration) else {
            return pgrx::Internal::from(state.map(pg_sys::Datum::from));
        };
        let state = match state {
            Some(state) => state,
            None => {
                let end = timestamp_arg(fcinfo, 4).unwrap_or_else(|| {
                    raise(EngineError::new(
                        ErrorKind::NullValue,
                        "calibration_end of customer_value.rfm_periods must not be NULL",
                    ))
                });
                new_state(fcinfo, PurchasePeriods::new(end))
            }
        };
        let amount = pg_getarg::<f64>(fcinfo, 2).unwrap_or(0.0);
        (*state).add(period, amount, calibration);
        internal(state)
    }
}

/// Combine: merges the second partial state into the first (the second is left as it is).
#[pg_extern(sql = false)]
fn cv_rfm_periods_combine(fcinfo: pg_sys::FunctionCallInfo) -> pgrx::Internal {
    unsafe {
        let first = state_arg(fcinfo, 0);
        let second = state_arg(fcinfo, 1);
        match (first, second) {
            (first, None) => pgrx::Internal::from(first.map(|s| pg_sys::Datum::from(s as *mut _))),
            (None, Some(second)) => internal(new_state(fcinfo, second.clone())),
            (Some(first), Some(second)) => {
                first.merge(second.clone());
                internal(first)
            }
        }
    }
}

/// Serialise: a worker's partial state as bytea for the leader.
#[pg_extern(sql = false)]
fn cv_rfm_periods_serialize(fcinfo: pg_sys::FunctionCallInfo) -> Vec<u8> {
    unsafe {
        state_arg(fcinfo, 0)
            .map(|s| s.to_bytes())
            .unwrap_or_default()
    }
}

/// Deserialise: (bytes, internal) → a state in the leader's aggregate context.
#[pg_extern(sql = false)]
fn cv_rfm_periods_deserialize(fcinfo: pg_sys::FunctionCallInfo) -> pgrx::Internal {
    unsafe {
        let bytes = pg_getarg::<&[u8]>(fcinfo, 0).unwrap_or_default();
        let state = PurchasePeriods::from_bytes(bytes).or_raise();
        internal(new_state(fcinfo, state))
    }
}

/// Final: the customer's summary as float8[] (see `PeriodSummary::to_array` for the order).
#[pg_extern(sql = false)]
fn cv_rfm_periods_final(fcinfo: pg_sys::FunctionCallInfo) -> Option<Vec<f64>> {
    unsafe { state_arg(fcinfo, 0).map(|s| s.finish().to_array().to_vec()) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.rfm_periods_step(internal, timestamp, float8, boolean, timestamp) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_step_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_step(internal, timestamp, float8, boolean, timestamp) IS
    'Transition function of customer_value.rfm_periods';
CREATE FUNCTION customer_value.rfm_periods_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_combine_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_combine(internal, internal) IS
    'Combine function of customer_value.rfm_periods (parallel aggregation)';
CREATE FUNCTION customer_value.rfm_periods_serialize(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_serialize_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_serialize(internal) IS
    'Serialisation function of customer_value.rfm_periods (parallel aggregation)';
CREATE FUNCTION customer_value.rfm_periods_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_deserialize_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_deserialize(bytea, internal) IS
    'Deserialisation function of customer_value.rfm_periods (parallel aggregation)';
CREATE FUNCTION customer_value.rfm_periods_final(internal) RETURNS float8[]
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_rfm_periods_final_wrapper';
COMMENT ON FUNCTION customer_value.rfm_periods_final(internal) IS
    'Final function of customer_value.rfm_periods';
CREATE AGGREGATE customer_value.rfm_periods(period_start timestamp, amount float8, calibration boolean, calibration_end timestamp) (
    SFUNC = customer_value.rfm_periods_step,
    STYPE = internal,
    -- the state without its period vectors (outside the context): what hash aggregation plans with
    SSPACE = 200,
    FINALFUNC = customer_value.rfm_periods_final,
    COMBINEFUNC = customer_value.rfm_periods_combine,
    SERIALFUNC = customer_value.rfm_periods_serialize,
    DESERIALFUNC = customer_value.rfm_periods_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE customer_value.rfm_periods(timestamp, float8, boolean, timestamp) IS
    'One customer''s purchase periods, summarised as rfm() reads them: {distinct calibration periods, seconds from the first to the last, seconds from the first to calibration_end, calibration spend, spend in the first period, calibration transactions, distinct holdout periods, holdout spend}';
"#,
    name = "rfm_periods_sql",
    requires = ["schema"]
);
