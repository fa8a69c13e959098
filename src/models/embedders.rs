//! The embedders bound to their official keys: DiT's timestep MLP, a class table, a text
//! context's projection, and (DiT, DiffiT, the in-context LDM) patch embedding plus the stored
//! position table.
use crate::backend::{Activation, Add, Embedding, Op, Patchify, TimestepEmbedding, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::backbone::ContextIo;
use crate::models::layers::{copy_tokens, Linear, TokenSpan};
use crate::models::params::Params;
use crate::models::patch_config::PatchConfig;
use crate::tensor::DType;

/// Width of the sinusoidal timestep features (DiT's `frequency_embedding_size`).
pub const FREQ_DIM: usize = 256;

/// DiT's TimestepEmbedder: `2`(SiLU(`0`(features))) over the 256 sinusoidal features of t.
pub struct TimestepMlp {
    first: Linear,
    second: Linear,
}

impl TimestepMlp {
    pub fn load(mut p: Params, width: usize) -> Result<TimestepMlp> {
        Ok(TimestepMlp { first: Linear::load(p.pp(0), &[width, FREQ_DIM], true)?, second: Linear::load(p.pp(2), &[width, width], true)? })
    }

    /// t f32 [batch] -> [batch, width].
    pub fn apply(&self, g: &mut GraphBuilder, t: View, batch: usize) -> View {
        let freqs = g.temp([batch, FREQ_DIM]);
        g.push(Op::TimestepEmbedding(TimestepEmbedding { batch, dim: FREQ_DIM, max_period: 10000.0, t, out: freqs }));
        let hidden = self.first.apply(g, freqs, batch, Activation::Silu);
        self.second.apply(g, hidden, batch, Activation::None)
    }
}

/// A class table `weight` [rows, dim] (the null class, where a model has one, is its last row).
pub struct LabelTable {
    table: View,
    rows: usize,
    dim: usize,
}

impl LabelTable {
    pub fn load(mut p: Params, rows: usize, dim: usize) -> Result<LabelTable> {
        Ok(LabelTable { table: p.tensor("weight", &[rows, dim])?, rows, dim })
    }

    /// Rows picked by the u32 labels y: [batch, dim].
    pub fn apply(&self, g: &mut GraphBuilder, y: View, batch: usize) -> View {
        let out = g.temp([batch, self.dim]);
        g.push(Op::Embedding(Embedding { rows: batch, dim: self.dim, table_rows: self.rows, table: self.table, ids: y, out }));
        out
    }
}

/// A text context's tokens through one Linear (context width -> model width, with bias):
/// `weight` [width, dim], `bias` [width].
pub struct ContextEmbed {
    linear: Linear,
    io: ContextIo,
}

impl ContextEmbed {
    pub fn load(p: Params, io: ContextIo, width: usize) -> Result<ContextEmbed> {
        Ok(ContextEmbed { linear: Linear::load(p, &[width, io.dim], true)?, io })
    }

    /// The graph input `context` [batch, tokens, dim], projected into `seq` from `seq.first`.
    pub fn apply(&self, g: &mut GraphBuilder, batch: usize, seq: TokenSpan) {
        let ContextIo { tokens, dim } = self.io;
        let context = g.input("context", [batch, tokens, dim], g.dtype());
        let embedded = self.linear.apply(g, context, batch * tokens, Activation::None);
        copy_tokens(g, batch, tokens, self.linear.n, TokenSpan::whole(embedded, tokens), seq);
    }

    /// Multiply-adds per image.
    pub fn macs(io: ContextIo, width: usize) -> f64 {
        (io.tokens * io.dim * width) as f64
    }
}

/// A patch model's embedders, in checkpoint order: `pos_embed` (1, tokens, dim) as stored,
/// `x_embedder.proj` (a conv with kernel = stride = p, i.e. a GEMM over patches),
/// `t_embedder.mlp`, and `y_embedder.embedding_table` with the null class last.
pub struct Embedders {
    pos: View,
    patch: Linear,
    time: TimestepMlp,
    label: LabelTable,
}

/// The embedded inputs of one forward.
pub struct Embedded {
    /// Patch tokens plus positions, [batch * tokens, dim].
    pub tokens: View,
    /// [batch, dim] each.
    pub time: View,
    pub label: View,
}

impl Embedders {
    pub fn load(p: &mut Params, cfg: &PatchConfig) -> Result<Embedders> {
        let (d, c, k) = (cfg.hidden_size, cfg.in_channels, cfg.patch_size);
        Ok(Embedders {
            pos: p.tensor("pos_embed", &[1, cfg.tokens(), d])?,
            patch: Linear::load(p.pp("x_embedder.proj"), &[d, c, k, k], true)?,
            time: TimestepMlp::load(p.pp("t_embedder.mlp"), d)?,
            label: LabelTable::load(p.pp("y_embedder.embedding_table"), cfg.num_classes + 1, d)?,
        })
    }

    /// The graph inputs `x` [B, C, H, W], `t` f32 [B] and `y` u32 [B], embedded.
    pub fn apply(&self, g: &mut GraphBuilder, cfg: &PatchConfig, batch: usize) -> Embedded {
        let s = cfg.input_size;
        let x = g.input("x", [batch, cfg.in_channels, s, s], g.dtype());
        let t = g.input("t", [batch], DType::F32);
        let y = g.input("y", [batch], DType::U32);
        let patches = g.temp([batch, cfg.tokens(), self.patch.k]);
        g.push(Op::Patchify(Patchify { geom: cfg.patch_geometry(batch, cfg.in_channels), x, out: patches }));
        let tokens = self.patch.apply(g, patches, batch * cfg.tokens(), Activation::None);
        g.push(Op::Add(Add { a: tokens, b: self.pos, out: tokens }));
        Embedded { tokens, time: self.time.apply(g, t, batch), label: self.label.apply(g, y, batch) }
    }
}
