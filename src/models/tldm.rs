//! In-context transformer LDM (Chahal, arXiv 2212.14678): a plain pre-LN transformer over
//! the latent's patch tokens with the time and class embeddings (and, with `context_dim`, a
//! text context's tokens) as extra tokens of the same sequence — no cross-attention, no adaLN.
//! The paper releases no code; the choices (DiT's sizes, embedders, key names and learned
//! sigma; the context's Linear) are listed in docs/models/tldm.md.
use serde::{Deserialize, Serialize};

use crate::backend::Activation;
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::{denoiser_sampling, Backbone, ContextIo, Forward, GraphIo};
use crate::models::embedders::{ContextEmbed, Embedders};
use crate::models::flat_config::flat_config;
use crate::models::layers::{copy_tokens, AffineLayerNorm, Linear, PreNormBlock, PreNormBlockSpec, TokenSpan};
use crate::models::params::Params;
use crate::models::patch_config::PatchConfig;
use crate::models::sizes::{check_bounds, check_positive, MAX_SIZE};
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, SamplerName};
use crate::sampling::NoiseSchedule;

/// DiT's LayerNorm eps, kept for its blocks' plain-LN twins.
const LN_EPS: f32 = 1e-6;
/// Sequence order: [time, class, context (if any), patches].
const TIME_TOKEN: usize = 0;
const CLASS_TOKEN: usize = 1;
const FIRST_CONTEXT_TOKEN: usize = 2;
/// Text tokens per sample: CLIP's context length (its tokenizer pads every prompt to it).
pub const CONTEXT_TOKENS: usize = 77;

/// The in-context LDM's own field: the width of the text context where the model takes one
/// (absent from the JSON when None).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TldmText {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_dim: Option<usize>,
}

flat_config!(
    /// The in-context LDM's config: `PatchConfig`'s fields with DiT's meaning, and `context_dim`.
    TldmConfig { patch: PatchConfig, text: TldmText } keys ["context_dim"]
);

impl TldmConfig {
    /// "TLDM-XL/2" (256 px, latent 32) or "TLDM-XL/2-512" (latent 64), DiT's size family:
    /// S/B/L/XL with patch 2, 4 or 8, ImageNet classes, learned sigma, no text context.
    pub fn preset(name: &str) -> Option<TldmConfig> {
        PatchConfig::family(name.strip_prefix("TLDM-")?).map(|patch| TldmConfig { patch, text: TldmText::default() })
    }

    fn context(&self) -> Option<ContextIo> {
        self.text.context_dim.map(|dim| ContextIo { tokens: CONTEXT_TOKENS, dim })
    }

    /// Tokens before the patches: time, class and the context's.
    fn extras(&self) -> usize {
        FIRST_CONTEXT_TOKEN + self.context().map_or(0, |c| c.tokens)
    }

    pub fn preset_names() -> String {
        PatchConfig::family_names("TLDM-")
    }

    fn block_spec(&self) -> PreNormBlockSpec {
        PreNormBlockSpec {
            dim: self.hidden_size,
            heads: self.num_heads,
            mlp_hidden: self.mlp_hidden(),
            qkv_bias: true,
            act: Activation::GeluTanh,
            eps: LN_EPS,
        }
    }
}

impl Backbone for TldmConfig {
    fn arch(&self) -> &'static str {
        "tldm"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.num_classes == 0 {
            return Err("tldm: num_classes must be positive".into());
        }
        if let Some(dim) = self.text.context_dim {
            check_positive("tldm", &[("context_dim", dim)])?;
            check_bounds("tldm", &[("context_dim", dim, MAX_SIZE)])?;
        }
        self.check("tldm", || self.param_shapes())
    }

    fn describe(&self) -> String {
        let tokens = match self.text.context_dim {
            None => " + time and class tokens".to_string(),
            Some(dim) => format!(" + time, class and {CONTEXT_TOKENS} context tokens (width {dim})"),
        };
        self.patch.describe(&self.family_name("TLDM"), &tokens)
    }

    /// Every linear layer (the output linear over the patch tokens only, the context's over its
    /// tokens), plus QK^T and AV (2 N^2 D per block) over patches + the condition tokens.
    fn macs_per_image(&self) -> f64 {
        let context = self.context().map_or(0.0, |io| ContextEmbed::macs(io, self.hidden_size));
        self.embed_and_head_macs() + context + self.depth as f64 * self.block_spec().macs(self.tokens() + self.extras())
    }

    fn io(&self) -> GraphIo {
        GraphIo { context: self.context(), ..self.patch.io() }
    }

    /// DiT's recipe (README.md, "In-context transformer LDM: our choices").
    fn sampling(&self) -> Result<BackboneSampling> {
        denoiser_sampling(self, (SamplerName::Ddpm, 250, 4.0), NoiseSchedule::Linear, GuidanceForm::Dit)
    }

    /// Checkpoint keys (ours, DiT-style names) in module order; `context_embedder` after the
    /// class table.
    fn load(&self, mut p: Params) -> Result<Box<dyn Forward + '_>> {
        let (d, spec) = (self.hidden_size, self.block_spec());
        let embed = Embedders::load(&mut p, self)?;
        let context = self.context().map(|io| ContextEmbed::load(p.pp("context_embedder"), io, d)).transpose()?;
        let mut bp = p.pp("blocks");
        let blocks = (0..self.depth).map(|i| PreNormBlock::load(bp.pp(i), spec)).collect::<Result<_>>()?;
        let mut f = p.pp("final_layer");
        let norm = AffineLayerNorm::load(f.pp("norm_final"), d, LN_EPS)?;
        let head = Linear::load(f.pp("linear"), &[self.patch_size.pow(2) * self.out_channels(), d], true)?;
        Ok(Box::new(Tldm { cfg: self, embed, context, blocks, norm, head }))
    }
}

struct Tldm<'a> {
    cfg: &'a TldmConfig,
    embed: Embedders,
    context: Option<ContextEmbed>,
    blocks: Vec<PreNormBlock>,
    norm: AffineLayerNorm,
    head: Linear,
}

impl Forward for Tldm<'_> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let (cfg, d) = (self.cfg, self.cfg.hidden_size);
        let (patches, extras) = (cfg.tokens(), cfg.extras());
        let n = extras + patches;
        let e = self.embed.apply(g, cfg, batch);
        let seq = g.temp([batch * n, d]);
        let at = |first: usize| TokenSpan { buf: seq, len: n, first };
        // Patch tokens (with the fixed position table), the time token (DiT's embedder,
        // MLP(256 timestep features)), the class token (label table, null class last) and the
        // context's tokens (input `context` through `context_embedder`).
        copy_tokens(g, batch, patches, d, TokenSpan::whole(e.tokens, patches), at(extras));
        copy_tokens(g, batch, 1, d, TokenSpan::whole(e.time, 1), at(TIME_TOKEN));
        copy_tokens(g, batch, 1, d, TokenSpan::whole(e.label, 1), at(CLASS_TOKEN));
        if let Some(context) = &self.context {
            context.apply(g, batch, at(FIRST_CONTEXT_TOKEN));
        }

        for block in &self.blocks {
            block.apply(g, seq, batch, n);
        }

        // Final layer on the patch tokens only (LN and the linear act per token).
        let kept = g.temp([batch * patches, d]);
        copy_tokens(g, batch, patches, d, at(extras), TokenSpan::whole(kept, patches));
        let normed = self.norm.apply(g, kept, batch * patches);
        let pred = self.head.apply(g, normed, batch * patches, Activation::None);
        cfg.unpatchify_output(g, pred, batch);
    }
}
