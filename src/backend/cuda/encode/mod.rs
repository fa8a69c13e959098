//! Ops to launches, the CUDA backend's op switch (`encode`): for every op (its rules already
//! checked by `backend::op_rules`), its views resolved to device addresses and the kernels or
//! cuBLASLt calls queued on the stream. Used both for a single launch and inside a graph
//! capture, so nothing here synchronizes. One file per op family. The encoders reach the device
//! only through `Target`, so a test can record every launch without one.
mod attention;
mod conv;
mod elementwise;
mod embedding;
mod layout;
mod linear;
mod norm;

use cudarc::driver::sys::CUdeviceptr;

use super::blas::RowMajorGemm;
use super::device::err;
use super::launch::{self, Arg};
use crate::backend::{Activation, Op, View};
use crate::error::Result;
use crate::tensor::DType;

/// The output tile edge of the GEMM kernels (kernels/mma_gemm.cuh MMA_BM = MMA_BN) and their
/// threads per block (MMA_THREADS).
const TILE: usize = 64;
const TILE_THREADS: usize = 128;

/// Where encoded work goes: the device (`launch::OnDevice`), or a recording in the tests that
/// check every launch against its kernel's PTX signature.
pub(super) trait Target {
    /// Device address of the first element of `view`, checked against the buffer table.
    fn ptr(&self, op: &str, field: &str, view: &View) -> Result<CUdeviceptr>;
    /// Queues one kernel launch.
    fn launch(&self, kernel: &Kernel) -> Result<()>;
    /// Queues one cuBLASLt product; Ok(false) when cuBLASLt cannot run it (no library, or no
    /// algorithm for the shape): the caller then uses kernels/linear.cu.
    fn gemm(&self, gemm: &RowMajorGemm) -> Result<bool>;
}

/// One launch of `function` of kernels/`module`.cu: `grid` blocks of `block` threads (every
/// kernel's shared memory is static), `args` in the order of the kernel's parameters.
#[derive(Debug)]
pub(super) struct Kernel<'a> {
    pub module: &'static str,
    pub function: &'a str,
    pub grid: [u32; 3],
    pub block: u32,
    pub args: &'a [Arg],
}

/// What every encoder works through, for one launch or one capture.
pub(super) struct Encoder<'a> {
    target: &'a dyn Target,
}

impl<'a> Encoder<'a> {
    pub fn new(target: &'a dyn Target) -> Encoder<'a> {
        Encoder { target }
    }

    pub fn ptr(&self, op: &str, field: &str, view: &View) -> Result<CUdeviceptr> {
        self.target.ptr(op, field, view)
    }

    /// The address of an optional view, 0 (a null pointer to the kernel) when absent.
    pub fn optional(&self, op: &str, field: &str, view: &Option<View>) -> Result<CUdeviceptr> {
        view.as_ref().map_or(Ok(0), |v| self.ptr(op, field, v))
    }

    /// Queues `function` of kernels/`module`.cu with a `grid` of blocks of `block` threads.
    pub fn launch(&self, module: &'static str, function: &str, grid: [usize; 3], block: usize, args: &[Arg]) -> Result<()> {
        let limits = [i32::MAX as usize, 65535, 65535];
        if grid.iter().zip(limits).any(|(&g, limit)| g == 0 || g > limit) {
            return Err(err(format!("{function}: a grid of {grid:?} blocks is outside the device's limits {limits:?}")));
        }
        let grid = grid.map(|g| g as u32);
        self.target.launch(&Kernel { module, function, grid, block: block as u32, args })
    }

    /// A grid-stride launch over `n` elements (nothing for n = 0).
    pub fn launch_flat(&self, module: &'static str, function: &str, n: usize, args: &[Arg]) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.launch(module, function, [launch::flat_blocks(n), 1, 1], launch::FLAT_THREADS, args)
    }

    /// A cuBLASLt product, Ok(false) where cuBLASLt cannot run it (`Target::gemm`).
    pub fn gemm(&self, gemm: &RowMajorGemm) -> Result<bool> {
        self.target.gemm(gemm)
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
        Activation::QuickGelu => 4,
    }
}
