//! Prompts' token ids to the CLIP text encoder's per-token features (`last_hidden_state`), the
//! context a text-conditioned denoiser takes, on a graph built once for a fixed batch.
use std::sync::Arc;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::graph::Session;
use crate::io::safetensors::SafetensorsFile;
use crate::models::weight_source::FileWeights;
use crate::models::ModelConfig;
use crate::tensor::{DType, HostTensor};

pub struct TextEncoder {
    session: Session,
    /// Prompts per launch.
    batch: usize,
    /// Token ids per prompt (77 for CLIP).
    tokens: usize,
    width: usize,
    vocab: usize,
}

impl TextEncoder {
    /// The clip_text model in `file`, built for `batch` prompts per launch stored as `dtype`.
    pub fn new(backend: Arc<dyn Backend>, file: &SafetensorsFile, dtype: DType, batch: usize) -> Result<Self> {
        let config = match ModelConfig::from_file(file)? {
            ModelConfig::ClipText(c) => c,
            other => {
                return Err(Error::Config {
                    path: file.path().to_path_buf(),
                    msg: format!("a text encoder must be a CLIP text model (arch clip_text), this is a {} model", other.arch()),
                })
            }
        };
        let (tokens, width, vocab) = (config.max_positions, config.width, config.vocab_size);
        let graph = ModelConfig::ClipText(config).build(&mut FileWeights::new(file), batch, dtype)?;
        Ok(TextEncoder { session: Session::new(backend, &graph)?, batch, tokens, width, vocab })
    }

    /// Features per token.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Token ids per prompt, which is also the number of feature vectors per prompt.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Encodes n prompts' ids (n x `tokens()`, each prompt padded as its tokenizer pads) into
    /// n x `tokens()` x `width()` features, `batch` prompts per launch (the last launch padded
    /// with copies of the last prompt).
    pub fn encode(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let len = self.tokens;
        if !ids.len().is_multiple_of(len) {
            return Err(Error::invalid(format!("text encoder: {} token ids are not a whole number of {len}-token prompts", ids.len())));
        }
        if let Some((i, bad)) = ids.iter().enumerate().find(|(_, &id)| id as usize >= self.vocab) {
            return Err(Error::invalid(format!("text encoder: token id {bad} (prompt {}) is outside the vocabulary of {}", i / len, self.vocab)));
        }
        let prompts: Vec<&[u32]> = ids.chunks_exact(len).collect();
        let mut features = Vec::with_capacity(ids.len() * self.width);
        for chunk in prompts.chunks(self.batch) {
            let mut batch_ids: Vec<u32> = chunk.concat();
            let last = chunk[chunk.len() - 1];
            for _ in chunk.len()..self.batch {
                batch_ids.extend_from_slice(last);
            }
            self.session.set_input("input_ids", &HostTensor::from_u32([self.batch, len], &batch_ids))?;
            self.session.run()?;
            let out = self.session.output("out")?.to_f32();
            features.extend_from_slice(&out[..chunk.len() * len * self.width]);
        }
        Ok(features)
    }
}
