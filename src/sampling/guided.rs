//! One model evaluation as a sampler sees it: the denoiser run on [x; x] with [labels; null]
//! or [prompts' states; the empty prompt's] when guided (one batch of 2b), the halves combined, the raw output split into ε and the
//! variance channels, and progress reported.
use crate::error::{Error, Result};

use super::guidance::Guidance;
use super::{BatchCondition, Condition, Conditioning, Denoiser};

/// ε [b, C, H, W] and, for models with 2C outputs, the variance values v [b, C, H, W].
pub(crate) struct Prediction {
    pub eps: Vec<f32>,
    pub var: Option<Vec<f32>>,
}

pub(crate) struct GuidedModel<'a> {
    denoiser: &'a mut dyn Denoiser,
    guidance: Guidance,
    /// The condition of the whole model batch: b entries, or 2b ([cond; uncond]) when guided.
    batch: Condition,
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
        condition: &Condition,
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
        let batch = batch_condition(denoiser.conditioning(), condition, guidance.is_guided(), images)?;
        Ok(GuidedModel {
            guidance,
            batch,
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
        let cond = match &self.batch {
            Condition::None => BatchCondition::None,
            Condition::Classes(labels) => BatchCondition::Labels(labels),
            Condition::Text { context, .. } => BatchCondition::Context(context),
        };
        let out = self.denoiser.predict(&input, &vec![t as f32; rows], cond)?;
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

/// The condition of a model batch for `images` images: theirs, followed when guided by as many
/// unconditional ones (the null class, or the empty prompt's states). `Text`'s `empty` is
/// unused in the result.
fn batch_condition(model: Conditioning, condition: &Condition, guided: bool, images: usize) -> Result<Condition> {
    let nulls = if guided { images } else { 0 };
    match (model, condition) {
        (Conditioning::Unconditional | Conditioning::Classes { null: None }, _) if guided => {
            Err(Error::invalid("guidance needs a class-conditional model with a null class, or a text-conditioned one"))
        }
        (Conditioning::Unconditional, Condition::None) => Ok(Condition::None),
        (Conditioning::Unconditional, _) => Err(Error::invalid("a condition given for an unconditional model")),
        (Conditioning::Classes { null }, Condition::Classes(labels)) => {
            if labels.len() != images {
                return Err(Error::invalid(format!("{} labels for {images} images", labels.len())));
            }
            if let Some(null) = null {
                if let Some(bad) = labels.iter().find(|&&y| y > null) {
                    return Err(Error::invalid(format!("label {bad} is out of range (the null class is {null})")));
                }
            }
            Ok(Condition::Classes(labels.iter().copied().chain(std::iter::repeat_n(null.unwrap_or(0), nulls)).collect()))
        }
        (Conditioning::Text { tokens, dim }, Condition::Text { context, empty }) => {
            let per = tokens * dim;
            if context.len() != images * per || empty.len() != per {
                return Err(Error::invalid(format!(
                    "text condition of {} values (and {} for the empty prompt) for {images} images of {tokens} x {dim} states",
                    context.len(),
                    empty.len()
                )));
            }
            let mut batch = context.clone();
            for _ in 0..nulls {
                batch.extend_from_slice(empty);
            }
            Ok(Condition::Text { context: batch, empty: Vec::new() })
        }
        (Conditioning::Classes { .. }, _) => Err(Error::invalid("a class-conditional model needs one class per image")),
        (Conditioning::Text { .. }, _) => Err(Error::invalid("a text-conditioned model needs a prompt's encoding per image")),
    }
}
