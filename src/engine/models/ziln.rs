//! The zero-inflated lognormal (ZILN) model of spend (Wang, Liu & Miao 2019, "A Deep
//! Probabilistic Model for Customer Lifetime Value Prediction"): one network with three
//! outputs gives P(buy) and the lognormal μ and σ of a buyer's spend, trained on the
//! likelihood of the zero-inflated lognormal ([`super::mlp::fit_mlp_ziln`]):
//!
//! ```text
//! E[spend | x] = P(buy | x) · exp(μ(x) + σ(x)² / 2)
//! ```
//!
//! Unlike the hurdle model (two models, one σ for everyone), σ depends on the customer, so
//! the network learns whose spend is uncertain. Option `loss: "ziln"` of `mlp`.
//!
//! The network reads asinh(x) of each encoded feature (≈ ln 2x for large x, x near 0, odd for
//! refunds): spend and counts of a purchase log are heavy-tailed, and standardised raw values
//! let a few extreme customers dominate the inputs; the exponential of the output then turns
//! their extrapolation into huge predictions. On CDNOW's backtest window (the last complete
//! window before as_of, never the holdout) the total error went from +261 % with raw inputs to
//! −14 % with asinh inputs, normalized Gini 0.61 both times.

use serde::{Deserialize, Serialize};

use super::mlp::{fit_mlp_ziln, MlpModel, MlpOptions, OutputActivation, ZilnParts};
use crate::engine::error::{EngineError, Result};
use crate::engine::features::Dataset;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZilnModel {
    /// A network whose output is [`OutputActivation::ZeroInflatedLognormal`].
    pub network: MlpModel,
    /// The range of ln(spend) among the training buyers: ln E[spend | buy] = μ + σ²/2 is kept
    /// within it, so a network that extrapolates (a customer beyond anything seen) cannot
    /// predict an exponentially large spend.
    pub log_spend_range: (f64, f64),
}

impl ZilnModel {
    /// Trains the network on asinh of the features (errors as [`fit_mlp_ziln`]).
    pub fn fit(
        train: &Dataset,
        options: &MlpOptions,
        interrupt: &mut dyn FnMut(),
    ) -> Result<ZilnModel> {
        let mut inputs = train.clone();
        inputs.x.iter_mut().for_each(|v| *v = v.asinh());
        let (network, _report) = fit_mlp_ziln(&inputs, options, interrupt)?;
        Ok(ZilnModel::new(network, &train.y))
    }

    /// The model of `network`, keeping ln E[spend | buy] within the range of ln(spend) of the
    /// training buyers `targets > 0`.
    fn new(network: MlpModel, targets: &[f64]) -> ZilnModel {
        let log_spend_range = targets
            .iter()
            .filter(|y| **y > 0.0)
            .map(|y| y.ln())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        ZilnModel {
            network,
            log_spend_range,
        }
    }

    /// P(buy) and a buyer's lognormal μ and σ for the features `x`.
    #[inline]
    pub fn parts(&self, x: &[f64]) -> Option<ZilnParts> {
        self.network.ziln_parts(x.iter().map(|v| v.asinh()))
    }

    /// P(buy | x) · E[spend | buy, x], with ln E[spend | buy, x] = μ(x) + σ(x)²/2 kept within
    /// the training range.
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        let Some(parts) = self.parts(x) else {
            return f64::NAN;
        };
        let (low, high) = self.log_spend_range;
        let log_expected = parts.log_mean + parts.log_sd * parts.log_sd / 2.0;
        parts.buy_probability * log_expected.max(low).min(high).exp()
    }

    pub fn validate(&self, n_features: usize) -> Result<()> {
        if self.network.output != OutputActivation::ZeroInflatedLognormal {
            return Err(EngineError::corrupted(
                "a zero-inflated lognormal model's network has another output",
            ));
        }
        self.network.validate(n_features)?;
        let (low, high) = self.log_spend_range;
        if !(low.is_finite() && high.is_finite() && low <= high && high < 700.0) {
            return Err(EngineError::corrupted(format!(
                "a zero-inflated lognormal model's log spend range is [{low}, {high}]"
            )));
        }
        Ok(())
    }

    pub fn params(&self) -> serde_json::Value {
        serde_json::json!({
            "loss": "ziln",
            "hidden_layers": self.network.hidden_layers(),
            "parameters": self.network.n_parameters(),
            "log_spend_range": [self.log_spend_range.0, self.log_spend_range.1],
        })
    }
}
