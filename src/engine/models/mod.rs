//! The algorithms. Each one trains with a library (smartcore, the client's choice) and is then
//! stored in **our own** compact representation — coefficients for linear models, flat node
//! arrays for tree ensembles — so scoring is fast, does not depend on a crate's serde layout, and
//! old models keep loading when a crate changes.

pub mod complete_trees;
pub mod explain;
pub mod forest;
pub mod gbm;
pub mod hurdle;
pub mod importance;
pub mod linear;
pub mod mlp;
pub mod sequence;
pub mod ziln;

use gbm::GbmOptions;

use crate::engine::clv::options::ClvOptions;

use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
pub use forest::{ForestParams, TreeEnsemble};

use crate::engine::clv::model::ClvModel;
pub use linear::{LinearModel, PenaltyOptions};
pub use mlp::{MlpModel, MlpOptions};
pub use sequence::model::SequenceModel;
use sequence::training::SequenceOptions;

/// The algorithms a user can name in `customer_value.train`.
/// What a model minimises on a value or 0/1 target: squared error (the prediction is the
/// expected value) or binary log loss (the prediction is a probability; boosted trees store the
/// raw margin, so the tree sum, its SHAP contributions and the baseline stay additive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    SquaredError,
    LogLoss,
}

impl Loss {
    pub fn name(self) -> &'static str {
        match self {
            Loss::SquaredError => "squared_error",
            Loss::LogLoss => "log_loss",
        }
    }
}

/// The objective of a value model (option `loss`; `gbm` and `mlp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueLoss {
    /// One model of the value, least squares.
    SquaredError,
    /// P(buy) × E[spend | buy], lognormal spend, as two models ([`hurdle::HurdleModel`]).
    Hurdle,
    /// The zero-inflated lognormal: one network with three outputs, P(buy) and the lognormal
    /// μ and σ of a buyer's spend, trained on the likelihood ([`ziln::ZilnModel`]; `mlp` only).
    Ziln,
}

impl ValueLoss {
    pub const CHOICES: [(&'static str, ValueLoss); 3] = [
        ("squared_error", ValueLoss::SquaredError),
        ("hurdle", ValueLoss::Hurdle),
        ("ziln", ValueLoss::Ziln),
    ];

    pub fn name(self) -> &'static str {
        match self {
            ValueLoss::SquaredError => "squared_error",
            ValueLoss::Hurdle => "hurdle",
            ValueLoss::Ziln => "ziln",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    Linear,
    Ridge,
    RandomForest,
    /// L1-penalised linear regression.
    Lasso,
    /// L1 + L2 penalised linear regression.
    ElasticNet,
    /// Tries every concrete algorithm and keeps the best on holdout.
    Auto,
    /// BG/NBD purchase-count model (CLV, fitted on an RFM summary).
    BgNbd,
    /// Pareto/NBD purchase-count model.
    ParetoNbd,
    /// Gamma-Gamma spend model.
    GammaGamma,
    /// A count model and Gamma-Gamma together: discounted expected spend.
    Clv,
    /// Gradient-boosted trees (hessboost), stored in our flat tree format.
    Gbm,
    /// Multilayer perceptron (Dense 64 → 32 → 1 by default), trained with Adam.
    Mlp,
    /// Logistic regression (binary classification).
    Logistic,
    /// Modified BG/NBD purchase-count model (appended: stored models decode by index).
    MbgNbd,
    /// A gated recurrent network over a history (array features), with the static features.
    Gru,
    /// A temporal convolution network over a history (array features), with the static features.
    Cnn,
}

impl Algorithm {
    pub const ALL: [Algorithm; 16] = [
        Algorithm::Linear,
        Algorithm::Ridge,
        Algorithm::Lasso,
        Algorithm::ElasticNet,
        Algorithm::Logistic,
        Algorithm::RandomForest,
        Algorithm::Gbm,
        Algorithm::Mlp,
        Algorithm::Gru,
        Algorithm::Cnn,
        Algorithm::Auto,
        Algorithm::BgNbd,
        Algorithm::MbgNbd,
        Algorithm::ParetoNbd,
        Algorithm::GammaGamma,
        Algorithm::Clv,
    ];

    /// The concrete algorithms `auto` chooses among.
    pub const CANDIDATES: [Algorithm; 4] = [
        Algorithm::Linear,
        Algorithm::Ridge,
        Algorithm::RandomForest,
        Algorithm::Gbm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Linear => "linear",
            Algorithm::Ridge => "ridge",
            Algorithm::RandomForest => "random_forest",
            Algorithm::Lasso => "lasso",
            Algorithm::ElasticNet => "elastic_net",
            Algorithm::Auto => "auto",
            Algorithm::BgNbd => "bgnbd",
            Algorithm::MbgNbd => "mbgnbd",
            Algorithm::ParetoNbd => "pareto_nbd",
            Algorithm::GammaGamma => "gamma_gamma",
            Algorithm::Clv => "clv",
            Algorithm::Gbm => "gbm",
            Algorithm::Mlp => "mlp",
            Algorithm::Logistic => "logistic",
            Algorithm::Gru => "gru",
            Algorithm::Cnn => "cnn",
        }
    }

    /// The concrete algorithms `auto` chooses among for a classification target.
    pub const CLASSIFIER_CANDIDATES: [Algorithm; 3] =
        [Algorithm::Logistic, Algorithm::RandomForest, Algorithm::Gbm];

    /// Whether the algorithm can learn a binary target (a forest averages 0/1 labels into a
    /// probability; logistic regression and boosting work on log-odds).
    pub fn can_classify(self) -> bool {
        matches!(
            self,
            Algorithm::Logistic
                | Algorithm::RandomForest
                | Algorithm::Gbm
                | Algorithm::Mlp
                | Algorithm::Gru
                | Algorithm::Cnn
                | Algorithm::Auto
        )
    }

    /// The networks that read a history: a sequence of periods from array features.
    pub fn reads_sequence(self) -> bool {
        matches!(self, Algorithm::Gru | Algorithm::Cnn)
    }

    /// The keys of the algorithm's own options type (the registry: one line per algorithm);
    /// the common keys, search and `auto`'s keys are added by `options::valid_keys`.
    pub fn own_option_keys(self) -> &'static [&'static str] {
        match self {
            Algorithm::Linear | Algorithm::Auto => &[],
            Algorithm::Ridge | Algorithm::Lasso | Algorithm::Logistic => PenaltyOptions::KEYS,
            Algorithm::ElasticNet => PenaltyOptions::ELASTIC_NET_KEYS,
            Algorithm::RandomForest => ForestParams::KEYS,
            Algorithm::Gbm => GbmOptions::KEYS,
            Algorithm::Mlp => MlpOptions::KEYS,
            Algorithm::Gru => SequenceOptions::GRU_KEYS,
            Algorithm::Cnn => SequenceOptions::CNN_KEYS,
            Algorithm::BgNbd | Algorithm::MbgNbd | Algorithm::ParetoNbd | Algorithm::GammaGamma => {
                &[]
            }
            Algorithm::Clv => ClvOptions::COMBINED_KEYS,
        }
    }

    /// Whether the algorithm has hyperparameters to search (option `search`).
    pub fn has_hyperparameters(self) -> bool {
        !self.own_option_keys().is_empty() && !self.is_clv()
    }

    /// The probabilistic CLV models, fitted on an RFM summary rather than learned from a target.
    pub fn is_clv(self) -> bool {
        matches!(
            self,
            Algorithm::BgNbd
                | Algorithm::MbgNbd
                | Algorithm::ParetoNbd
                | Algorithm::GammaGamma
                | Algorithm::Clv
        )
    }

    pub fn parse(name: &str) -> Result<Algorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                EngineError::invalid_parameter(format!("unknown algorithm \"{name}\"")).with_hint(
                    format!(
                        "Valid algorithms are: {}.",
                        Algorithm::ALL.map(|a| a.name()).join(", ")
                    ),
                )
            })
    }
}

/// A fitted predictor in the stored representation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Predictor {
    Linear(LinearModel),
    Trees(TreeEnsemble),
    Clv(ClvModel),
    Mlp(MlpModel),
    /// A multi-class classifier: one binary model per class (one-vs-rest); the prediction is
    /// the probability of the most likely class.
    OneVsRest(Vec<ClassModel>),
    /// A two-part model of spend: P(buy) × E[spend | buy] (option `loss: "hurdle"`).
    Hurdle(hurdle::HurdleModel),
    /// The zero-inflated lognormal network (option `loss: "ziln"` of `mlp`; appended: stored
    /// models decode by index).
    Ziln(ziln::ZilnModel),
    /// A GRU or CNN over a history with the static features (appended).
    Sequence(SequenceModel),
}

/// One class's binary model in a [`Predictor::OneVsRest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassModel {
    pub predictor: Predictor,
    /// Whether the predictor gives log-odds (true) or a probability.
    pub logistic: bool,
}

impl Predictor {
    /// Probabilities of each class of a one-vs-rest model (normalised to sum to 1); empty for
    /// any other predictor.
    pub fn class_probabilities(&self, x: &[f64]) -> Vec<f64> {
        let Predictor::OneVsRest(models) = self else {
            return Vec::new();
        };
        let mut p: Vec<f64> = models
            .iter()
            .map(|m| {
                let raw = m.predictor.predict(x);
                let p = if m.logistic {
                    crate::engine::stats::sigmoid(raw)
                } else {
                    raw
                };
                p.clamp(1e-15, 1.0)
            })
            .collect();
        let total: f64 = p.iter().sum();
        p.iter_mut().for_each(|v| *v /= total);
        p
    }

    /// The most likely class of a one-vs-rest model (ties: the first).
    pub fn predicted_class(&self, x: &[f64]) -> Option<usize> {
        let p = self.class_probabilities(x);
        (0..p.len()).reduce(|best, k| if p[k] > p[best] { k } else { best })
    }
}

impl Predictor {
    /// Predicts one row; `x` holds one encoded value per feature, in feature order.
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        match self {
            Predictor::Linear(m) => m.predict(x),
            Predictor::Trees(m) => m.predict(x),
            Predictor::Clv(m) => m.value(x),
            Predictor::Mlp(m) => m.predict(x),
            Predictor::OneVsRest(_) => self
                .class_probabilities(x)
                .into_iter()
                .fold(f64::NAN, f64::max),
            Predictor::Hurdle(m) => m.predict(x),
            Predictor::Ziln(m) => m.predict(x),
            Predictor::Sequence(m) => m.predict(x),
        }
    }

    /// Checks the structural invariants scoring relies on (lengths, node indices), so that a
    /// model decoded from bytes can never index out of bounds or loop.
    pub fn validate(&self, n_features: usize) -> Result<()> {
        match self {
            Predictor::Linear(m) => m.validate(n_features),
            Predictor::Trees(m) => m.validate(n_features),
            Predictor::Clv(m) => m.validate(n_features),
            Predictor::Mlp(m) => m.validate(n_features),
            Predictor::OneVsRest(models) => {
                if models.len() < 3 {
                    return Err(EngineError::corrupted(
                        "a multi-class model has fewer than 3 classes",
                    ));
                }
                for m in models {
                    if matches!(m.predictor, Predictor::OneVsRest(_) | Predictor::Clv(_)) {
                        return Err(EngineError::corrupted("invalid class model"));
                    }
                    m.predictor.validate(n_features)?;
                }
                Ok(())
            }
            Predictor::Hurdle(m) => m.validate(n_features),
            Predictor::Ziln(m) => m.validate(n_features),
            Predictor::Sequence(m) => m.validate(n_features),
        }
    }

    /// Fitted parameters for `customer_value.model_params`, with coefficients keyed by feature.
    pub fn params(&self, feature_names: &[&str]) -> serde_json::Value {
        match self {
            Predictor::Linear(m) => {
                let coefficients: serde_json::Map<String, serde_json::Value> = feature_names
                    .iter()
                    .zip(&m.coefficients)
                    .map(|(name, c)| (name.to_string(), serde_json::json!(c)))
                    .collect();
                serde_json::json!({"intercept": m.intercept, "coefficients": coefficients})
            }
            Predictor::Trees(m) => serde_json::json!({
                "trees": m.n_trees(),
                "nodes": m.n_nodes(),
                "max_depth": m.max_depth(),
            }),
            Predictor::Clv(m) => m.params(),
            Predictor::Mlp(m) => serde_json::json!({
                "hidden_layers": m.hidden_layers(),
                "parameters": m.n_parameters(),
            }),
            Predictor::OneVsRest(models) => serde_json::json!({
                "classes": models.len(),
                "class_models": models
                    .iter()
                    .map(|m| m.predictor.params(feature_names))
                    .collect::<Vec<_>>(),
            }),
            Predictor::Hurdle(m) => m.params(feature_names),
            Predictor::Ziln(m) => m.params(),
            Predictor::Sequence(m) => m.params(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::ErrorKind;

    #[test]
    fn algorithm_names_round_trip_and_unknown_names_list_the_valid_ones() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::parse(a.name()).unwrap(), a);
        }
        let err = Algorithm::parse("xgboost").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidParameter);
        assert_eq!(err.message, "unknown algorithm \"xgboost\"");
        assert_eq!(
            err.hint.as_deref(),
            Some("Valid algorithms are: linear, ridge, lasso, elastic_net, logistic, random_forest, gbm, mlp, gru, cnn, auto, bgnbd, mbgnbd, pareto_nbd, gamma_gamma, clv.")
        );
    }
}
