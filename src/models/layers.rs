//! Sub-graphs shared by the backbones: linear layers bound to official keys, packed-QKV
//! self-attention, a causal mask, affine LayerNorm, the pre-LN transformer block and token
//! concat/split.
use crate::backend::{Activation, Attention, Copy3d, Gemm, LayerNorm, Op, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::params::{HostParam, Params};
use crate::tensor::HostTensor;

/// A linear layer's weights in the graph: w [n, k], optional bias [n].
pub struct Linear {
    pub w: View,
    pub b: Option<View>,
    pub n: usize,
    pub k: usize,
}

impl Linear {
    /// `weight` [n, k] (any trailing dims that multiply to k, e.g. a conv's [n, C, p, p]) and,
    /// if `bias`, `bias` [n].
    pub fn load(mut p: Params, shape: &[usize], bias: bool) -> Result<Linear> {
        let n = shape[0];
        let k = shape[1..].iter().product();
        let w = p.tensor("weight", shape)?;
        let b = if bias { Some(p.tensor("bias", &[n])?) } else { None };
        Ok(Linear { w, b, n, k })
    }

    /// out = act(x W^T + b) over `m` rows of x (a new intermediate).
    pub fn apply(&self, g: &mut GraphBuilder, x: View, m: usize, act: Activation) -> View {
        let out = g.temp([m, self.n]);
        self.apply_into(g, x, m, act, out, false);
        out
    }

    /// Separately stored q, k and v projections (scopes `names`, each `weight` [dim, dim] and
    /// `bias` [dim]) as one [3 dim, dim] projection laid out [q | k | v].
    pub fn load_packed_qkv(p: &mut Params, names: [&str; 3], dim: usize) -> Result<Linear> {
        let (mut weights, mut biases) = (Vec::new(), Vec::new());
        for name in names {
            let mut proj = p.pp(name);
            weights.push(proj.host("weight", &[dim, dim])?);
            biases.push(proj.host("bias", &[dim])?);
        }
        let packed = names.join("|");
        let w = p.store(&format!("{packed}.weight"), HostParam::concat_rows(weights));
        let b = p.store(&format!("{packed}.bias"), HostParam::concat_rows(biases));
        Ok(Linear { w, b: Some(b), n: 3 * dim, k: dim })
    }

    /// out (+)= act(x W^T + b) into an existing view.
    pub fn apply_into(&self, g: &mut GraphBuilder, x: View, m: usize, act: Activation, out: View, accumulate: bool) {
        g.push(Op::Gemm(Gemm { m, n: self.n, k: self.k, x, x_stride: self.k, w: self.w, w_stride: self.k, bias: self.b, out, act, accumulate }));
    }
}

/// Multi-head self-attention over a packed [rows, 3D] = [q | k | v] buffer (each split into
/// `heads` heads of D/heads), scale 1/sqrt(D/heads); returns [rows, D]. `bias` is an optional
/// additive [heads, tokens, tokens] logit bias.
pub fn packed_attention(g: &mut GraphBuilder, qkv: View, batch: usize, tokens: usize, dim: usize, heads: usize, bias: Option<View>) -> View {
    let out = g.temp([batch * tokens, dim]);
    g.push(Op::Attention(Attention::packed(batch, heads, tokens, dim / heads, qkv, out, bias)));
    out
}

/// The logit bias of a masked key: f16's lowest finite value, so the bias stays finite in every
/// storage dtype and a masked logit can never make an inf - inf.
const MASKED: f32 = -65504.0;

/// A causal mask as an additive [heads, tokens, tokens] attention bias, a constant of the graph:
/// 0 where key <= query, `MASKED` above. Key 0 is never masked, so no row is empty.
pub fn causal_bias(g: &mut GraphBuilder, heads: usize, tokens: usize) -> View {
    let row = |q: usize| (0..tokens).map(move |k| if k > q { MASKED } else { 0.0 });
    let values: Vec<f32> = (0..heads * tokens).flat_map(|r| row(r % tokens)).collect();
    g.weight("causal_mask", HostTensor::from_f32([heads, tokens, tokens], &values))
}

/// LayerNorm with affine parameters `weight` (gamma) and `bias` (beta).
pub struct AffineLayerNorm {
    gamma: View,
    beta: View,
    dim: usize,
    eps: f32,
}

impl AffineLayerNorm {
    pub fn load(mut p: Params, dim: usize, eps: f32) -> Result<AffineLayerNorm> {
        Ok(AffineLayerNorm { gamma: p.tensor("weight", &[dim])?, beta: p.tensor("bias", &[dim])?, dim, eps })
    }

    /// LN(x) * gamma + beta over `rows` rows of x (a new intermediate).
    pub fn apply(&self, g: &mut GraphBuilder, x: View, rows: usize) -> View {
        let out = g.temp([rows, self.dim]);
        self.apply_into(g, x, rows, out);
        out
    }

    /// LN(x) * gamma + beta into an existing view.
    pub fn apply_into(&self, g: &mut GraphBuilder, x: View, rows: usize, out: View) {
        g.push(Op::LayerNorm(LayerNorm { rows, dim: self.dim, eps: self.eps, x, gamma: Some(self.gamma), beta: Some(self.beta), out }));
    }
}

/// Hyper-parameters of a pre-LN transformer block in timm's ViT layout (U-ViT, TLDM):
/// x += proj(Attn(qkv(norm1(x)))); x += fc2(act(fc1(norm2(x)))), LayerNorms with affine.
#[derive(Clone, Copy, Debug)]
pub struct PreNormBlockSpec {
    pub dim: usize,
    pub heads: usize,
    pub mlp_hidden: usize,
    pub qkv_bias: bool,
    /// The MLP's GELU flavour.
    pub act: Activation,
    pub eps: f32,
}

impl PreNormBlockSpec {
    /// Multiply-adds of one block over `tokens` tokens of one image: the four linears plus
    /// QK^T and AV (2 N^2 D).
    pub fn macs(&self, tokens: usize) -> f64 {
        let (n, d, h) = (tokens as f64, self.dim as f64, self.mlp_hidden as f64);
        n * (4.0 * d * d + 2.0 * d * h) + 2.0 * n * n * d
    }
}

/// A pre-LN transformer block bound to its weights (`load` binds timm's keys; a model with
/// other keys fills the fields itself).
pub struct PreNormBlock {
    pub spec: PreNormBlockSpec,
    pub norm1: AffineLayerNorm,
    /// [q | k | v] in one projection.
    pub qkv: Linear,
    pub proj: Linear,
    pub norm2: AffineLayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl PreNormBlock {
    /// Module order: norm1, attn (qkv, proj), norm2, mlp (fc1, fc2).
    pub fn load(mut p: Params, spec: PreNormBlockSpec) -> Result<PreNormBlock> {
        let (d, h) = (spec.dim, spec.mlp_hidden);
        Ok(PreNormBlock {
            spec,
            norm1: AffineLayerNorm::load(p.pp("norm1"), d, spec.eps)?,
            qkv: Linear::load(p.pp("attn.qkv"), &[3 * d, d], spec.qkv_bias)?,
            proj: Linear::load(p.pp("attn.proj"), &[d, d], true)?,
            norm2: AffineLayerNorm::load(p.pp("norm2"), d, spec.eps)?,
            fc1: Linear::load(p.pp("mlp.fc1"), &[h, d], true)?,
            fc2: Linear::load(p.pp("mlp.fc2"), &[d, h], true)?,
        })
    }

    /// The block in place on the residual stream `x` ([batch * tokens, dim]); both residual
    /// adds are the accumulate epilogue of the output GEMMs.
    pub fn apply(&self, g: &mut GraphBuilder, x: View, batch: usize, tokens: usize) {
        self.apply_with_bias(g, x, batch, tokens, None);
    }

    /// `apply` with an additive [heads, tokens, tokens] attention bias (a causal mask).
    pub fn apply_with_bias(&self, g: &mut GraphBuilder, x: View, batch: usize, tokens: usize, bias: Option<View>) {
        let rows = batch * tokens;
        let a = self.norm1.apply(g, x, rows);
        let qkv = self.qkv.apply(g, a, rows, Activation::None);
        let attn = packed_attention(g, qkv, batch, tokens, self.spec.dim, self.spec.heads, bias);
        self.proj.apply_into(g, attn, rows, Activation::None, x, true);
        let a = self.norm2.apply(g, x, rows);
        let mid = self.fc1.apply(g, a, rows, self.spec.act);
        self.fc2.apply_into(g, mid, rows, Activation::None, x, true);
    }
}

/// Where `count` tokens of width `dim` sit in a [batch, len, dim] token buffer: tokens
/// `first..first + count` of each sample.
#[derive(Clone, Copy, Debug)]
pub struct TokenSpan {
    pub buf: View,
    pub len: usize,
    pub first: usize,
}

impl TokenSpan {
    /// All `len` tokens of a dense [batch, len, dim] buffer.
    pub fn whole(buf: View, len: usize) -> TokenSpan {
        TokenSpan { buf, len, first: 0 }
    }
}

/// Token concat / split: copies `count` tokens per sample from `src` to `dst` (one copy3d).
pub fn copy_tokens(g: &mut GraphBuilder, batch: usize, count: usize, dim: usize, src: TokenSpan, dst: TokenSpan) {
    let view = |s: TokenSpan| s.buf.slice(s.first * dim, s.buf.len - s.first * dim);
    g.push(Op::Copy3d(Copy3d {
        dims: [batch, count, dim],
        src: view(src),
        src_strides: [src.len * dim, dim, 1],
        dst: view(dst),
        dst_strides: [dst.len * dim, dim, 1],
    }));
}
