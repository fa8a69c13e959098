//! A discrete schedule respaced to fewer steps, with the coefficients DDPM and DDIM use
//! (DiT diffusion/respace.py SpacedDiffusion on gaussian_diffusion.GaussianDiffusion).
use crate::error::{Error, Result};

use super::schedule::alphas_cumprod;

/// The timesteps kept when `count` of `num_timesteps` steps are taken, ascending
/// (respace.space_timesteps(num_timesteps, str(count)), one section): a float stride
/// (T − 1)/(count − 1) accumulated step by step and rounded half to even like Python's `round`,
/// so e.g. 999 of 1000 keeps 499 where round(i·999/998) would give 500.
pub fn space_timesteps(num_timesteps: usize, count: usize) -> Result<Vec<usize>> {
    if count == 0 || count > num_timesteps {
        return Err(Error::invalid(format!("steps must be in 1..={num_timesteps}, got {count}")));
    }
    let stride = if count > 1 { (num_timesteps - 1) as f64 / (count - 1) as f64 } else { 1.0 };
    let mut cur = 0.0f64;
    let mut steps = Vec::with_capacity(count);
    for _ in 0..count {
        steps.push(cur.round_ties_even() as usize);
        cur += stride;
    }
    Ok(steps)
}

/// The chain a sampler walks: index i = 0..K−1 of the respaced process, run backwards.
#[derive(Clone, Debug)]
pub struct RespacedSchedule {
    /// Original timestep of each index; the model is fed these.
    pub timesteps: Vec<usize>,
    /// β_i = 1 − ᾱ(t_i)/ᾱ(t_{i−1}).
    pub betas: Vec<f64>,
    /// ᾱ_i, the cumulative product of the respaced 1 − β_i (= ᾱ(t_i) up to rounding).
    pub alphas_cumprod: Vec<f64>,
}

impl RespacedSchedule {
    /// Keep `steps` of the timesteps of `betas`.
    pub fn new(betas: &[f64], steps: usize) -> Result<Self> {
        let timesteps = space_timesteps(betas.len(), steps)?;
        let base = alphas_cumprod(betas);
        let mut last = 1.0;
        let betas: Vec<f64> = timesteps
            .iter()
            .map(|&t| {
                let beta = 1.0 - base[t] / last;
                last = base[t];
                beta
            })
            .collect();
        let alphas_cumprod = alphas_cumprod(&betas);
        Ok(RespacedSchedule { timesteps, betas, alphas_cumprod })
    }

    /// ᾱ_{i−1}, 1 at the first index.
    pub fn alpha_cumprod_prev(&self, i: usize) -> f64 {
        if i == 0 {
            1.0
        } else {
            self.alphas_cumprod[i - 1]
        }
    }

    /// x0 = sqrt(1/ᾱ)·x − sqrt(1/ᾱ − 1)·ε as the pair of coefficients.
    pub fn x0_coefficients(&self, i: usize) -> (f64, f64) {
        let a = self.alphas_cumprod[i];
        ((1.0 / a).sqrt(), (1.0 / a - 1.0).sqrt())
    }

    /// Posterior mean of q(x_{t−1} | x_t, x0) = c1·x0 + c2·x_t as (c1, c2).
    pub fn posterior_mean_coefficients(&self, i: usize) -> (f64, f64) {
        let (a, a_prev, b) = (self.alphas_cumprod[i], self.alpha_cumprod_prev(i), self.betas[i]);
        (b * a_prev.sqrt() / (1.0 - a), (1.0 - a_prev) * (1.0 - b).sqrt() / (1.0 - a))
    }

    /// log β̃_i, the log posterior variance β_i(1 − ᾱ_{i−1})/(1 − ᾱ_i). Needed for i ≥ 1 only:
    /// index 0 is the last step, which adds no noise (the official "clipped" log, which
    /// replaces index 0's log 0 with index 1's value, is the same everywhere else).
    pub fn log_posterior_variance(&self, i: usize) -> f64 {
        let (a, a_prev, b) = (self.alphas_cumprod[i], self.alpha_cumprod_prev(i), self.betas[i]);
        (b * (1.0 - a_prev) / (1.0 - a)).ln()
    }
}
