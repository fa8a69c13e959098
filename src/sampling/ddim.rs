//! DDIM sampling on a respaced chain (DiT gaussian_diffusion.ddim_sample_loop,
//! clip_denoised=False).
use crate::error::Result;

use super::guided::GuidedModel;
use super::noise::NoiseSource;
use super::respace::RespacedSchedule;

/// Walk x (x_T on entry) down the chain. At index i, with ᾱ and ᾱ_prev:
/// x0 as in DDPM, ε re-derived from x0 as the official code does,
/// σ = η·sqrt((1 − ᾱ_prev)/(1 − ᾱ))·sqrt(1 − ᾱ/ᾱ_prev) and (DDIM eq. 12)
/// x ← sqrt(ᾱ_prev)·x0 + sqrt(1 − ᾱ_prev − σ²)·ε + σ·z, the noise term only when η > 0 and not
/// at the last step (so η = 0 draws no noise).
pub(crate) fn sample(model: &mut GuidedModel, schedule: &RespacedSchedule, eta: f64, x: &mut [f32], noise: &mut dyn NoiseSource) -> Result<()> {
    let mut z = vec![0f32; x.len()];
    for i in (0..schedule.timesteps.len()).rev() {
        let pred = model.predict(x, schedule.timesteps[i] as f64)?;
        let (recip, recipm1) = schedule.x0_coefficients(i);
        let (a, a_prev) = (schedule.alphas_cumprod[i], schedule.alpha_cumprod_prev(i));
        let sigma = eta * ((1.0 - a_prev) / (1.0 - a)).sqrt() * (1.0 - a / a_prev).sqrt();
        let eps_coef = (1.0 - a_prev - sigma * sigma).sqrt();
        let noisy = i > 0 && eta > 0.0;
        if noisy {
            noise.fill(&mut z)?;
        }
        for k in 0..x.len() {
            let xk = x[k] as f64;
            let x0 = recip * xk - recipm1 * pred.eps[k] as f64;
            let eps = (recip * xk - x0) / recipm1;
            let noise_term = if noisy { sigma * z[k] as f64 } else { 0.0 };
            x[k] = (a_prev.sqrt() * x0 + eps_coef * eps + noise_term) as f32;
        }
    }
    Ok(())
}
