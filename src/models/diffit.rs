//! Latent DiffiT (Hatamizadeh et al., arXiv 2312.02139) as NVlabs/DiffiT's released checkpoint
//! computes it (diffit/diffit.py): DiT's patch embedding, fixed position table, timestep MLP
//! and label table; c = t_emb + y_emb feeds every block's TMSA (no adaLN); the attention window
//! is the whole patch grid, so attention is global plus a per-head N x N relative position bias;
//! final Linear(SiLU(LN(x))) -> p^2 * 2C, official unpatchify order.
use crate::backend::{Activation, Add, LayerNorm, Op, Unary};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::{denoiser_sampling, Backbone, Forward, GraphIo};
use crate::models::diffit_block::{DiffitBlock, DiffitBlockSpec};
use crate::models::embedders::Embedders;
use crate::models::layers::Linear;
use crate::models::params::Params;
use crate::models::patch_config::{patch_config, PatchConfig};
use crate::sampling::recipe::{BackboneSampling, GuidanceForm, SamplerName};
use crate::sampling::NoiseSchedule;

const LN_EPS: f32 = 1e-6;

patch_config!(
    /// Latent DiffiT's config: `PatchConfig`'s fields (the model has DiT's embedders and sizes).
    DiffitConfig
);

impl DiffitConfig {
    /// The released model (diffit.py `Diffit`: depth 28, width 1152, 16 heads, patch 2, DiT's
    /// XL/2): "DiffiT-XL/2" (256 px, latent 32) or "DiffiT-XL/2-512" (latent 64).
    pub fn preset(name: &str) -> Option<DiffitConfig> {
        match name {
            "DiffiT-XL/2" | "DiffiT-XL/2-512" => PatchConfig::family(&name["DiffiT-".len()..]).map(DiffitConfig),
            _ => None,
        }
    }

    pub fn preset_names() -> String {
        "DiffiT-XL/2, DiffiT-XL/2-512".into()
    }

    fn block_spec(&self) -> DiffitBlockSpec {
        let d = self.hidden_size;
        // The official window is the patch grid (diffit.py: window_size = input_size // patch_size).
        DiffitBlockSpec { dim: d, heads: self.num_heads, mlp_hidden: self.mlp_hidden(), temb_dim: d, window: self.grid() }
    }
}

impl Backbone for DiffitConfig {
    fn arch(&self) -> &'static str {
        "diffit"
    }

    fn validate(&self) -> std::result::Result<(), String> {
        self.check("diffit", || self.param_shapes())?;
        // The graph holds each block's gathered bias densely: heads x N x N values.
        let dense_bias = [self.depth, self.num_heads, self.tokens(), self.tokens()].iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if dense_bias.is_none_or(|n| n > 1 << 32) {
            let count = dense_bias.map_or("too many".to_string(), |n| n.to_string());
            return Err(format!("diffit: config too large ({count} relative-position bias values, at most {})", 1u64 << 32));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let name =
            if (self.depth, self.hidden_size, self.num_heads, self.patch_size) == (28, 1152, 16, 2) { "DiffiT-XL/2" } else { "DiffiT (custom)" };
        let grid = self.grid();
        self.0.describe(name, &format!(" (attention window {grid}x{grid}, relative position bias)"))
    }

    /// Patch embedding, timestep MLP, the blocks (DiffitBlockSpec::macs) and the final linear.
    fn macs_per_image(&self) -> f64 {
        self.embed_and_head_macs() + self.depth as f64 * self.block_spec().macs(self.tokens())
    }

    fn io(&self) -> GraphIo {
        self.0.io()
    }

    /// DiffiT's sample.py: DDPM 250 steps as DiT; scale 4.4 with forward_with_cfg's power-cosine
    /// ramp up to latent 32 (256 px), DiT's constant scale above.
    fn sampling(&self) -> Result<BackboneSampling> {
        let guidance = if self.input_size <= 32 { GuidanceForm::DiffitRamp { power: 4.0 } } else { GuidanceForm::Dit };
        denoiser_sampling(self, (SamplerName::Ddpm, 250, 4.4), NoiseSchedule::Linear, guidance)
    }

    /// Official parameters in checkpoint order. The checkpoint's `relative_position_index`
    /// buffers are not parameters (the paper's 561M counts `model.parameters()`); the
    /// converter checks and drops them.
    fn load(&self, mut p: Params) -> Result<Box<dyn Forward + '_>> {
        let spec = self.block_spec();
        let embed = Embedders::load(&mut p, self)?;
        let mut bp = p.pp("blocks");
        let blocks = (0..self.depth).map(|i| DiffitBlock::load(bp.pp(i), spec)).collect::<Result<_>>()?;
        let head = Linear::load(p.pp("final_layer.linear"), &[self.patch_size.pow(2) * self.out_channels(), self.hidden_size], true)?;
        Ok(Box::new(Diffit { cfg: self, embed, blocks, head }))
    }
}

struct Diffit<'a> {
    cfg: &'a DiffitConfig,
    embed: Embedders,
    blocks: Vec<DiffitBlock>,
    head: Linear,
}

impl Forward for Diffit<'_> {
    fn forward(&self, g: &mut GraphBuilder, batch: usize) {
        let (cfg, d) = (self.cfg, self.cfg.hidden_size);
        let (n, rows) = (cfg.tokens(), batch * cfg.tokens());
        let e = self.embed.apply(g, cfg, batch);
        // c = t_emb + y_emb, the input of every block's qkv_temb.
        let cond = e.time;
        g.push(Op::Add(Add { a: cond, b: e.label, out: cond }));
        for block in &self.blocks {
            block.apply(g, e.tokens, cond, batch, n);
        }

        // Final layer: Linear(SiLU(LN(x))), LN without affine.
        let normed = g.temp([rows, d]);
        g.push(Op::LayerNorm(LayerNorm { rows, dim: d, eps: LN_EPS, x: e.tokens, gamma: None, beta: None, out: normed }));
        g.push(Op::Unary(Unary { act: Activation::Silu, x: normed, out: normed }));
        let tokens = self.head.apply(g, normed, rows, Activation::None);
        cfg.unpatchify_output(g, tokens, batch);
    }
}
