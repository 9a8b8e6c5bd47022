// #[pg_test]s for the Postgres layer: what only a running server can check. The user-facing SQL
// surface is covered by the golden files in tests/pg_regress; the maths by the engine's tests.

use pgrx::prelude::*;
use std::rc::Rc;

use crate::engine::features::SqlType;
use crate::pg::{source::looks_like_query, store, types::sql_type_of};

fn make_customers() {
    Spi::run(
        "CREATE TABLE t_customers (id int PRIMARY KEY, orders int, basket float8, spend float8);
         INSERT INTO t_customers
         SELECT i, (i * 37) % 23, ((i * 53) % 97) / 4.0, 3 + 2 * ((i * 37) % 23) + 0.5 * (((i * 53) % 97) / 4.0)
           FROM generate_series(1, 200) i;",
    )
    .unwrap();
    Spi::run("SELECT * FROM customer_value.train('t', 't_customers', 'spend', 'linear')").unwrap();
}

#[pg_test]
fn sql_scoring_equals_the_decoded_model_prediction() {
    make_customers();
    let row = store::resolve("t").unwrap();
    let model = store::load(&row).unwrap();
    let sql: f64 = Spi::get_one("SELECT customer_value(c) FROM t_customers c WHERE id = 17")
        .unwrap()
        .unwrap();
    // id 17: orders = 17·37 mod 23 = 8, basket = (17·53 mod 97)/4 = 28/4 = 7
    let engine = model.predict(&[8.0, 7.0]);
    assert!((sql - engine).abs() < 1e-12, "{sql} vs {engine}");
    assert!((sql - (3.0 + 16.0 + 3.5)).abs() < 1e-9);
}

#[pg_test]
fn decoded_models_are_cached_per_backend_and_reloaded_when_the_row_changes() {
    make_customers();
    let row = store::resolve("t").unwrap();
    let first = store::load(&row).unwrap();
    let again = store::load(&store::resolve("t").unwrap()).unwrap();
    assert!(Rc::ptr_eq(&first, &again), "the second load must come from the cache");
    // Rewriting the row (same bytes) gives it a new xmin: the cache must not serve the old entry.
    Spi::run("UPDATE customer_value.models SET model = model WHERE name = 't'").unwrap();
    let rewritten = store::resolve("t").unwrap();
    assert_ne!(rewritten.row_version, row.row_version);
    let reloaded = store::load(&rewritten).unwrap();
    assert!(!Rc::ptr_eq(&first, &reloaded));
    assert_eq!(*first, *reloaded);
}

#[pg_test]
fn rows_of_different_types_in_one_call_site_are_each_mapped_by_name() {
    make_customers();
    // One query, one call site, two row types with the features in different positions.
    let n: i64 = Spi::get_one(
        "SELECT count(*) FROM (
             SELECT customer_value(r, 't') AS v FROM (SELECT 8 AS orders, 7.0::float8 AS basket) r
             UNION ALL
             SELECT customer_value(r, 't') FROM (SELECT 7.0::float8 AS basket, 'x' AS note, 8 AS orders) r
         ) s WHERE abs(v - 22.5) < 1e-9",
    )
    .unwrap()
    .unwrap();
    assert_eq!(n, 2);
}

#[pg_test]
fn model_references_and_sources_are_parsed() {
    assert_eq!(store::parse_spec("spend").unwrap(), ("spend".to_string(), None));
    assert_eq!(store::parse_spec("spend@12").unwrap(), ("spend".to_string(), Some(12)));
    assert!(store::parse_spec("spend@0").is_err());
    assert!(store::parse_spec("spend@").is_err());
    assert!(looks_like_query("SELECT 1"));
    assert!(looks_like_query("  (select 1)"));
    assert!(looks_like_query("WITH a AS (SELECT 1) SELECT * FROM a"));
    assert!(!looks_like_query("public.customers"));
    assert!(!looks_like_query("selections"));
}

#[pg_test]
fn column_types_resolve_through_domains() {
    Spi::run("CREATE DOMAIN positive_int AS int CHECK (VALUE > 0)").unwrap();
    let domain: pg_sys::Oid = Spi::get_one("SELECT 'positive_int'::regtype::oid").unwrap().unwrap();
    assert_eq!(sql_type_of(domain), SqlType::Integer);
    assert_eq!(sql_type_of(pg_sys::NUMERICOID), SqlType::Numeric);
    assert_eq!(sql_type_of(pg_sys::TEXTOID), SqlType::Text);
    assert_eq!(sql_type_of(pg_sys::VARCHAROID), SqlType::Text);
    assert_eq!(sql_type_of(pg_sys::DATEOID), SqlType::Date);
    assert_eq!(sql_type_of(pg_sys::TIMESTAMPTZOID), SqlType::TimestampTz);
    // char(n) pads with spaces that ::text drops: refused rather than mismatched
    assert_eq!(sql_type_of(pg_sys::BPCHAROID), SqlType::Other("character".into()));
    assert_eq!(sql_type_of(pg_sys::JSONBOID), SqlType::Other("jsonb".into()));
}

#[pg_test(error = "model \"t\" version 1 cannot be loaded: model bytes fail their checksum")]
fn a_corrupted_model_is_an_error_not_a_prediction() {
    make_customers();
    Spi::run("UPDATE customer_value.models SET model = overlay(model placing '\\x00'::bytea from 25 for 1)")
        .unwrap();
    let _ = Spi::get_one::<f64>("SELECT customer_value(c, 't') FROM t_customers c LIMIT 1");
}
