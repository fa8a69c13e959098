//! DPM-Solver++ (data prediction), singlestep, as U-ViT samples with it
//! (dpm_solver_pp.DPM_Solver(predict_x0=True).sample(method='fast', order=3,
//! skip_type='time_uniform', solver_type='dpm_solver')).
//!
//! Layout of the official "fast" method there: the time grid has NFE + 1 uniform points from 1
//! to t_end; the steps have the orders of `fast_orders`, and a step of order k spans k grid intervals
//! with its intermediate points at the grid points inside it — so every model evaluation falls on
//! a grid point (50 NFE: 16 third-order steps and one second-order step). The official code finds
//! those points as inverse_λ(λ_s + r·h) with r the grid's λ ratios, which is the grid point
//! itself; this uses the grid point directly.
use crate::error::Result;

use super::dpm_solver::{combine, fast_orders};
use super::guided::GuidedModel;
use super::schedule::linspace;
use super::vp::VpSchedule;

/// Walk x (x_T at t = 1 on entry) to t_end with `nfe` model evaluations.
pub(crate) fn sample(model: &mut GuidedModel, vp: &VpSchedule, nfe: usize, x: &mut Vec<f32>) -> Result<()> {
    let grid = linspace(1.0, vp.t_end(), nfe + 1);
    // Data prediction x0 = (x − σ_t ε)/α_t with ε the model's (guided) first C channels.
    let mut x0 = |x: &[f32], t: f64| -> Result<Vec<f32>> {
        let eps = model.predict(x, vp.model_time(t))?.eps;
        Ok(combine(&[(1.0 / vp.alpha(t), x), (-vp.sigma(t) / vp.alpha(t), &eps)]))
    };
    let mut i = 0;
    for order in fast_orders(nfe) {
        let (s, t) = (grid[i], grid[i + order]);
        let (lambda_s, h) = (vp.lambda(s), vp.lambda(t) - vp.lambda(s));
        let (sigma_s, sigma_t, alpha_t) = (vp.sigma(s), vp.sigma(t), vp.alpha(t));
        let phi_1 = (-h).exp_m1();
        let x0_s = x0(x, s)?;
        // DPM-Solver++ steps (Lu et al. 2022, singlestep, "dpm_solver" type): the first-order
        // step x_t = (σ_t/σ_s)·x − α_t·φ1·x0_s with φ1 = e^{−h} − 1, plus differences of x0
        // at the intermediate points s1 = grid[i+1], s2 = grid[i+2] (r = their λ ratio in h).
        *x = match order {
            1 => combine(&[(sigma_t / sigma_s, x), (-alpha_t * phi_1, &x0_s)]),
            2 => {
                let s1 = grid[i + 1];
                let r1 = (vp.lambda(s1) - lambda_s) / h;
                let x_s1 = combine(&[(vp.sigma(s1) / sigma_s, x), (-vp.alpha(s1) * (-r1 * h).exp_m1(), &x0_s)]);
                let x0_s1 = x0(&x_s1, s1)?;
                let d = 0.5 / r1 * alpha_t * phi_1;
                combine(&[(sigma_t / sigma_s, x), (-alpha_t * phi_1 + d, &x0_s), (-d, &x0_s1)])
            }
            _ => {
                let (s1, s2) = (grid[i + 1], grid[i + 2]);
                let (r1, r2) = ((vp.lambda(s1) - lambda_s) / h, (vp.lambda(s2) - lambda_s) / h);
                let (alpha_s1, alpha_s2) = (vp.alpha(s1), vp.alpha(s2));
                let phi_22 = (-r2 * h).exp_m1() / (r2 * h) + 1.0;
                let phi_2 = phi_1 / h + 1.0;
                let x_s1 = combine(&[(vp.sigma(s1) / sigma_s, x), (-alpha_s1 * (-r1 * h).exp_m1(), &x0_s)]);
                let x0_s1 = x0(&x_s1, s1)?;
                let d1 = r2 / r1 * alpha_s2 * phi_22;
                let x_s2 = combine(&[(vp.sigma(s2) / sigma_s, x), (-alpha_s2 * (-r2 * h).exp_m1() - d1, &x0_s), (d1, &x0_s1)]);
                let x0_s2 = x0(&x_s2, s2)?;
                let d2 = alpha_t * phi_2 / r2;
                combine(&[(sigma_t / sigma_s, x), (-alpha_t * phi_1 - d2, &x0_s), (d2, &x0_s2)])
            }
        };
        i += order;
    }
    Ok(())
}
