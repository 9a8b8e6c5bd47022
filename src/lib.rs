//! customer_value: customer-value models trained, stored and scored inside PostgreSQL.
//!
//! `engine` is pure Rust (no Postgres); `pg` is the thin Postgres layer: SQL functions, row
//! decoding, SPI reading, the model store and cache, GUCs and the error mapping.

pub mod engine;
