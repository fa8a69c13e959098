//! DPM-Solver (noise prediction), "DPM-Solver-fast", as U-ViT samples its continuous-time models
//! (eval_ldm.py: dpm_solver_pytorch.DPM_Solver(model_fn, NoiseScheduleVP('linear'))
//! .sample(steps=50, eps=1e-4, fast_version=True)): K = NFE // 3 + 1 steps of the orders of
//! `fast_orders` on a grid uniform in λ from t = 1 to t_end, a step's intermediate points at
//! λ_s + r·h with r = ½ (order 2) or ⅓, ⅔ (order 3).
use crate::error::Result;

use super::guided::GuidedModel;
use super::schedule::linspace;
use super::vp::VpSchedule;

/// Step orders of the fast layout for `nfe` model evaluations (they sum to `nfe`):
/// NFE // 3 + 1 steps, [3, …, 3, 2] (NFE % 3 == 2), [3, …, 3, 1] (== 1) or [3, …, 3, 2, 1] (== 0).
pub fn fast_orders(nfe: usize) -> Vec<usize> {
    let k = nfe / 3 + 1;
    match nfe % 3 {
        0 => [vec![3; k - 2], vec![2, 1]].concat(),
        1 => [vec![3; k - 1], vec![1]].concat(),
        _ => [vec![3; k - 1], vec![2]].concat(),
    }
}

/// Σ coefficient·values, elementwise, in f64.
pub(crate) fn combine(terms: &[(f64, &[f32])]) -> Vec<f32> {
    (0..terms[0].1.len()).map(|k| terms.iter().map(|(c, v)| c * v[k] as f64).sum::<f64>() as f32).collect()
}

/// Walk x (x_T at t = 1 on entry) to t_end with `nfe` model evaluations.
pub(crate) fn sample(model: &mut GuidedModel, vp: &VpSchedule, nfe: usize, x: &mut Vec<f32>) -> Result<()> {
    let orders = fast_orders(nfe);
    let lambdas = linspace(vp.lambda(1.0), vp.lambda(vp.t_end()), orders.len() + 1);
    let grid: Vec<f64> = lambdas.iter().map(|&l| vp.inverse_lambda(l)).collect();
    let mut eps = |x: &[f32], t: f64| model.predict(x, vp.model_time(t)).map(|p| p.eps);
    // DPM-Solver-1/2/3 (Lu et al. 2022, singlestep, solver_type "dpm_solver"): x at t is
    // (α_t/α_s)·x minus σ_t-weighted ε terms, φ1 = e^h − 1.
    let decay = |s: f64, t: f64| (vp.log_alpha(t) - vp.log_alpha(s)).exp();
    for (i, &order) in orders.iter().enumerate() {
        let (s, t) = (grid[i], grid[i + 1]);
        let (lambda_s, h) = (vp.lambda(s), vp.lambda(t) - vp.lambda(s));
        let (sigma_t, phi_1) = (vp.sigma(t), h.exp_m1());
        let e_s = eps(x, s)?;
        *x = match order {
            1 => combine(&[(decay(s, t), x), (-sigma_t * phi_1, &e_s)]),
            2 => {
                let r1 = 0.5;
                let s1 = vp.inverse_lambda(lambda_s + r1 * h);
                let x_s1 = combine(&[(decay(s, s1), x), (-vp.sigma(s1) * (r1 * h).exp_m1(), &e_s)]);
                let e_s1 = eps(&x_s1, s1)?;
                let d = 0.5 / r1 * sigma_t * phi_1;
                combine(&[(decay(s, t), x), (-sigma_t * phi_1 + d, &e_s), (-d, &e_s1)])
            }
            _ => {
                let (r1, r2) = (1.0 / 3.0, 2.0 / 3.0);
                let (s1, s2) = (vp.inverse_lambda(lambda_s + r1 * h), vp.inverse_lambda(lambda_s + r2 * h));
                let phi_22 = (r2 * h).exp_m1() / (r2 * h) - 1.0;
                let phi_2 = phi_1 / h - 1.0;
                let x_s1 = combine(&[(decay(s, s1), x), (-vp.sigma(s1) * (r1 * h).exp_m1(), &e_s)]);
                let e_s1 = eps(&x_s1, s1)?;
                let d1 = r2 / r1 * vp.sigma(s2) * phi_22;
                let x_s2 = combine(&[(decay(s, s2), x), (-vp.sigma(s2) * (r2 * h).exp_m1() + d1, &e_s), (-d1, &e_s1)]);
                let e_s2 = eps(&x_s2, s2)?;
                let d2 = sigma_t * phi_2 / r2;
                combine(&[(decay(s, t), x), (-sigma_t * phi_1 + d2, &e_s), (-d2, &e_s2)])
            }
        };
    }
    Ok(())
}
