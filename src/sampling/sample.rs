//! The sampling entry point: a sampler configuration, a denoiser, conditions and noise in; samples out.
use crate::error::{Error, Result};

use super::guidance::Guidance;
use super::guided::GuidedModel;
use super::noise::NoiseSource;
use super::respace::RespacedSchedule;
use super::schedule::{NoiseSchedule, TRAIN_STEPS};
use super::vp::VpSchedule;
use super::{ddim, ddpm, dpm_solver, dpm_solver_pp, Condition, Denoiser};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// Ancestral DDPM on `steps` respaced timesteps (learned-range variance for 2C-output models).
    Ddpm,
    /// DDIM with η ∈ [0, 1] on `steps` respaced timesteps.
    Ddim { eta: f64 },
    /// DPM-Solver++ (data prediction; U-ViT's singlestep "fast" layout on a time-uniform grid)
    /// with `steps` model evaluations.
    DpmSolverPp,
    /// DPM-Solver (noise prediction; DPM-Solver-fast on a logSNR-uniform grid) with `steps`
    /// model evaluations.
    DpmSolver,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Ddpm => write!(f, "DDPM"),
            Method::Ddim { eta } => write!(f, "DDIM (eta {eta})"),
            Method::DpmSolverPp => write!(f, "DPM-Solver++"),
            Method::DpmSolver => write!(f, "DPM-Solver"),
        }
    }
}

impl std::fmt::Display for SamplerConfig {
    /// e.g. "DDPM, 250 steps, cfg 4 (DiT's form: the first 3 channels)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {} steps, {}", self.method, self.steps, self.guidance)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    pub method: Method,
    pub schedule: NoiseSchedule,
    /// Respaced timesteps (DDPM, DDIM) or model evaluations (DPM-Solver, DPM-Solver++), 1..=1000.
    pub steps: usize,
    pub guidance: Guidance,
}

impl SamplerConfig {
    /// DiT's sample.py: DDPM on the linear schedule (250 steps officially) with guidance on 3
    /// channels (scale 4.0 for pictures, 1.5 for FID).
    pub fn dit(steps: usize, scale: f64) -> Self {
        SamplerConfig { method: Method::Ddpm, schedule: NoiseSchedule::Linear, steps, guidance: Guidance::Dit { scale, all_channels: false } }
    }

    /// U-ViT's discrete-time evaluation: DPM-Solver++ with 50 evaluations on the Stable
    /// Diffusion schedule, ε = c + s(c − u) (scale 0.4 at 256 px, 0.7 at 512 px).
    pub fn uvit(scale: f64) -> Self {
        SamplerConfig { method: Method::DpmSolverPp, schedule: NoiseSchedule::StableDiffusion, steps: 50, guidance: Guidance::Uvit { scale } }
    }

    /// U-ViT's continuous-time evaluation (the L models, eval_ldm.py): DPM-Solver-fast with 50
    /// evaluations on the VP linear schedule, ε = c + s(c − u) (scale 0.4 at 256 px, 0.7 at 512 px).
    pub fn uvit_continuous(scale: f64) -> Self {
        SamplerConfig { method: Method::DpmSolver, schedule: NoiseSchedule::VpLinear, ..Self::uvit(scale) }
    }

    /// DiffiT at 256 px: DDPM with 250 steps as DiT, the guidance scale ramped (power 4;
    /// scale 4.4 officially). At 512 px DiffiT uses `dit(250, scale)`.
    pub fn diffit(scale: f64) -> Self {
        SamplerConfig { method: Method::Ddpm, schedule: NoiseSchedule::Linear, steps: 250, guidance: Guidance::DiffitRamp { scale, power: 4.0 } }
    }

    /// Model evaluations one run makes (each on 2b images when guided).
    pub fn evaluations(&self) -> usize {
        self.steps
    }

    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.steps > TRAIN_STEPS {
            return Err(Error::invalid(format!("steps must be in 1..={TRAIN_STEPS}, got {}", self.steps)));
        }
        if let Method::Ddim { eta } = self.method {
            if !(0.0..=1.0).contains(&eta) {
                return Err(Error::invalid(format!("DDIM eta must be in [0, 1], got {eta}")));
            }
        }
        if matches!(self.method, Method::Ddpm | Method::Ddim { .. }) {
            self.respaced()?;
        }
        self.guidance.validate()
    }

    /// The respaced chain DDPM and DDIM walk.
    fn respaced(&self) -> Result<RespacedSchedule> {
        let betas = self.schedule.betas().ok_or_else(|| {
            Error::invalid(format!("the {} schedule is continuous-time: sample it with DPM-Solver or DPM-Solver++", self.schedule.name()))
        })?;
        RespacedSchedule::new(&betas, self.steps)
    }
}

/// Make `noise.images()` samples [b, C, H, W]: x_T and every step's noise come from `noise`;
/// `condition` holds each image's class or text states (`Condition::None` for an unconditional
/// denoiser). `progress(done,
/// total)` is called after each model evaluation.
pub fn sample(
    denoiser: &mut dyn Denoiser,
    config: &SamplerConfig,
    condition: &Condition,
    noise: &mut dyn NoiseSource,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<f32>> {
    config.validate()?;
    let images = noise.images();
    if images == 0 {
        return Err(Error::invalid("nothing to sample: the noise source is for 0 images"));
    }
    let geometry = denoiser.geometry();
    let mut model = GuidedModel::new(denoiser, config.guidance, condition, images, config.evaluations(), progress)?;
    let mut x = vec![0f32; images * geometry.channels * geometry.height * geometry.width];
    noise.fill(&mut x)?;
    match config.method {
        Method::DpmSolverPp => dpm_solver_pp::sample(&mut model, &VpSchedule::new(config.schedule), config.steps, &mut x)?,
        Method::DpmSolver => dpm_solver::sample(&mut model, &VpSchedule::new(config.schedule), config.steps, &mut x)?,
        Method::Ddpm => ddpm::sample(&mut model, &config.respaced()?, &mut x, noise)?,
        Method::Ddim { eta } => ddim::sample(&mut model, &config.respaced()?, eta, &mut x, noise)?,
    }
    Ok(x)
}
