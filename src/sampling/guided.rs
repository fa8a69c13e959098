//! One model evaluation as a sampler sees it: the denoiser run on [x; x] with [labels; null]
//! when guided (one batch of 2b), the halves combined, the raw output split into ε and the
//! variance channels, and progress reported.
use crate::error::{Error, Result};

use super::guidance::Guidance;
use super::Denoiser;

/// ε [b, C, H, W] and, for models with 2C outputs, the variance values v [b, C, H, W].
pub(crate) struct Prediction {
    pub eps: Vec<f32>,
    pub var: Option<Vec<f32>>,
}

pub(crate) struct GuidedModel<'a> {
    denoiser: &'a mut dyn Denoiser,
    guidance: Guidance,
    /// Labels of the whole model batch: b, or 2b ([labels; null]) when guided; empty if unconditional.
    labels: Vec<u32>,
    images: usize,
    channels: usize,
    pixels: usize,
    out_channels: usize,
    progress: &'a mut dyn FnMut(usize, usize),
    done: usize,
    total: usize,
}

impl<'a> GuidedModel<'a> {
    /// `total`: the evaluations the sampler will make (reported with each one).
    pub fn new(
        denoiser: &'a mut dyn Denoiser,
        guidance: Guidance,
        labels: &[u32],
        images: usize,
        total: usize,
        progress: &'a mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let geometry = denoiser.geometry();
        let (channels, out_channels) = (geometry.channels, denoiser.out_channels());
        if out_channels != channels && out_channels != 2 * channels {
            return Err(Error::invalid(format!(
                "a denoiser with {channels} input channels must predict {channels} (ε) or {} (ε and variance) channels, not {out_channels}",
                2 * channels
            )));
        }
        let labels = match (denoiser.null_class(), guidance.is_guided()) {
            (None, true) => return Err(Error::invalid("guidance needs a class-conditional model (this one has no null class)")),
            (None, false) if labels.is_empty() => Vec::new(),
            (None, false) => return Err(Error::invalid("labels given for an unconditional model")),
            (Some(null), guided) => {
                if labels.len() != images {
                    return Err(Error::invalid(format!("{} labels for {images} images", labels.len())));
                }
                if let Some(bad) = labels.iter().find(|&&y| y > null) {
                    return Err(Error::invalid(format!("label {bad} is out of range (the null class is {null})")));
                }
                let nulls = if guided { images } else { 0 };
                labels.iter().copied().chain(std::iter::repeat_n(null, nulls)).collect()
            }
        };
        Ok(GuidedModel {
            guidance,
            labels,
            images,
            channels,
            pixels: geometry.height * geometry.width,
            out_channels,
            denoiser,
            progress,
            done: 0,
            total,
        })
    }

    /// Evaluate at model time `t` (what the backbone's timestep input gets).
    pub fn predict(&mut self, x: &[f32], t: f64) -> Result<Prediction> {
        let (b, c, hw, oc) = (self.images, self.channels, self.pixels, self.out_channels);
        let guided = self.guidance.is_guided();
        let rows = if guided { 2 * b } else { b };
        let input: Vec<f32> = if guided { [x, x].concat() } else { x.to_vec() };
        let out = self.denoiser.predict(&input, &vec![t as f32; rows], &self.labels)?;
        if out.len() != rows * oc * hw {
            return Err(Error::invalid(format!("denoiser returned {} values for a batch of {rows} × {oc} × {hw}", out.len())));
        }
        // A NaN here would only show as black images at the end: stop at the step it appeared.
        let bad = out.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(Error::invalid(format!(
                "model evaluation {} of {} (t = {t}) gave {bad} NaN/Inf values of {}; check the weights with --check-weights",
                self.done + 1,
                self.total,
                out.len()
            )));
        }
        let guided_channels = self.guidance.guided_channels(c);
        let combine = self.guidance.combiner(t);
        let mut eps = Vec::with_capacity(b * c * hw);
        let mut var = (oc == 2 * c).then(|| Vec::with_capacity(b * c * hw));
        for n in 0..b {
            let cond = &out[n * oc * hw..(n + 1) * oc * hw];
            let uncond = if guided { &out[(b + n) * oc * hw..(b + n + 1) * oc * hw] } else { cond };
            eps.extend(cond[..guided_channels * hw].iter().zip(uncond).map(|(&c, &u)| combine(c as f64, u as f64) as f32));
            eps.extend_from_slice(&cond[guided_channels * hw..c * hw]);
            if let Some(var) = &mut var {
                var.extend_from_slice(&cond[c * hw..]);
            }
        }
        self.done += 1;
        (self.progress)(self.done, self.total);
        Ok(Prediction { eps, var })
    }
}
