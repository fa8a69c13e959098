//! DiffiT's transformer block (arXiv 2312.02139 Eq. 7-8; NVlabs/DiffiT diffit.py DiffiTBlock):
//! x += proj(TMSA(LN(x), c)); x += fc2(GELU_tanh(fc1(LN(x)))), LN without affine (eps 1e-6).
//! TMSA (DiffiTAttention): q, k, v = LN(x) W_qkv + b_qkv + (c W_t + b_t), the time term one
//! vector per sample (`attn.qkv_temb`); softmax(q k^T / sqrt(d_head) + B) v within windows of
//! w x w tokens, B[h, i, j] = table[index(i, j), h] the Swin relative position bias.
use crate::backend::{Activation, LayerNorm, Op, TmsaQkv, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::layers::{packed_attention, Linear};
use crate::models::params::Params;
use crate::tensor::HostTensor;

const LN_EPS: f32 = 1e-6;

/// Sizes of one block.
#[derive(Clone, Copy, Debug)]
pub struct DiffitBlockSpec {
    pub dim: usize,
    pub heads: usize,
    pub mlp_hidden: usize,
    /// Width of the conditioning vector c that `qkv_temb` maps.
    pub temb_dim: usize,
    /// Side of the square attention window (the whole patch grid in the latent model).
    pub window: usize,
}

impl DiffitBlockSpec {
    fn table_rows(&self) -> usize {
        (2 * self.window - 1).pow(2)
    }

    /// Multiply-adds for one image of `tokens` tokens: the four token linears, QK^T and AV
    /// within windows (2 N w^2 D) and the per-sample time projection (3 D temb_dim).
    pub fn macs(&self, tokens: usize) -> f64 {
        let (n, d, h) = (tokens as f64, self.dim as f64, self.mlp_hidden as f64);
        let window_tokens = (self.window * self.window) as f64;
        n * (4.0 * d * d + 2.0 * d * h) + 2.0 * n * window_tokens * d + 3.0 * d * self.temb_dim as f64
    }
}

/// Swin's relative position index (DiffiTAttention's `relative_position_index` buffer) for a
/// w x w window, tokens row-major: index[i][j] = (yi - yj + w - 1)(2w - 1) + (xi - xj + w - 1).
pub fn relative_position_index(window: usize) -> Vec<usize> {
    let n = window * window;
    let side = 2 * window - 1;
    let mut index = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let dy = i / window + window - 1 - j / window;
            let dx = i % window + window - 1 - j % window;
            index.push(dy * side + dx);
        }
    }
    index
}

/// The dense additive logit bias [heads, w^2, w^2] gathered from a ((2w-1)^2, heads) table
/// (done once on the host when the graph is built).
fn dense_bias(table: &HostTensor, window: usize, heads: usize) -> HostTensor {
    let table = table.to_f32();
    let n = window * window;
    let index = relative_position_index(window);
    let mut bias = vec![0.0f32; heads * n * n];
    for h in 0..heads {
        for (ij, &row) in index.iter().enumerate() {
            bias[h * n * n + ij] = table[row * heads + h];
        }
    }
    HostTensor::from_f32([heads, n, n], &bias)
}

/// A block bound to its weights.
pub struct DiffitBlock {
    spec: DiffitBlockSpec,
    qkv_temb: Linear,
    bias: View,
    qkv: Linear,
    proj: Linear,
    fc1: Linear,
    fc2: Linear,
}

impl DiffitBlock {
    /// Parameters in the official state_dict order (the stored `attn.relative_position_index`
    /// buffer is not a parameter: ditrt recomputes it).
    pub fn load(mut p: Params, spec: DiffitBlockSpec) -> Result<DiffitBlock> {
        let (d, h) = (spec.dim, spec.mlp_hidden);
        let mut a = p.pp("attn");
        let table = a.host("relative_position_bias_table", &[spec.table_rows(), spec.heads])?;
        let bias = a.store("relative_position_bias_table (gathered)", table.map(|t| dense_bias(t, spec.window, spec.heads)));
        Ok(DiffitBlock {
            spec,
            qkv_temb: Linear::load(a.pp("qkv_temb"), &[3 * d, spec.temb_dim], true)?,
            bias,
            qkv: Linear::load(a.pp("qkv"), &[3 * d, d], true)?,
            proj: Linear::load(a.pp("proj"), &[d, d], true)?,
            fc1: Linear::load(p.pp("mlp.fc1"), &[h, d], true)?,
            fc2: Linear::load(p.pp("mlp.fc2"), &[d, h], true)?,
        })
    }

    /// The block in place on `x` ([batch * tokens, dim]; each sample's tokens in window order,
    /// i.e. window after window of w^2 consecutive tokens) with conditioning `cond`
    /// [batch, temb_dim]. Both residual adds are the accumulate epilogue of the output GEMMs.
    pub fn apply(&self, g: &mut GraphBuilder, x: View, cond: View, batch: usize, tokens: usize) {
        let DiffitBlockSpec { dim, heads, window, .. } = self.spec;
        let rows = batch * tokens;
        let normed = layer_norm(g, x, rows, dim);
        // The time term is one small GEMM per step; tmsa_qkv adds it to every token's q, k, v.
        let time = self.qkv_temb.apply(g, cond, batch, Activation::None);
        let qkv = g.temp([rows, 3 * dim]);
        g.push(Op::TmsaQkv(TmsaQkv { batch, tokens, k: dim, n: 3 * dim, x: normed, w: self.qkv.w, bias: self.qkv.b, time, out: qkv }));
        let window_tokens = window * window;
        let attn = packed_attention(g, qkv, rows / window_tokens, window_tokens, dim, heads, Some(self.bias));
        self.proj.apply_into(g, attn, rows, Activation::None, x, true);
        let normed = layer_norm(g, x, rows, dim);
        let mid = self.fc1.apply(g, normed, rows, Activation::GeluTanh);
        self.fc2.apply_into(g, mid, rows, Activation::None, x, true);
    }
}

/// LN without affine over rows of `dim` (a new intermediate).
fn layer_norm(g: &mut GraphBuilder, x: View, rows: usize, dim: usize) -> View {
    let out = g.temp([rows, dim]);
    g.push(Op::LayerNorm(LayerNorm { rows, dim, eps: LN_EPS, x, gamma: None, beta: None, out }));
    out
}
