//! In-context transformer LDM (Chahal, arXiv 2212.14678): a plain pre-LN transformer over
//! the latent's patch tokens with the time and class embeddings as two extra tokens of the
//! same sequence — no cross-attention, no adaLN. The paper releases no code; the choices
//! (DiT's sizes, embedders, key names and learned sigma) are listed in README.md,
//! "In-context transformer LDM: our choices".
use crate::backend::Activation;
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::{denoiser_sampling, Backbone, Forward, GraphIo};
use crate::models::embedders::Embedders;
use crate::models::layers::{copy_tokens, AffineLayerNorm, Linear, PreNormBlock, PreNormBlockSpec, TokenSpan};
use crate::models::params::Params;
use crate::models::patch_config::{patch_config, PatchConfig};
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, SamplerName};
use crate::sampling::NoiseSchedule;

/// DiT's LayerNorm eps, kept for its blocks' plain-LN twins.
const LN_EPS: f32 = 1e-6;
/// Sequence order: [time, class, patches].
const TIME_TOKEN: usize = 0;
const CLASS_TOKEN: usize = 1;
const EXTRAS: usize = 2;

patch_config!(
    /// The in-context LDM's config: `PatchConfig`'s fields, with DiT's meaning.
    TldmConfig
);

impl TldmConfig {
    /// "TLDM-XL/2" (256 px, latent 32) or "TLDM-XL/2-512" (latent 64), DiT's size family:
    /// S/B/L/XL with patch 2, 4 or 8, ImageNet classes, learned sigma.
    pub fn preset(name: &str) -> Option<TldmConfig> {
        PatchConfig::family(name.strip_prefix("TLDM-")?).map(TldmConfig)
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
        if self.0.num_classes == 0 {
            return Err("tldm: num_classes must be positive".into());
        }
        self.check("tldm", || self.param_shapes())
    }

    fn describe(&self) -> String {
        self.0.describe(&self.family_name("TLDM"), " + time and class tokens")
    }

    /// Every linear layer (the output linear over the patch tokens only), plus QK^T and AV
    /// (2 N^2 D per block) over patches + 2 condition tokens.
    fn macs_per_image(&self) -> f64 {
        self.embed_and_head_macs() + self.depth as f64 * self.block_spec().macs(self.tokens() + EXTRAS)
    }

    fn io(&self) -> GraphIo {
        self.0.io()
    }

    /// DiT's recipe (README.md, "In-context transformer LDM: our choices").
    fn sampling(&self) -> Result<BackboneSampling> {
        denoiser_sampling(self, (SamplerName::Ddpm, 250, 4.0), NoiseSchedule::Linear, GuidanceForm::Dit)
    }

    /// Checkpoint keys (ours, DiT-style names) in module order.
    fn load(&self, mut p: Params) -> Result<Box<dyn Forward + '_>> {
        let (d, spec) = (self.hidden_size, self.block_spec());
        let embed = Embedders::load(&mut p, self)?;
        let mut bp = p.pp("blocks");
        let blocks = (0..self.depth).map(|i| PreNormBlock::load(bp.pp(i), spec)).collect::<Result<_>>()?;
        let mut f = p.pp("final_layer");
        let norm = AffineLayerNorm::load(f.pp("norm_final"), d, LN_EPS)?;
        let head = Linear::load(f.pp("linear"), &[self.patch_size.pow(2) * self.out_channels(), d], true)?;
        Ok(Box::new(Tldm { cfg: self, embed, blocks, norm, head }))
    }
}

struct Tldm<'a> {
    cfg: &'a TldmConfig,
    embed: Embedders,
    blocks: Vec<PreNormBlock>,
    norm: AffineLayerNorm,
    head: Linear,
}

impl Forward for Tldm<'_> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let (cfg, d) = (self.cfg, self.cfg.hidden_size);
        let patches = cfg.tokens();
        let n = EXTRAS + patches;
        let e = self.embed.apply(g, cfg, batch);
        let seq = g.temp([batch * n, d]);
        let at = |first: usize| TokenSpan { buf: seq, len: n, first };
        // Patch tokens (with the fixed position table), the time token (DiT's embedder,
        // MLP(256 timestep features)) and the class token (label table, null class last).
        copy_tokens(g, batch, patches, d, TokenSpan::whole(e.tokens, patches), at(EXTRAS));
        copy_tokens(g, batch, 1, d, TokenSpan::whole(e.time, 1), at(TIME_TOKEN));
        copy_tokens(g, batch, 1, d, TokenSpan::whole(e.label, 1), at(CLASS_TOKEN));

        for block in &self.blocks {
            block.apply(g, seq, batch, n);
        }

        // Final layer on the patch tokens only (LN and the linear act per token).
        let kept = g.temp([batch * patches, d]);
        copy_tokens(g, batch, patches, d, at(EXTRAS), TokenSpan::whole(kept, patches));
        let normed = self.norm.apply(g, kept, batch * patches);
        let pred = self.head.apply(g, normed, batch * patches, Activation::None);
        cfg.unpatchify_output(g, pred, batch);
    }
}
