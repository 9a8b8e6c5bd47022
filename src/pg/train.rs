//! `customer_value.train(name, source, target, algorithm, options)`: reads the source, trains
//! with the engine (`fit`), stores a new version and deploys it when it is at least as good as
//! the serving one. Everything happens in the caller's transaction, so a failed or cancelled
//! training leaves no partial rows and the previous version serving.

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::engine::model_name::check_model_name;
use crate::engine::models::Algorithm;
use crate::engine::options::TrainOptions;

use super::args::required;
use super::errors::OrRaise;
use super::fit::{fit_from_source, Spec};
use super::runs::{now, record_run, RunRecord};
use super::store::{self, DeployDecision};

#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn train(
    name: Option<&str>,
    source: Option<&str>,
    target: Option<&str>,
    algorithm: default!(Option<&str>, "'auto'"),
    options: default!(Option<super::args::JsonOptions>, "'{}'"),
) -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(version, i32),
        name!(algorithm, String),
        name!(metrics, JsonB),
        name!(deployed, bool),
        name!(id, i64),
    ),
> {
    let started = now();
    let name = required(name, "model name").or_raise();
    check_model_name(name).or_raise();
    store::check_writable("train").or_raise();
    let source_text = required(source, "source").or_raise();
    let algorithm = Algorithm::parse(algorithm.unwrap_or("auto")).or_raise();
    let options_json = super::args::options_of(options).or_raise();
    let parsed = TrainOptions::parse(&options_json, algorithm).or_raise();
    let spec = Spec::new(source_text, target, algorithm, options_json).or_raise();
    let fitted = fit_from_source(&spec, &parsed, None).or_raise();
    let outcome = &fitted.outcome;
    let stored = store::insert_version(
        name,
        source_text,
        &spec.to_json(&fitted.qualified_source),
        &super::privilege::caller_name(),
        outcome,
        &fitted.profile,
        &fitted.options,
        DeployDecision::VersusServing,
    )
    .or_raise();
    let metrics = outcome.metrics_json(&fitted.options);
    record_run(&RunRecord {
        model: name,
        version: Some(stored.version),
        kind: "train",
        started,
        rows_read: Some(fitted.rows_read as i64),
        metrics: Some(metrics.clone()),
        champion_version: stored.serving_version,
        champion_metrics: None,
        decision: if stored.deployed {
            "deployed"
        } else {
            "not_deployed"
        },
        reason: Some(stored.reason.clone()),
        error: None,
    });
    TableIterator::once((
        name.to_string(),
        stored.version,
        outcome.artifact.algorithm.name().to_string(),
        JsonB(metrics),
        stored.deployed,
        stored.id,
    ))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.train(text, text, text, text, jsonb) IS
    'Trains a new version of a model from a table, view or SELECT, stores it with holdout metrics and tiers, and deploys it if at least as good as the deployed version; returns name, version, algorithm, metrics, deployed, id';
"#,
    name = "train_comment",
    requires = [train]
);
