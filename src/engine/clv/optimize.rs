//! Nelder–Mead minimisation (Lagarias et al. 1998 coefficients) for the maximum-likelihood fits.
//! The CLV models have 3–4 positive parameters; they are optimised on a log scale, which keeps
//! them positive and makes the problem well conditioned. Derivative-free, so every likelihood
//! can be used as written; restarted from its own optimum until it stops improving, which guards
//! against the method's known early stalls.

use crate::engine::error::{EngineError, ErrorKind, Result};

/// What the user controls of a maximum-likelihood fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Adds `penalizer · Σ params²` to the mean negative log-likelihood.
    pub penalizer: f64,
    pub max_iterations: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iterations: Settings::default().max_iterations,
        }
    }
}

impl FitOptions {
    pub fn settings(&self) -> Settings {
        Settings {
            max_iterations: self.max_iterations,
            ..Settings::default()
        }
    }
}

pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub iterations: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max_iterations: usize,
    /// Converged when the simplex's values differ by less than this (relative) …
    pub value_tolerance: f64,
    /// … and its vertices by less than this.
    pub step_tolerance: f64,
    pub initial_step: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_iterations: 5_000,
            value_tolerance: 1e-12,
            step_tolerance: 1e-9,
            initial_step: 0.5,
        }
    }
}

/// Minimises `f` from `start`. `between_iterations` is called every iteration (for interrupts).
/// Fails with the model name and iteration count when it does not converge or the objective is
/// not finite at the start.
pub fn minimize(
    model: &str,
    f: &mut dyn FnMut(&[f64]) -> f64,
    start: &[f64],
    settings: &Settings,
    between_iterations: &mut dyn FnMut(),
) -> Result<Minimum> {
    let first = f(start);
    if !first.is_finite() {
        return Err(EngineError::new(
            ErrorKind::FitFailed,
            format!(
                "{model} fit cannot start: the likelihood is not finite at the starting values"
            ),
        )
        .with_hint("Check the data for impossible values (e.g. recency greater than T)."));
    }
    let mut best = Minimum {
        x: start.to_vec(),
        value: first,
        iterations: 0,
    };
    // The first run starts wide; restarts from the optimum use a small simplex, so confirming
    // convergence costs a few dozen evaluations rather than a whole second run.
    let mut step = settings.initial_step;
    for _restart in 0..5 {
        let run = nelder_mead(
            model,
            f,
            &best.x,
            &Settings {
                initial_step: step,
                ..*settings
            },
            best.iterations,
            between_iterations,
        )?;
        step = (settings.initial_step * 0.05).max(settings.step_tolerance * 100.0);
        let improved = best.value - run.value > settings.value_tolerance * (1.0 + best.value.abs());
        best = run;
        if !improved && best.iterations > 0 {
            break;
        }
    }
    Ok(best)
}

fn nelder_mead(
    model: &str,
    f: &mut dyn FnMut(&[f64]) -> f64,
    start: &[f64],
    settings: &Settings,
    iterations_so_far: usize,
    between_iterations: &mut dyn FnMut(),
) -> Result<Minimum> {
    let n = start.len();
    let (alpha, gamma, rho, sigma) = (1.0, 2.0, 0.5, 0.5);
    let mut simplex: Vec<Vec<f64>> = vec![start.to_vec()];
    for i in 0..n {
        let mut v = start.to_vec();
        v[i] += settings.initial_step;
        simplex.push(v);
    }
    let value = |f: &mut dyn FnMut(&[f64]) -> f64, x: &[f64]| {
        let v = f(x);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut values: Vec<f64> = simplex.iter().map(|x| value(f, x)).collect();
    let mut iterations = iterations_so_far;
    loop {
        between_iterations();
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        simplex = order.iter().map(|&i| simplex[i].clone()).collect();
        values = order.iter().map(|&i| values[i]).collect();

        let spread = values[n] - values[0];
        let size = (1..=n)
            .flat_map(|i| (0..n).map(move |k| (i, k)))
            .map(|(i, k)| (simplex[i][k] - simplex[0][k]).abs())
            .fold(0.0, f64::max);
        if spread.abs() <= settings.value_tolerance * (1.0 + values[0].abs())
            && size <= settings.step_tolerance
        {
            return Ok(Minimum {
                x: simplex[0].clone(),
                value: values[0],
                iterations,
            });
        }
        if iterations >= settings.max_iterations {
            return Err(EngineError::new(
                ErrorKind::FitFailed,
                format!("{model} fit did not converge after {iterations} iterations"),
            )
            .with_detail(format!(
                "Best mean log-likelihood per customer so far {:.6}; the simplex still spans {size:.3e} in log-parameters.",
                -values[0]
            ))
            .with_hint("Add a penalty with options => '{\"penalizer\": 0.01}', or check the summary for extreme values."));
        }
        iterations += 1;

        let centroid: Vec<f64> = (0..n)
            .map(|k| simplex[..n].iter().map(|v| v[k]).sum::<f64>() / n as f64)
            .collect();
        let towards = |t: f64, from: &[f64]| -> Vec<f64> {
            (0..n)
                .map(|k| centroid[k] + t * (from[k] - centroid[k]))
                .collect()
        };
        let reflected = towards(-alpha, &simplex[n]);
        let fr = value(f, &reflected);
        if fr < values[0] {
            let expanded = towards(-gamma, &simplex[n]);
            let fe = value(f, &expanded);
            if fe < fr {
                simplex[n] = expanded;
                values[n] = fe;
            } else {
                simplex[n] = reflected;
                values[n] = fr;
            }
        } else if fr < values[n - 1] {
            simplex[n] = reflected;
            values[n] = fr;
        } else {
            let (contracted, fc) = if fr < values[n] {
                let c = towards(-rho, &simplex[n]);
                let v = value(f, &c);
                (c, v)
            } else {
                let c = towards(rho, &simplex[n]);
                let v = value(f, &c);
                (c, v)
            };
            if fc < values[n].min(fr) {
                simplex[n] = contracted;
                values[n] = fc;
            } else {
                for i in 1..=n {
                    let shrunk: Vec<f64> = (0..n)
                        .map(|k| simplex[0][k] + sigma * (simplex[i][k] - simplex[0][k]))
                        .collect();
                    values[i] = value(f, &shrunk);
                    simplex[i] = shrunk;
                }
            }
        }
    }
}

/// Minimises a smooth `f` whose gradient `fg` also returns (into its second argument) with
/// BFGS and a backtracking Armijo line search: a few dozen iterations where Nelder–Mead needs
/// hundreds. If the line search stalls away from a stationary point (e.g. a flat region),
/// Nelder–Mead takes over from where BFGS stopped.
pub fn minimize_smooth(
    model: &str,
    fg: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
    start: &[f64],
    settings: &Settings,
    between_iterations: &mut dyn FnMut(),
) -> Result<Minimum> {
    let n = start.len();
    let mut x = start.to_vec();
    let mut g = vec![0.0; n];
    let mut value = fg(&x, &mut g);
    if !value.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Err(EngineError::new(
            ErrorKind::FitFailed,
            format!(
                "{model} fit cannot start: the likelihood is not finite at the starting values"
            ),
        )
        .with_hint("Check the data for impossible values (e.g. recency greater than T)."));
    }
    // inverse Hessian approximation, row-major
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        h[i * n + i] = 1.0;
    }
    let mut g_new = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let gradient_tolerance = 1e-9;
    for iteration in 0..settings.max_iterations {
        between_iterations();
        if g.iter().all(|v| v.abs() <= gradient_tolerance) {
            return Ok(Minimum {
                x,
                value,
                iterations: iteration,
            });
        }
        let direction: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>())
            .collect();
        let slope: f64 = direction.iter().zip(&g).map(|(d, gi)| d * gi).sum();
        if slope >= 0.0 {
            // not a descent direction: reset the approximation and retry
            h.iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = if k % (n + 1) == 0 { 1.0 } else { 0.0 });
            continue;
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            for i in 0..n {
                x_new[i] = x[i] + step * direction[i];
            }
            let v = fg(&x_new, &mut g_new);
            if v.is_finite()
                && v <= value + 1e-4 * step * slope
                && g_new.iter().all(|d| d.is_finite())
            {
                accepted = true;
                let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
                let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
                let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
                let previous = value;
                x.copy_from_slice(&x_new);
                g.copy_from_slice(&g_new);
                value = v;
                if sy > 1e-16 {
                    if iteration == 0 {
                        let yy: f64 = y.iter().map(|v| v * v).sum();
                        for (k, hk) in h.iter_mut().enumerate() {
                            *hk = if k % (n + 1) == 0 { sy / yy } else { 0.0 };
                        }
                    }
                    // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
                    let rho = 1.0 / sy;
                    let hy: Vec<f64> = (0..n)
                        .map(|i| (0..n).map(|j| h[i * n + j] * y[j]).sum())
                        .collect();
                    let yhy: f64 = y.iter().zip(&hy).map(|(a, b)| a * b).sum();
                    for i in 0..n {
                        for j in 0..n {
                            h[i * n + j] += -rho * (s[i] * hy[j] + hy[i] * s[j])
                                + (rho * rho * yhy + rho) * s[i] * s[j];
                        }
                    }
                }
                // converged when the objective stops moving and the gradient is small (the
                // Pareto/NBD gradient is numerical, with an error near 1e-10)
                if (previous - value).abs() <= 1e-13 * (1.0 + value.abs())
                    && g.iter().all(|v| v.abs() <= 1e-5)
                {
                    return Ok(Minimum {
                        x,
                        value,
                        iterations: iteration + 1,
                    });
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            // no decrease along the direction: at the optimum up to rounding, or stuck
            if g.iter().all(|v| v.abs() <= 1e-5) {
                return Ok(Minimum {
                    x,
                    value,
                    iterations: iteration + 1,
                });
            }
            let mut f_only = |p: &[f64]| {
                let mut scratch = vec![0.0; p.len()];
                fg(p, &mut scratch)
            };
            return minimize(model, &mut f_only, &x, settings, between_iterations);
        }
    }
    Err(EngineError::new(
        ErrorKind::FitFailed,
        format!("{model} fit did not converge after {} iterations", settings.max_iterations),
    )
    .with_detail(format!("Best mean log-likelihood per customer so far {:.6}.", -value))
    .with_hint("Add a penalty with options => '{\"penalizer\": 0.01}', or check the summary for extreme values."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        let mut f = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = minimize(
            "test",
            &mut f,
            &[-1.2, 1.0],
            &Settings::default(),
            &mut || {},
        )
        .unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{:?}",
            m.x
        );
    }

    #[test]
    fn reports_non_convergence_with_model_and_iterations() {
        let mut f = |x: &[f64]| -x[0]; // unbounded below
        let settings = Settings {
            max_iterations: 50,
            ..Settings::default()
        };
        let err = match minimize("bgnbd", &mut f, &[0.0], &settings, &mut || {}) {
            Err(e) => e,
            Ok(_) => panic!("an unbounded objective cannot converge"),
        };
        assert_eq!(err.kind, ErrorKind::FitFailed);
        assert_eq!(
            err.message,
            "bgnbd fit did not converge after 50 iterations"
        );
    }

    #[test]
    fn bfgs_finds_the_minimum_of_rosenbrock_with_its_gradient() {
        let mut fg = |x: &[f64], g: &mut [f64]| {
            g[0] = -2.0 * (1.0 - x[0]) - 400.0 * x[0] * (x[1] - x[0] * x[0]);
            g[1] = 200.0 * (x[1] - x[0] * x[0]);
            (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2)
        };
        let m = minimize_smooth(
            "test",
            &mut fg,
            &[-1.2, 1.0],
            &Settings::default(),
            &mut || {},
        )
        .unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{:?}",
            m.x
        );
        assert!(m.iterations < 100, "{}", m.iterations);
    }

    #[test]
    fn calls_back_every_iteration() {
        let mut calls = 0;
        let mut f = |x: &[f64]| x[0] * x[0] + x[1] * x[1];
        let m = minimize(
            "test",
            &mut f,
            &[3.0, -2.0],
            &Settings::default(),
            &mut || calls += 1,
        )
        .unwrap();
        assert!(calls >= m.iterations && calls > 0);
    }
}
