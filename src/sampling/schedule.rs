//! Noise schedules: which forward process a model was trained with.

/// Timesteps of the discrete schedules.
pub const TRAIN_STEPS: usize = 1000;

/// The forward process of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseSchedule {
    /// DiT / ADM "linear": β linear from 1e-4 to 0.02 over 1000 steps
    /// (gaussian_diffusion.get_named_beta_schedule("linear", 1000)).
    Linear,
    /// Stable Diffusion's betas, linspace(√0.00085, √0.012, 1000)² (U-ViT's discrete-time models,
    /// eval_ldm_discrete.stable_diffusion_beta_schedule).
    StableDiffusion,
    /// Continuous-time VP SDE with β(t) = 0.1 + (20 − 0.1)·t, t ∈ [0, 1] (U-ViT's
    /// continuous-time models, sde.VPSDE). It has no betas: only the DPM-Solvers sample it.
    VpLinear,
}

impl NoiseSchedule {
    pub fn name(self) -> &'static str {
        match self {
            NoiseSchedule::Linear => "linear",
            NoiseSchedule::StableDiffusion => "stable-diffusion",
            NoiseSchedule::VpLinear => "vp-linear",
        }
    }

    /// β_0..β_999 of a discrete schedule (None for the continuous one).
    pub fn betas(self) -> Option<Vec<f64>> {
        match self {
            NoiseSchedule::Linear => Some(linspace(1e-4, 0.02, TRAIN_STEPS)),
            NoiseSchedule::StableDiffusion => Some(linspace(0.00085f64.sqrt(), 0.012f64.sqrt(), TRAIN_STEPS).into_iter().map(|b| b * b).collect()),
            NoiseSchedule::VpLinear => None,
        }
    }
}

/// ᾱ_t = Π_{s≤t} (1 − β_s).
pub fn alphas_cumprod(betas: &[f64]) -> Vec<f64> {
    betas
        .iter()
        .scan(1.0, |acc, b| {
            *acc *= 1.0 - b;
            Some(*acc)
        })
        .collect()
}

/// numpy.linspace(start, stop, n): start + k·step, the last point exactly `stop`.
pub(crate) fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (stop - start) / (n - 1) as f64;
    (0..n).map(|k| if k == n - 1 { stop } else { start + k as f64 * step }).collect()
}
