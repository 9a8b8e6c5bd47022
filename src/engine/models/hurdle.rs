//! The two-part (hurdle) model of zero-inflated, heavy-tailed spend: most customers spend
//! nothing next period, and those who buy spend amounts spread over orders of magnitude. One
//! model gives P(buy), a second the mean of ln(spend) among buyers, and spend among buyers is
//! lognormal with the variance σ² of that model's residuals:
//!
//! ```text
//! E[spend | x] = P(buy | x) · E[spend | buy, x] = P(buy | x) · exp(μ(x) + σ² / 2)
//! ```
//!
//! Option `loss: "hurdle"` of `gbm` and `mlp` (each part is that algorithm).

use serde::{Deserialize, Serialize};

use super::Predictor;
use crate::engine::error::{EngineError, Result};
use crate::engine::stats::sigmoid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HurdleModel {
    /// P(buy): log-odds when `buy_logistic`, else a probability.
    pub buy: Box<Predictor>,
    pub buy_logistic: bool,
    /// μ(x): the mean of ln(spend) among buyers.
    pub log_spend: Box<Predictor>,
    /// σ²: the variance of ln(spend) around μ(x), measured on buyers the spend model did not
    /// learn from.
    pub log_variance: f64,
    /// The range of ln(spend) among the training buyers: μ(x) is kept within it, so a model
    /// that extrapolates (a network, on a customer beyond anything seen) cannot predict an
    /// exponentially large spend.
    pub log_spend_range: (f64, f64),
}

impl HurdleModel {
    /// P(buy | x).
    pub fn buy_probability(&self, x: &[f64]) -> f64 {
        let raw = self.buy.predict(x);
        let p = if self.buy_logistic { sigmoid(raw) } else { raw };
        p.clamp(0.0, 1.0)
    }

    /// E[spend | buy, x] = exp(μ(x) + σ²/2), μ(x) within the training range.
    pub fn spend_if_buying(&self, x: &[f64]) -> f64 {
        let (low, high) = self.log_spend_range;
        let mu = self.log_spend.predict(x);
        (mu.max(low).min(high) + self.log_variance / 2.0).exp()
    }

    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.buy_probability(x) * self.spend_if_buying(x)
    }

    pub fn validate(&self, n_features: usize) -> Result<()> {
        for part in [&self.buy, &self.log_spend] {
            if !matches!(**part, Predictor::Trees(_) | Predictor::Mlp(_)) {
                return Err(EngineError::corrupted(
                    "a hurdle model's part is not a gbm or mlp",
                ));
            }
            part.validate(n_features)?;
        }
        let (low, high) = self.log_spend_range;
        if !(low.is_finite() && high.is_finite() && low <= high && high < 700.0) {
            return Err(EngineError::corrupted(format!(
                "a hurdle model's log spend range is [{low}, {high}]"
            )));
        }
        if !self.log_variance.is_finite() || !(0.0..=1e3).contains(&self.log_variance) {
            return Err(EngineError::corrupted(format!(
                "a hurdle model's log variance is {}",
                self.log_variance
            )));
        }
        Ok(())
    }

    pub fn params(&self, feature_names: &[&str]) -> serde_json::Value {
        serde_json::json!({
            "loss": "hurdle",
            "buy_model": self.buy.params(feature_names),
            "log_spend_model": self.log_spend.params(feature_names),
            "log_spend_variance": self.log_variance,
            "log_spend_range": [self.log_spend_range.0, self.log_spend_range.1],
        })
    }
}
