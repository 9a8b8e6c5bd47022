//! Configuration parameters (GUCs), all under the reserved prefix `customer_value.`.
//!
//! A `customer_value.*` setting made before the library is loaded in a backend (in the session,
//! for a role or database, in postgresql.conf) is a placeholder Postgres cannot check. When the
//! library loads, Postgres would only warn about a misspelt name or an invalid value and drop
//! it, so a `SET customer_value.max_trainig_rows = 1000` would silently train on every row.
//! Instead the load fails with the error Postgres gives for its own settings, naming the setting
//! and where it was made, and fails again at every call until it is corrected or RESET. Nothing
//! is defined before that check, so a later load starts afresh.

use std::ffi::{CStr, CString};

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

use crate::engine::error::{EngineError, ErrorKind};

/// `customer_value.model`: the model `customer_value(row)` uses when no model is given.
pub static DEFAULT_MODEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `customer_value.max_training_rows`: training and evaluation hold the rows they read in
/// memory; past this many rows they stop with a clear error instead of exhausting memory.
pub static MAX_TRAINING_ROWS: GucSetting<i32> = GucSetting::<i32>::new(20_000_000);

/// `customer_value.max_training_memory` (kB): the memory a training may use; checked against
/// the planner's row estimate before reading and as rows arrive (53200 past it).
pub static MAX_TRAINING_MEMORY: GucSetting<i32> = GucSetting::<i32>::new(4 * 1024 * 1024);

/// `customer_value.progress_interval`: seconds between progress NOTICEs of a long training
/// (rows read, step, elapsed); 0 turns them off.
pub static PROGRESS_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(10);

/// `customer_value.narrow_scoring`: whether the planner narrows scoring calls on a table's row
/// to the columns the model reads (`super::narrow`); off plans every call on the whole row, as
/// 0.2 did — for comparing the two, or should a narrowed plan ever misbehave.
pub static NARROW_SCORING: GucSetting<bool> = GucSetting::<bool>::new(true);

const MODEL_NAME: &CStr = c"customer_value.model";
const NARROW_SCORING_NAME: &CStr = c"customer_value.narrow_scoring";

/// An integer setting: its definition, and the bounds a placeholder value is checked against.
struct IntSetting {
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    value: &'static GucSetting<i32>,
    min: i32,
    max: i32,
    /// The unit of min and max, as Postgres writes it.
    unit: &'static str,
    flags: GucFlags,
}

/// `customer_value.training_threads`: threads a training uses for gradient boosting, encoding
/// and predicting its rows (0: the machine's cores, capped by `max_parallel_workers`).
pub static TRAINING_THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);

/// The threads a training may use now: the setting, or for 0 the machine's cores capped by
/// `max_parallel_workers` (the DBA's bound on what one query may take beside its backend), and
/// at least 1.
pub fn training_threads() -> usize {
    let setting = TRAINING_THREADS.get().max(0) as usize;
    if setting > 0 {
        return setting;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: a GUC variable Postgres owns, read on the backend's thread
    let workers = unsafe { pg_sys::max_parallel_workers }.max(0) as usize;
    cores.min(workers.max(1)).max(1)
}

static INT_SETTINGS: [IntSetting; 4] = [
    IntSetting {
        name: c"customer_value.progress_interval",
        short: c"Seconds between progress NOTICEs of a long training run (0: none).",
        long: c"A training that reads or fits for longer than this reports rows read, step and elapsed time at this rate.",
        value: &PROGRESS_INTERVAL,
        min: 0,
        max: 86_400,
        unit: "s",
        flags: GucFlags::UNIT_S,
    },
    IntSetting {
        name: c"customer_value.max_training_rows",
        short: c"Most rows train() and evaluate() read from a source.",
        long: c"They hold the rows in memory (about 8 bytes per value); past this they stop with an error. Sample larger tables (TABLESAMPLE).",
        value: &MAX_TRAINING_ROWS,
        min: 10,
        max: i32::MAX,
        unit: "",
        flags: GucFlags::empty(),
    },
    IntSetting {
        name: c"customer_value.training_threads",
        short: c"Threads a training uses for gradient boosting, encoding its rows and predicting them (0: the machine's cores, capped by max_parallel_workers).",
        long: c"The threads never touch the database and have signals blocked; the backend checks for cancel while they run.",
        value: &TRAINING_THREADS,
        min: 0,
        max: 64,
        unit: "",
        flags: GucFlags::empty(),
    },
    IntSetting {
        name: c"customer_value.max_training_memory",
        short: c"Most memory a training may use for the rows it reads.",
        long: c"Checked against the planner's row estimate before reading and as rows arrive (36 bytes per value); past it, training stops with an out-of-memory error (53200) instead of exhausting the server.",
        value: &MAX_TRAINING_MEMORY,
        min: 1024,
        max: i32::MAX,
        unit: "kB",
        flags: GucFlags::UNIT_KB,
    },
];

/// Checks the settings made before the library was loaded, then defines the parameters and
/// reserves the prefix. Raises the first bad setting as an ERROR, defining nothing.
///
/// Not in the postmaster (`shared_preload_libraries`): an error there would keep the server
/// from starting over a line of postgresql.conf. There Postgres logs a WARNING for the setting
/// and keeps the default, and every backend inherits the reserved prefix.
pub fn register() {
    // SAFETY: a flag Postgres sets once at process start
    let in_backend = unsafe { pg_sys::IsUnderPostmaster };
    if in_backend {
        if let Err(error) = check_placeholders() {
            crate::pg::errors::raise(error);
        }
    }
    for setting in &INT_SETTINGS {
        GucRegistry::define_int_guc(
            setting.name,
            setting.short,
            setting.long,
            setting.value,
            setting.min,
            setting.max,
            GucContext::Userset,
            setting.flags,
        );
    }
    // SAFETY: the assign hooks only mark cached plans invalid; they cannot fail or panic
    unsafe {
        GucRegistry::define_bool_guc_with_hooks(
            NARROW_SCORING_NAME,
            c"Whether scoring calls on a table's row read only the columns the model needs.",
            c"On (the default), the planner passes customer_value(c, ...) only the model's columns instead of the whole row; off, every call receives the whole row.",
            &NARROW_SCORING,
            GucContext::Userset,
            GucFlags::default(),
            None,
            Some(narrow_scoring_assigned),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            MODEL_NAME,
            c"Model used by customer_value(row) and customer_tier(row) when no model is named.",
            c"A model name, or name@version for a pinned version. Empty: the only deployed model.",
            &DEFAULT_MODEL,
            GucContext::Userset,
            GucFlags::default(),
            None,
            Some(default_model_assigned),
            None,
        );
    }
    unsafe { pg_sys::MarkGUCPrefixReserved(c"customer_value".as_ptr()) };
}

/// A plan that narrowed a call without a model argument read the columns of the default model
/// of that moment (`super::narrow`): another default model means planning again. Postgres calls
/// this on every change of the setting (SET, RESET, end of a SET LOCAL, a function's SET), where
/// nothing may fail; resetting the plan cache only marks this backend's cached plans invalid.
unsafe extern "C-unwind" fn default_model_assigned(
    _new_value: *const std::ffi::c_char,
    _extra: *mut std::ffi::c_void,
) {
    unsafe { pg_sys::ResetPlanCache() };
}

/// Cached plans were made with the previous setting: plan again.
unsafe extern "C-unwind" fn narrow_scoring_assigned(
    _new_value: bool,
    _extra: *mut std::ffi::c_void,
) {
    unsafe { pg_sys::ResetPlanCache() };
}

/// A `customer_value.*` placeholder with a value: its name, value and where it was set.
struct Placeholder {
    name: String,
    value: String,
    source: pg_sys::GucSource::Type,
}

fn check_placeholders() -> Result<(), EngineError> {
    for placeholder in placeholders() {
        check_placeholder(&placeholder).map_err(|e| {
            e.with_detail(format!(
                "It was set {} before the customer_value library was loaded; the library reserves the prefix \"customer_value.\".",
                source_name(placeholder.source)
            ))
        })?;
    }
    Ok(())
}

fn check_placeholder(placeholder: &Placeholder) -> Result<(), EngineError> {
    if MODEL_NAME.to_str() == Ok(placeholder.name.as_str()) {
        return Ok(());
    }
    if NARROW_SCORING_NAME.to_str() == Ok(placeholder.name.as_str()) {
        return check_bool(&placeholder.name, &placeholder.value);
    }
    let Some(setting) = INT_SETTINGS
        .iter()
        .find(|s| s.name.to_str() == Ok(&placeholder.name))
    else {
        return Err(EngineError::new(
            ErrorKind::UndefinedObject,
            format!(
                "unrecognized configuration parameter \"{}\"",
                placeholder.name
            ),
        )
        .with_hint(format!(
            "RESET {} (or correct its name where it is set); the settings are {}.",
            placeholder.name,
            setting_names()
        )));
    };
    setting.check(&placeholder.value)
}

impl IntSetting {
    /// The value as Postgres would parse it when defining the parameter (units included).
    fn check(&self, value: &str) -> Result<(), EngineError> {
        let name = self.name.to_string_lossy();
        let invalid = |why: String| {
            EngineError::invalid_parameter(format!(
                "invalid value for parameter \"{name}\": \"{value}\""
            ))
            .with_hint(why)
        };
        let text = CString::new(value).map_err(|_| invalid("It contains a NUL byte.".into()))?;
        let mut parsed: i32 = 0;
        let mut hint: *const std::ffi::c_char = std::ptr::null();
        let ok =
            unsafe { pg_sys::parse_int(text.as_ptr(), &mut parsed, self.flags.bits(), &mut hint) };
        if !ok {
            let why = if hint.is_null() {
                "It must be an integer.".to_string()
            } else {
                unsafe { CStr::from_ptr(hint) }
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(invalid(why));
        }
        if parsed < self.min || parsed > self.max {
            return Err(invalid(format!(
                "It must be between {min}{unit} and {max}{unit}.",
                min = self.min,
                max = self.max,
                unit = self.unit
            )));
        }
        Ok(())
    }
}

/// The value as Postgres parses a boolean setting (on, off, true, false, yes, no, 1, 0, …).
fn check_bool(name: &str, value: &str) -> Result<(), EngineError> {
    let text = CString::new(value).unwrap_or_default();
    let mut parsed = false;
    if unsafe { pg_sys::parse_bool(text.as_ptr(), &mut parsed) } {
        return Ok(());
    }
    Err(
        EngineError::invalid_parameter(format!("parameter \"{name}\" requires a Boolean value"))
            .with_hint(format!("It is \"{value}\"; use on or off.")),
    )
}

fn setting_names() -> String {
    let mut names: Vec<String> = INT_SETTINGS
        .iter()
        .map(|s| s.name.to_string_lossy().into_owned())
        .collect();
    names.push(MODEL_NAME.to_string_lossy().into_owned());
    names.push(NARROW_SCORING_NAME.to_string_lossy().into_owned());
    names.sort();
    names.join(", ")
}

/// The `customer_value.*` placeholders that hold a value (a RESET one holds none).
fn placeholders() -> Vec<Placeholder> {
    let mut found = Vec::new();
    // SAFETY: the GUC array is valid for GetNumConfigOptions() entries while no GUC is defined,
    // which nothing does during this loop; each entry's name is a NUL-terminated string.
    unsafe {
        let variables = pg_sys::get_guc_variables();
        for i in 0..pg_sys::GetNumConfigOptions().max(0) as usize {
            let variable = *variables.add(i);
            let is_placeholder = (*variable).flags & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32 != 0;
            let name = CStr::from_ptr((*variable).name).to_string_lossy();
            if !is_placeholder
                || !name.starts_with("customer_value.")
                || (*variable).source == pg_sys::GucSource::PGC_S_DEFAULT
            {
                continue;
            }
            let value = pg_sys::GetConfigOption((*variable).name, true, false);
            found.push(Placeholder {
                name: name.into_owned(),
                value: if value.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(value).to_string_lossy().into_owned()
                },
                source: (*variable).source,
            });
        }
    }
    found
}

fn source_name(source: pg_sys::GucSource::Type) -> &'static str {
    use pg_sys::GucSource::*;
    match source {
        PGC_S_ENV_VAR => "in the server's environment",
        PGC_S_FILE => "in the configuration file",
        PGC_S_ARGV => "on the server's command line",
        PGC_S_GLOBAL => "for all databases (ALTER ROLE ALL)",
        PGC_S_DATABASE => "for the database (ALTER DATABASE … SET)",
        PGC_S_USER => "for the role (ALTER ROLE … SET)",
        PGC_S_DATABASE_USER => "for the role in this database (ALTER ROLE … IN DATABASE … SET)",
        PGC_S_CLIENT => "by the client at connection",
        _ => "in the session",
    }
}

/// The training memory budget.
pub fn training_budget() -> crate::engine::memory::MemoryBudget {
    crate::engine::memory::MemoryBudget {
        bytes: MAX_TRAINING_MEMORY.get().max(0) as u64 * 1024,
    }
}

/// The configured default model, if set and not empty.
pub fn default_model() -> Option<String> {
    DEFAULT_MODEL
        .get()
        .and_then(|s| s.into_string().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
