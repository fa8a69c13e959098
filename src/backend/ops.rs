//! The op set: one struct per op, carrying every view and size the op needs, and `Op`, the one
//! type `Backend::launch` and `compile` take and the static graph stores.
//!
//! Views address elements: a row stride is counted in elements of the view's dtype. Unless a
//! field says otherwise, tensors are dense and row-major.
//!
//! # Adding an op
//!
//! Every place a new op goes (`grep -rn Upsample2x` shows them for an existing one):
//!
//! 1. Here: the struct, its doc the exact math every backend and the tests follow; the `Op`
//!    variant; its arms in `Op::name` and `Op::visit_mut` (every view with its `Access`: the
//!    graph planner derives buffer lifetimes from it).
//! 2. `op_rules.rs`: the arm in `check` and the rule function (float dtypes, lengths against
//!    sizes with overflow-checked products, forbidden overlaps), from the `view_checks`
//!    helpers; one-line messages naming the op and the field.
//! 3. CPU: the function in `cpu/<family>.rs` and its arm in `CpuBackend::launch` (`cpu/mod.rs`).
//! 4. wgpu: `shaders/<op>.wgsl`, its `shader!` line in `wgpu/shaders.rs`, the lowering in
//!    `wgpu/lower/<family>.rs` (parameters in the order of the shader's `Params`) and its arm
//!    in `lower::lower` (`wgpu/lower/mod.rs`).
//! 5. CUDA: `kernels/<op>.cu`, instantiated per float type with `FOR_EACH_FLOAT` (build.rs
//!    compiles every kernels/*.cu; run scripts/check_kernels.sh), the encoder in
//!    `cuda/encode/<family>.rs` and its arm in `encode::encode` (`cuda/encode/mod.rs`).
//! 6. `tests/integration/ops.rs`: a test against an f64 reference written from the struct's
//!    doc (it runs on every backend and float dtype), and the new rules' misuse cases in
//!    `misuse_is_an_error`.
//! 7. `benches/ops.rs`: a case (it runs on every backend).
//! 8. The models that use it push `Op::<Name>(..)` onto their `GraphBuilder` (src/models/).
//!    A CUDA kernel with shared memory also joins the racecheck list in scripts/gpu_run.sh.
use crate::tensor::DType;

/// Handle of a buffer owned by a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// `len` elements of `dtype` starting `offset` bytes into buffer `buf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub buf: BufId,
    pub offset: usize,
    pub len: usize,
    pub dtype: DType,
}

impl View {
    pub fn bytes(&self) -> usize {
        self.len * self.dtype.size()
    }
    /// The sub-view of `len` elements starting `start` elements in.
    pub fn slice(&self, start: usize, len: usize) -> View {
        assert!(start + len <= self.len, "View::slice {start}+{len} beyond {}", self.len);
        View { buf: self.buf, offset: self.offset + start * self.dtype.size(), len, dtype: self.dtype }
    }
    /// Whether the two views share any byte.
    pub fn overlaps(&self, other: &View) -> bool {
        self.buf == other.buf && self.offset < other.offset + other.bytes() && other.offset < self.offset + self.bytes()
    }
}

/// Elementwise activation, applied in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    /// GELU with the tanh approximation (DiT, DiffiT MLPs).
    GeluTanh,
    /// Exact GELU, x * Phi(x) with erf (U-ViT MLPs).
    GeluErf,
    Silu,
    /// x * sigmoid(1.702 x), OpenAI CLIP's GELU approximation (CLIP text encoder MLPs).
    QuickGelu,
}

impl Activation {
    /// Every activation, for tests and kernel signature checks.
    pub const ALL: [Activation; 5] = [Activation::None, Activation::GeluTanh, Activation::GeluErf, Activation::Silu, Activation::QuickGelu];
}

/// One vector per sample: sample b's vector starts `b * stride` elements into `view`.
/// DiT keeps all modulation vectors of a step in one GEMM output, so shift/scale/gate are
/// strided windows of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerSample {
    pub view: View,
    pub stride: usize,
}

/// out[m, n] (+)= act(sum_k x[m, k] w[n, k] + bias[n]).
/// With `accumulate` the activated product is added to what `out` holds.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub x: View,
    pub x_stride: usize,
    pub w: View,
    pub w_stride: usize,
    pub bias: Option<View>,
    pub out: View,
    pub act: Activation,
    pub accumulate: bool,
}

/// out = LN(x) * (1 + scale_b) + shift_b over rows of `dim`, LN without affine (DiT adaLN).
/// Rows are grouped `tokens` per sample. With a `residual`, x += gate_b * y first, written back
/// to x (in x's dtype) and normalised as written: DiT's `x = x + gate * f(...)` fused into the
/// LayerNorm-modulate that follows it.
#[derive(Clone, Copy, Debug)]
pub struct LayerNormModulate {
    pub batch: usize,
    pub tokens: usize,
    pub dim: usize,
    pub eps: f32,
    pub x: View,
    pub residual: Option<GatedResidual>,
    pub shift: PerSample,
    pub scale: PerSample,
    pub out: View,
}

/// The adaLN-Zero residual y gated per sample (gate_b), rows of x's shape.
#[derive(Clone, Copy, Debug)]
pub struct GatedResidual {
    pub y: View,
    pub gate: PerSample,
}

/// out = LN(x) * gamma + beta over rows of `dim`; gamma/beta absent = no affine.
#[derive(Clone, Copy, Debug)]
pub struct LayerNorm {
    pub rows: usize,
    pub dim: usize,
    pub eps: f32,
    pub x: View,
    pub gamma: Option<View>,
    pub beta: Option<View>,
    pub out: View,
}

/// out = softmax(q k^T * scale + bias) v per (sample, head), without materialising scores.
/// Element (b, n, h, d) of q lives at (b * q_len + n) * q_stride + h * head_dim + d; k and v
/// likewise with kv_len and kv_stride; out (b, n, h, d) at (b * q_len + n) * out_stride + h * head_dim + d.
/// bias (optional) is [heads, q_len, kv_len], shared by every sample (DiffiT relative position bias).
#[derive(Clone, Copy, Debug)]
pub struct Attention {
    pub batch: usize,
    pub heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub q: View,
    pub q_stride: usize,
    pub k: View,
    pub v: View,
    pub kv_stride: usize,
    pub bias: Option<View>,
    pub out: View,
    pub out_stride: usize,
}

impl Attention {
    /// Self-attention over a packed [batch * tokens, 3 * heads * head_dim] = [q | k | v]
    /// buffer, scale 1/sqrt(head_dim), into `out` [batch * tokens, heads * head_dim].
    pub fn packed(batch: usize, heads: usize, tokens: usize, head_dim: usize, qkv: View, out: View, bias: Option<View>) -> Attention {
        let width = heads * head_dim;
        let span = batch * tokens * 3 * width - 2 * width;
        Attention {
            batch,
            heads,
            q_len: tokens,
            kv_len: tokens,
            head_dim,
            scale: 1.0 / (head_dim as f32).sqrt(),
            q: qkv.slice(0, span),
            q_stride: 3 * width,
            k: qkv.slice(width, span),
            v: qkv.slice(2 * width, span),
            kv_stride: 3 * width,
            bias,
            out,
            out_stride: width,
        }
    }
}

/// q, k, v of time-dependent self-attention (DiffiT TMSA):
/// out[b, t, :] = x[b, t, :] w^T + bias + time[b, :], w is [n, k], time is [batch, n].
#[derive(Clone, Copy, Debug)]
pub struct TmsaQkv {
    pub batch: usize,
    pub tokens: usize,
    pub k: usize,
    pub n: usize,
    pub x: View,
    pub w: View,
    pub bias: Option<View>,
    pub time: View,
    pub out: View,
}

/// Geometry shared by patchify and unpatchify: images [batch, channels, height, width],
/// tokens [batch, (height/patch)(width/patch), channels*patch*patch] in row-major patch order.
#[derive(Clone, Copy, Debug)]
pub struct PatchGeometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub patch: usize,
}

impl PatchGeometry {
    /// Patches per column and per row: (height / patch, width / patch).
    pub fn grid(&self) -> (usize, usize) {
        (self.height / self.patch, self.width / self.patch)
    }

    /// Width of one token: channels * patch^2.
    pub fn token_dim(&self) -> usize {
        self.channels * self.patch * self.patch
    }
}

/// Image -> tokens in the order of a flattened conv weight [D, C, p, p]:
/// out[b, hi * Wp + wi, (c * p + i) * p + j] = x[b, c, hi * p + i, wi * p + j].
#[derive(Clone, Copy, Debug)]
pub struct Patchify {
    pub geom: PatchGeometry,
    pub x: View,
    pub out: View,
}

/// Tokens -> image in the official (DiT/U-ViT) order, channels fastest within a patch:
/// out[b, c, h * p + i, w * p + j] = x[b, h * Wp + w, (i * p + j) * C + c].
#[derive(Clone, Copy, Debug)]
pub struct Unpatchify {
    pub geom: PatchGeometry,
    pub x: View,
    pub out: View,
}

/// Sinusoidal timestep features, cos first: half = dim / 2, f_i = exp(-ln(max_period) i / half),
/// out[b] = [cos(t_b f), sin(t_b f)] (+ a zero column when dim is odd). t is f32 [batch].
#[derive(Clone, Copy, Debug)]
pub struct TimestepEmbedding {
    pub batch: usize,
    pub dim: usize,
    pub max_period: f32,
    pub t: View,
    pub out: View,
}

/// out[r, :] = table[ids[r], :]; ids are u32, an id >= table rows is an error.
#[derive(Clone, Copy, Debug)]
pub struct Embedding {
    pub rows: usize,
    pub dim: usize,
    pub table_rows: usize,
    pub table: View,
    pub ids: View,
    pub out: View,
}

/// out[i] = a[i] + b[i % b.len] for i < a.len (b broadcasts by repetition, e.g. a position
/// table over the batch). `out` may be `a` itself.
#[derive(Clone, Copy, Debug)]
pub struct Add {
    pub a: View,
    pub b: View,
    pub out: View,
}

/// out = act(x) elementwise; `out` may be `x` itself.
#[derive(Clone, Copy, Debug)]
pub struct Unary {
    pub act: Activation,
    pub x: View,
    pub out: View,
}

/// A 3-D strided copy, converting dtype when src and dst differ:
/// dst[i*ds0 + j*ds1 + k*ds2] = src[i*ss0 + j*ss1 + k*ss2] for (i, j, k) < dims.
/// Token concat/split and dtype casts are both this op.
#[derive(Clone, Copy, Debug)]
pub struct Copy3d {
    pub dims: [usize; 3],
    pub src: View,
    pub src_strides: [usize; 3],
    pub dst: View,
    pub dst_strides: [usize; 3],
}

/// out = [x, skip] w^T + bias without materialising the concat (U-ViT long skip):
/// w is [n, dim_x + dim_skip].
#[derive(Clone, Copy, Debug)]
pub struct SkipConcatLinear {
    pub rows: usize,
    pub dim_x: usize,
    pub dim_skip: usize,
    pub n: usize,
    pub x: View,
    pub skip: View,
    pub w: View,
    pub bias: Option<View>,
    pub out: View,
}

/// Stride-1 2-D convolution with zero padding `pad`: x [batch, in_c, h, w], weight
/// [out_c, in_c, kernel, kernel], out [batch, out_c, h + 2 pad - kernel + 1, ...].
#[derive(Clone, Copy, Debug)]
pub struct Conv2d {
    pub batch: usize,
    pub in_c: usize,
    pub out_c: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub pad: usize,
    pub x: View,
    pub weight: View,
    pub bias: Option<View>,
    pub out: View,
}

/// Group norm over [batch, channels, spatial] with affine gamma/beta [channels], optionally
/// followed by SiLU (the GN -> SiLU pair of ResBlocks).
#[derive(Clone, Copy, Debug)]
pub struct GroupNorm {
    pub batch: usize,
    pub channels: usize,
    pub spatial: usize,
    pub groups: usize,
    pub eps: f32,
    pub silu: bool,
    pub x: View,
    pub gamma: View,
    pub beta: View,
    pub out: View,
}

/// Nearest-neighbour x2 upsampling: x [batch, channels, h, w] -> out [batch, channels, 2h, 2w].
#[derive(Clone, Copy, Debug)]
pub struct Upsample2x {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub x: View,
    pub out: View,
}

/// How an op touches a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

/// One launch of the static graph.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Gemm(Gemm),
    LayerNormModulate(LayerNormModulate),
    LayerNorm(LayerNorm),
    Attention(Attention),
    TmsaQkv(TmsaQkv),
    Patchify(Patchify),
    Unpatchify(Unpatchify),
    TimestepEmbedding(TimestepEmbedding),
    Embedding(Embedding),
    Add(Add),
    Unary(Unary),
    Copy3d(Copy3d),
    SkipConcatLinear(SkipConcatLinear),
    Conv2d(Conv2d),
    GroupNorm(GroupNorm),
    Upsample2x(Upsample2x),
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Gemm(_) => "gemm",
            Op::LayerNormModulate(_) => "layernorm_modulate",
            Op::LayerNorm(_) => "layernorm",
            Op::Attention(_) => "attention",
            Op::TmsaQkv(_) => "tmsa_qkv",
            Op::Patchify(_) => "patchify",
            Op::Unpatchify(_) => "unpatchify",
            Op::TimestepEmbedding(_) => "timestep_embedding",
            Op::Embedding(_) => "embedding",
            Op::Add(_) => "add",
            Op::Unary(_) => "unary",
            Op::Copy3d(_) => "copy3d",
            Op::SkipConcatLinear(_) => "skip_concat_linear",
            Op::Conv2d(_) => "conv2d",
            Op::GroupNorm(_) => "group_norm",
            Op::Upsample2x(_) => "upsample2x",
        }
    }

    /// Every view the op touches, with how. The graph planner derives buffer lifetimes from
    /// this and rebinds virtual views to planned memory through `views_mut`.
    pub fn views(&self) -> Vec<(View, Access)> {
        let mut v = Vec::new();
        self.visit(&mut |view: &View, a| v.push((*view, a)));
        v
    }

    /// Apply `f` to every view the op holds (rebinding).
    pub fn views_mut(&mut self, f: &mut dyn FnMut(&mut View)) {
        self.visit_mut(&mut |view, _| f(view));
    }

    fn visit(&self, f: &mut dyn FnMut(&View, Access)) {
        let mut copy = *self;
        copy.visit_mut(&mut |view, a| f(view, a));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&mut View, Access)) {
        use Access::*;
        let opt = |v: &mut Option<View>, f: &mut dyn FnMut(&mut View, Access)| {
            if let Some(v) = v {
                f(v, Read)
            }
        };
        match self {
            Op::Gemm(o) => {
                f(&mut o.x, Read);
                f(&mut o.w, Read);
                opt(&mut o.bias, f);
                f(&mut o.out, if o.accumulate { ReadWrite } else { Write });
            }
            Op::LayerNormModulate(o) => {
                match &mut o.residual {
                    Some(r) => {
                        f(&mut r.y, Read);
                        f(&mut r.gate.view, Read);
                        f(&mut o.x, ReadWrite);
                    }
                    None => f(&mut o.x, Read),
                }
                f(&mut o.shift.view, Read);
                f(&mut o.scale.view, Read);
                f(&mut o.out, Write);
            }
            Op::LayerNorm(o) => {
                f(&mut o.x, Read);
                opt(&mut o.gamma, f);
                opt(&mut o.beta, f);
                f(&mut o.out, Write);
            }
            Op::Attention(o) => {
                f(&mut o.q, Read);
                f(&mut o.k, Read);
                f(&mut o.v, Read);
                opt(&mut o.bias, f);
                f(&mut o.out, Write);
            }
            Op::TmsaQkv(o) => {
                f(&mut o.x, Read);
                f(&mut o.w, Read);
                opt(&mut o.bias, f);
                f(&mut o.time, Read);
                f(&mut o.out, Write);
            }
            Op::Patchify(o) => {
                f(&mut o.x, Read);
                f(&mut o.out, Write);
            }
            Op::Unpatchify(o) => {
                f(&mut o.x, Read);
                f(&mut o.out, Write);
            }
            Op::TimestepEmbedding(o) => {
                f(&mut o.t, Read);
                f(&mut o.out, Write);
            }
            Op::Embedding(o) => {
                f(&mut o.table, Read);
                f(&mut o.ids, Read);
                f(&mut o.out, Write);
            }
            Op::Add(o) => {
                f(&mut o.a, Read);
                f(&mut o.b, Read);
                f(&mut o.out, Write);
            }
            Op::Unary(o) => {
                f(&mut o.x, Read);
                f(&mut o.out, Write);
            }
            Op::Copy3d(o) => {
                f(&mut o.src, Read);
                f(&mut o.dst, Write);
            }
            Op::SkipConcatLinear(o) => {
                f(&mut o.x, Read);
                f(&mut o.skip, Read);
                f(&mut o.w, Read);
                opt(&mut o.bias, f);
                f(&mut o.out, Write);
            }
            Op::Conv2d(o) => {
                f(&mut o.x, Read);
                f(&mut o.weight, Read);
                opt(&mut o.bias, f);
                f(&mut o.out, Write);
            }
            Op::GroupNorm(o) => {
                f(&mut o.x, Read);
                f(&mut o.gamma, Read);
                f(&mut o.beta, Read);
                f(&mut o.out, Write);
            }
            Op::Upsample2x(o) => {
                f(&mut o.x, Read);
                f(&mut o.out, Write);
            }
        }
    }
}
