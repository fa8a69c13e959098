//! Continuous-time view of a VP schedule for DPM-Solver: q(x_t | x_0) = N(α_t x_0, σ_t² I),
//! t ∈ (0, 1], with λ_t = log α_t − log σ_t (U-ViT dpm_solver_pp.NoiseScheduleVP).
use super::schedule::{linspace, NoiseSchedule};

#[derive(Clone, Debug)]
pub enum VpSchedule {
    /// NoiseScheduleVP('discrete', betas): log α piecewise linear through the knots
    /// (n/N, ½ Σ_{k≤n} ln(1 − β_k)), n = 1..N, outer segments extended.
    Discrete { knots_t: Vec<f64>, knots_log_alpha: Vec<f64> },
    /// NoiseScheduleVP('linear'): log α_t = −¼ t² (β1 − β0) − ½ t β0.
    Linear { beta_0: f64, beta_1: f64 },
}

impl VpSchedule {
    pub fn new(schedule: NoiseSchedule) -> Self {
        match schedule.betas() {
            Some(betas) => {
                let n = betas.len();
                let knots_log_alpha = betas
                    .iter()
                    .scan(0.0, |acc, b| {
                        *acc += 0.5 * (1.0 - b).ln();
                        Some(*acc)
                    })
                    .collect();
                VpSchedule::Discrete { knots_t: linspace(1.0 / n as f64, 1.0, n), knots_log_alpha }
            }
            None => VpSchedule::Linear { beta_0: 0.1, beta_1: 20.0 },
        }
    }

    pub fn log_alpha(&self, t: f64) -> f64 {
        match self {
            VpSchedule::Discrete { knots_t, knots_log_alpha } => interpolate(t, knots_t, knots_log_alpha),
            VpSchedule::Linear { beta_0, beta_1 } => -0.25 * t * t * (beta_1 - beta_0) - 0.5 * t * beta_0,
        }
    }

    /// The t with λ_t = `lambda` (NoiseScheduleVP.inverse_lambda).
    pub fn inverse_lambda(&self, lambda: f64) -> f64 {
        match self {
            VpSchedule::Discrete { knots_t, knots_log_alpha } => {
                // log α = −½ log(1 + e^{−2λ}), then t by interpolation.
                interpolate(-0.5 * log_add_exp(0.0, -2.0 * lambda), knots_log_alpha, knots_t)
            }
            VpSchedule::Linear { beta_0, beta_1 } => {
                // Root of ¼(β1 − β0)t² + ½β0 t = ½ log(1 + e^{−2λ}), in the cancellation-free form.
                let tmp = 2.0 * (beta_1 - beta_0) * log_add_exp(-2.0 * lambda, 0.0);
                tmp / ((beta_0 * beta_0 + tmp).sqrt() + beta_0) / (beta_1 - beta_0)
            }
        }
    }

    pub fn alpha(&self, t: f64) -> f64 {
        self.log_alpha(t).exp()
    }

    pub fn sigma(&self, t: f64) -> f64 {
        (1.0 - (2.0 * self.log_alpha(t)).exp()).sqrt()
    }

    pub fn lambda(&self, t: f64) -> f64 {
        let log_alpha = self.log_alpha(t);
        log_alpha - 0.5 * (1.0 - (2.0 * log_alpha).exp()).ln()
    }

    /// The model's time input at t: t·N for discrete-time models (eval_ldm_discrete.py feeds
    /// t_continuous·N), t·999 for continuous ones (sde.ScoreModel.predict).
    pub fn model_time(&self, t: f64) -> f64 {
        match self {
            VpSchedule::Discrete { knots_t, .. } => t * knots_t.len() as f64,
            VpSchedule::Linear { .. } => t * 999.0,
        }
    }

    /// Where sampling ends: 1/N for discrete schedules (eval_ldm_discrete.py's eps = 1/N); 1e-4
    /// for the continuous one (eval_ldm.py's eps).
    pub fn t_end(&self) -> f64 {
        match self {
            VpSchedule::Discrete { knots_t, .. } => 1.0 / knots_t.len() as f64,
            VpSchedule::Linear { .. } => 1e-4,
        }
    }
}

/// log(e^a + e^b) without overflow.
fn log_add_exp(a: f64, b: f64) -> f64 {
    a.max(b) + (-(a - b).abs()).exp().ln_1p()
}

/// Piecewise-linear interpolation through (xs, ys), xs strictly monotonic in either direction,
/// the outer segments extended (dpm_solver_pp.interpolate_fn).
fn interpolate(x: f64, xs: &[f64], ys: &[f64]) -> f64 {
    let increasing = xs[1] > xs[0];
    let before = xs.partition_point(|&v| if increasing { v < x } else { v > x });
    let k = before.saturating_sub(1).min(xs.len() - 2);
    ys[k] + (x - xs[k]) * (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k])
}
