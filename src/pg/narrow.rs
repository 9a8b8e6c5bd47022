//! Narrowed scoring calls: the planner support function of every scoring function, and the
//! functions it rewrites calls into.
//!
//! `customer_value(c, 'spend')` on a table's row makes the executor build the whole row as a
//! datum for every call — every column copied, used or not — which the function then takes
//! apart again. At plan time, the support function (`SupportRequestSimplify`) rewrites such a
//! call into `customer_value.score_columns_*(operation, model, model_id, periods, columns,
//! VARIADIC "any")`, which receives only the columns the model reads, by name, as arguments.
//! No row datum is built; the cost no longer grows with the table's unused columns.
//!
//! Only a whole-row reference of a table (`c` for `FROM customers c`) at the query's own level
//! is narrowed, with a model named by a constant that resolves at plan time, and not on the
//! nullable side of an outer join (there a NULL row must stay a NULL result). Everything else —
//! `ROW(…)`, a subquery's record, a model named by a parameter — keeps the row path.
//!
//! The plan is made for the model of that moment. It stays right when the model changes:
//! - the plan depends on the model store: the models table joins its relation dependencies,
//!   and every write that changes what a name resolves to (train, retrain, deploy) sends a
//!   relcache invalidation for it ([`models_changed`]), so cached plans (prepared statements,
//!   PL/pgSQL, JDBC) are planned again before they run;
//! - setting `customer_value.model` resets the backend's plan cache (`super::guc`);
//! - at execution the model is resolved as on the row path, and its inputs are found by name
//!   among the planned columns; a model that needs a column the plan does not read (changed by a
//!   write the invalidation cannot see, e.g. between planning and the first row) is an error
//!   (55000) asking to run the statement again — never a wrong number.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::{pg_getarg, pg_sys};

use crate::engine::clv::model::ClvQuantity;
use crate::engine::error::EngineError;

use super::errors::OrRaise;
use super::score::{self, ModelKey, Reads, Source};

/// What a narrowed call computes: one per scoring function (the by-name, by-id and default
/// variants share theirs). The number is the call's first argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Value = 1,
    Tier = 2,
    Probability = 3,
    Explain = 4,
    ExpectedPurchases = 5,
    ProbabilityAlive = 6,
    ExpectedSpend = 7,
    RfmSegment = 8,
    RfmScore = 9,
}

const OPERATIONS: [Operation; 9] = [
    Operation::Value,
    Operation::Tier,
    Operation::Probability,
    Operation::Explain,
    Operation::ExpectedPurchases,
    Operation::ProbabilityAlive,
    Operation::ExpectedSpend,
    Operation::RfmSegment,
    Operation::RfmScore,
];

impl Operation {
    /// The operation of a scoring function by its SQL name.
    fn of_function(name: &str) -> Option<Operation> {
        Some(match name {
            "customer_value" => Operation::Value,
            "customer_tier" => Operation::Tier,
            "predict_proba" => Operation::Probability,
            "explain" => Operation::Explain,
            "expected_purchases" => Operation::ExpectedPurchases,
            "p_alive" => Operation::ProbabilityAlive,
            "expected_spend" => Operation::ExpectedSpend,
            "rfm_segment" => Operation::RfmSegment,
            "rfm_score" => Operation::RfmScore,
            _ => return None,
        })
    }

    fn from_code(code: i32) -> Option<Operation> {
        OPERATIONS.into_iter().find(|op| *op as i32 == code)
    }

    /// Arguments before the model argument (the row, and `periods` of expected_purchases).
    fn leading_args(self) -> usize {
        if self == Operation::ExpectedPurchases {
            2
        } else {
            1
        }
    }

    fn reads(self) -> Reads {
        match self {
            Operation::RfmSegment | Operation::RfmScore => Reads::Segments,
            _ => Reads::Features,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plan time

#[pg_extern(sql = false)]
fn cv_score_support(fcinfo: pg_sys::FunctionCallInfo) -> pgrx::Internal {
    // SAFETY: Postgres calls a support function with one `internal` argument, a request node;
    // the answer is a node or NULL (the pointer, not an SQL NULL)
    let narrowed = unsafe {
        let request = pg_getarg::<pg_sys::Datum>(fcinfo, 0)
            .map(|d| d.cast_mut_ptr::<pg_sys::Node>())
            .unwrap_or(std::ptr::null_mut());
        if request.is_null() || (*request).type_ != pg_sys::NodeTag::T_SupportRequestSimplify {
            None
        } else {
            let request = request as *mut pg_sys::SupportRequestSimplify;
            narrow(
                (*request).root,
                (*request).fcall,
                (*(*fcinfo).flinfo).fn_oid,
            )
        }
    };
    pgrx::Internal::from(Some(pg_sys::Datum::from(
        narrowed.unwrap_or(std::ptr::null_mut()),
    )))
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.score_support(internal) RETURNS internal
    LANGUAGE c STRICT
    AS 'MODULE_PATHNAME', 'cv_score_support_wrapper';
COMMENT ON FUNCTION customer_value.score_support(internal) IS
    'Planner support of the scoring functions: a call on a table''s whole row becomes a call on only the columns the model reads';
"#,
    name = "cv_score_support_sql",
    requires = ["schema"]
);

/// A scoring call on a table's whole row, as the planner sees it.
struct WholeRowCall {
    operation: Operation,
    /// The Var of the row: the range table index and the relation.
    varno: i32,
    relation: pg_sys::Oid,
    key: ModelKey,
    periods: Option<*mut pg_sys::Node>,
}

/// The narrowed call for `fcall`, or None to keep the row path.
unsafe fn narrow(
    root: *mut pg_sys::PlannerInfo,
    fcall: *mut pg_sys::FuncExpr,
    support: pg_sys::Oid,
) -> Option<*mut pg_sys::Node> {
    if !super::guc::NARROW_SCORING.get() {
        return None;
    }
    unsafe {
        let call = whole_row_call(root, fcall)?;
        let models = readable_models_table()?;
        let columns = score::planned_columns(&call.key, call.operation.reads()).ok()?;
        let vars = column_vars(&call, &columns)?;
        let function = narrowed_function((*fcall).funcresulttype, support)?;
        let glob = (*root).glob;
        if !glob.is_null() {
            (*glob).relationOids = pg_sys::lappend_oid((*glob).relationOids, models);
        }
        let mut args = leading_consts(&call, &columns);
        for var in vars {
            args = pg_sys::lappend(args, var.cast());
        }
        let expr = pg_sys::makeFuncExpr(
            function,
            (*fcall).funcresulttype,
            args,
            (*fcall).funccollid,
            (*fcall).inputcollid,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        (*expr).location = (*fcall).location;
        Some(expr.cast())
    }
}

/// The call's parts when it scores a narrowable whole-row reference, else None.
unsafe fn whole_row_call(
    root: *mut pg_sys::PlannerInfo,
    fcall: *mut pg_sys::FuncExpr,
) -> Option<WholeRowCall> {
    unsafe {
        if root.is_null() || (*root).parse.is_null() {
            return None;
        }
        let name = CStr::from_ptr(pg_sys::get_func_name((*fcall).funcid).as_ref()?);
        let operation = Operation::of_function(name.to_str().ok()?)?;
        let args = list_items((*fcall).args);
        let var = *args.first()? as *mut pg_sys::Node;
        if (*var).type_ != pg_sys::NodeTag::T_Var {
            return None;
        }
        let var = var as *mut pg_sys::Var;
        if (*var).varattno != 0 || (*var).varlevelsup != 0 {
            return None;
        }
        let varno = (*var).varno as pg_sys::Index;
        let relation = table_of(root, varno)?;
        if on_nullable_side((*(*root).parse).jointree.cast(), varno, false)? {
            return None;
        }
        let key = match args.get(operation.leading_args()) {
            None => ModelKey::Default,
            Some(&arg) => constant_key(arg as *mut pg_sys::Node)?,
        };
        let periods = (operation == Operation::ExpectedPurchases)
            .then(|| args.get(1).map(|&a| a as *mut pg_sys::Node))
            .flatten();
        Some(WholeRowCall {
            operation,
            varno: varno as i32,
            relation,
            key,
            periods,
        })
    }
}

/// The relation of range table entry `varno` when it is a plain, partitioned or foreign table
/// or a materialized view.
unsafe fn table_of(root: *mut pg_sys::PlannerInfo, varno: pg_sys::Index) -> Option<pg_sys::Oid> {
    unsafe {
        let rtable = list_items((*(*root).parse).rtable);
        let rte = *rtable.get((varno as usize).checked_sub(1)?)? as *mut pg_sys::RangeTblEntry;
        if (*rte).rtekind != pg_sys::RTEKind::RTE_RELATION {
            return None;
        }
        let kinds = [
            pg_sys::RELKIND_RELATION,
            pg_sys::RELKIND_PARTITIONED_TABLE,
            pg_sys::RELKIND_FOREIGN_TABLE,
            pg_sys::RELKIND_MATVIEW,
        ];
        kinds
            .contains(&((*rte).relkind as u8))
            .then_some((*rte).relid)
    }
}

/// Whether range table entry `varno` lies on the nullable side of an outer join in the join
/// tree `node` (whose own side is `nullable`); None when it is not in the tree.
unsafe fn on_nullable_side(
    node: *mut pg_sys::Node,
    varno: pg_sys::Index,
    nullable: bool,
) -> Option<bool> {
    unsafe {
        if node.is_null() {
            return None;
        }
        match (*node).type_ {
            pg_sys::NodeTag::T_RangeTblRef => {
                ((*(node as *mut pg_sys::RangeTblRef)).rtindex as pg_sys::Index == varno)
                    .then_some(nullable)
            }
            pg_sys::NodeTag::T_FromExpr => list_items((*(node as *mut pg_sys::FromExpr)).fromlist)
                .iter()
                .find_map(|&item| on_nullable_side(item.cast(), varno, nullable)),
            pg_sys::NodeTag::T_JoinExpr => {
                let join = node as *mut pg_sys::JoinExpr;
                use pg_sys::JoinType::*;
                let kind = (*join).jointype;
                let left = nullable || kind == JOIN_RIGHT || kind == JOIN_FULL;
                let right = nullable || kind == JOIN_LEFT || kind == JOIN_FULL || kind == JOIN_ANTI;
                on_nullable_side((*join).larg, varno, left)
                    .or_else(|| on_nullable_side((*join).rarg, varno, right))
            }
            _ => None,
        }
    }
}

/// The model key of a constant, non-NULL model argument (text name or bigint id).
unsafe fn constant_key(arg: *mut pg_sys::Node) -> Option<ModelKey> {
    unsafe {
        if (*arg).type_ != pg_sys::NodeTag::T_Const {
            return None;
        }
        let constant = arg as *mut pg_sys::Const;
        if (*constant).constisnull {
            return None;
        }
        match (*constant).consttype {
            pg_sys::TEXTOID => {
                String::from_datum((*constant).constvalue, false).map(ModelKey::Name)
            }
            pg_sys::INT8OID => i64::from_datum((*constant).constvalue, false).map(ModelKey::Id),
            _ => None,
        }
    }
}

/// A Var for each of `columns` in the call's table, or None if one is missing.
unsafe fn column_vars(call: &WholeRowCall, columns: &[String]) -> Option<Vec<*mut pg_sys::Var>> {
    if columns.is_empty() {
        return None;
    }
    let mut vars = Vec::with_capacity(columns.len());
    for column in columns {
        let name = std::ffi::CString::new(column.as_str()).ok()?;
        unsafe {
            let attnum = pg_sys::get_attnum(call.relation, name.as_ptr());
            if attnum <= 0 {
                return None;
            }
            let (mut type_id, mut type_mod, mut collation) =
                (pg_sys::InvalidOid, -1, pg_sys::InvalidOid);
            pg_sys::get_atttypetypmodcoll(
                call.relation,
                attnum,
                &mut type_id,
                &mut type_mod,
                &mut collation,
            );
            vars.push(pg_sys::makeVar(
                call.varno as _,
                attnum,
                type_id,
                type_mod,
                collation,
                0,
            ));
        }
    }
    Some(vars)
}

/// The narrowed call's arguments before the columns, in the order of `score::OPERATION` …
/// `score::COLUMN_NAMES`: operation, model name, model id, periods and the column names.
unsafe fn leading_consts(call: &WholeRowCall, columns: &[String]) -> *mut pg_sys::List {
    let (name, id) = match &call.key {
        ModelKey::Default => (None, None),
        ModelKey::Name(name) => (Some(name.clone()), None),
        ModelKey::Id(id) => (None, Some(*id)),
    };
    unsafe {
        let periods = call
            .periods
            .unwrap_or_else(|| constant(pg_sys::FLOAT8OID, None::<f64>));
        let items: [*mut pg_sys::Node; 5] = [
            constant(pg_sys::INT4OID, Some(call.operation as i32)),
            constant(pg_sys::TEXTOID, name),
            constant(pg_sys::INT8OID, id),
            periods,
            constant(pg_sys::TEXTARRAYOID, Some(columns.to_vec())),
        ];
        items.into_iter().fold(std::ptr::null_mut(), |list, item| {
            pg_sys::lappend(list, item.cast())
        })
    }
}

/// A Const of type `type_id` holding `value` (NULL for None).
unsafe fn constant<T: IntoDatum>(type_id: pg_sys::Oid, value: Option<T>) -> *mut pg_sys::Node {
    let (mut length, mut by_value) = (0i16, false);
    unsafe {
        pg_sys::get_typlenbyval(type_id, &mut length, &mut by_value);
        let datum = value.and_then(|v| v.into_datum());
        let collation = if type_id == pg_sys::TEXTOID || type_id == pg_sys::TEXTARRAYOID {
            pg_sys::DEFAULT_COLLATION_OID
        } else {
            pg_sys::InvalidOid
        };
        pg_sys::makeConst(
            type_id,
            -1,
            collation,
            length as i32,
            datum.unwrap_or(pg_sys::Datum::from(0usize)),
            datum.is_none(),
            by_value,
        )
        .cast()
    }
}

/// The items of a pointer List.
unsafe fn list_items<'a>(list: *mut pg_sys::List) -> &'a [*mut std::ffi::c_void] {
    unsafe {
        if list.is_null() {
            return &[];
        }
        let cells = std::slice::from_raw_parts((*list).elements, (*list).length as usize);
        // SAFETY: a pointer List's cells hold pointers (ListCell is a union of pointer, int, oid)
        std::slice::from_raw_parts(cells.as_ptr().cast(), cells.len())
    }
}

thread_local! {
    /// The narrowed functions' oids, for the support function of this oid (a reinstalled
    /// extension has another).
    static FUNCTIONS: Cell<(pg_sys::Oid, [pg_sys::Oid; 3])> =
        const { Cell::new((pg_sys::InvalidOid, [pg_sys::InvalidOid; 3])) };
}

/// The narrowed function returning `result_type` (float8, text or jsonb).
unsafe fn narrowed_function(result_type: pg_sys::Oid, support: pg_sys::Oid) -> Option<pg_sys::Oid> {
    let index = [pg_sys::FLOAT8OID, pg_sys::TEXTOID, pg_sys::JSONBOID]
        .iter()
        .position(|t| *t == result_type)?;
    let (cached_for, mut oids) = FUNCTIONS.with(Cell::get);
    if cached_for != support || oids[index] == pg_sys::InvalidOid {
        if cached_for != support {
            oids = [pg_sys::InvalidOid; 3];
        }
        let names = [
            c"score_columns_float8",
            c"score_columns_text",
            c"score_columns_jsonb",
        ];
        oids[index] = unsafe { look_up_function(names[index]) };
        FUNCTIONS.with(|f| f.set((support, oids)));
    }
    (oids[index] != pg_sys::InvalidOid).then_some(oids[index])
}

unsafe fn look_up_function(name: &CStr) -> pg_sys::Oid {
    unsafe {
        let qualified =
            [c"customer_value", name]
                .into_iter()
                .fold(std::ptr::null_mut(), |list, part| {
                    pg_sys::lappend(
                        list,
                        pg_sys::makeString(pg_sys::pstrdup(part.as_ptr())).cast(),
                    )
                });
        let types = [
            pg_sys::INT4OID,
            pg_sys::TEXTOID,
            pg_sys::INT8OID,
            pg_sys::FLOAT8OID,
            pg_sys::TEXTARRAYOID,
            pg_sys::ANYOID,
        ];
        pg_sys::LookupFuncName(qualified, types.len() as i32, types.as_ptr(), true)
    }
}

/// The oid of `customer_value.models`, if the store exists.
fn models_table() -> Option<pg_sys::Oid> {
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"customer_value".as_ptr(), true);
        if schema == pg_sys::InvalidOid {
            return None;
        }
        let table = pg_sys::get_relname_relid(c"models".as_ptr(), schema);
        (table != pg_sys::InvalidOid).then_some(table)
    }
}

/// The models table when the current user may read it: the model is resolved at plan time
/// only then, so planning never fails where scoring would (the row path reports it instead).
unsafe fn readable_models_table() -> Option<pg_sys::Oid> {
    unsafe {
        let user = pg_sys::GetUserId();
        let schema = pg_sys::get_namespace_oid(c"customer_value".as_ptr(), true);
        let models = models_table()?;
        let usable = pg_sys::pg_namespace_aclcheck(schema, user, pg_sys::ACL_USAGE as _)
            == pg_sys::AclResult::ACLCHECK_OK
            && pg_sys::pg_class_aclcheck(models, user, pg_sys::ACL_SELECT as _)
                == pg_sys::AclResult::ACLCHECK_OK;
        usable.then_some(models)
    }
}

/// Tells every backend's plan cache that what model names resolve to has changed: plans that
/// narrowed a scoring call depend on the models table and are planned again. Sent at commit,
/// like the write itself.
pub fn models_changed() {
    if let Some(table) = models_table() {
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(table) };
    }
}

// ---------------------------------------------------------------------------------------------
// Execution: the functions narrowed calls call

/// The operation of a narrowed call, which must be one of `allowed` (those of its result type).
unsafe fn call_operation(fcinfo: pg_sys::FunctionCallInfo, allowed: &[Operation]) -> Operation {
    let code = unsafe { pg_getarg::<i32>(fcinfo, score::OPERATION) }.unwrap_or(0);
    Operation::from_code(code)
        .filter(|op| allowed.contains(op))
        .ok_or_else(|| {
            EngineError::invalid_parameter(format!("{code} is not an operation of this function"))
                .with_hint("These functions are what the planner turns customer_value(row, …) into; call customer_value(row, …) instead.")
        })
        .or_raise()
}

#[pg_extern(sql = false)]
fn cv_score_columns_float8(fcinfo: pg_sys::FunctionCallInfo) -> Option<f64> {
    use Operation::*;
    unsafe {
        let operation = call_operation(
            fcinfo,
            &[
                Value,
                Probability,
                ExpectedPurchases,
                ProbabilityAlive,
                ExpectedSpend,
            ],
        );
        let source = Source::Columns;
        Some(match operation {
            Value => score::value(fcinfo, source),
            Probability => score::probability(fcinfo, source),
            // periods is a strict argument of expected_purchases: NULL gives NULL
            ExpectedPurchases => {
                let periods = pg_getarg::<f64>(fcinfo, score::PERIODS)?;
                score::clv_quantity(fcinfo, source, ClvQuantity::ExpectedPurchases(periods))
            }
            ProbabilityAlive => score::clv_quantity(fcinfo, source, ClvQuantity::ProbabilityAlive),
            _ => score::clv_quantity(fcinfo, source, ClvQuantity::ExpectedSpend),
        })
    }
}

#[pg_extern(sql = false)]
fn cv_score_columns_text(fcinfo: pg_sys::FunctionCallInfo) -> String {
    use Operation::*;
    unsafe {
        let operation = call_operation(fcinfo, &[Tier, RfmSegment, RfmScore]);
        let source = Source::Columns;
        match operation {
            Tier => score::tier(fcinfo, source),
            RfmSegment => score::rfm_scores(fcinfo, source)
                .segment()
                .name()
                .to_string(),
            _ => score::rfm_scores(fcinfo, source).code(),
        }
    }
}

#[pg_extern(sql = false)]
fn cv_score_columns_jsonb(fcinfo: pg_sys::FunctionCallInfo) -> pgrx::JsonB {
    unsafe {
        call_operation(fcinfo, &[Operation::Explain]);
        score::explanation(fcinfo, Source::Columns)
    }
}

extension_sql!(
    r#"
CREATE FUNCTION customer_value.score_columns_float8(operation int4, model text, model_id bigint, periods float8, columns text[], VARIADIC "any") RETURNS float8
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_score_columns_float8_wrapper';
COMMENT ON FUNCTION customer_value.score_columns_float8(int4, text, bigint, float8, text[], "any") IS
    'What the planner turns customer_value(row), predict_proba, expected_purchases, p_alive and expected_spend on a table''s row into: the same result from only the columns the model reads (see EXPLAIN VERBOSE); not meant to be called directly';
CREATE FUNCTION customer_value.score_columns_text(operation int4, model text, model_id bigint, periods float8, columns text[], VARIADIC "any") RETURNS text
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_score_columns_text_wrapper';
COMMENT ON FUNCTION customer_value.score_columns_text(int4, text, bigint, float8, text[], "any") IS
    'What the planner turns customer_tier(row), rfm_segment and rfm_score on a table''s row into: the same result from only the columns the model reads; not meant to be called directly';
CREATE FUNCTION customer_value.score_columns_jsonb(operation int4, model text, model_id bigint, periods float8, columns text[], VARIADIC "any") RETURNS jsonb
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cv_score_columns_jsonb_wrapper';
COMMENT ON FUNCTION customer_value.score_columns_jsonb(int4, text, bigint, float8, text[], "any") IS
    'What the planner turns explain(row) on a table''s row into: the same result from only the columns the model reads; not meant to be called directly';
"#,
    name = "cv_score_columns_sql",
    requires = ["schema"]
);
