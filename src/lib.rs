//! customer_value: customer-value models trained, stored and scored inside PostgreSQL.
//!
//! `engine` is pure Rust (no Postgres); `pg` is the thin Postgres layer: SQL functions, row
//! decoding, SPI reading, the model store and cache, GUCs and the error mapping.

pub mod engine;
mod pg;

pgrx::pg_module_magic!();

/// Large blocks are mapped and unmapped directly, so a training gives its memory back when it
/// ends (see `engine::big_blocks`); the test build's counting allocator wraps the same one.
#[cfg(not(test))]
#[global_allocator]
static ALLOCATOR: engine::big_blocks::BigBlocks = engine::big_blocks::BigBlocks;

/// Schema `customer_value` holds the model store and every function but the two scoring
/// functions, which live in the extension's schema (public by default) so that
/// `customer_value(c)` and `customer_tier(c)` resolve unqualified.
#[pgrx::pg_schema]
mod customer_value {}

pgrx::extension_sql_file!(
    "../sql/schema.sql",
    name = "schema",
    requires = [customer_value]
);
pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx captures a Rust backtrace with every error that passes through Rust frames and puts
    // it in the error's DETAIL when RUST_BACKTRACE is set in the server's environment: users
    // would get 30 lines of stack frames with a division by zero in their source. A backtrace
    // is never part of our errors (RUST_LIB_BACKTRACE decides for `Backtrace::capture`, ahead of
    // RUST_BACKTRACE). Set while the backend runs no other thread.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    pg::guc::register();
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    include!("pg_tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
