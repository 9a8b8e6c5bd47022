//! The Postgres layer: SQL functions, row decoding, SPI reading, the model store and cache,
//! GUCs and the mapping of engine errors to SQLSTATEs.

pub mod admin;
pub mod args;
pub mod attributes;
pub mod cache;
pub mod citus;
pub mod columns;
pub mod drift;
pub mod errors;
pub mod evaluate;
pub mod fit;
pub mod guc;
pub mod log;
pub mod narrow;
pub mod privilege;
pub mod progress;
pub mod retrain;
pub mod rfm;
pub mod rfm_periods;
pub mod runs;
pub mod score;
pub mod source;
pub mod store;
pub mod subxact;
pub mod train;
pub mod types;
