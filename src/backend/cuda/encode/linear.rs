//! Linear layers: gemm, DiffiT's TMSA projection and U-ViT's skip-concat linear, each one or
//! two products `out (+)= act(x w^T + bias)`. A product goes to cuBLASLt when it can express
//! it, else to kernels/linear.cu (tensor cores, f32 accumulation; f32 as 3xTF32):
//!   act None                  cuBLASLt, bias epilogue, beta = accumulate
//!   act GeluTanh, no accum.   cuBLASLt GELU(_BIAS) epilogue (tanh approximation)
//!   other act, no accum.     cuBLASLt bias epilogue, then kernels/elementwise.cu unary in place
//!   bias not 16-byte aligned  as above without the bias epilogue (and for GELU-tanh without
//!                             the GELU one): elementwise.cu add, then unary, in place
//!   any act with accumulate   linear.cu (cuBLASLt's epilogue would activate the accumulated sum)
//!   k = 0, no cuBLASLt, or no cuBLASLt algorithm for the shape: linear.cu
use cudarc::driver::sys::CUdeviceptr;

use super::elementwise::{launch_add, launch_unary};
use super::{activation_code, elem, suffix, Encoder, TILE, TILE_THREADS};
use crate::backend::cuda::blas::{self, RowMajorGemm};
use crate::backend::{Activation, Gemm, SkipConcatLinear, TmsaQkv};
use crate::error::Result;
use crate::tensor::DType;

/// One product out[m, n] (+)= act(x[m, k] w[n, k]^T + bias), rows of x and w strided, out dense.
struct Product {
    m: usize,
    n: usize,
    k: usize,
    x: CUdeviceptr,
    x_stride: usize,
    w: CUdeviceptr,
    w_stride: usize,
    bias: Option<CUdeviceptr>,
    out: CUdeviceptr,
    act: Activation,
    accumulate: bool,
    dtype: DType,
}

fn product(e: &Encoder, p: &Product) -> Result<()> {
    if p.m == 0 || p.n == 0 {
        return Ok(());
    }
    // A bias cuBLASLt's epilogue cannot take (not 16-byte aligned) is added afterwards, and
    // with it any activation, GELU-tanh included.
    let epilogue_bias = p.bias.filter(|&b| blas::bias_fits_epilogue(b));
    let bias_after = p.bias.filter(|_| epilogue_bias.is_none());
    // (GELU-tanh epilogue, activation applied afterwards) where cuBLASLt applies.
    let plan = match (p.act, p.accumulate) {
        (Activation::None, _) => Some((false, None)),
        (Activation::GeluTanh, false) if bias_after.is_none() => Some((true, None)),
        (act, false) => Some((false, Some(act))),
        (_, true) => None,
    };
    if let (Some((gelu_tanh, act_after)), true) = (plan, p.k > 0) {
        let gemm = RowMajorGemm {
            m: p.m,
            n: p.n,
            k: p.k,
            x: p.x,
            x_stride: p.x_stride,
            w: p.w,
            w_stride: p.w_stride,
            out: p.out,
            bias: epilogue_bias,
            gelu_tanh,
            accumulate: p.accumulate,
            dtype: p.dtype,
        };
        if e.gemm(&gemm)? {
            let count = p.m * p.n;
            if let Some(bias) = bias_after {
                launch_add(e, p.dtype, p.out, bias, p.out, count, p.n)?;
            }
            return match act_after {
                Some(act) => launch_unary(e, p.dtype, p.out, p.out, count, act),
                None => Ok(()),
            };
        }
    }
    let args = [
        p.x.into(),
        p.x_stride.into(),
        p.w.into(),
        p.w_stride.into(),
        p.bias.unwrap_or(0).into(),
        p.out.into(),
        p.m.into(),
        p.n.into(),
        p.k.into(),
        activation_code(p.act).into(),
        u64::from(p.accumulate).into(),
    ];
    e.launch("linear", &format!("linear_{}", suffix(p.dtype)), [p.n.div_ceil(TILE), p.m.div_ceil(TILE), 1], TILE_THREADS, &args)
}

pub(super) fn gemm(e: &Encoder, op: &Gemm) -> Result<()> {
    let name = "gemm";
    let dtype = elem(name, &[("x", &op.x), ("w", &op.w), ("out", &op.out)], &[("bias", &op.bias)])?;
    let (x, w, out) = (e.ptr(name, "x", &op.x)?, e.ptr(name, "w", &op.w)?, e.ptr(name, "out", &op.out)?);
    let bias = op.bias.as_ref().map(|b| e.ptr(name, "bias", b)).transpose()?;
    let Gemm { m, n, k, x_stride, w_stride, act, accumulate, .. } = *op;
    product(e, &Product { m, n, k, x, x_stride, w, w_stride, bias, out, act, accumulate, dtype })
}

/// out = bias + time[b] first (kernels/tmsa_qkv.cu), then the product accumulated onto it.
/// For f16/bf16 the sum bias + time is rounded to the storage type once before the product is
/// added (the CPU rounds only the final sum): within the half-precision tolerances.
pub(super) fn tmsa_qkv(e: &Encoder, op: &TmsaQkv) -> Result<()> {
    let name = "tmsa_qkv";
    let dtype = elem(name, &[("x", &op.x), ("w", &op.w), ("time", &op.time), ("out", &op.out)], &[("bias", &op.bias)])?;
    let rows = op.batch * op.tokens;
    let (time, out, bias) = (e.ptr(name, "time", &op.time)?, e.ptr(name, "out", &op.out)?, e.optional(name, "bias", &op.bias)?);
    let count = rows * op.n;
    let args = [time.into(), bias.into(), out.into(), count.into(), op.tokens.into(), op.n.into()];
    e.launch_flat("tmsa_qkv", &format!("tmsa_time_bias_{}", suffix(dtype)), count, &args)?;
    let (x, w) = (e.ptr(name, "x", &op.x)?, e.ptr(name, "w", &op.w)?);
    let (m, n, k, act) = (rows, op.n, op.k, Activation::None);
    product(e, &Product { m, n, k, x, x_stride: k, w, w_stride: k, bias: None, out, act, accumulate: true, dtype })
}

/// out = x w_x^T + bias, then out += skip w_skip^T, where w_x and w_skip are the column windows
/// [0, dim_x) and [dim_x, dim_x + dim_skip) of w (row stride dim_x + dim_skip).
pub(super) fn skip_concat_linear(e: &Encoder, op: &SkipConcatLinear) -> Result<()> {
    let name = "skip_concat_linear";
    let dtype = elem(name, &[("x", &op.x), ("skip", &op.skip), ("w", &op.w), ("out", &op.out)], &[("bias", &op.bias)])?;
    let w = e.ptr(name, "w", &op.w)?;
    let out = e.ptr(name, "out", &op.out)?;
    let half = |x: CUdeviceptr, k: usize, w: CUdeviceptr, bias: Option<CUdeviceptr>, accumulate: bool| Product {
        m: op.rows,
        n: op.n,
        k,
        x,
        x_stride: k,
        w,
        w_stride: op.dim_x + op.dim_skip,
        bias,
        out,
        act: Activation::None,
        accumulate,
        dtype,
    };
    let bias = op.bias.as_ref().map(|b| e.ptr(name, "bias", b)).transpose()?;
    product(e, &half(e.ptr(name, "x", &op.x)?, op.dim_x, w, bias, false))?;
    let w_skip = w + (op.dim_x * dtype.size()) as CUdeviceptr;
    product(e, &half(e.ptr(name, "skip", &op.skip)?, op.dim_skip, w_skip, None, true))
}
