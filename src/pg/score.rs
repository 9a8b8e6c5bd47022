//! Scoring: `customer_value(row [, model])`, `customer_tier(row [, model])` and the functions
//! that read a row the same way (`predict_proba`, `explain`, `rfm_segment`, `rfm_score`).
//!
//! This is the hot path. A query calls these once per row, so everything that does not change
//! between rows is done once per query and kept in the call site's `fn_extra`:
//! - the model is resolved (one small SPI query) and decoded (through the backend cache);
//! - the row type's descriptor is looked up and the feature → attribute map built, with each
//!   attribute's reader chosen from its type.
//!
//! Per row, the composite datum is deformed in place (no tuple copy), the feature values are read
//! and imputed, and the model predicts. Keeping the model
//! fixed for the whole query also means every row of one statement is scored by one version,
//! even if another session redeploys meanwhile.

use std::ffi::CStr;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::{pg_getarg, pg_getarg_datum_raw, pg_sys};

use crate::engine::clv::model::ClvQuantity;
use crate::engine::codec::{ModelArtifact, Task};
use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::{ArrayShape, Encoding, FeatureEncoder, FeatureSpec, Purpose};
use crate::engine::models::Predictor;
use crate::engine::segments::RfmScores;

use super::columns::{ArrayReader, Reader};
use super::errors::OrRaise;
use super::store::{self, ModelRow};
use super::types::sql_type_of;

/// How the model was named in the call.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ModelKey {
    Default,
    Name(String),
    Id(i64),
}

/// The model argument of one call, borrowed: compared with the call site's model without
/// allocating, turned into an owned [`ModelKey`] only when the model must be (re)loaded.
#[derive(Clone, Copy)]
pub(super) enum KeyArg<'a> {
    Default,
    Name(&'a [u8]),
    Id(i64),
}

impl ModelKey {
    fn matches(&self, arg: KeyArg<'_>) -> bool {
        match (self, arg) {
            (ModelKey::Default, KeyArg::Default) => true,
            (ModelKey::Name(name), KeyArg::Name(bytes)) => name.as_bytes() == bytes,
            (ModelKey::Id(id), KeyArg::Id(arg)) => *id == arg,
            _ => false,
        }
    }

    fn from_arg(arg: KeyArg<'_>) -> ModelKey {
        match arg {
            KeyArg::Default => ModelKey::Default,
            KeyArg::Name(bytes) => ModelKey::Name(String::from_utf8_lossy(bytes).into_owned()),
            KeyArg::Id(id) => ModelKey::Id(id),
        }
    }
}

/// Where a scoring call finds its inputs.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// A whole row in argument 0; the model named as the key says which columns to read.
    Row(KeyArg<'a>),
    /// A call the planner narrowed (`super::narrow`): the model named by arguments 1 (text) or
    /// 2 (bigint), or the default model when both are NULL; the columns themselves as arguments
    /// from [`COLUMNS_FROM`] on, named by the text array in argument [`COLUMN_NAMES`].
    ///
    /// Such a call always reads a table of its query, so its call site lives for one execution
    /// of one query (PL/pgSQL keeps only simple expressions, which read no table, across
    /// statements): the model is resolved at the first row and kept — one version for the whole
    /// query, a cursor's too — with no per-row check.
    Columns,
}

/// The arguments of a narrowed call, in order (`super::narrow` builds them): the operation
/// (int4), the model's name (text) or id (bigint) — both NULL for the default model — the
/// `periods` of expected_purchases (float8), the names of the column arguments (text[]), and
/// the column arguments from [`COLUMNS_FROM`] on.
pub(super) const OPERATION: usize = 0;
pub(super) const MODEL_NAME: usize = 1;
pub(super) const MODEL_ID: usize = 2;
pub(super) const PERIODS: usize = 3;
pub(super) const COLUMN_NAMES: usize = 4;
pub(super) const COLUMNS_FROM: usize = 5;

/// The model key of a narrowed call.
unsafe fn columns_key<'a>(fcinfo: pg_sys::FunctionCallInfo) -> KeyArg<'a> {
    unsafe {
        let args = (*fcinfo).args.as_slice(COLUMN_NAMES);
        if !args[MODEL_NAME].isnull {
            name_arg(fcinfo, MODEL_NAME)
        } else if !args[MODEL_ID].isnull {
            id_arg(fcinfo, MODEL_ID)
        } else {
            KeyArg::Default
        }
    }
}

struct FeatureSlot {
    /// 0-based index of the value in the call site's `values`: the row's attribute, or the
    /// column argument (counted from [`COLUMNS_FROM`]).
    attribute: usize,
    reader: SlotReader,
    encoder: FeatureEncoder,
}

/// How a slot's value is read from its datum.
enum SlotReader {
    Scalar(Reader),
    /// Position `position` of an array, placed by the model's `shape`.
    Element {
        array: ArrayReader,
        shape: ArrayShape,
        position: usize,
    },
}

/// The composite type of the rows a call site scored last.
struct RowType {
    type_id: pg_sys::Oid,
    type_mod: i32,
    /// Copy of the row descriptor in the call site's memory context. (It is used whole: this
    /// PostgreSQL build versions descriptor attributes, so a descriptor cut short is refused.)
    tupdesc: pg_sys::TupleDesc,
}

/// Where each input of the model is found: in a row of one type, or among the column arguments.
struct Layout {
    /// None for column arguments.
    row: Option<RowType>,
    slots: Vec<FeatureSlot>,
}

/// What a scoring function reads from a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reads {
    /// The model's features.
    Features,
    /// The columns of the model's RFM segments.
    Segments,
}

struct LoadedModel {
    key: ModelKey,
    row: ModelRow,
    model: Rc<ModelArtifact>,
    /// The columns read from each row, as features (the model's, or its RFM segments').
    inputs: Vec<FeatureSpec>,
}

/// The statement a call site's model and row layout were resolved for. A call site can outlive
/// its statement (PL/pgSQL keeps its expressions' state across statements and calls), so it
/// resolves again whenever this changes: another top-level statement or transaction, a command
/// counter increment in this one (a DDL, a deploy in the same transaction), or — for the
/// default model — another value of `customer_value.model`. Within one statement, every row is
/// scored by one version, whatever other sessions deploy meanwhile.
#[derive(Debug, Clone, Copy, PartialEq)]
struct StatementKey {
    transaction: u32,
    statement_start: i64,
    command: u32,
    /// The current `customer_value.model` string (its address: a new value is a new string).
    default_model: usize,
}

impl StatementKey {
    #[inline]
    fn current(key: KeyArg<'_>) -> StatementKey {
        // SAFETY: reads of backend globals; GetConfigOption with missing_ok returns NULL or the
        // setting's current string, which we only compare by address.
        unsafe {
            StatementKey {
                transaction: if pg_sys::MyProc.is_null() {
                    0
                } else {
                    (*pg_sys::MyProc).lxid
                },
                statement_start: pg_sys::GetCurrentStatementStartTimestamp(),
                command: pg_sys::GetCurrentCommandId(false),
                default_model: match key {
                    KeyArg::Default => {
                        pg_sys::GetConfigOption(c"customer_value.model".as_ptr(), true, false)
                            as usize
                    }
                    _ => 0,
                },
            }
        }
    }
}

/// Per-call-site state, owned by `flinfo->fn_extra`, freed with `fn_mcxt`.
struct CallSite {
    memory: pg_sys::MemoryContext,
    resolved_for: Option<StatementKey>,
    model: Option<LoadedModel>,
    layout: Option<Layout>,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    x: Vec<f64>,
    /// The elements of the array read last, and its positions as the model reads them.
    elements: Vec<Option<f64>>,
    window: Vec<f64>,
}

unsafe extern "C-unwind" fn drop_call_site(arg: *mut std::ffi::c_void) {
    drop(unsafe { Box::from_raw(arg as *mut CallSite) });
}

unsafe fn call_site<'a>(fcinfo: pg_sys::FunctionCallInfo) -> &'a mut CallSite {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if (*flinfo).fn_extra.is_null() {
            let memory = (*flinfo).fn_mcxt;
            let site = Box::into_raw(Box::new(CallSite {
                memory,
                resolved_for: None,
                model: None,
                layout: None,
                values: Vec::new(),
                nulls: Vec::new(),
                x: Vec::new(),
                elements: Vec::new(),
                window: Vec::new(),
            }));
            let callback = pg_sys::MemoryContextAlloc(
                memory,
                std::mem::size_of::<pg_sys::MemoryContextCallback>(),
            ) as *mut pg_sys::MemoryContextCallback;
            (*callback).func = Some(drop_call_site);
            (*callback).arg = site as *mut std::ffi::c_void;
            (*callback).next = std::ptr::null_mut();
            pg_sys::MemoryContextRegisterResetCallback(memory, callback);
            (*flinfo).fn_extra = site as *mut std::ffi::c_void;
        }
        &mut *((*flinfo).fn_extra as *mut CallSite)
    }
}

fn load_model(key: &ModelKey, reads: Reads) -> Result<LoadedModel> {
    let row = match key {
        ModelKey::Default => store::resolve_default()?,
        ModelKey::Name(spec) => store::resolve(spec)?,
        ModelKey::Id(id) => store::resolve_id(*id)?,
    };
    let model = store::load(&row)?;
    let inputs = match reads {
        Reads::Features => model.features.clone(),
        Reads::Segments => segment_inputs(&model, &row)?,
    };
    Ok(LoadedModel {
        key: key.clone(),
        row,
        model,
        inputs,
    })
}

/// The columns the model named by `key` reads for `reads`, each once, in the order of its
/// inputs: what the planner narrows a call on a table's row to (`super::narrow`).
pub(super) fn planned_columns(key: &ModelKey, reads: Reads) -> Result<Vec<String>> {
    let loaded = load_model(key, reads)?;
    let mut columns: Vec<String> = Vec::with_capacity(loaded.inputs.len());
    for input in &loaded.inputs {
        if !columns.iter().any(|c| c == input.column()) {
            columns.push(input.column().to_string());
        }
    }
    Ok(columns)
}

/// The error for a model without RFM segments.
fn no_segments(label: &str) -> EngineError {
    EngineError::new(
        ErrorKind::NotSupported,
        format!("{label} has no RFM segments"),
    )
    .with_detail("Segment boundaries are cut when a model is trained from a purchase log (train_from_log) or on an RFM summary with its monetary value (algorithm clv or gamma_gamma), with customer_value 0.3 or later.")
    .with_hint("Use such a model, e.g. rfm_segment(f, 'my_log_model') on its create_log_features table.")
}

/// The columns of the model's RFM segments, each read as a number.
fn segment_inputs(model: &ModelArtifact, row: &ModelRow) -> Result<Vec<FeatureSpec>> {
    let segments = model
        .segments
        .as_ref()
        .ok_or_else(|| no_segments(&row.label()))?;
    Ok(segments
        .columns()
        .into_iter()
        .map(|column| FeatureSpec {
            name: column.to_string(),
            sql_type: "double precision".into(),
            encoding: Encoding::Number,
            impute: None,
        })
        .collect())
}

unsafe fn attribute_name(attr: &pg_sys::FormData_pg_attribute) -> &str {
    unsafe { CStr::from_ptr(attr.attname.data.as_ptr()) }
        .to_str()
        .unwrap_or("")
}

/// Builds the feature → attribute map for rows of `(type_id, type_mod)`.
unsafe fn build_row_layout(
    memory: pg_sys::MemoryContext,
    loaded: &LoadedModel,
    type_id: pg_sys::Oid,
    type_mod: i32,
) -> Result<Layout> {
    unsafe {
        let old = pg_sys::MemoryContextSwitchTo(memory);
        let tupdesc = pg_sys::lookup_rowtype_tupdesc_copy(type_id, type_mod);
        pg_sys::MemoryContextSwitchTo(old);
        let natts = (*tupdesc).natts as usize;
        let attrs = (*tupdesc).attrs.as_slice(natts);
        let mut slots = Vec::with_capacity(loaded.inputs.len());
        for feature in &loaded.inputs {
            let attribute = find_attribute(attrs, feature.column(), loaded)?;
            let reader = reader_for(attrs[attribute].atttypid, feature, loaded)?;
            slots.push(FeatureSlot {
                attribute,
                reader,
                encoder: FeatureEncoder::new(feature, Purpose::Scoring),
            });
        }
        Ok(Layout {
            row: Some(RowType {
                type_id,
                type_mod,
                tupdesc,
            }),
            slots,
        })
    }
}

/// Builds the feature → argument map of a narrowed call: each input is found by name among the
/// column arguments the planner chose. They were chosen for the model the statement was planned
/// with; a model resolved differently now (redeployed, another `customer_value.model`) may need
/// a column the plan does not read, which is an error asking to run the statement again.
unsafe fn build_column_layout(
    fcinfo: pg_sys::FunctionCallInfo,
    loaded: &LoadedModel,
) -> Result<Layout> {
    let names = unsafe { column_names(fcinfo) }?;
    let mut slots = Vec::with_capacity(loaded.inputs.len());
    for feature in &loaded.inputs {
        let Some(attribute) = names.iter().position(|n| n == feature.column()) else {
            return Err(not_planned(loaded, feature.column(), &names));
        };
        let type_id = unsafe {
            pg_sys::get_fn_expr_argtype((*fcinfo).flinfo, (COLUMNS_FROM + attribute) as i32)
        };
        slots.push(FeatureSlot {
            attribute,
            reader: reader_for(type_id, feature, loaded)?,
            encoder: FeatureEncoder::new(feature, Purpose::Scoring),
        });
    }
    Ok(Layout { row: None, slots })
}

/// The names of a narrowed call's column arguments, one per argument.
unsafe fn column_names(fcinfo: pg_sys::FunctionCallInfo) -> Result<Vec<String>> {
    let names: Option<Vec<Option<String>>> = unsafe { pg_getarg(fcinfo, COLUMN_NAMES) };
    let count = unsafe { (*fcinfo).nargs } as usize;
    let names: Option<Vec<String>> = names.and_then(|n| n.into_iter().collect());
    match names {
        Some(names) if count >= COLUMNS_FROM && names.len() == count - COLUMNS_FROM => Ok(names),
        _ => Err(EngineError::invalid_parameter(
            "the column names of a narrowed scoring call do not match its column arguments",
        )
        .with_hint("These functions are what the planner turns customer_value(row, …) into; call customer_value(row, …) instead.")),
    }
}

#[cold]
fn not_planned(loaded: &LoadedModel, column: &str, planned: &[String]) -> EngineError {
    EngineError::new(
        ErrorKind::PrerequisiteState,
        format!(
            "{} needs column \"{column}\", which the plan of this statement does not read",
            loaded.row.label()
        ),
    )
    .with_detail(format!(
        "The statement was planned to read only {}, for the model deployed then; the model it names has changed since (a deploy, or another customer_value.model).",
        planned.join(", ")
    ))
    .with_hint("Run the statement again: it is planned afresh for the current model.")
}

/// The position of the row's column `column`: an error when it is missing or named twice.
fn find_attribute(
    attrs: &[pg_sys::FormData_pg_attribute],
    column: &str,
    loaded: &LoadedModel,
) -> Result<usize> {
    let matches = |a: &pg_sys::FormData_pg_attribute| {
        !a.attisdropped && unsafe { attribute_name(a) } == column
    };
    if attrs.iter().filter(|a| matches(a)).count() > 1 {
        return Err(EngineError::new(
            ErrorKind::DuplicateColumn,
            format!(
                "the scored row has more than one column named \"{}\", which {} needs",
                column,
                loaded.row.label()
            ),
        )
        .with_hint("Give every column a distinct name (… AS name) in the subquery."));
    }
    if let Some(attribute) = attrs.iter().position(matches) {
        return Ok(attribute);
    }
    let present: Vec<&str> = attrs
        .iter()
        .filter(|a| !a.attisdropped)
        .map(|a| unsafe { attribute_name(a) })
        .collect();
    Err(EngineError::new(
        ErrorKind::UndefinedColumn,
        format!(
            "the scored row has no column \"{}\", which {} needs",
            column,
            loaded.row.label()
        ),
    )
    .with_detail(format!(
        "The model reads: {}. The row's columns are: {}.",
        loaded
            .inputs
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        present.join(", ")
    ))
    .with_hint("Features are matched by column name; alias the column (… AS name) in a subquery."))
}

/// How to read a column of type `type_id` for `feature`: an error when its type cannot feed it.
fn reader_for(
    type_id: pg_sys::Oid,
    feature: &FeatureSpec,
    loaded: &LoadedModel,
) -> Result<SlotReader> {
    let sql_type = sql_type_of(type_id);
    let reader = match feature.array_element() {
        Some((shape, position)) => {
            ArrayReader::for_type(type_id).map(|array| SlotReader::Element {
                array,
                shape,
                position,
            })
        }
        None => Reader::for_type(&sql_type).map(SlotReader::Scalar),
    };
    reader
        .filter(|_| feature.encoding.accepts(&sql_type))
        .ok_or_else(|| {
            let column = feature.column();
            EngineError::new(
                ErrorKind::DatatypeMismatch,
                format!(
                    "column \"{}\" has type {}, but {} was trained with it as {}",
                    column,
                    sql_type.sql_name(),
                    loaded.row.label(),
                    feature.sql_type
                ),
            )
            .with_hint(format!(
                "Cast the column: {}::{}.",
                column, feature.sql_type
            ))
        })
}

/// Reads the model's features from `source`: returns the encoded feature values (one per
/// feature, in the model's order) and the model.
unsafe fn read_row<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    source: Source<'_>,
) -> (&'a [f64], &'a ModelArtifact) {
    unsafe { read_inputs(fcinfo, source, Reads::Features) }
}

/// Reads the inputs of `reads` from `source` for the model named by its key: returns their
/// values (one per input, in order; features encoded) and the model.
unsafe fn read_inputs<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    source: Source<'_>,
    reads: Reads,
) -> (&'a [f64], &'a ModelArtifact) {
    unsafe {
        let site = call_site(fcinfo);
        match source {
            Source::Row(key) => {
                site.resolve_model(key, reads);
                site.gather_row(fcinfo);
            }
            Source::Columns => {
                if site.model.is_none() {
                    site.resolve_model(columns_key(fcinfo), reads);
                }
                site.gather_columns(fcinfo);
            }
        }
        site.encode_inputs();
        let Some(loaded) = site.model.as_ref() else {
            unreachable!("model resolved above")
        };
        if reads == Reads::Features {
            loaded.model.check_row(&site.x).or_raise();
        }
        (&site.x, &loaded.model)
    }
}

impl CallSite {
    /// Makes `self.model` the model `key` names for the current statement: resolved again for a
    /// new statement or another key, kept otherwise.
    fn resolve_model(&mut self, key: KeyArg<'_>, reads: Reads) {
        let statement = StatementKey::current(key);
        if self.resolved_for != Some(statement) {
            self.model = None;
            self.layout = None;
            self.resolved_for = Some(statement);
        }
        if !self.model.as_ref().is_some_and(|m| m.key.matches(key)) {
            self.model = Some(load_model(&ModelKey::from_arg(key), reads).or_raise());
            self.layout = None;
        }
    }

    fn loaded(&self) -> &LoadedModel {
        let Some(loaded) = self.model.as_ref() else {
            unreachable!("resolve_model runs first")
        };
        loaded
    }

    /// Sizes the buffers for a new layout of `values` values.
    fn set_layout(&mut self, layout: Layout, values: usize) {
        self.values = vec![pg_sys::Datum::from(0usize); values];
        self.nulls = vec![false; values];
        self.x = vec![0.0; layout.slots.len()];
        self.layout = Some(layout);
    }

    /// Deforms the row in argument 0 into `values` / `nulls` (in place: no tuple copy).
    unsafe fn gather_row(&mut self, fcinfo: pg_sys::FunctionCallInfo) {
        unsafe {
            let raw = pg_getarg_datum_raw(fcinfo, 0);
            let header = pg_sys::pg_detoast_datum(raw.cast_mut_ptr()) as pg_sys::HeapTupleHeader;
            let type_id = (*header).t_choice.t_datum.datum_typeid;
            let type_mod = (*header).t_choice.t_datum.datum_typmod;
            let stale = self.layout.as_ref().is_none_or(|l| {
                l.row
                    .as_ref()
                    .is_none_or(|r| r.type_id != type_id || r.type_mod != type_mod)
            });
            if stale {
                let layout =
                    build_row_layout(self.memory, self.loaded(), type_id, type_mod).or_raise();
                let natts = layout
                    .row
                    .as_ref()
                    .map_or(0, |r| (*r.tupdesc).natts as usize);
                self.set_layout(layout, natts);
            }
            let Some(row) = self.layout.as_ref().and_then(|l| l.row.as_ref()) else {
                unreachable!("row layout built above")
            };
            let mut tuple = pg_sys::HeapTupleData {
                t_len: pgrx::varsize_any(header as *const pg_sys::varlena) as u32,
                t_self: pg_sys::ItemPointerData::default(),
                t_tableOid: pg_sys::InvalidOid,
                t_data: header,
            };
            pg_sys::heap_deform_tuple(
                &mut tuple,
                row.tupdesc,
                self.values.as_mut_ptr(),
                self.nulls.as_mut_ptr(),
            );
        }
    }

    /// Copies a narrowed call's column arguments into `values` / `nulls`.
    unsafe fn gather_columns(&mut self, fcinfo: pg_sys::FunctionCallInfo) {
        unsafe {
            if self.layout.is_none() {
                let layout = build_column_layout(fcinfo, self.loaded()).or_raise();
                let count = (*fcinfo).nargs as usize - COLUMNS_FROM;
                self.set_layout(layout, count);
            }
            let args = (*fcinfo).args.as_slice((*fcinfo).nargs as usize);
            for (k, arg) in args[COLUMNS_FROM..].iter().enumerate() {
                self.values[k] = arg.value;
                self.nulls[k] = arg.isnull;
            }
        }
    }

    /// Reads and encodes each input from `values` / `nulls` into `x`.
    unsafe fn encode_inputs(&mut self) {
        let (Some(layout), Some(loaded)) = (self.layout.as_ref(), self.model.as_ref()) else {
            unreachable!("layout and model resolved first")
        };
        let mut window_of = None;
        for (j, slot) in layout.slots.iter().enumerate() {
            let (datum, null) = (self.values[slot.attribute], self.nulls[slot.attribute]);
            let encoded = match &slot.reader {
                SlotReader::Element {
                    array,
                    shape,
                    position,
                } => slot.encoder.number((!null).then(|| {
                    // the array is read and placed once per row, for its first position
                    if window_of != Some(slot.attribute) {
                        let dimensions = unsafe { array.read(datum, &mut self.elements) };
                        self.window.resize(shape.length, 0.0);
                        let column = loaded.inputs[j].column();
                        shape
                            .window(column, &self.elements, dimensions, &mut self.window)
                            .or_raise();
                        window_of = Some(slot.attribute);
                    }
                    self.window[*position]
                })),
                SlotReader::Scalar(_) if slot.encoder.reads_text() => {
                    slot.encoder.text((!null).then(|| unsafe {
                        let text = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
                        pgrx::varlena::varlena_to_byte_slice(text)
                    }))
                }
                SlotReader::Scalar(reader) => slot
                    .encoder
                    .number((!null).then(|| unsafe { reader.read(datum) })),
            };
            let Some(v) = encoded else {
                null_refused(loaded, j)
            };
            if !v.is_finite() {
                non_finite(loaded, j, v);
            }
            self.x[j] = v;
        }
    }
}

#[cold]
fn null_refused(loaded: &LoadedModel, feature: usize) -> ! {
    super::errors::raise(
        EngineError::new(
            ErrorKind::NullValue,
            format!(
                "column \"{}\" is NULL, which {} cannot score",
                loaded.inputs[feature].name,
                loaded.row.label()
            ),
        )
        .with_hint("The CLV models and RFM segments need their columns for every customer; customer_value.rfm() and create_log_features() never leave them NULL."),
    )
}

#[cold]
fn non_finite(loaded: &LoadedModel, feature: usize, value: f64) -> ! {
    super::errors::raise(
        EngineError::new(
            ErrorKind::NonFiniteValue,
            format!(
                "column \"{}\" holds {value}, which {} cannot score",
                loaded.inputs[feature].name,
                loaded.row.label()
            ),
        )
        .with_hint("Replace NaN and infinite values, e.g. with NULL, which is imputed."),
    )
}

/// The text model argument as bytes, without copying or UTF-8 validation (compared bytewise).
pub(super) unsafe fn name_arg<'a>(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> KeyArg<'a> {
    unsafe {
        let raw = pg_getarg_datum_raw(fcinfo, index);
        let text = pg_sys::pg_detoast_datum_packed(raw.cast_mut_ptr());
        KeyArg::Name(pgrx::varlena::varlena_to_byte_slice(text))
    }
}

pub(super) unsafe fn id_arg<'a>(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> KeyArg<'a> {
    KeyArg::Id(unsafe { pg_getarg::<i64>(fcinfo, index) }.unwrap_or(0))
}

// Each scoring function is declared in SQL right below its Rust entry point: it takes a
// `record`, which it reads in place through `fcinfo` (pgrx would copy every row before the call).
// `customer_value` and `customer_tier` are created unqualified, in the extension's schema
// (public by default), so analysts and BI tools call customer_value(c) without a schema. A model
// id names one immutable version, so the by-id variants are honestly IMMUTABLE (Citus can push
// them down to shards and use them in UPDATE ... SET).

pub(super) unsafe fn value(fcinfo: pg_sys::FunctionCallInfo, source: Source<'_>) -> f64 {
    let (x, model) = unsafe { read_row(fcinfo, source) };
    finite_or_raise(fcinfo, model.predict(x))
}

pub(super) unsafe fn tier(fcinfo: pg_sys::FunctionCallInfo, source: Source<'_>) -> String {
    let (x, model) = unsafe { read_row(fcinfo, source) };
    // a multi-class model's tier is its most likely class (its probabilities computed once)
    if let Predictor::OneVsRest(_) = &model.predictor {
        return model.predicted_label(x).unwrap_or("").to_string();
    }
    let prediction = finite_or_raise(fcinfo, model.predict(x));
    model.tiers.assign(prediction).to_string()
}

/// A prediction that overflowed (extreme inputs or parameters) is an error, never a silent
/// Infinity or NaN in the user's results.
#[inline]
fn finite_or_raise(fcinfo: pg_sys::FunctionCallInfo, value: f64) -> f64 {
    if value.is_finite() {
        return value;
    }
    let label = unsafe { call_site(fcinfo) }
        .model
        .as_ref()
        .map(|m| m.row.label())
        .unwrap_or_else(|| "the model".into());
    super::errors::raise(
        EngineError::new(
            ErrorKind::NonFiniteValue,
            format!("{label} gives {value} for this row"),
        )
        .with_hint("Check the row for extreme values; the model's output overflowed."),
    )
}

#[pg_extern(sql = false)]
fn cv_value_default(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe { value(fcinfo, Source::Row(KeyArg::Default)) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value("row" record) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_value_default_wrapper';
COMMENT ON FUNCTION customer_value(record) IS
    'Predicted value of a customer row with the default model (customer_value.model, else the only deployed model); features are matched by column name';
"#,
    name = "cv_value_default_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_value_named(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe { value(fcinfo, Source::Row(name_arg(fcinfo, 1))) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value("row" record, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_value_named_wrapper';
COMMENT ON FUNCTION customer_value(record, text) IS
    'Predicted value of a customer row with the deployed version of the named model, or name@version for a pinned version';
"#,
    name = "cv_value_named_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_value_by_id(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe { value(fcinfo, Source::Row(id_arg(fcinfo, 1))) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value("row" record, model_id bigint) RETURNS float8
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_value_by_id_wrapper';
COMMENT ON FUNCTION customer_value(record, bigint) IS
    'Predicted value of a customer row with the model of this id (immutable: one fixed version)';
"#,
    name = "cv_value_by_id_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_tier_default(fcinfo: pg_sys::FunctionCallInfo) -> String {
    unsafe { tier(fcinfo, Source::Row(KeyArg::Default)) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_tier("row" record) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_tier_default_wrapper';
COMMENT ON FUNCTION customer_tier(record) IS
    'Value tier (e.g. VIP/high/medium/low) of a customer row with the default model';
"#,
    name = "cv_tier_default_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_tier_named(fcinfo: pg_sys::FunctionCallInfo) -> String {
    unsafe { tier(fcinfo, Source::Row(name_arg(fcinfo, 1))) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_tier("row" record, model text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_tier_named_wrapper';
COMMENT ON FUNCTION customer_tier(record, text) IS
    'Value tier of a customer row with the deployed version of the named model, or name@version';
"#,
    name = "cv_tier_named_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_tier_by_id(fcinfo: pg_sys::FunctionCallInfo) -> String {
    unsafe { tier(fcinfo, Source::Row(id_arg(fcinfo, 1))) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_tier("row" record, model_id bigint) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_tier_by_id_wrapper';
COMMENT ON FUNCTION customer_tier(record, bigint) IS
    'Value tier of a customer row with the model of this id (immutable: one fixed version)';
"#,
    name = "cv_tier_by_id_sql",
    requires = ["schema", "cv_score_support_sql"]
);

// predict_proba(row [, model]): the probability of the positive class of a binary classifier.

pub(super) unsafe fn probability(fcinfo: pg_sys::FunctionCallInfo, source: Source<'_>) -> f64 {
    let (x, model) = unsafe { read_row(fcinfo, source) };
    if model.task != Task::Classification {
        not_a_classifier(fcinfo);
    }
    finite_or_raise(fcinfo, model.predict(x))
}

#[cold]
fn not_a_classifier(fcinfo: pg_sys::FunctionCallInfo) -> ! {
    let label = unsafe { call_site(fcinfo) }
        .model
        .as_ref()
        .map(|m| m.row.label())
        .unwrap_or_else(|| "the model".into());
    super::errors::raise(
        EngineError::invalid_parameter(format!("{label} is not a classifier"))
            .with_hint("predict_proba needs a model trained on a boolean target (e.g. churned); use customer_value(row) for a value."),
    )
}

#[pg_extern(sql = false)]
fn cv_proba_default(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe { probability(fcinfo, Source::Row(KeyArg::Default)) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.predict_proba("row" record) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_proba_default_wrapper';
COMMENT ON FUNCTION customer_value.predict_proba(record) IS
    'Probability of the positive class (e.g. churned = true) of a customer row, with the default classifier';
"#,
    name = "cv_proba_default_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_proba_named(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe { probability(fcinfo, Source::Row(name_arg(fcinfo, 1))) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.predict_proba("row" record, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_proba_named_wrapper';
COMMENT ON FUNCTION customer_value.predict_proba(record, text) IS
    'Probability of the positive class of a customer row, with the named classifier (name or name@version)';
"#,
    name = "cv_proba_named_sql",
    requires = ["schema", "cv_score_support_sql"]
);

// explain(row [, model]): per-feature contributions that add up to the prediction.

pub(super) unsafe fn explanation(
    fcinfo: pg_sys::FunctionCallInfo,
    source: Source<'_>,
) -> pgrx::JsonB {
    let (x, model) = unsafe { read_row(fcinfo, source) };
    let e = model.explain(x).or_raise();
    // by key: a text column's one-hot indicators add up to its one contribution (a sequence
    // model's channels to their period's)
    let mut contributions = serde_json::Map::new();
    for (key, c) in e.keys.iter().zip(&e.contributions) {
        let total = contributions
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
            + c;
        contributions.insert(key.clone(), serde_json::json!(total));
    }
    let site = unsafe { call_site(fcinfo) };
    let (name, version) = site
        .model
        .as_ref()
        .map(|m| (m.row.name.clone(), m.row.version))
        .unwrap_or_default();
    let mut out = serde_json::json!({
        "model": name,
        "version": version,
        "baseline": e.baseline,
        "prediction": e.prediction,
        "contributions": contributions,
        "scale": e.scale,
        "value": finite_or_raise(fcinfo, model.predict(x)),
    });
    if let Some(residual) = e.residual {
        out["residual"] = serde_json::json!(residual);
        out["method"] = serde_json::json!("integrated_gradients");
    }
    pgrx::JsonB(out)
}

#[pg_extern(sql = false)]
fn cv_explain_default(fcinfo: pg_sys::FunctionCallInfo) -> pgrx::JsonB {
    unsafe { explanation(fcinfo, Source::Row(KeyArg::Default)) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.explain("row" record) RETURNS jsonb
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_explain_default_wrapper';
COMMENT ON FUNCTION customer_value.explain(record) IS
    'Why this prediction: {"baseline", "prediction", "contributions": {feature: value}, "scale", "value"} with baseline + sum of contributions = prediction (exact: linear coefficients or TreeSHAP; gru and cnn: integrated gradients by period of the history, plus their "residual"), default model';
"#,
    name = "cv_explain_default_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_explain_named(fcinfo: pg_sys::FunctionCallInfo) -> pgrx::JsonB {
    unsafe { explanation(fcinfo, Source::Row(name_arg(fcinfo, 1))) }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.explain("row" record, model text) RETURNS jsonb
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_explain_named_wrapper';
COMMENT ON FUNCTION customer_value.explain(record, text) IS
    'Why this prediction, with the named model: per-feature contributions adding up to prediction - baseline (with "residual" for the integrated gradients of gru and cnn)';
"#,
    name = "cv_explain_named_sql",
    requires = ["schema", "cv_score_support_sql"]
);

// CLV quantities: expected_purchases(row, periods [, model]), p_alive(row [, model]),
// expected_spend(row [, model]). Which model parts they need is checked by the engine.

pub(super) unsafe fn clv_quantity(
    fcinfo: pg_sys::FunctionCallInfo,
    source: Source<'_>,
    quantity: ClvQuantity,
) -> f64 {
    let (x, model) = unsafe { read_row(fcinfo, source) };
    let value = model.clv_quantity(quantity, x).or_raise();
    finite_or_raise(fcinfo, value)
}

#[pg_extern(sql = false)]
fn cv_expected_purchases_default(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    let periods = unsafe { pg_getarg::<f64>(fcinfo, 1) }.unwrap_or(0.0);
    unsafe {
        clv_quantity(
            fcinfo,
            Source::Row(KeyArg::Default),
            ClvQuantity::ExpectedPurchases(periods),
        )
    }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.expected_purchases("row" record, periods float8) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_expected_purchases_default_wrapper';
COMMENT ON FUNCTION customer_value.expected_purchases(record, float8) IS
    'Expected repeat purchases of a customer in the next `periods` time units, with the default CLV model (bgnbd, mbgnbd, pareto_nbd or clv)';
"#,
    name = "cv_expected_purchases_default_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_expected_purchases_named(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    let periods = unsafe { pg_getarg::<f64>(fcinfo, 1) }.unwrap_or(0.0);
    unsafe {
        clv_quantity(
            fcinfo,
            Source::Row(name_arg(fcinfo, 2)),
            ClvQuantity::ExpectedPurchases(periods),
        )
    }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.expected_purchases("row" record, periods float8, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_expected_purchases_named_wrapper';
COMMENT ON FUNCTION customer_value.expected_purchases(record, float8, text) IS
    'Expected repeat purchases of a customer in the next `periods` time units, with the named CLV model';
"#,
    name = "cv_expected_purchases_named_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_p_alive_default(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe {
        clv_quantity(
            fcinfo,
            Source::Row(KeyArg::Default),
            ClvQuantity::ProbabilityAlive,
        )
    }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.p_alive("row" record) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_p_alive_default_wrapper';
COMMENT ON FUNCTION customer_value.p_alive(record) IS
    'Probability that the customer is still active (alive) at the end of calibration, with the default CLV model';
"#,
    name = "cv_p_alive_default_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_p_alive_named(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe {
        clv_quantity(
            fcinfo,
            Source::Row(name_arg(fcinfo, 1)),
            ClvQuantity::ProbabilityAlive,
        )
    }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.p_alive("row" record, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_p_alive_named_wrapper';
COMMENT ON FUNCTION customer_value.p_alive(record, text) IS
    'Probability that the customer is still active (alive) at the end of calibration, with the named CLV model';
"#,
    name = "cv_p_alive_named_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_expected_spend_default(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe {
        clv_quantity(
            fcinfo,
            Source::Row(KeyArg::Default),
            ClvQuantity::ExpectedSpend,
        )
    }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.expected_spend("row" record) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_expected_spend_default_wrapper';
COMMENT ON FUNCTION customer_value.expected_spend(record) IS
    'Expected value of the customer''s future purchases (Gamma-Gamma), with the default spend or clv model';
"#,
    name = "cv_expected_spend_default_sql",
    requires = ["schema", "cv_score_support_sql"]
);

#[pg_extern(sql = false)]
fn cv_expected_spend_named(fcinfo: pg_sys::FunctionCallInfo) -> f64 {
    unsafe {
        clv_quantity(
            fcinfo,
            Source::Row(name_arg(fcinfo, 1)),
            ClvQuantity::ExpectedSpend,
        )
    }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.expected_spend("row" record, model text) RETURNS float8
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_expected_spend_named_wrapper';
COMMENT ON FUNCTION customer_value.expected_spend(record, text) IS
    'Expected value of the customer''s future purchases (Gamma-Gamma), with the named spend or clv model';
"#,
    name = "cv_expected_spend_named_sql",
    requires = ["schema", "cv_score_support_sql"]
);

// rfm_segment(row [, model]) and rfm_score(row [, model]): the marketing RFM segmentation, with
// the quintile boundaries the model stored when it was trained.

pub(super) unsafe fn rfm_scores(fcinfo: pg_sys::FunctionCallInfo, source: Source<'_>) -> RfmScores {
    let (x, model) = unsafe { read_inputs(fcinfo, source, Reads::Segments) };
    // a model without segments was refused when loaded; this only names it again
    let segments = model
        .segments
        .as_ref()
        .ok_or_else(|| no_segments("the model"))
        .or_raise();
    segments.scores(segments.values(x).or_raise())
}

#[pg_extern(sql = false)]
fn cv_rfm_segment_default(fcinfo: pg_sys::FunctionCallInfo) -> &'static str {
    unsafe { rfm_scores(fcinfo, Source::Row(KeyArg::Default)) }
        .segment()
        .name()
}

#[pg_extern(sql = false)]
fn cv_rfm_segment_named(fcinfo: pg_sys::FunctionCallInfo) -> &'static str {
    unsafe { rfm_scores(fcinfo, Source::Row(name_arg(fcinfo, 1))) }
        .segment()
        .name()
}

#[pg_extern(sql = false)]
fn cv_rfm_score_default(fcinfo: pg_sys::FunctionCallInfo) -> String {
    unsafe { rfm_scores(fcinfo, Source::Row(KeyArg::Default)) }.code()
}

#[pg_extern(sql = false)]
fn cv_rfm_score_named(fcinfo: pg_sys::FunctionCallInfo) -> String {
    unsafe { rfm_scores(fcinfo, Source::Row(name_arg(fcinfo, 1))) }.code()
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.rfm_segment("row" record) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_rfm_segment_default_wrapper';
COMMENT ON FUNCTION customer_value.rfm_segment(record) IS
    'RFM segment (champions, loyal, potential_loyalist, new, promising, need_attention, about_to_sleep, cannot_lose, at_risk, hibernating) of a customer row, from quintile scores cut on the default model''s training population';
CREATE FUNCTION customer_value.rfm_segment("row" record, model text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_rfm_segment_named_wrapper';
COMMENT ON FUNCTION customer_value.rfm_segment(record, text) IS
    'RFM segment of a customer row, from the quintile boundaries stored with the named model (name or name@version)';
CREATE FUNCTION customer_value.rfm_score("row" record) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_rfm_score_default_wrapper';
COMMENT ON FUNCTION customer_value.rfm_score(record) IS
    'RFM score of a customer row as three digits, recency, frequency and monetary quintile (5 best), e.g. 535, with the default model''s boundaries';
CREATE FUNCTION customer_value.rfm_score("row" record, model text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    SUPPORT customer_value.score_support
    AS 'MODULE_PATHNAME', 'cv_rfm_score_named_wrapper';
COMMENT ON FUNCTION customer_value.rfm_score(record, text) IS
    'RFM score of a customer row as three digits (recency, frequency, monetary; 5 best), with the named model''s boundaries';
"#,
    name = "cv_rfm_segment_sql",
    requires = ["schema", "cv_score_support_sql"]
);
