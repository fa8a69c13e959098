//! Sub-graphs shared by the backbones: linear layers bound to official keys, packed-QKV
//! self-attention.
use crate::backend::{Activation, Attention, Gemm, Op, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::weights::WeightSource;

/// A linear layer's weights in the graph: w [n, k], optional bias [n].
pub struct Linear {
    pub w: View,
    pub b: Option<View>,
    pub n: usize,
    pub k: usize,
}

impl Linear {
    /// `{prefix}.weight` [n, k] (any trailing dims that multiply to k, e.g. a conv's [n, C, p, p])
    /// and, if `bias`, `{prefix}.bias` [n].
    pub fn load(g: &mut GraphBuilder, w: &mut dyn WeightSource, prefix: &str, shape: &[usize], bias: bool) -> Result<Linear> {
        let n = shape[0];
        let k = shape[1..].iter().product();
        let wk = format!("{prefix}.weight");
        let weight = w.fetch(&wk, shape)?;
        let b = if bias {
            let bk = format!("{prefix}.bias");
            let t = w.fetch(&bk, &[n])?;
            Some(g.weight(&bk, t))
        } else {
            None
        };
        Ok(Linear { w: g.weight(&wk, weight), b, n, k })
    }

    /// out = act(x W^T + b) over `m` rows of x (a new intermediate).
    pub fn apply(&self, g: &mut GraphBuilder, x: View, m: usize, act: Activation) -> View {
        let out = g.temp([m, self.n]);
        self.apply_into(g, x, m, act, out, false);
        out
    }

    /// out (+)= act(x W^T + b) into an existing view.
    pub fn apply_into(&self, g: &mut GraphBuilder, x: View, m: usize, act: Activation, out: View, accumulate: bool) {
        g.push(Op::Gemm(Gemm {
            m,
            n: self.n,
            k: self.k,
            x,
            x_stride: self.k,
            w: self.w,
            w_stride: self.k,
            bias: self.b,
            out,
            act,
            accumulate,
        }));
    }
}

/// Multi-head self-attention over a packed [rows, 3D] = [q | k | v] buffer (each split into
/// `heads` heads of D/heads), scale 1/sqrt(D/heads); returns [rows, D]. `bias` is an optional
/// additive [heads, tokens, tokens] logit bias.
pub fn packed_attention(g: &mut GraphBuilder, qkv: View, batch: usize, tokens: usize, dim: usize, heads: usize, bias: Option<View>) -> View {
    let rows = batch * tokens;
    let out = g.temp([rows, dim]);
    let span = rows * 3 * dim - 2 * dim;
    let head_dim = dim / heads;
    g.push(Op::Attention(Attention {
        batch,
        heads,
        q_len: tokens,
        kv_len: tokens,
        head_dim,
        scale: 1.0 / (head_dim as f32).sqrt(),
        q: qkv.slice(0, span),
        q_stride: 3 * dim,
        k: qkv.slice(dim, span),
        v: qkv.slice(2 * dim, span),
        kv_stride: 3 * dim,
        bias,
        out,
        out_stride: dim,
    }));
    out
}
