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
    /// Threads the likelihood of a large fit may use (`customer_value.training_threads`;
    /// Pareto/NBD, whose per-customer terms are the costliest). The result does not depend on it.
    pub threads: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iterations: Settings::default().max_iterations,
            threads: 1,
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
        return Err(not_finite_at_start(model));
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

/// The error of a fit whose objective (or gradient) is not finite where it starts.
fn not_finite_at_start(model: &str) -> EngineError {
    EngineError::new(
        ErrorKind::FitFailed,
        format!("{model} fit cannot start: the likelihood is not finite at the starting values"),
    )
    .with_hint("Check the data for impossible values (e.g. recency greater than T).")
}

/// The error of a fit that used up its iterations; `detail` says how far it got.
fn not_converged(model: &str, iterations: usize, detail: String) -> EngineError {
    EngineError::new(
        ErrorKind::FitFailed,
        format!("{model} fit did not converge after {iterations} iterations"),
    )
    .with_detail(detail)
    .with_hint("Add a penalty with options => '{\"penalizer\": 0.01}', or check the summary for extreme values.")
}

/// Nelder–Mead's coefficients of reflection, expansion, contraction and shrinkage: the standard
/// 1, 2, ½, ½ of Lagarias et al. (1998).
const REFLECTION: f64 = 1.0;
const EXPANSION: f64 = 2.0;
const CONTRACTION: f64 = 0.5;
const SHRINKAGE: f64 = 0.5;

/// One Nelder–Mead run from `start`. Iterations are counted on from `iterations_so_far`, so the
/// restarts of [`minimize`] share one budget of `settings.max_iterations`.
fn nelder_mead(
    model: &str,
    f: &mut dyn FnMut(&[f64]) -> f64,
    start: &[f64],
    settings: &Settings,
    iterations_so_far: usize,
    between_iterations: &mut dyn FnMut(),
) -> Result<Minimum> {
    let n = start.len();
    let mut simplex = initial_simplex(start, settings.initial_step);
    let mut values: Vec<f64> = simplex.iter().map(|x| finite_or_infinity(f, x)).collect();
    let mut iterations = iterations_so_far;
    loop {
        between_iterations();
        sort_best_first(&mut simplex, &mut values);
        // converged when the vertices agree both in value and in position
        let spread = values[n] - values[0];
        let size = simplex_size(&simplex);
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
            return Err(not_converged(
                model,
                iterations,
                format!(
                    "Best mean log-likelihood per customer so far {:.6}; the simplex still spans {size:.3e} in log-parameters.",
                    -values[0]
                ),
            ));
        }
        iterations += 1;
        replace_worst_vertex(f, &mut simplex, &mut values);
    }
}

/// The objective at `x`, with anything not finite (outside the model's domain) counted as +∞,
/// so that such a vertex is always the worst.
fn finite_or_infinity(f: &mut dyn FnMut(&[f64]) -> f64, x: &[f64]) -> f64 {
    let v = f(x);
    if v.is_finite() {
        v
    } else {
        f64::INFINITY
    }
}

/// `start` and, for each coordinate, `start` moved by `step` along it.
fn initial_simplex(start: &[f64], step: f64) -> Vec<Vec<f64>> {
    let mut simplex: Vec<Vec<f64>> = vec![start.to_vec()];
    for i in 0..start.len() {
        let mut v = start.to_vec();
        v[i] += step;
        simplex.push(v);
    }
    simplex
}

/// Orders the vertices (and their values) best first; ties keep their order.
fn sort_best_first(simplex: &mut Vec<Vec<f64>>, values: &mut Vec<f64>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    *simplex = order.iter().map(|&i| simplex[i].clone()).collect();
    *values = order.iter().map(|&i| values[i]).collect();
}

/// How far the vertices lie from the best one: the largest difference in any coordinate.
fn simplex_size(simplex: &[Vec<f64>]) -> f64 {
    let n = simplex.len() - 1;
    (1..=n)
        .flat_map(|i| (0..n).map(move |k| (i, k)))
        .map(|(i, k)| (simplex[i][k] - simplex[0][k]).abs())
        .fold(0.0, f64::max)
}

/// One Nelder–Mead move on a simplex sorted best first. The worst vertex is reflected through the
/// centroid of the others; a reflection better than the best vertex is tried further out
/// (expansion), one no better than the second worst is pulled back towards the centroid
/// (contraction); when even that fails, every vertex but the best is shrunk towards the best.
fn replace_worst_vertex(
    f: &mut dyn FnMut(&[f64]) -> f64,
    simplex: &mut [Vec<f64>],
    values: &mut [f64],
) {
    let n = simplex.len() - 1;
    let centroid: Vec<f64> = (0..n)
        .map(|k| simplex[..n].iter().map(|v| v[k]).sum::<f64>() / n as f64)
        .collect();
    // the point at `t` times the way from the centroid to `from` (t < 0: on the far side)
    let towards = |t: f64, from: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|k| centroid[k] + t * (from[k] - centroid[k]))
            .collect()
    };
    let reflected = towards(-REFLECTION, &simplex[n]);
    let fr = finite_or_infinity(f, &reflected);
    if fr < values[0] {
        let expanded = towards(-EXPANSION, &simplex[n]);
        let fe = finite_or_infinity(f, &expanded);
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
        // outside the simplex when the reflection beats the worst vertex, inside otherwise
        let (contracted, fc) = if fr < values[n] {
            let c = towards(-CONTRACTION, &simplex[n]);
            let v = finite_or_infinity(f, &c);
            (c, v)
        } else {
            let c = towards(CONTRACTION, &simplex[n]);
            let v = finite_or_infinity(f, &c);
            (c, v)
        };
        if fc < values[n].min(fr) {
            simplex[n] = contracted;
            values[n] = fc;
        } else {
            for i in 1..=n {
                let shrunk: Vec<f64> = (0..n)
                    .map(|k| simplex[0][k] + SHRINKAGE * (simplex[i][k] - simplex[0][k]))
                    .collect();
                values[i] = finite_or_infinity(f, &shrunk);
                simplex[i] = shrunk;
            }
        }
    }
}

/// Maximum-likelihood fit of four positive parameters (the count models) with an analytic
/// gradient: minimises the mean negative log-likelihood of `n` customers plus
/// `penalizer · Σ p²` (as lifetimes does, which keeps a degenerate fit finite) over
/// log-parameters θ = ln p, whose gradient is ∂/∂θₖ = pₖ ∂/∂pₖ. `ll_gradient` gives the total
/// log-likelihood and its gradient in p. Returns the fitted p.
pub fn fit_positive_params(
    model: &str,
    n: f64,
    start: [f64; 4],
    fit: &FitOptions,
    ll_gradient: &dyn Fn([f64; 4]) -> (f64, [f64; 4]),
    interrupt: &mut dyn FnMut(),
) -> Result<[f64; 4]> {
    let params_of = |theta: &[f64]| [0, 1, 2, 3].map(|k| theta[k].exp());
    let mut objective = |theta: &[f64], gradient: &mut [f64]| {
        let params = params_of(theta);
        let (ll, g) = ll_gradient(params);
        for k in 0..4 {
            gradient[k] = params[k] * (-g[k] / n + 2.0 * fit.penalizer * params[k]);
        }
        -ll / n + fit.penalizer * params.iter().map(|v| v * v).sum::<f64>()
    };
    let best = minimize_smooth(model, &mut objective, &start, &fit.settings(), interrupt)?;
    Ok(params_of(&best.x))
}

/// The total log-likelihood and its gradient at the parameters, for the count data.
pub type CountLikelihood = dyn Fn([f64; 4], &super::data::CountData) -> (f64, [f64; 4]);

/// Fits a BG/NBD-family model (r, α, a, b) on `customers`: the count data, the common start
/// (r = a = b = 1, α = mean T / 4) and [`fit_positive_params`]. `ll_gradient` gives the total
/// log-likelihood and its gradient at the parameters for the data. Returns the parameters and
/// the data (for the final log-likelihood).
pub fn fit_count_params(
    model: &str,
    customers: &[super::data::Customer],
    fit: &FitOptions,
    ll_gradient: &CountLikelihood,
    interrupt: &mut dyn FnMut(),
) -> Result<([f64; 4], super::data::CountData)> {
    let (data, mean_t) = super::data::CountData::for_count_model(customers, model)?;
    let start = [0.0, (mean_t / 4.0).max(1e-3).ln(), 0.0, 0.0];
    let of_data = |params: [f64; 4]| ll_gradient(params, &data);
    let params = fit_positive_params(model, data.n_customers, start, fit, &of_data, interrupt)?;
    Ok((params, data))
}

/// Minimises a smooth `f` whose gradient `fg` also returns (into its second argument) with
/// BFGS and a backtracking Armijo line search: a few dozen iterations where Nelder–Mead needs
/// hundreds. If the line search stalls away from a stationary point (e.g. a flat region),
/// Nelder–Mead takes over from where BFGS stopped.
///
/// The loop is one BFGS iteration (Nocedal & Wright, Numerical Optimization, algorithm 6.1),
/// read top to bottom: stationarity test, direction −H g, line search, update of H, convergence
/// test.
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
        return Err(not_finite_at_start(model));
    }
    // inverse Hessian approximation, row-major
    let mut h = vec![0.0; n * n];
    set_identity(&mut h, n);
    let mut g_new = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let gradient_tolerance = 1e-9;
    let mut stall = StallCheck::new(value);
    for iteration in 0..settings.max_iterations {
        between_iterations();
        if g.iter().all(|v| v.abs() <= gradient_tolerance) {
            return Ok(Minimum {
                x,
                value,
                iterations: iteration,
            });
        }
        let direction = quasi_newton_direction(&h, &g);
        let slope: f64 = direction.iter().zip(&g).map(|(d, gi)| d * gi).sum();
        if slope >= 0.0 {
            // not a descent direction: reset the approximation and retry
            set_identity(&mut h, n);
            continue;
        }
        let line = (&x[..], value, &direction[..], slope);
        let Some(v) = armijo_step(fg, line, halvings_from(&g), &mut x_new, &mut g_new) else {
            // no decrease along the direction: at the optimum up to rounding, or stuck
            if near_stationary(&g) {
                return Ok(Minimum {
                    x,
                    value,
                    iterations: iteration + 1,
                });
            }
            return minimize_values_only(model, fg, &x, settings, between_iterations);
        };
        let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let previous = value;
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        value = v;
        update_inverse_hessian(&mut h, &s, &y, iteration == 0);
        // converged when the objective stops moving and the gradient is small (summed over
        // many customers, it carries rounding error), or when it has stopped improving whatever
        // the gradient says: parameters running to a boundary
        if (previous - value).abs() <= 1e-13 * (1.0 + value.abs()) && near_stationary(&g)
            || stall.stalled(iteration + 1, value)
        {
            return Ok(Minimum {
                x,
                value,
                iterations: iteration + 1,
            });
        }
    }
    Err(not_converged(
        model,
        settings.max_iterations,
        format!(
            "Best mean log-likelihood per customer so far {:.6}.",
            -value
        ),
    ))
}

/// A gradient (of the mean objective, in log-parameters) this small is a stationary point up to
/// rounding (summed over many customers, it carries rounding error) when the line search finds
/// no decrease or the objective stops moving.
const NEAR_STATIONARY: f64 = 1e-5;
/// Halvings of the step a line search tries: far from a stationary point …
const MAX_HALVINGS: usize = 60;
/// … and near one (a step of 1/32 of the quasi-Newton step at most).
const NOISE_HALVINGS: usize = 5;

/// Whether `g` is a stationary point's gradient up to rounding ([`NEAR_STATIONARY`]).
fn near_stationary(g: &[f64]) -> bool {
    g.iter().all(|v| v.abs() <= NEAR_STATIONARY)
}

/// The halvings a line search from a point with gradient `g` tries. Near a stationary point, a
/// quasi-Newton step that must shrink far below 1 to decrease the objective meets its rounding
/// noise rather than its slope (a million customers' likelihood at a boundary of the parameter
/// space wobbles by 1e-8 relative): a short search, whose failure there means convergence.
fn halvings_from(g: &[f64]) -> usize {
    if near_stationary(g) {
        NOISE_HALVINGS
    } else {
        MAX_HALVINGS
    }
}

/// Iterations after which an objective that has not improved by [`STALL_TOLERANCE`] (relative)
/// ends a BFGS run.
const STALL_ITERATIONS: usize = 10;
const STALL_TOLERANCE: f64 = 1e-10;

/// Whether a minimisation still makes progress. A likelihood whose optimum lies on the boundary
/// of the parameter space (BG/NBD's a and b growing together without end when every customer
/// drops out with the same probability) keeps improving by ever smaller amounts while the
/// parameters run away: the run stops when [`STALL_ITERATIONS`] iterations together gained less
/// than [`STALL_TOLERANCE`] — the value has converged, the parameters describe the limit model
/// (the count models say which, e.g. `CountModel::limit`).
struct StallCheck {
    iteration: usize,
    value: f64,
}

impl StallCheck {
    fn new(value: f64) -> StallCheck {
        StallCheck {
            iteration: 0,
            value,
        }
    }

    /// Called after each iteration with the objective's value: true when stalled.
    fn stalled(&mut self, iteration: usize, value: f64) -> bool {
        if iteration - self.iteration < STALL_ITERATIONS {
            return false;
        }
        let gained = self.value - value;
        self.iteration = iteration;
        self.value = value;
        gained <= STALL_TOLERANCE * (1.0 + value.abs())
    }
}

/// Nelder–Mead ([`minimize`]) on the values of `fg` alone, from `start`: where BFGS's line search
/// stalls, the gradient is of no use.
fn minimize_values_only(
    model: &str,
    fg: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
    start: &[f64],
    settings: &Settings,
    between_iterations: &mut dyn FnMut(),
) -> Result<Minimum> {
    let mut f_only = |p: &[f64]| {
        let mut scratch = vec![0.0; p.len()];
        fg(p, &mut scratch)
    };
    minimize(model, &mut f_only, start, settings, between_iterations)
}

/// Sets the `n`×`n` row-major matrix `h` to the identity.
fn set_identity(h: &mut [f64], n: usize) {
    h.iter_mut()
        .enumerate()
        .for_each(|(k, v)| *v = if k % (n + 1) == 0 { 1.0 } else { 0.0 });
}

/// The quasi-Newton direction −H g (`h` row-major).
fn quasi_newton_direction(h: &[f64], g: &[f64]) -> Vec<f64> {
    let n = g.len();
    (0..n)
        .map(|i| -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>())
        .collect()
}

/// Backtracking line search from `x` along `direction`, on which the objective (`value` at `x`)
/// has the slope `slope` < 0: tries the steps 1, ½, ¼, … (`halvings` halvings at most) until one decreases the
/// objective by at least 10⁻⁴ · step · |slope| (Armijo's condition) at a point where the objective
/// and its gradient are finite. Returns the objective there, with the point left in `x_new` and
/// its gradient in `g_new`; `None` when no step qualifies.
fn armijo_step(
    fg: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
    (x, value, direction, slope): (&[f64], f64, &[f64], f64),
    halvings: usize,
    x_new: &mut [f64],
    g_new: &mut [f64],
) -> Option<f64> {
    let n = x.len();
    let mut step = 1.0;
    for _ in 0..=halvings {
        for i in 0..n {
            x_new[i] = x[i] + step * direction[i];
        }
        let v = fg(x_new, g_new);
        if v.is_finite() && v <= value + 1e-4 * step * slope && g_new.iter().all(|d| d.is_finite())
        {
            return Some(v);
        }
        step *= 0.5;
    }
    None
}

/// The BFGS update of the inverse Hessian approximation `h` (row-major) after the step `s`, which
/// changed the gradient by `y`. Skipped unless sᵀy > 0 clearly (the curvature condition; without
/// it H would stop being positive definite). Before the `first` update H is rescaled to
/// (sᵀy / yᵀy) I, the usual choice of initial approximation (Nocedal & Wright, §6.1).
fn update_inverse_hessian(h: &mut [f64], s: &[f64], y: &[f64], first: bool) {
    let n = s.len();
    let sy: f64 = s.iter().zip(y).map(|(a, b)| a * b).sum();
    if sy > 1e-16 {
        if first {
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
                h[i * n + j] +=
                    -rho * (s[i] * hy[j] + hy[i] * s[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
            }
        }
    }
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

    /// A deterministic stand-in for rounding noise: a number in [−1, 1) from the bits of `x`.
    fn noise(x: &[f64], salt: u64) -> f64 {
        let mut h = salt;
        for v in x {
            h = (h ^ v.to_bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h ^= h >> 29;
        }
        (h >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// A likelihood summed over a million customers near a boundary is noisy at 1e-8 relative,
    /// and so is its gradient: BFGS must stop at the noise floor, not search it step by step.
    #[test]
    fn bfgs_stops_at_the_noise_floor_of_its_objective() {
        // flat along two directions, as the likelihood is along s and β near s, β → ∞
        const CURVATURE: [f64; 4] = [0.01, 0.02, 1.0, 2.0];
        let centre = [0.3, -1.2, 2.0, 0.7];
        let mut evaluations = 0;
        let mut fg = |x: &[f64], g: &mut [f64]| {
            evaluations += 1;
            let mut value = 4.0;
            for k in 0..4 {
                let d = x[k] - centre[k];
                value += CURVATURE[k] * d * d;
                g[k] = 2.0 * CURVATURE[k] * d + 3e-6 * noise(x, k as u64 + 1);
            }
            value * (1.0 + 1e-10 * noise(x, 0))
        };
        let m =
            minimize_smooth("test", &mut fg, &[0.0; 4], &Settings::default(), &mut || {}).unwrap();
        for (got, want) in m.x.iter().zip(centre) {
            assert!((got - want).abs() < 1e-3, "{:?}", m.x);
        }
        // 33 here; 70 with the full 60-halving line search near the optimum
        assert!(evaluations <= 45, "{evaluations} evaluations");
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
