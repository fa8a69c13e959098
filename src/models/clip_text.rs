//! The CLIP text encoder as transformers' `CLIPTextModel` computes `last_hidden_state` (what
//! U-ViT's and Stable Diffusion's FrozenCLIPEmbedder feed their denoisers): token embedding +
//! learned position embedding, pre-LN transformer layers with causal self-attention (no padding
//! mask: pads are ordinary tokens after the end token), q/k/v/out projections with bias, MLP
//! fc1 -> quick GELU (or exact GELU) -> fc2, and a final LayerNorm. All positions are output;
//! no pooling, no projection. Keys: transformers' state_dict without the `position_ids`
//! buffer (weights-tools/archs/clip_text/checkpoint.py). A file also carries its tokenizer's
//! merges (`TOKENIZER_MERGES_KEY`), which no graph reads.
use serde::{Deserialize, Serialize};

use crate::backend::{Activation, Add, Embedding, Op, View};
use crate::error::{Error, Result};
use crate::graph::GraphBuilder;
use crate::models::backbone::{Backbone, Forward, GraphIo, ModelInput};
use crate::models::layers::{causal_bias, AffineLayerNorm, Linear, PreNormBlock, PreNormBlockSpec};
use crate::models::params::Params;
use crate::models::sizes::{check_bounds, check_params, check_positive, MAX_DEPTH, MAX_SIZE};
use crate::sampling::recipe::BackboneSampling;
use crate::tensor::DType;

/// The U8 tensor holding the tokenizer's BPE merges as UTF-8 text (weights-tools/archs/
/// clip_text/vocab.py `merges_text`): one file is the whole text encoder.
pub const TOKENIZER_MERGES_KEY: &str = "tokenizer.bpe_merges";

/// Most positions a config may have.
const MAX_POSITIONS: usize = 4096;
/// Most values of the causal mask (heads x positions^2; CLIP-L: 71148).
const MAX_MASK: usize = 1 << 28;

/// The MLP's activation, by transformers' `hidden_act` name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipActivation {
    /// x sigmoid(1.702 x): OpenAI's CLIP models.
    QuickGelu,
    /// Exact (erf) GELU: some retrained CLIP variants.
    Gelu,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipTextConfig {
    /// Rows of the token embedding (49408 for CLIP's BPE).
    pub vocab_size: usize,
    /// Hidden size (transformers' hidden_size).
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    /// MLP hidden size (transformers' intermediate_size).
    pub intermediate: usize,
    /// Rows of the position table: the graph encodes exactly this many tokens per prompt.
    pub max_positions: usize,
    pub act: ClipActivation,
    /// Epsilon of every LayerNorm.
    pub eps: f32,
}

impl ClipTextConfig {
    pub fn preset_names() -> String {
        "CLIP-ViT-L/14-text".into()
    }

    /// "CLIP-ViT-L/14-text": openai/clip-vit-large-patch14's text model, the encoder of U-ViT's
    /// MS-COCO models and Stable Diffusion 1.x.
    pub fn preset(name: &str) -> Option<ClipTextConfig> {
        (name == "CLIP-ViT-L/14-text").then_some(ClipTextConfig {
            vocab_size: 49408,
            width: 768,
            layers: 12,
            heads: 12,
            intermediate: 3072,
            max_positions: 77,
            act: ClipActivation::QuickGelu,
            eps: 1e-5,
        })
    }

    fn block_spec(&self) -> PreNormBlockSpec {
        let act = match self.act {
            ClipActivation::QuickGelu => Activation::QuickGelu,
            ClipActivation::Gelu => Activation::GeluErf,
        };
        PreNormBlockSpec { dim: self.width, heads: self.heads, mlp_hidden: self.intermediate, qkv_bias: true, act, eps: self.eps }
    }
}

impl Backbone for ClipTextConfig {
    fn arch(&self) -> &'static str {
        "clip_text"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let sizes = [
            ("vocab_size", self.vocab_size, MAX_SIZE),
            ("width", self.width, MAX_SIZE),
            ("layers", self.layers, MAX_DEPTH),
            ("heads", self.heads, MAX_SIZE),
            ("intermediate", self.intermediate, MAX_SIZE),
            ("max_positions", self.max_positions, MAX_POSITIONS),
        ];
        check_positive("clip_text", &sizes.map(|(name, v, _)| (name, v)))?;
        check_bounds("clip_text", &sizes)?;
        if !self.width.is_multiple_of(self.heads) {
            return Err(format!("clip_text: width {} is not a multiple of heads {}", self.width, self.heads));
        }
        let mask = self.heads * self.max_positions * self.max_positions;
        if mask > MAX_MASK {
            return Err(format!("clip_text: heads x max_positions^2 = {mask} is too large for the causal mask (at most {MAX_MASK})"));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(format!("clip_text: eps {} must be a positive finite number", self.eps));
        }
        check_params("clip_text", &self.param_shapes())?;
        Ok(())
    }

    fn describe(&self) -> String {
        let name =
            if Some(self) == Self::preset("CLIP-ViT-L/14-text").as_ref() { "CLIP ViT-L/14 text encoder" } else { "CLIP text encoder (custom)" };
        format!(
            "{name}: {} layers, width {}, {} heads of {}, MLP {} ({}), {} tokens, vocab {}, causal attention",
            self.layers,
            self.width,
            self.heads,
            self.width / self.heads,
            self.intermediate,
            match self.act {
                ClipActivation::QuickGelu => "quick GELU",
                ClipActivation::Gelu => "GELU",
            },
            self.max_positions,
            self.vocab_size
        )
    }

    /// Multiply-adds to encode one prompt: every layer's four projections, MLP, QK^T and AV
    /// over all positions (the masked half of the scores is computed too).
    fn macs_per_image(&self) -> f64 {
        self.layers as f64 * self.block_spec().macs(self.max_positions)
    }

    /// Token ids in, one `width` vector per token out.
    fn io(&self) -> GraphIo {
        GraphIo {
            input: ModelInput::Tokens { len: self.max_positions, vocab: self.vocab_size },
            output_channels: self.width,
            num_classes: None,
            null_class: None,
            context: None,
        }
    }

    fn sampling(&self) -> Result<BackboneSampling> {
        Err(Error::invalid("a text encoder is not a denoiser: it cannot be sampled"))
    }

    fn data_keys(&self) -> &'static [&'static str] {
        &[TOKENIZER_MERGES_KEY]
    }

    /// transformers' keys in module order (each layer's q, k, v read first, packed [q | k | v]).
    fn load(&self, mut p: Params) -> Result<Box<dyn Forward + '_>> {
        let (d, spec) = (self.width, self.block_spec());
        let mut text = p.pp("text_model");
        let mut embeddings = text.pp("embeddings");
        let token = embeddings.pp("token_embedding").tensor("weight", &[self.vocab_size, d])?;
        let position = embeddings.pp("position_embedding").tensor("weight", &[self.max_positions, d])?;
        let mut layers = text.pp("encoder.layers");
        let blocks = (0..self.layers).map(|i| load_layer(layers.pp(i), spec)).collect::<Result<_>>()?;
        let final_norm = AffineLayerNorm::load(text.pp("final_layer_norm"), d, self.eps)?;
        Ok(Box::new(ClipText { cfg: self, token, position, blocks, final_norm }))
    }
}

/// One `CLIPEncoderLayer` as a pre-LN block.
fn load_layer(mut p: Params, spec: PreNormBlockSpec) -> Result<PreNormBlock> {
    let (d, h) = (spec.dim, spec.mlp_hidden);
    let mut attn = p.pp("self_attn");
    let qkv = Linear::load_packed_qkv(&mut attn, ["q_proj", "k_proj", "v_proj"], d)?;
    let proj = Linear::load(attn.pp("out_proj"), &[d, d], true)?;
    Ok(PreNormBlock {
        spec,
        qkv,
        proj,
        norm1: AffineLayerNorm::load(p.pp("layer_norm1"), d, spec.eps)?,
        fc1: Linear::load(p.pp("mlp.fc1"), &[h, d], true)?,
        fc2: Linear::load(p.pp("mlp.fc2"), &[d, h], true)?,
        norm2: AffineLayerNorm::load(p.pp("layer_norm2"), d, spec.eps)?,
    })
}

struct ClipText<'a> {
    cfg: &'a ClipTextConfig,
    token: View,
    position: View,
    blocks: Vec<PreNormBlock>,
    final_norm: AffineLayerNorm,
}

impl Forward for ClipText<'_> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let cfg = self.cfg;
        let (len, d) = (cfg.max_positions, cfg.width);
        let rows = batch * len;
        let ids = g.input("input_ids", [batch, len], DType::U32);
        let x = g.temp([rows, d]);
        g.push(Op::Embedding(Embedding { rows, dim: d, table_rows: cfg.vocab_size, table: self.token, ids, out: x }));
        // The position table [len, d] repeats over the batch.
        g.push(Op::Add(Add { a: x, b: self.position, out: x }));
        let mask = causal_bias(g, cfg.heads, len);
        for block in &self.blocks {
            block.apply_with_bias(g, x, batch, len, Some(mask));
        }
        let out = g.output("out", [batch, len, d]);
        self.final_norm.apply_into(g, x, rows, out);
    }
}
