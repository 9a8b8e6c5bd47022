//! Citus: where this node reads the model store from, and which node may write it.
//!
//! On a Citus cluster `customer_value.distribute()` makes the store's tables reference tables:
//! every node holds a full copy (a "placement", a local table named `<table>_<shardid>`), kept
//! consistent by Citus's two-phase commit. Scoring runs inside shard queries on the workers,
//! where Citus refuses any distributed query (its executor's `EnsureTaskExecutionAllowed`), so
//! scoring reads the local placement directly instead of the distributed table. Without Citus,
//! or before the store is distributed, the store is the plain local table and nothing changes:
//! the check is one catalog-cache lookup.

use std::cell::RefCell;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::engine::error::{EngineError, ErrorKind, Result};

use super::errors::OrRaise;

/// The store's main table as seen by every other module.
pub const MODELS: &str = "customer_value.models";

/// Where this node reads `customer_value.models` from in the current statement.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreLocation {
    /// The plain local table: no Citus, or Citus on a coordinator without a placement (then
    /// Citus routes the read), or a store not distributed yet.
    Local { citus_worker: bool },
    /// A reference table's placement on this node, e.g. `customer_value.models_102040`.
    Placement(String),
}

impl StoreLocation {
    /// The relation to name in a query that reads the models.
    pub fn models(&self) -> &str {
        match self {
            StoreLocation::Local { .. } => MODELS,
            StoreLocation::Placement(shard) => shard,
        }
    }

    /// A model missing here may be missing only because the store was never distributed:
    /// this node is a Citus worker reading its own, empty, local table.
    pub fn undistributed_worker(&self) -> bool {
        matches!(self, StoreLocation::Local { citus_worker: true })
    }
}

/// The location, cached for the statement it was found in (a statement never sees the store
/// move; the next one looks again, so `distribute()` takes effect in every open session).
struct Cached {
    statement: (u32, i64),
    location: StoreLocation,
}

thread_local! {
    static CACHED: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// Identifies the current top-level statement: the local transaction and its statement start.
fn statement_key() -> (u32, i64) {
    // SAFETY: MyProc is set for every backend and parallel worker that runs SQL; the statement
    // start timestamp is a plain global read.
    unsafe {
        let lxid = if pg_sys::MyProc.is_null() {
            0
        } else {
            (*pg_sys::MyProc).lxid
        };
        (lxid, pg_sys::GetCurrentStatementStartTimestamp())
    }
}

/// Whether the Citus extension's catalog exists in this database (a catalog-cache lookup).
pub fn citus_installed() -> bool {
    // SAFETY: get_relname_relid is a syscache lookup with no side effects.
    unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::PG_CATALOG_NAMESPACE.into(),
        ) != pg_sys::Oid::INVALID
    }
}

/// Where to read `customer_value.models` from in this statement.
pub fn store_location() -> StoreLocation {
    if !citus_installed() {
        return StoreLocation::Local {
            citus_worker: false,
        };
    }
    let key = statement_key();
    if let Some(location) = CACHED.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|c| c.statement == key)
            .map(|c| c.location.clone())
    }) {
        return location;
    }
    let location = look_up_location();
    CACHED.with(|c| {
        *c.borrow_mut() = Some(Cached {
            statement: key,
            location: location.clone(),
        })
    });
    location
}

fn look_up_location() -> StoreLocation {
    // Citus's own catalogs are plain local tables on every node (metadata is synced to the
    // workers), so reading them is allowed inside a shard query.
    Spi::connect(|client| {
        let row = client
            .select(
                "SELECT (SELECT s.shardid FROM pg_catalog.pg_dist_shard s
                          WHERE s.logicalrelid = 'customer_value.models'::pg_catalog.regclass
                          LIMIT 1)",
                Some(1),
                &[],
            )
            .or_raise();
        let row = row.first();
        let shard = row.get::<i64>(1).or_raise();
        let worker = is_worker(client);
        match shard {
            None => StoreLocation::Local {
                citus_worker: worker,
            },
            Some(shard) => {
                let placement = format!("customer_value.models_{shard}");
                let exists = client
                    .select(
                        "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
                        Some(1),
                        &[placement.as_str().into()],
                    )
                    .or_raise()
                    .first()
                    .get_one::<bool>()
                    .or_raise()
                    .unwrap_or(false);
                if exists {
                    StoreLocation::Placement(placement)
                } else {
                    StoreLocation::Local {
                        citus_worker: worker,
                    }
                }
            }
        }
    })
}

/// Whether `relation` (schema-qualified) is a Citus distributed or reference table.
pub fn is_distributed_relation(relation: Option<&str>) -> bool {
    let Some(relation) = relation else {
        return false;
    };
    if !citus_installed() {
        return false;
    }
    Spi::connect(|client| {
        client
            .select(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
                                 WHERE logicalrelid = pg_catalog.to_regclass($1))",
                Some(1),
                &[relation.into()],
            )
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
            .unwrap_or(false)
    })
}

/// The schema-qualified name and distribution column of `relation` when it is a Citus
/// hash-distributed table.
pub fn hash_distribution(relation: Option<&str>) -> Option<(String, String)> {
    let relation = relation?;
    if !citus_installed() {
        return None;
    }
    Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.column_to_column_name(logicalrelid, partkey)
                   FROM pg_catalog.pg_dist_partition
                  WHERE logicalrelid = pg_catalog.to_regclass($1) AND partmethod = 'h'",
                Some(1),
                &[relation.into()],
            )
            .or_raise()
            .next()
            .and_then(|row| row.get::<String>(1).or_raise())
    })
    .map(|column| (relation.to_string(), column))
}

/// Distributes a new per-customer table derived from a log that [`hash_distribution`] found
/// distributed (`log`, its distribution column): by `customer_column`, colocated with the log
/// when the log is distributed by that column, so each shard's customers stay where they are.
pub fn distribute_like_log(
    client: &mut pgrx::spi::SpiClient<'_>,
    table_name: &str,
    customer_column: &str,
    (log, distribution_column): &(String, String),
) {
    let colocate_with = if distribution_column == customer_column {
        log.as_str()
    } else {
        "default"
    };
    client
        .update(
            "SELECT pg_catalog.create_distributed_table($1::regclass, $2, colocate_with => $3)",
            None,
            &[
                table_name.into(),
                customer_column.into(),
                colocate_with.into(),
            ],
        )
        .or_raise();
}

/// Whether this node is a Citus worker (its group is not the coordinator's, 0).
fn is_worker(client: &pgrx::spi::SpiClient<'_>) -> bool {
    client
        .select(
            "SELECT coalesce((SELECT g.groupid <> 0 FROM pg_catalog.pg_dist_local_group g), false)",
            Some(1),
            &[],
        )
        .or_raise()
        .first()
        .get_one::<bool>()
        .or_raise()
        .unwrap_or(false)
}

/// The error for a model looked up on a worker whose store was never distributed.
pub fn not_distributed(name: &str) -> EngineError {
    EngineError::new(
        ErrorKind::PrerequisiteState,
        format!("model \"{name}\" is not on this Citus worker: the model store is not distributed"),
    )
    .with_detail("Scoring runs on the workers next to the data; they read the models from their own copy of the store.")
    .with_hint("Run SELECT customer_value.distribute(); on the coordinator (once), then score again.")
}

/// Refuses a change of the store on a Citus worker: the coordinator owns the store's writes.
pub fn require_coordinator(what: &str) -> Result<()> {
    if !citus_installed() {
        return Ok(());
    }
    if Spi::connect(is_worker) {
        return Err(EngineError::new(
            ErrorKind::NotSupported,
            format!("{what} must run on the Citus coordinator, not on a worker"),
        )
        .with_detail("The model store is written on the coordinator; Citus copies every change to all nodes in one distributed transaction.")
        .with_hint("Connect to the coordinator and run it there."));
    }
    Ok(())
}

/// The store's tables, in the order `distribute()` turns them into reference tables.
const STORE_TABLES: [&str; 3] = ["model_access", "models", "training_runs"];

/// A role-typed column's values as text, captured before a table is distributed and written
/// back after: a role id means nothing on another node, a role name does (Citus creates every
/// role on every node), so each node stores its own id of the same role.
struct RoleColumns {
    table: &'static str,
    /// (key, text of each role column)
    rows: Vec<(String, Vec<Option<String>>)>,
}

fn capture_roles(client: &pgrx::spi::SpiClient<'_>, table: &'static str) -> RoleColumns {
    let query = match table {
        "model_access" => {
            "SELECT name || E'\\x1f' || role::text, ARRAY[role::text, granted_by::text, granted_at::text]
               FROM customer_value.model_access"
        }
        "models" => {
            "SELECT id::text, ARRAY[author::text, allowed_roles::text]
               FROM customer_value.models WHERE author IS NOT NULL OR allowed_roles IS NOT NULL"
        }
        _ => {
            "SELECT id::text, ARRAY[allowed_roles::text]
               FROM customer_value.training_runs WHERE allowed_roles IS NOT NULL"
        }
    };
    let rows = client
        .select(query, None, &[])
        .or_raise()
        .map(|row| {
            (
                row.get::<String>(1).or_raise().unwrap_or_default(),
                row.get::<Vec<Option<String>>>(2)
                    .or_raise()
                    .unwrap_or_default(),
            )
        })
        .collect();
    RoleColumns { table, rows }
}

fn restore_roles(client: &mut pgrx::spi::SpiClient<'_>, captured: &RoleColumns) {
    let text = |values: &[Option<String>], i: usize| values.get(i).cloned().flatten();
    if captured.table == "model_access" {
        client
            .update("DELETE FROM customer_value.model_access", None, &[])
            .or_raise();
    }
    for (key, values) in &captured.rows {
        let (query, args): (&str, Vec<pgrx::datum::DatumWithOid<'_>>) = match captured.table {
            "model_access" => (
                "INSERT INTO customer_value.model_access (name, role, granted_by, granted_at)
                 VALUES ($1, $2::pg_catalog.regrole, $3, $4::timestamptz)",
                vec![
                    key.split('\u{1f}').next().unwrap_or_default().into(),
                    text(values, 0).into(),
                    text(values, 1).into(),
                    text(values, 2).into(),
                ],
            ),
            "models" => (
                "UPDATE customer_value.models
                    SET author = $2::pg_catalog.regrole, allowed_roles = $3::pg_catalog.regrole[]
                  WHERE id = $1::bigint",
                vec![
                    key.as_str().into(),
                    text(values, 0).into(),
                    text(values, 1).into(),
                ],
            ),
            _ => (
                "UPDATE customer_value.training_runs SET allowed_roles = $2::pg_catalog.regrole[]
                  WHERE id = $1::bigint",
                vec![key.as_str().into(), text(values, 0).into()],
            ),
        };
        client.update(query, None, &args).or_raise();
    }
}

fn distribute_store() -> Result<Vec<(String, String)>> {
    check_may_distribute()?;
    Ok(Spi::connect_mut(|client| {
        // Citus's notices about copying the rows and the local copy left on disk say nothing
        // the caller must act on (the local copy is freed below)
        let messages = client_min_messages(client);
        set_client_min_messages(client, "warning");
        let done = STORE_TABLES
            .iter()
            .map(|&table| (table.to_string(), make_reference_table(client, table)))
            .collect();
        set_client_min_messages(client, &messages);
        done
    }))
}

/// Citus installed, on the coordinator, and the caller a member of the store's owner.
fn check_may_distribute() -> Result<()> {
    if !citus_installed() {
        return Err(EngineError::new(
            ErrorKind::PrerequisiteState,
            "the Citus extension is not installed in this database",
        )
        .with_hint("customer_value.distribute() is for Citus clusters: CREATE EXTENSION citus first (citus must be in shared_preload_libraries)."));
    }
    require_coordinator("customer_value.distribute()")?;
    let owner_member = Spi::connect(|client| {
        client
            .select(
                "SELECT pg_catalog.pg_has_role(CURRENT_USER, c.relowner, 'MEMBER')
                   FROM pg_catalog.pg_class c
                  WHERE c.oid = 'customer_value.models'::pg_catalog.regclass",
                Some(1),
                &[],
            )
            .or_raise()
            .first()
            .get_one::<bool>()
            .or_raise()
            .unwrap_or(false)
    });
    if !owner_member {
        return Err(EngineError::new(
            ErrorKind::InsufficientPrivilege,
            "permission denied to distribute the model store",
        )
        .with_detail("Only the owner of the customer_value extension's tables (or a member of that role) may distribute them."));
    }
    Ok(())
}

fn client_min_messages(client: &mut pgrx::spi::SpiClient<'_>) -> String {
    client
        .update(
            "SELECT pg_catalog.current_setting('client_min_messages')",
            Some(1),
            &[],
        )
        .or_raise()
        .first()
        .get_one::<String>()
        .or_raise()
        .unwrap_or_else(|| "notice".into())
}

fn set_client_min_messages(client: &mut pgrx::spi::SpiClient<'_>, level: &str) {
    client
        .update(
            "SELECT pg_catalog.set_config('client_min_messages', $1, true)",
            None,
            &[level.into()],
        )
        .or_raise();
}

/// Makes one store table a reference table (its roles re-written by name on every node) and
/// says what was done.
fn make_reference_table(client: &mut pgrx::spi::SpiClient<'_>, table: &'static str) -> String {
    let relation = format!("customer_value.{table}");
    if is_distributed_relation(Some(&relation)) {
        return "already a reference table".to_string();
    }
    let captured = capture_roles(client, table);
    client
        .update(
            "SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)",
            None,
            &[relation.clone().into()],
        )
        .or_raise();
    // the coordinator's local copy of the rows is hidden from now on: free it
    client
        .update(
            "SELECT pg_catalog.truncate_local_data_after_distributing_table($1::pg_catalog.regclass)",
            None,
            &[relation.into()],
        )
        .or_raise();
    restore_roles(client, &captured);
    "made a reference table".to_string()
}

/// `customer_value.distribute()`: the model store on every node of a Citus cluster.
#[pg_extern(schema = "customer_value", volatile, parallel_unsafe)]
fn distribute() -> TableIterator<'static, (name!(relation, String), name!(action, String))> {
    let done = distribute_store().or_raise();
    TableIterator::new(
        done.into_iter()
            .map(|(t, action)| (format!("customer_value.{t}"), action)),
    )
}

extension_sql!(
    r#"
COMMENT ON FUNCTION customer_value.distribute() IS
    'On a Citus coordinator: makes the model store (models, training_runs, model_access) reference tables, so every node holds every model and scores next to its shards; idempotent';
"#,
    name = "distribute_comment",
    requires = [distribute]
);
