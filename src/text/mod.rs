//! The CLIP tokenizer: byte-level BPE exactly as U-ViT's pipeline calls transformers' slow
//! `CLIPTokenizer` with ftfy installed (`padding="max_length", truncation=True, max_length=77`).
//!
//! A prompt is cut at literal `<|startoftext|>` / `<|endoftext|>` (transformers' added-token
//! split); each part is cleaned (normalize.rs: ftfy's repairs, whitespace collapsed, lowercase)
//! and pre-split into pieces (pretokenize.rs); each piece's UTF-8 bytes are merged by rank
//! (bpe.rs) over the vocabulary the merges imply (vocab.rs). The ids are
//! `[49406] + first 75 tokens + [49407]`, padded to 77 with 49407.
mod bpe;
mod cp1252;
mod ftfy;
mod html_entities;
mod normalize;
mod pretokenize;
mod vocab;

use crate::error::{one_line, Error, Result};
use crate::io::safetensors::SafetensorsFile;

use pretokenize::Piece;
use vocab::Vocab;

/// Tokens per prompt the text encoder reads, start and end tokens included.
pub const CONTEXT_LEN: usize = 77;
/// `<|startoftext|>`.
pub const BOS: u32 = vocab::BOS;
/// `<|endoftext|>`, also the padding.
pub const EOS: u32 = vocab::BOS + 1;
/// The tensor of a text-encoder file holding the merges: U8, UTF-8 text, one "a b" line each.
pub const MERGES_KEY: &str = "tokenizer.bpe_merges";

/// CLIP's tokenizer over a vocabulary of 48894 merges.
pub struct ClipTokenizer {
    vocab: Vocab,
}

/// A prompt's ids as the text encoder reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// `[BOS] + first 75 tokens + [EOS]`, padded with EOS.
    pub ids: [u32; CONTEXT_LEN],
    /// The prompt had more than 75 tokens; the rest were dropped.
    pub truncated: bool,
    /// The prompt's token count before truncation (start and end tokens not counted).
    pub tokens: usize,
}

impl Encoded {
    /// The one-line note a caller prints for a truncated prompt.
    pub fn truncation_note(&self, prompt: &str) -> Option<String> {
        let kept = CONTEXT_LEN - 2;
        let shown: String = prompt.chars().take(40).collect();
        let more = if shown.len() < prompt.len() { "..." } else { "" };
        self.truncated
            .then(|| format!("note: prompt \"{}{more}\" has {} tokens; the text encoder reads the first {kept}", one_line(&shown), self.tokens))
    }
}

impl ClipTokenizer {
    /// The tokenizer of `text`: CLIP's merges, one "a b" line each (no header); the first 48894
    /// are used. A short or malformed list is a one-line error.
    pub fn from_merges(text: &str) -> Result<Self> {
        let vocab = Vocab::from_merges(text).map_err(|e| Error::invalid(format!("tokenizer vocabulary: {e}")))?;
        Ok(ClipTokenizer { vocab })
    }

    /// The tokenizer stored in a text-encoder file (tensor `tokenizer.bpe_merges`).
    pub fn from_file(file: &SafetensorsFile) -> Result<Self> {
        let Some((dtype, _)) = file.info(MERGES_KEY) else {
            return Err(Error::File {
                path: file.path().to_path_buf(),
                msg: format!(
                    "has no tokenizer vocabulary (tensor {MERGES_KEY}); convert the text encoder with weights-tools/convert.py --arch clip_text"
                ),
            });
        };
        if dtype != "U8" {
            return Err(file.tensor_err(MERGES_KEY, format!("dtype {dtype}, expected U8 (the merges as UTF-8 text)")));
        }
        // U8 values come back widened to u32; each is one byte of the text.
        let bytes: Vec<u8> = file.tensor(MERGES_KEY)?.bytes.chunks_exact(4).map(|c| c[0]).collect();
        let text = String::from_utf8(bytes).map_err(|e| file.tensor_err(MERGES_KEY, format!("not UTF-8 text ({e})")))?;
        let vocab = Vocab::from_merges(&text).map_err(|e| file.tensor_err(MERGES_KEY, e))?;
        Ok(ClipTokenizer { vocab })
    }

    /// The 77 ids of `prompt`. Any string is accepted.
    pub fn encode(&self, prompt: &str) -> Encoded {
        let mut tokens = Vec::new();
        for part in pretokenize::split_special(prompt) {
            let cleaned = match part {
                Piece::Special(id) => {
                    tokens.push(id);
                    continue;
                }
                Piece::Text(raw) => normalize::clean(raw),
            };
            for piece in pretokenize::split(&cleaned) {
                match piece {
                    Piece::Special(id) => tokens.push(id),
                    Piece::Text(word) => self.vocab.bpe(word, &mut tokens),
                }
            }
        }
        let kept = tokens.len().min(CONTEXT_LEN - 2);
        let mut ids = [EOS; CONTEXT_LEN];
        ids[0] = BOS;
        ids[1..=kept].copy_from_slice(&tokens[..kept]);
        Encoded { ids, truncated: tokens.len() > kept, tokens: tokens.len() }
    }
}
