//! Ancestral DDPM sampling on a respaced chain (DiT gaussian_diffusion.p_sample_loop with
//! clip_denoised=False, as DiT's sample.py runs it).
use crate::error::Result;

use super::guided::GuidedModel;
use super::noise::NoiseSource;
use super::respace::RespacedSchedule;

/// Walk x (x_T on entry, [b, C, H, W]) down the chain to the sample. At index i:
/// x0 = sqrt(1/ᾱ)·x − sqrt(1/ᾱ − 1)·ε, mean = posterior mean of (x0, x), and
/// x ← mean + exp(½ log σ²)·z except at the last step. log σ² is the learned range
/// frac·log β + (1 − frac)·log β̃ with frac = (v + 1)/2 when the model predicts v, else
/// log β̃ (FIXED_SMALL).
pub(crate) fn sample(model: &mut GuidedModel, schedule: &RespacedSchedule, x: &mut [f32], noise: &mut dyn NoiseSource) -> Result<()> {
    let mut z = vec![0f32; x.len()];
    for i in (0..schedule.timesteps.len()).rev() {
        let pred = model.predict(x, schedule.timesteps[i] as f64)?;
        let (recip, recipm1) = schedule.x0_coefficients(i);
        let (c1, c2) = schedule.posterior_mean_coefficients(i);
        let mean = |x: f64, eps: f32| c1 * (recip * x - recipm1 * eps as f64) + c2 * x;
        if i == 0 {
            for (x, &eps) in x.iter_mut().zip(&pred.eps) {
                *x = mean(*x as f64, eps) as f32;
            }
            break;
        }
        noise.fill(&mut z)?;
        let (min_log, max_log) = (schedule.log_posterior_variance(i), schedule.betas[i].ln());
        for k in 0..x.len() {
            let log_var = match &pred.var {
                Some(v) => {
                    let frac = (v[k] as f64 + 1.0) / 2.0;
                    frac * max_log + (1.0 - frac) * min_log
                }
                None => min_log,
            };
            x[k] = (mean(x[k] as f64, pred.eps[k]) + (0.5 * log_var).exp() * z[k] as f64) as f32;
        }
    }
    Ok(())
}
