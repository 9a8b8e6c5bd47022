//! Least privilege. Users never write `customer_value.models` or `training_runs` themselves:
//! the functions that must (train, retrain, deploy) are gated by EXECUTE grants and perform
//! just their own fixed, schema-qualified statements as the tables' owner — everything else,
//! above all reading the training source, runs with the caller's own privileges. There is no
//! SECURITY DEFINER function; the elevated statements also run with `search_path` pinned to
//! `pg_catalog, pg_temp`, so a caller's objects (an operator, a function) can never be picked
//! up while elevated.
//!
//! Stored specs (the rule of "Roles and grants" in docs/production.md): a version's spec — its source
//! SQL and everything that SQL reaches (functions, views, row-level-security policies) — is
//! code written by its author. `retrain` runs it as that author, never as the caller, in a
//! security-restricted operation whose setting changes are undone, and only for a caller who
//! could act as the author anyway (a member of the author role; superusers are members of
//! every role). So no role gains privileges through another role's stored spec: a DBA's or a
//! pg_cron job's retrain of a trainer's model reads exactly what the trainer could read.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::errors::{raise, OrRaise};
use crate::engine::error::{EngineError, ErrorKind, Result};

/// The current user's name (what `current_user` says).
pub fn caller_name() -> String {
    // SAFETY: GetUserNameFromId returns a palloc'd C string for a valid role id (noerr = false
    // raises for an invalid one, which cannot happen for the current user).
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetUserId(), false);
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

fn models_owner() -> pg_sys::Oid {
    Spi::connect(|client| {
        client
            .select(
                "SELECT c.relowner FROM pg_catalog.pg_class c
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'customer_value' AND c.relname = 'models'",
                Some(1),
                &[],
            )
            .or_raise()
            .first()
            .get_one::<pg_sys::Oid>()
            .or_raise()
    })
    .unwrap_or_else(|| {
        raise(EngineError::new(
            ErrorKind::Internal,
            "table customer_value.models is missing",
        ))
    })
}

/// Restores the caller's identity and settings when the elevated block ends normally. On an
/// error the transaction (or subtransaction) abort restores both, as for SECURITY DEFINER
/// functions (fmgr_security_definer), so nothing is done while unwinding.
struct Restore {
    user: pg_sys::Oid,
    context: i32,
    guc_nest: i32,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // SAFETY: restores exactly what `run_as` saved, in reverse order.
        unsafe {
            pg_sys::AtEOXact_GUC(true, self.guc_nest);
            pg_sys::SetUserIdAndSecContext(self.user, self.context);
        }
    }
}

/// Runs `f` as the owner of the model store, with `search_path = pg_catalog, pg_temp` and as a
/// security-restricted operation. `f` must only run customer_value's own fixed statements.
pub fn as_extension_owner<T>(f: impl FnOnce() -> T) -> T {
    run_as(models_owner(), Some(c"pg_catalog, pg_temp"), f)
}

/// Runs `f` — the reading of a stored spec's source — as the spec's `author` (checked with
/// [`spec_author`]) in a security-restricted operation: the author's code cannot change roles,
/// create temporary objects, or leave any setting changed behind it.
pub fn as_spec_author<T>(author: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    run_as(author, None, f)
}

/// The role `retrain` may run model `name`'s stored spec as (its id and name): its `author`,
/// provided the role still exists and the caller could act as it (is a member of it).
pub fn spec_author(name: &str, author: Option<pg_sys::Oid>) -> Result<(pg_sys::Oid, String)> {
    let author = author.ok_or_else(|| {
        EngineError::new(
            ErrorKind::InsufficientPrivilege,
            format!("model \"{name}\" has no recorded author, so its spec cannot be re-run"),
        )
        .with_detail("Its training spec was stored before customer_value 0.3.0 by a role that no longer exists.")
        .with_hint("Train it again with customer_value.train(...); retrain works from then on.")
    })?;
    let Some(author_name) = role_name(author) else {
        return Err(EngineError::new(
            ErrorKind::InsufficientPrivilege,
            format!("the role that wrote model \"{name}\"'s training spec no longer exists"),
        )
        .with_detail("retrain runs a stored spec with its author's privileges only.")
        .with_hint(
            "Train it again with customer_value.train(...) to become the author of its spec.",
        ));
    };
    // SAFETY: plain catalog lookups for valid role ids.
    let allowed = unsafe { pg_sys::is_member_of_role(pg_sys::GetUserId(), author) };
    if !allowed {
        return Err(EngineError::new(
            ErrorKind::InsufficientPrivilege,
            format!("permission denied to retrain model \"{name}\""),
        )
        .with_detail(format!(
            "Its training spec was written by role \"{author_name}\" and runs with that role's privileges; {} is not a member of it.",
            caller_name()
        ))
        .with_hint(format!(
            "Ask \"{author_name}\" (or a member of it) to retrain, or train your own version with customer_value.train(...)."
        )));
    }
    Ok((author, author_name))
}

/// The name of role `oid`, or None when no such role exists (any more).
pub fn role_name(oid: pg_sys::Oid) -> Option<String> {
    // SAFETY: with noerr = true GetUserNameFromId returns NULL for a missing role, else a
    // palloc'd C string.
    unsafe {
        let name = pg_sys::GetUserNameFromId(oid, true);
        (!name.is_null()).then(|| CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}

/// The current user's role id.
pub fn caller_oid() -> pg_sys::Oid {
    // SAFETY: GetUserId has no preconditions inside a transaction.
    unsafe { pg_sys::GetUserId() }
}

/// Runs `f` as `role` in a security-restricted operation, with its own GUC nest level (every
/// setting `f` changes is undone when it ends) and, if given, `search_path` pinned.
fn run_as<T>(role: pg_sys::Oid, search_path: Option<&CStr>, f: impl FnOnce() -> T) -> T {
    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0i32;
    // SAFETY: the same calls fmgr_security_definer makes around a SECURITY DEFINER function.
    let restore = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        let guc_nest = pg_sys::NewGUCNestLevel();
        pg_sys::SetUserIdAndSecContext(
            role,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        if let Some(path) = search_path {
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                path.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
        Restore {
            user,
            context,
            guc_nest,
        }
    };
    let value = f();
    drop(restore);
    value
}

/// `customer_value.is_member_of_any(regrole[])`: row-level security's access test.
#[pg_extern(sql = false)]
fn cv_is_member_of_any(roles: pgrx::Array<'_, pg_sys::Oid>) -> bool {
    let user = caller_oid();
    // SAFETY: is_member_of_role is a catalog lookup; a role id that no longer exists has no
    // members, so it answers false (superusers excepted: they are members of every role).
    roles
        .iter()
        .flatten()
        .any(|role| unsafe { pg_sys::is_member_of_role(user, role) })
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.is_member_of_any(roles regrole[]) RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_is_member_of_any_wrapper';
COMMENT ON FUNCTION customer_value.is_member_of_any(regrole[]) IS
    'Whether the current user is a member of any of these roles (roles that no longer exist match nobody); used by the store''s row-level security';
"#,
    name = "cv_is_member_of_any_sql",
    requires = ["schema"]
);
