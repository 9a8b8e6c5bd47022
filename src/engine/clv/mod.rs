//! Customer-lifetime-value models: BG/NBD, MBG/NBD and Pareto/NBD for purchase counts, Gamma-Gamma for
//! spend, and their combination into a discounted CLV. Maximum-likelihood fits on a log scale
//! with Nelder–Mead; special functions in `special`.

pub mod bgnbd;
pub mod data;
mod dropout_integral;
pub mod gamma_gamma;
pub mod mbgnbd;
pub mod model;
pub mod optimize;
pub mod options;
pub mod pareto_nbd;
pub mod purchase_periods;
pub mod rfm_options;
pub mod special;
