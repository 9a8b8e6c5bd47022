//! Ordinary least squares and ridge regression, fitted by smartcore and stored as an intercept
//! and one coefficient per feature (on the original feature scale).

use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::elastic_net::{ElasticNet, ElasticNetParameters};
use smartcore::linear::lasso::{Lasso, LassoParameters};
use smartcore::linear::linear_regression::{
    LinearRegression, LinearRegressionParameters, LinearRegressionSolverName,
};
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
use smartcore::linear::ridge_regression::{
    RidgeRegression, RidgeRegressionParameters, RidgeRegressionSolverName,
};

use serde_json::{Map, Value};

use crate::engine::error::{EngineError, ErrorKind, Result};
use crate::engine::features::Dataset;
use crate::engine::memory;
use crate::engine::options::values::number;

use super::super::guard::catch_library_panic;

/// The penalty of ridge, lasso, elastic net and logistic regression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PenaltyOptions {
    /// Strength of the penalty. Option `alpha`.
    pub alpha: f64,
    /// Share of the elastic-net penalty that is L1. Option `l1_ratio`.
    pub l1_ratio: f64,
}

impl Default for PenaltyOptions {
    fn default() -> Self {
        PenaltyOptions {
            alpha: 1.0,
            l1_ratio: 0.5,
        }
    }
}

impl PenaltyOptions {
    /// The option keys of ridge, lasso and logistic regression.
    pub const KEYS: &'static [&'static str] = &["alpha"];
    /// The option keys of the elastic net.
    pub const ELASTIC_NET_KEYS: &'static [&'static str] = &["alpha", "l1_ratio"];

    pub fn from_options(map: &Map<String, Value>) -> Result<PenaltyOptions> {
        let mut p = PenaltyOptions::default();
        if let Some(alpha) = number(map, "alpha", 0.0, f64::MAX, "a non-negative number")? {
            p.alpha = alpha;
        }
        if let Some(r) = number(map, "l1_ratio", 0.0, 1.0, "a number from 0 to 1")? {
            p.l1_ratio = r;
        }
        Ok(p)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
}

/// Largest |coefficient × sd(feature)| / sd(target) a least-squares fit may have: a feature
/// moving by one standard deviation shifts the prediction by at most this many standard
/// deviations of the target. Legitimate fits stay in the single or double digits.
const MAX_STANDARDISED_EFFECT: f64 = 1e4;

impl LinearModel {
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        let mut y = self.intercept;
        for (c, v) in self.coefficients.iter().zip(x) {
            y += c * v;
        }
        y
    }

    pub fn validate(&self, n_features: usize) -> Result<()> {
        if self.coefficients.len() != n_features {
            return Err(EngineError::corrupted(format!(
                "linear model has {} coefficients for {} features",
                self.coefficients.len(),
                n_features
            )));
        }
        if !self.intercept.is_finite() || self.coefficients.iter().any(|c| !c.is_finite()) {
            return Err(EngineError::corrupted(
                "linear model holds a non-finite coefficient",
            ));
        }
        Ok(())
    }

    /// Ordinary least squares (QR decomposition).
    ///
    /// See [`LinearModel::check_conditioning`] for the bound on coefficients.
    pub fn fit_ols(data: &Dataset) -> Result<LinearModel> {
        need_more_rows_than_features(data, "linear")?;
        let x = matrix(data)?;
        let params =
            LinearRegressionParameters::default().with_solver(LinearRegressionSolverName::QR);
        let fitted = catch_library_panic("linear", || LinearRegression::fit(&x, &data.y, params))?
            .map_err(|e| fit_failed("linear", &e.to_string()))?;
        let model = LinearModel {
            intercept: *fitted.intercept(),
            coefficients: column(fitted.coefficients()),
        };
        model.check_conditioning(data)?;
        model.check_fit("linear")
    }

    /// Refuses a least-squares fit whose coefficients cancel each other out: with (nearly)
    /// collinear features a coefficient's effect spans thousands of standard deviations of the
    /// target (e.g. ±2.7e10), and any row off the training pattern scores absurdly (4.2e13).
    fn check_conditioning(&self, data: &Dataset) -> Result<()> {
        let sd = |values: &mut dyn Iterator<Item = f64>| {
            let (mut n, mut mean, mut m2) = (0.0, 0.0, 0.0);
            for v in values {
                n += 1.0;
                let d = v - mean;
                mean += d / n;
                m2 += d * (v - mean);
            }
            (m2 / n.max(1.0)).sqrt()
        };
        let sd_y = sd(&mut data.y.iter().copied()).max(f64::MIN_POSITIVE);
        let worst = (0..data.n_features)
            .map(|j| {
                let sd_x = sd(&mut (0..data.n_rows).map(|i| data.x[i * data.n_features + j]));
                (j, (self.coefficients[j] * sd_x).abs() / sd_y)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match worst {
            Some((j, effect)) if effect > MAX_STANDARDISED_EFFECT => Err(fit_failed(
                "linear",
                &format!(
                    "the least-squares problem is ill-conditioned: feature {} gets coefficient {:.3e}, an effect of {effect:.1e} standard deviations of the target; some features are (nearly) collinear",
                    j + 1,
                    self.coefficients[j]
                ),
            )
            .with_hint("Leave one of the collinear features out (options => '{\"exclude\": [...]}'), or use ridge, which stays stable.")),
            _ => Ok(()),
        }
    }

    /// Ridge regression with penalty `alpha` on standardised features (so one alpha suits
    /// features of any scale); coefficients are mapped back to the original scale.
    pub fn fit_ridge(data: &Dataset, alpha: f64) -> Result<LinearModel> {
        need_more_rows_than_features(data, "ridge")?;
        let x = matrix(data)?;
        let params = RidgeRegressionParameters {
            solver: RidgeRegressionSolverName::Cholesky,
            alpha,
            normalize: true,
        };
        let fitted = catch_library_panic("ridge", || RidgeRegression::fit(&x, &data.y, params))?
            .map_err(|e| fit_failed("ridge", &e.to_string()))?;
        let model = LinearModel {
            intercept: *fitted.intercept(),
            coefficients: column(fitted.coefficients()),
        };
        model.check_fit("ridge")
    }

    /// Lasso (L1 penalty `alpha` on standardised features; smartcore's interior-point solver,
    /// so an uninformative coefficient comes out near zero rather than exactly zero).
    pub fn fit_lasso(data: &Dataset, alpha: f64) -> Result<LinearModel> {
        need_more_rows_than_features(data, "lasso")?;
        let x = matrix(data)?;
        let params = LassoParameters::default().with_alpha(alpha);
        let fitted = catch_library_panic("lasso", || Lasso::fit(&x, &data.y, params))?
            .map_err(|e| fit_failed("lasso", &e.to_string()))?;
        LinearModel {
            intercept: *fitted.intercept(),
            coefficients: column(fitted.coefficients()),
        }
        .check_fit("lasso")
    }

    /// Elastic net: penalty `alpha` split into L1 (`l1_ratio`) and L2 (the rest).
    pub fn fit_elastic_net(data: &Dataset, alpha: f64, l1_ratio: f64) -> Result<LinearModel> {
        need_more_rows_than_features(data, "elastic_net")?;
        let x = matrix(data)?;
        let params = ElasticNetParameters::default()
            .with_alpha(alpha)
            .with_l1_ratio(l1_ratio);
        let fitted = catch_library_panic("elastic_net", || ElasticNet::fit(&x, &data.y, params))?
            .map_err(|e| fit_failed("elastic_net", &e.to_string()))?;
        LinearModel {
            intercept: *fitted.intercept(),
            coefficients: column(fitted.coefficients()),
        }
        .check_fit("elastic_net")
    }

    /// Logistic regression on 0/1 labels (smartcore, L-BFGS, L2 penalty `alpha`): the model
    /// gives the log-odds of the positive class (the artifact applies the logistic link).
    pub fn fit_logistic(data: &Dataset, alpha: f64) -> Result<LinearModel> {
        need_more_rows_than_features(data, "logistic")?;
        let x = matrix(data)?;
        let labels: Vec<i32> = data.y.iter().map(|y| i32::from(*y == 1.0)).collect();
        let params = LogisticRegressionParameters::default().with_alpha(alpha);
        let fitted =
            catch_library_panic("logistic", || LogisticRegression::fit(&x, &labels, params))?
                .map_err(|e| fit_failed("logistic", &e.to_string()))?;
        LinearModel {
            intercept: *fitted.intercept().get((0, 0)),
            coefficients: column(fitted.coefficients()),
        }
        .check_fit("logistic")
    }

    fn check_fit(self, algorithm: &str) -> Result<LinearModel> {
        if self.intercept.is_finite() && self.coefficients.iter().all(|c| c.is_finite()) {
            Ok(self)
        } else {
            Err(fit_failed(
                algorithm,
                "the solution has non-finite coefficients",
            ))
        }
    }
}

fn need_more_rows_than_features(data: &Dataset, algorithm: &str) -> Result<()> {
    if data.n_rows <= data.n_features + 1 {
        return Err(EngineError::insufficient_data(format!(
            "{algorithm} regression needs more training rows than features + 1, got {} rows for {} features",
            data.n_rows, data.n_features
        )));
    }
    Ok(())
}

fn fit_failed(algorithm: &str, why: &str) -> EngineError {
    EngineError::new(
        ErrorKind::FitFailed,
        format!("{algorithm} regression could not be fitted: {why}"),
    )
    .with_hint("Features may be collinear (one is a combination of others); try algorithm 'ridge' or exclude the redundant columns.")
}

/// The training rows as smartcore's matrix, after checking that there is memory for what the
/// library then allocates without a way to fail cleanly: measured at up to 3.2 times the rows
/// with an intercept column (this copy included; elastic net), so 3.5 times is asked for.
pub(crate) fn matrix(data: &Dataset) -> Result<DenseMatrix<f64>> {
    let values = data.n_rows as u64 * (data.n_features as u64 + 1);
    memory::check_headroom(
        values * 8 * 7 / 2,
        "the model library's copies of the training rows",
    )?;
    let mut x = memory::try_with_capacity(data.x.len(), "a copy of the training rows")?;
    x.extend_from_slice(&data.x);
    DenseMatrix::new(data.n_rows, data.n_features, x, false)
        .map_err(|e| EngineError::new(ErrorKind::Internal, e.to_string()))
}

fn column(m: &DenseMatrix<f64>) -> Vec<f64> {
    let (rows, cols) = m.shape();
    if cols == 1 {
        (0..rows).map(|i| *m.get((i, 0))).collect()
    } else {
        (0..cols).map(|j| *m.get((0, j))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::stats::SplitMix64;

    /// y = 3 + 2·a − 0.5·b + 0.25·c, exactly, on well-spread inputs.
    fn exact_data(n: usize) -> Dataset {
        let mut rng = SplitMix64::new(11);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.below(1000) as f64 / 10.0;
            let b = rng.below(500) as f64;
            let c = rng.below(77) as f64 - 30.0;
            x.extend_from_slice(&[a, b, c]);
            y.push(3.0 + 2.0 * a - 0.5 * b + 0.25 * c);
        }
        Dataset {
            n_rows: n,
            n_features: 3,
            x,
            y,
            dropped_null_target: 0,
            pending_target_means: Vec::new(),
            compact: None,
        }
    }

    #[test]
    fn ols_recovers_known_coefficients() {
        let m = LinearModel::fit_ols(&exact_data(200)).unwrap();
        assert!((m.intercept - 3.0).abs() < 1e-8, "{m:?}");
        for (got, want) in m.coefficients.iter().zip([2.0, -0.5, 0.25]) {
            assert!((got - want).abs() < 1e-9, "{m:?}");
        }
        assert!((m.predict(&[10.0, 4.0, 1.0]) - (3.0 + 20.0 - 2.0 + 0.25)).abs() < 1e-8);
    }

    #[test]
    fn ridge_shrinks_towards_zero_but_stays_close_with_small_alpha() {
        let data = exact_data(500);
        let small = LinearModel::fit_ridge(&data, 1e-6).unwrap();
        for (got, want) in small.coefficients.iter().zip([2.0, -0.5, 0.25]) {
            assert!((got - want).abs() < 1e-4, "{small:?}");
        }
        let big = LinearModel::fit_ridge(&data, 1e4).unwrap();
        let norm = |m: &LinearModel| m.coefficients.iter().map(|c| c * c).sum::<f64>();
        assert!(norm(&big) < norm(&small));
    }

    /// y depends on a and b only; lasso with a moderate penalty drives the third coefficient to
    /// (near) zero and keeps the others close; elastic net keeps the signs.
    #[test]
    fn lasso_zeroes_an_uninformative_feature() {
        let mut data = exact_data(400);
        for i in 0..data.n_rows {
            let (a, b) = (data.x[i * 3], data.x[i * 3 + 1]);
            data.y[i] = 3.0 + 2.0 * a - 0.5 * b;
        }
        let m = LinearModel::fit_lasso(&data, 1.0).unwrap();
        assert!(m.coefficients[2].abs() < 1e-3, "{m:?}");
        assert!((m.coefficients[0] - 2.0).abs() < 0.05, "{m:?}");
        assert!((m.coefficients[1] + 0.5).abs() < 0.05, "{m:?}");
        // a stronger penalty shrinks the coefficients' L1 norm below least squares'
        let l1 = |m: &LinearModel| m.coefficients.iter().map(|c| c.abs()).sum::<f64>();
        let ols = LinearModel::fit_ols(&data).unwrap();
        assert!(l1(&LinearModel::fit_lasso(&data, 50.0).unwrap()) < 0.9 * l1(&ols));
        let e = LinearModel::fit_elastic_net(&data, 1.0, 0.5).unwrap();
        assert!(e.coefficients[0] > 0.0 && e.coefficients[1] < 0.0, "{e:?}");
    }

    #[test]
    fn too_few_rows_is_a_clear_error() {
        let err = LinearModel::fit_ols(&exact_data(4)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InsufficientData);
        assert!(err.message.contains("got 4 rows for 3 features"));
    }

    #[test]
    fn validation_rejects_wrong_lengths_and_non_finite_values() {
        let m = LinearModel {
            intercept: 1.0,
            coefficients: vec![1.0, 2.0],
        };
        assert!(m.validate(2).is_ok());
        assert_eq!(m.validate(3).unwrap_err().kind, ErrorKind::DataCorrupted);
        let m = LinearModel {
            intercept: f64::NAN,
            coefficients: vec![1.0],
        };
        assert_eq!(m.validate(1).unwrap_err().kind, ErrorKind::DataCorrupted);
    }
}
