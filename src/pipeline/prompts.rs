//! A text-conditioned model's prompts as the sampler's condition: each prompt tokenized
//! (the text encoder file's CLIP vocabulary) and encoded once, the empty prompt too (the
//! unconditional half of guidance, as U-ViT's text-to-image sampling encodes "").
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::safetensors::SafetensorsFile;
use crate::models::backbone::ContextIo;
use crate::pipeline::text_encoder::TextEncoder;
use crate::sampling::Condition;
use crate::tensor::DType;
use crate::text::ClipTokenizer;

/// A prompt cut to the text encoder's context.
#[derive(Clone, Debug, PartialEq)]
pub struct Truncated {
    /// Index of the prompt.
    pub prompt: usize,
    /// Its tokens (without start and end), of which 75 were kept.
    pub tokens: usize,
}

pub struct PromptEncoder {
    tokenizer: ClipTokenizer,
    encoder: TextEncoder,
    context: ContextIo,
    /// [prompts, tokens, dim] and [tokens, dim].
    prompts: Vec<f32>,
    empty: Vec<f32>,
}

impl PromptEncoder {
    /// The text encoder in `file` (weights and vocabulary), which must give what the backbone
    /// takes as `context`.
    pub fn new(backend: Arc<dyn Backend>, file: &SafetensorsFile, dtype: DType, context: ContextIo) -> Result<Self> {
        let mut encoder = TextEncoder::new(backend, file, dtype, 1)?;
        if (encoder.tokens(), encoder.width()) != (context.tokens, context.dim) {
            return Err(Error::Config {
                path: file.path().to_path_buf(),
                msg: format!(
                    "the text encoder gives {} tokens of width {}, the model takes {} of width {} as context",
                    encoder.tokens(),
                    encoder.width(),
                    context.tokens,
                    context.dim
                ),
            });
        }
        let tokenizer = ClipTokenizer::from_file(file)?;
        let empty = encoder.encode(&tokenizer.encode("").ids)?;
        Ok(PromptEncoder { tokenizer, encoder, context, prompts: Vec::new(), empty })
    }

    /// Encode the run's prompts (each once); the ones cut to the context are returned.
    pub fn set_prompts(&mut self, prompts: &[String]) -> Result<Vec<Truncated>> {
        let mut ids = Vec::with_capacity(prompts.len() * self.context.tokens);
        let mut truncated = Vec::new();
        for (prompt, text) in prompts.iter().enumerate() {
            let encoded = self.tokenizer.encode(text);
            if encoded.truncated {
                truncated.push(Truncated { prompt, tokens: encoded.tokens });
            }
            ids.extend_from_slice(&encoded.ids);
        }
        self.prompts = self.encoder.encode(&ids)?;
        Ok(truncated)
    }

    /// The condition of images whose prompts are `prompt_ids` (indices into the prompts set).
    pub fn condition(&self, prompt_ids: &[u32]) -> Result<Condition> {
        let per = self.context.tokens * self.context.dim;
        let count = self.prompts.len() / per;
        let mut context = Vec::with_capacity(prompt_ids.len() * per);
        for &id in prompt_ids {
            let id = id as usize;
            if id >= count {
                return Err(Error::invalid(format!("prompt {id} asked for, {count} prompt(s) encoded")));
            }
            context.extend_from_slice(&self.prompts[id * per..(id + 1) * per]);
        }
        Ok(Condition::Text { context, empty: self.empty.clone() })
    }
}
