//! Least privilege. Users never write `customer_value.models` or `training_runs` themselves:
//! the functions that must (train, retrain, deploy) are gated by EXECUTE grants and perform
//! just their own fixed, schema-qualified statements as the tables' owner — everything else,
//! above all reading the training source, runs with the caller's own privileges. There is no
//! SECURITY DEFINER function; the elevated statements also run with `search_path` pinned to
//! `pg_catalog, pg_temp`, so a caller's objects (an operator, a function) can never be picked
//! up while elevated.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::errors::{raise, OrRaise};
use crate::engine::error::{EngineError, ErrorKind};

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
        // SAFETY: restores exactly what `as_extension_owner` saved, in reverse order.
        unsafe {
            pg_sys::AtEOXact_GUC(true, self.guc_nest);
            pg_sys::SetUserIdAndSecContext(self.user, self.context);
        }
    }
}

/// Runs `f` as the owner of the model store, with `search_path = pg_catalog, pg_temp` and as a
/// security-restricted operation. `f` must only run customer_value's own fixed statements.
pub fn as_extension_owner<T>(f: impl FnOnce() -> T) -> T {
    let owner = models_owner();
    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0i32;
    // SAFETY: the same calls fmgr_security_definer makes around a SECURITY DEFINER function.
    let restore = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        let guc_nest = pg_sys::NewGUCNestLevel();
        pg_sys::SetUserIdAndSecContext(
            owner,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
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
