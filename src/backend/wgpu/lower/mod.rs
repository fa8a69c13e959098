//! Ops to dispatches, the wgpu backend's op switch (`lower`): for every op (its rules already
//! checked by `backend::op_rules`), the shader, its dtype variant, the bindings and parameters
//! in the order of the shader's `Params`, and the grid. One file per op family.
mod attention;
mod elementwise;
mod embedding;
mod layout;
mod linear;
mod norm;
mod wide_attention;

use super::device::err;
use super::dispatch::Dispatch;
use crate::backend::{Activation, Op, View};
use crate::error::Result;
use crate::tensor::DType;

/// The dispatches of `op` on an adapter with `limits`: one, except a gemm or an embedding whose
/// weight (or gemm's activations) exceed the binding limit, and a conv2d, group_norm,
/// upsample2x or add whose image does, which run in blocks; a layernorm_modulate with a
/// residual (two); group_norm, two per block (statistics, then normalisation); and attention
/// with heads wider than 128, three per (sample, head) and chunk of query rows.
pub(super) fn lower(op: &Op, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let one = match op {
        Op::Gemm(o) => return linear::gemm(o, limits),
        Op::TmsaQkv(o) => linear::tmsa_qkv(o),
        Op::SkipConcatLinear(o) => linear::skip_concat_linear(o),
        Op::Conv2d(o) => return linear::conv2d(o, limits),
        Op::Attention(o) => return attention::attention(o, limits),
        Op::LayerNorm(o) => norm::layernorm(o),
        Op::LayerNormModulate(o) => return norm::layernorm_modulate(o),
        Op::GroupNorm(o) => return norm::group_norm(o, limits),
        Op::Add(o) => return elementwise::add(o, limits),
        Op::Unary(o) => elementwise::unary(o),
        Op::Patchify(o) => layout::patchify(o),
        Op::Unpatchify(o) => layout::unpatchify(o),
        Op::Upsample2x(o) => return layout::upsample2x(o, limits),
        Op::Copy3d(o) => layout::copy3d(o),
        Op::Embedding(o) => return embedding::embedding(o, limits),
        Op::TimestepEmbedding(o) => embedding::timestep_embedding(o),
    };
    Ok(vec![one?])
}

/// The one float dtype of an op's float views (f32 or f16): the shaders are specialised for a
/// single storage type, so views of one op may not mix dtypes here.
fn elem(op: &str, views: &[(&str, &View)], optional: &[(&str, &Option<View>)]) -> Result<DType> {
    let present = optional.iter().filter_map(|(name, v)| v.as_ref().map(|v| (*name, v)));
    let mut all = views.iter().copied().chain(present);
    let (first_name, first) = all.next().expect("every op has a float view");
    let dtype = float_dtype(op, first_name, first.dtype)?;
    match all.find(|(_, v)| v.dtype != dtype) {
        Some((name, v)) => {
            Err(err(format!("{op}: {name} is {} but {first_name} is {dtype}; on wgpu the float views of one op share one dtype", v.dtype)))
        }
        None => Ok(dtype),
    }
}

/// `dtype` if the shaders can store it as a float.
fn float_dtype(op: &str, field: &str, dtype: DType) -> Result<DType> {
    match dtype {
        DType::F32 | DType::F16 => Ok(dtype),
        other => Err(err(format!("{op}: {field} is {other}; wgpu computes on f32 and f16 storage only"))),
    }
}

/// Elements of `dtype` one view may span on an adapter with `limits`, less what rounding its
/// binding out to the offset alignment (and to 4 bytes) may add.
fn binding_elems(limits: &wgpu::Limits, dtype: DType) -> usize {
    let slack = u64::from(limits.min_storage_buffer_offset_alignment) + wgpu::COPY_BUFFER_ALIGNMENT;
    usize::try_from(limits.max_storage_buffer_binding_size.saturating_sub(slack)).unwrap_or(usize::MAX) / dtype.size()
}

/// The code shaders/lib/activation.wgsl switches on.
fn activation_code(act: Activation) -> usize {
    match act {
        Activation::None => 0,
        Activation::GeluTanh => 1,
        Activation::GeluErf => 2,
        Activation::Silu => 3,
        Activation::QuickGelu => 4,
    }
}
