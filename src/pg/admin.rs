//! Model administration: deploying (and rolling back to) a version, and restricting who may
//! use a model.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::engine::error::{EngineError, ErrorKind};

use super::errors::{raise, OrRaise};
use super::privilege::{as_extension_owner, caller_name, caller_oid};
use super::store;

/// Makes `version` the deployed version of `name`; returns the previously deployed version.
#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn deploy(name: &str, version: i32) -> Option<i32> {
    store::check_writable("deploy").or_raise();
    let exists_at_all = store::check_visible(name).or_raise();
    as_extension_owner(|| {
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
                raise(if exists_at_all {
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
            super::narrow::models_changed();
            previous
        })
    })
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.deploy(text, int) IS
    'Makes a stored version the deployed version of its model (also used to roll back); returns the previously deployed version';
"#,
    name = "deploy_comment",
    requires = [deploy]
);

/// Restricts `name` to members of `roles` (NULL or empty: open to every reader again).
#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn restrict_model(name: Option<&str>, roles: Option<Vec<Option<String>>>) -> i32 {
    let name = super::args::required(name, "model name").or_raise();
    store::check_writable("restrict_model").or_raise();
    if !store::check_visible(name).or_raise() {
        raise(EngineError::new(
            ErrorKind::UndefinedObject,
            format!("model \"{name}\" does not exist"),
        ));
    }
    let caller = caller_name();
    let roles: Vec<String> = roles.unwrap_or_default().into_iter().flatten().collect();
    check_may_restrict(name);
    // every role must exist (42704); they are written by name, each node storing its own id
    for role in &roles {
        role_oid(role);
    }
    as_extension_owner(|| write_access_list(name, &roles, &caller));
    roles.len() as i32
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.restrict_model(text, text[]) IS
    'Restricts who may see and score a model (all versions) to members of these roles; NULL or an empty array opens it to every customer_value_reader again. Allowed to the model''s owner (who trained its first version) and the store''s owner; returns the number of roles';
"#,
    name = "restrict_model_comment",
    requires = [restrict_model]
);

/// Allowed to restrict a model: whoever can act as the author of its first version, and
/// members of the store's owner (e.g. a superuser); anyone else gets 42501.
fn check_may_restrict(name: &str) {
    let (owner, first_author) = Spi::connect(|client| {
        let row = client
            .select(
                "SELECT c.relowner,
                        (SELECT m.author::oid FROM customer_value.models m
                          WHERE m.name = $1 ORDER BY m.version LIMIT 1)
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'customer_value' AND c.relname = 'models'",
                Some(1),
                &[name.into()],
            )
            .or_raise();
        let row = row.first();
        (
            row.get::<pg_sys::Oid>(1).or_raise(),
            row.get::<pg_sys::Oid>(2).or_raise(),
        )
    });
    let user = caller_oid();
    // SAFETY: catalog lookups; a role id that no longer exists has no members.
    let allowed = [owner, first_author]
        .into_iter()
        .flatten()
        .any(|role| unsafe { pg_sys::is_member_of_role(user, role) });
    if !allowed {
        raise(
            EngineError::new(
                ErrorKind::InsufficientPrivilege,
                format!("permission denied to restrict model \"{name}\""),
            )
            .with_detail("Only members of the role that trained its first version, or of the owner of the model store, may change who can use a model."),
        );
    }
}

/// Replaces the model's access list, and the per-row copies row-level security reads (see
/// the policies in finalize.sql). Runs as the store's owner, under the model's lock.
fn write_access_list(name: &str, roles: &[String], granted_by: &str) {
    Spi::connect_mut(|client| {
        store::lock_name(client, name);
        client
            .update(
                "DELETE FROM customer_value.model_access WHERE name = $1",
                None,
                &[name.into()],
            )
            .or_raise();
        for role in roles {
            client
                .update(
                    "INSERT INTO customer_value.model_access (name, role, granted_by)
                     VALUES ($1, $2::pg_catalog.regrole, $3) ON CONFLICT DO NOTHING",
                    None,
                    &[name.into(), role.as_str().into(), granted_by.into()],
                )
                .or_raise();
        }
        let allowed = store::allowed_roles(client, name);
        for (table, column) in [("models", "name"), ("training_runs", "model")] {
            client
                .update(
                    &format!(
                        "UPDATE customer_value.{table} SET allowed_roles = $2::pg_catalog.regrole[]
                          WHERE {column} = $1"
                    ),
                    None,
                    &[name.into(), allowed.clone().into()],
                )
                .or_raise();
        }
    })
}

/// The id of role `name`, or 42704.
fn role_oid(name: &str) -> pg_sys::Oid {
    Spi::connect(|client| {
        client
            .select(
                "SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1",
                Some(1),
                &[name.into()],
            )
            .or_raise()
            .next()
            .and_then(|row| row.get::<pg_sys::Oid>(1).or_raise())
    })
    .unwrap_or_else(|| {
        raise(EngineError::new(
            ErrorKind::UndefinedObject,
            format!("role \"{name}\" does not exist"),
        ))
    })
}

/// The id of the deployed version of `model` (or of `name@version`): a constant for the
/// statement, so `customer_value(c, customer_value.deployed_id('spend'))` pins one version —
/// the form Citus accepts in `UPDATE … SET v = …` on a distributed table (it evaluates this on
/// the coordinator and pushes the immutable by-id call down to the shards).
#[pg_extern(schema = "customer_value", stable, parallel_safe)]
fn deployed_id(model: &str) -> i64 {
    store::resolve(model).or_raise().id
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.deployed_id(text) IS
    'Id of the deployed version of a model (or of name@version), for the pinned form customer_value(c, customer_value.deployed_id(''name'')) that Citus accepts in UPDATE on distributed tables';
"#,
    name = "deployed_id_comment",
    requires = [deployed_id]
);

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

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.model_params(text) IS
    'Fitted parameters of a model (name or name@version): intercept and coefficients by feature for linear models, size for tree ensembles';
"#,
    name = "model_params_comment",
    requires = [model_params]
);

/// Importance of each feature, as measured on the holdout at training: `permutation` (how much
/// the holdout loss — squared error, or log loss for a classifier — grows when the feature's
/// values are shuffled; 0 or below: the model does not rely on it) for every model, and `gain`
/// (share of the boosted trees' total split gain) for gbm. Most important first.
// pgrx reads the output column names from this signature, so the row type cannot be an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(schema = "customer_value", stable, parallel_safe)]
fn feature_importance(
    model: &str,
) -> TableIterator<
    'static,
    (
        name!(feature, String),
        name!(importance, f64),
        name!(method, String),
        name!(rank, i32),
    ),
> {
    let row = store::resolve(model).or_raise();
    let metrics: Option<pgrx::JsonB> = Spi::connect(|client| {
        client
            .select(
                "SELECT metrics FROM customer_value.models WHERE id = $1",
                Some(1),
                &[row.id.into()],
            )
            .or_raise()
            .first()
            .get_one::<pgrx::JsonB>()
            .or_raise()
    });
    let Some(entries) = metrics
        .and_then(|m| m.0.get("feature_importance").cloned())
        .and_then(|v| v.as_array().cloned())
    else {
        raise(
            EngineError::new(
                ErrorKind::NotSupported,
                format!("{} has no feature importance", row.label()),
            )
            .with_detail("CLV models have no learned feature weights, and models trained before customer_value 0.2.0 did not measure them.")
            .with_hint(format!("See customer_value.model_params('{model}'), or retrain the model.")),
        );
    };
    let mut rows: Vec<(String, f64, String)> = Vec::new();
    for method in ["permutation", "gain"] {
        for e in &entries {
            if let (Some(f), Some(v)) = (
                e.get("feature").and_then(|v| v.as_str()),
                e.get(method).and_then(|v| v.as_f64()),
            ) {
                rows.push((f.to_string(), v, method.to_string()));
            }
        }
    }
    let mut ranked = Vec::with_capacity(rows.len());
    for method in ["permutation", "gain"] {
        let mut of_method: Vec<&(String, f64, String)> =
            rows.iter().filter(|r| r.2 == method).collect();
        of_method.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (i, r) in of_method.into_iter().enumerate() {
            ranked.push((r.0.clone(), r.1, r.2.clone(), i as i32 + 1));
        }
    }
    TableIterator::new(ranked)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.feature_importance(text) IS
    'Importance of each feature measured on the holdout at training: permutation (loss increase when shuffled) for every model, gain share for gbm; ranked';
"#,
    name = "feature_importance_comment",
    requires = [feature_importance]
);
