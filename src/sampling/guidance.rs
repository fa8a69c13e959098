//! Classifier-free guidance: how the conditional (c) and unconditional (u) noise predictions
//! of one batch [cond; uncond] are combined.
use std::f64::consts::PI;

use crate::error::{Error, Result};

use super::schedule::TRAIN_STEPS;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Guidance {
    /// The conditional prediction alone (one batch of b, no null class needed).
    None,
    /// DiT (models.py forward_with_cfg): ε = u + s(c − u) on the first 3 channels only, the other
    /// latent channel(s) and the variance from the conditional half; `all_channels` guides
    /// every ε channel (the "standard" form the official code leaves commented out).
    Dit { scale: f64, all_channels: bool },
    /// U-ViT (eval_ldm_discrete.py cfg_nnet): ε = c + s(c − u) on every ε channel.
    Uvit { scale: f64 },
    /// DiffiT at 256 px (diffit.py forward_with_cfg): DiT's form on 3 channels with the scale
    /// ramped by the model timestep t: s_t = (s − 1)·½(1 − cos(π(1 − t/1000)^power)) + 1
    /// (power 4 officially), from 1 at t = 1000 up to s at t = 0.
    DiffitRamp { scale: f64, power: f64 },
}

/// In words, with the scale in the convention `--cfg` takes (diffusers' and DiT's: 1 = off);
/// U-ViT's own scale s is 1 + s there, as c + s(c − u) = u + (1 + s)(c − u).
impl std::fmt::Display for Guidance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Guidance::None => write!(f, "unguided"),
            Guidance::Dit { scale, all_channels: false } => write!(f, "cfg {scale} (DiT's form: the first 3 channels)"),
            Guidance::Dit { scale, all_channels: true } => write!(f, "cfg {scale} (every channel)"),
            Guidance::Uvit { scale } => write!(f, "cfg {} (U-ViT's form, its scale {scale})", 1.0 + scale),
            Guidance::DiffitRamp { scale, power } => write!(f, "cfg {scale} (DiffiT's power-cosine ramp, power {power})"),
        }
    }
}

impl Guidance {
    pub fn is_guided(&self) -> bool {
        !matches!(self, Guidance::None)
    }

    pub fn validate(&self) -> Result<()> {
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(format!("guidance {name} must be finite, got {v}")))
            }
        };
        match *self {
            Guidance::None => Ok(()),
            Guidance::Dit { scale, .. } | Guidance::Uvit { scale } => finite("scale", scale),
            Guidance::DiffitRamp { scale, power } => finite("scale", scale).and(finite("power", power)),
        }
    }

    /// How many of the C ε channels are guided.
    pub fn guided_channels(&self, channels: usize) -> usize {
        match self {
            Guidance::None => 0,
            Guidance::Dit { all_channels: false, .. } | Guidance::DiffitRamp { .. } => channels.min(3),
            Guidance::Dit { all_channels: true, .. } | Guidance::Uvit { .. } => channels,
        }
    }

    /// A function (c, u) -> guided ε for the model time `t`.
    pub fn combiner(&self, t: f64) -> impl Fn(f64, f64) -> f64 {
        let (from_cond, s) = match *self {
            Guidance::None => (true, 0.0),
            Guidance::Dit { scale, .. } => (false, scale),
            Guidance::Uvit { scale } => (true, scale),
            Guidance::DiffitRamp { scale, power } => {
                let ramp = 0.5 * (1.0 - (PI * (1.0 - t / TRAIN_STEPS as f64).powf(power)).cos());
                (false, (scale - 1.0) * ramp + 1.0)
            }
        };
        move |c, u| {
            if from_cond {
                c + s * (c - u)
            } else {
                u + s * (c - u)
            }
        }
    }
}
