//! Model administration: deploying (and rolling back to) a version.

use pgrx::prelude::*;

use crate::engine::error::{EngineError, ErrorKind};

use super::errors::{raise, OrRaise};
use super::store;

/// Makes `version` the deployed version of `name`; returns the previously deployed version.
#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn deploy(name: &str, version: i32) -> Option<i32> {
    Spi::connect_mut(|client| {
        store::lock_name(client, name);
        let exists = client
            .select(
                "SELECT 1 FROM customer_value.models WHERE name = $1 AND version = $2",
                None,
                &[name.into(), version.into()],
            )
            .or_raise()
            .len()
            == 1;
        if !exists {
            let any: bool = !client
                .select(
                    "SELECT 1 FROM customer_value.models WHERE name = $1",
                    None,
                    &[name.into()],
                )
                .or_raise()
                .is_empty();
            raise(if any {
                EngineError::new(
                    ErrorKind::UndefinedObject,
                    format!("model \"{name}\" has no version {version}"),
                )
                .with_hint("See customer_value.model_summary for its versions.")
            } else {
                EngineError::new(
                    ErrorKind::UndefinedObject,
                    format!("model \"{name}\" does not exist"),
                )
            });
        }
        let previous: Option<i32> = client
            .update(
                "UPDATE customer_value.models SET deployed = false
                  WHERE name = $1 AND deployed RETURNING version",
                None,
                &[name.into()],
            )
            .or_raise()
            .next()
            .and_then(|row| row.get::<i32>(1).or_raise());
        client
            .update(
                "UPDATE customer_value.models SET deployed = true WHERE name = $1 AND version = $2",
                None,
                &[name.into(), version.into()],
            )
            .or_raise();
        previous
    })
}

/// The fitted parameters of a model (`name`, `name@version`): for linear models the intercept
/// and one coefficient per feature; for tree ensembles their size.
#[pg_extern(schema = "customer_value", stable, parallel_safe)]
fn model_params(model: &str) -> pgrx::JsonB {
    let row = store::resolve(model).or_raise();
    let loaded = store::load(&row).or_raise();
    let mut params = loaded.params();
    if let Some(map) = params.as_object_mut() {
        map.insert("model".into(), serde_json::json!(row.name));
        map.insert("version".into(), serde_json::json!(row.version));
    }
    pgrx::JsonB(params)
}
