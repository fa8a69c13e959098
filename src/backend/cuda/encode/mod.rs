//! Ops to launches, the CUDA backend's op switch (`encode`): for every op (its rules already
//! checked by `backend::op_rules`), its views resolved to device addresses and the kernels or
//! cuBLASLt calls queued on the stream. Used both for a single launch and inside a graph
//! capture, so nothing here synchronizes. One file per op family.
mod attention;
mod conv;
mod elementwise;
mod embedding;
mod layout;
mod linear;
mod norm;

use cudarc::driver::sys::CUdeviceptr;

use super::device::{err, Gpu};
use super::launch::{self, Arg};
use super::memory::Locked;
use crate::backend::{Activation, Op, View};
use crate::error::Result;
use crate::tensor::DType;

/// The output tile edge of kernels/tiled_gemm.cuh (TILE_M = TILE_N) and its threads per block.
const TILE: usize = 64;
const TILE_THREADS: usize = 256;

/// The device and the locked buffer table, for the duration of one launch or one capture.
pub(super) struct Encoder<'a> {
    pub gpu: &'a Gpu,
    pub views: &'a Locked<'a>,
}

impl Encoder<'_> {
    pub fn ptr(&self, op: &str, field: &str, view: &View) -> Result<CUdeviceptr> {
        self.views.ptr(op, field, view)
    }

    /// The address of an optional view, 0 (a null pointer to the kernel) when absent.
    pub fn optional(&self, op: &str, field: &str, view: &Option<View>) -> Result<CUdeviceptr> {
        view.as_ref().map_or(Ok(0), |v| self.ptr(op, field, v))
    }

    pub fn launch(&self, module: &'static str, function: &str, grid: [usize; 3], block: usize, args: &[Arg]) -> Result<()> {
        launch::launch(self.gpu, module, function, grid, block, args)
    }

    /// A grid-stride launch over `n` elements (nothing for n = 0).
    pub fn launch_flat(&self, module: &'static str, function: &str, n: usize, args: &[Arg]) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.launch(module, function, [launch::flat_blocks(n), 1, 1], launch::FLAT_THREADS, args)
    }
}

pub(super) fn encode(e: &Encoder, op: &Op) -> Result<()> {
    match op {
        Op::Gemm(o) => linear::gemm(e, o),
        Op::TmsaQkv(o) => linear::tmsa_qkv(e, o),
        Op::SkipConcatLinear(o) => linear::skip_concat_linear(e, o),
        Op::Conv2d(o) => conv::conv2d(e, o),
        Op::Attention(o) => attention::attention(e, o),
        Op::LayerNorm(o) => norm::layernorm(e, o),
        Op::LayerNormModulate(o) => norm::layernorm_modulate(e, o),
        Op::GroupNorm(o) => norm::group_norm(e, o),
        Op::Add(o) => elementwise::add(e, o),
        Op::Unary(o) => elementwise::unary(e, o),
        Op::GateResidual(o) => elementwise::gate_residual(e, o),
        Op::Copy3d(o) => elementwise::copy3d(e, o),
        Op::Patchify(o) => layout::patchify(e, o),
        Op::Unpatchify(o) => layout::unpatchify(e, o),
        Op::Upsample2x(o) => layout::upsample2x(e, o),
        Op::Embedding(o) => embedding::embedding(e, o),
        Op::TimestepEmbedding(o) => embedding::timestep_embedding(e, o),
    }
}

/// The one float dtype of an op's float views: each kernel is instantiated per storage type,
/// so the float views of one op may not mix dtypes here (copy3d converts between them).
fn elem(op: &str, views: &[(&str, &View)], optional: &[(&str, &Option<View>)]) -> Result<DType> {
    let present = optional.iter().filter_map(|(name, v)| v.as_ref().map(|v| (*name, v)));
    let mut all = views.iter().copied().chain(present);
    let (first_name, first) = all.next().expect("every op has a float view");
    match all.find(|(_, v)| v.dtype != first.dtype) {
        Some((name, v)) => {
            Err(err(format!("{op}: {name} is {} but {first_name} is {}; on cuda the float views of one op share one dtype", v.dtype, first.dtype)))
        }
        None => Ok(first.dtype),
    }
}

/// The suffix of a kernel instantiated for `dtype` (kernels/common.cuh FOR_EACH_FLOAT).
fn suffix(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::U32 => "u32",
    }
}

/// The code kernels/activation.cuh switches on.
fn activation_code(act: Activation) -> u64 {
    match act {
        Activation::None => 0,
        Activation::GeluTanh => 1,
        Activation::GeluErf => 2,
        Activation::Silu => 3,
    }
}
