//! The customer_value engine: features, models, metrics, tiers and the model codec, in pure Rust.
//! Nothing here knows about Postgres; the `pg` module turns SQL values into these types and
//! [`error::EngineError`]s into `ereport`s.

pub mod big_blocks;
pub mod champion;
pub mod clv;
pub mod codec;
pub mod drift;
pub mod error;
pub mod features;
mod guard;
pub mod memory;
pub mod metrics;
pub mod model_name;
pub mod models;
pub mod options;
pub mod parallel;
pub mod purchases;
pub mod segments;
pub mod stats;
pub mod target;
pub mod tiers;
pub mod train;
