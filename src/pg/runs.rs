//! The run log: every training, retrain and failed attempt as one row of
//! `customer_value.training_runs`, written as the extension's owner.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

use crate::engine::error::{EngineError, ErrorKind};

use super::errors::{raise, OrRaise};
use super::store;

/// What a training run wrote and why: one row of `customer_value.training_runs`.
pub(crate) struct RunRecord<'a> {
    pub model: &'a str,
    pub version: Option<i32>,
    pub kind: &'static str,
    pub started: TimestampWithTimeZone,
    pub rows_read: Option<i64>,
    pub metrics: Option<Value>,
    pub champion_version: Option<i32>,
    pub champion_metrics: Option<Value>,
    pub decision: &'static str,
    pub reason: Option<String>,
    pub error: Option<(String, String)>,
}

pub(crate) fn now() -> TimestampWithTimeZone {
    Spi::connect(|client| {
        client
            .select("SELECT pg_catalog.clock_timestamp()", Some(1), &[])
            .or_raise()
            .first()
            .get_one::<TimestampWithTimeZone>()
            .or_raise()
    })
    .unwrap_or_else(|| {
        raise(EngineError::new(
            ErrorKind::Internal,
            "clock_timestamp() is NULL",
        ))
    })
}

pub(crate) fn record_run(run: &RunRecord<'_>) {
    let (error, sqlstate) = match &run.error {
        Some((sqlstate, message)) => (Some(message.clone()), Some(sqlstate.clone())),
        None => (None, None),
    };
    super::privilege::as_extension_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "INSERT INTO customer_value.training_runs
                       (model, version, kind, started, finished, rows_read, metrics,
                        champion_version, champion_metrics, decision, reason, error, sqlstate, run_by,
                        allowed_roles)
                     VALUES ($1, $2, $3, $4, pg_catalog.clock_timestamp(), $5, $6, $7, $8, $9, $10, $11, $12, $13,
                             $14::pg_catalog.regrole[])",
                    None,
                    &[
                        run.model.into(),
                        run.version.into(),
                        run.kind.into(),
                        run.started.into(),
                        run.rows_read.into(),
                        run.metrics.clone().map(JsonB).into(),
                        run.champion_version.into(),
                        run.champion_metrics.clone().map(JsonB).into(),
                        run.decision.into(),
                        run.reason.clone().into(),
                        error.into(),
                        sqlstate.into(),
                        super::privilege::caller_name().into(),
                        store::allowed_roles(client, run.model).into(),
                    ],
                )
                .or_raise();
        })
    });
}
