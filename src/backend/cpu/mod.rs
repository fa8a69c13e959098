//! The CPU backend: the reference every other backend is checked against.
//!
//! Exactly the math documented in `ops.rs`, in f32 (f64 where it is cheap and buys accuracy:
//! normalisation, timestep angles; exp is a vectorised polynomial good to ~1 ulp). Storage may be f32, f16 or bf16 (widened
//! to f32 on load, rounded to nearest even on store) and u32 for ids; the float views of one op
//! may mix dtypes. Loops and matrix products (`gemm`: packed microkernels
//! chosen at run time) run on the one rayon pool.
//! Every misuse (unknown buffer, view outside its buffer, wrong dtype, sizes that disagree
//! with the views, overlapping in/out views, out-of-range ids) is an `Error::Backend`: `launch`
//! first checks the op's rules (`backend::op_rules`), then its views are resolved by `memory`.
//!
//! One file per op family; `memory` owns buffers and the unsafe view resolution, `convert`
//! the dtype conversions.
mod activation;
mod attention;
mod conv;
mod convert;
mod copy;
mod elementwise;
mod embedding;
mod gemm;
mod layout;
mod linear;
mod math;
mod memory;
mod norm;
mod packed_cache;
mod parallel;
mod simd;

use crate::backend::*;
use crate::error::{Error, Result};
use crate::tensor::DType;
use memory::Memory;

/// The CPU backend's error: a one-line message naming the op and the field.
fn err(msg: impl Into<String>) -> Error {
    Error::Backend { backend: "cpu".into(), msg: msg.into() }
}

/// The reference backend. Ops run synchronously; each holds the buffer table for its duration.
#[derive(Default)]
pub struct CpuBackend {
    memory: Memory,
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        format!("cpu ({} threads, {})", rayon::current_num_threads(), gemm::Isa::best().name())
    }

    fn supports(&self, _dtype: DType) -> bool {
        true
    }

    fn free_memory(&self) -> Option<u64> {
        memory::host_available()
    }

    /// Every weight a product reads is packed once and kept (`packed_cache`): in f32 panels, or
    /// in bf16 pairs where the kernels multiply bf16 (norm and bias vectors are counted too);
    /// a Winograd convolution keeps 36 f32 values per (out, in) channel pair instead of 9.
    fn weight_copy_bytes(&self, bytes: usize, dtype: DType, ops: &[Op]) -> usize {
        let packed = match dtype {
            DType::BF16 if gemm::Isa::best().multiplies_bf16() => bytes,
            _ => bytes / dtype.size() * 4,
        };
        packed + ops.iter().map(conv::winograd_extra_bytes).sum::<usize>()
    }

    fn buffers(&self) -> Result<&dyn Buffers> {
        Ok(&self.memory)
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    fn launch(&self, op: &Op) -> Result<()> {
        op_rules::check(op).map_err(err)?;
        let views = &self.memory.lock();
        match op {
            Op::Gemm(o) => linear::gemm(views, o),
            Op::LayerNormModulate(o) => norm::layernorm_modulate(views, o),
            Op::LayerNorm(o) => norm::layernorm(views, o),
            Op::Attention(o) => attention::attention(views, o),
            Op::TmsaQkv(o) => linear::tmsa_qkv(views, o),
            Op::Patchify(o) => layout::patchify(views, o),
            Op::Unpatchify(o) => layout::unpatchify(views, o),
            Op::TimestepEmbedding(o) => embedding::timestep_embedding(views, o),
            Op::Embedding(o) => embedding::embedding(views, o),
            Op::Add(o) => elementwise::add(views, o),
            Op::Unary(o) => elementwise::unary(views, o),
            Op::Copy3d(o) => copy::copy3d(views, o),
            Op::SkipConcatLinear(o) => linear::skip_concat_linear(views, o),
            Op::Conv2d(o) => conv::conv2d(views, o),
            Op::GroupNorm(o) => norm::group_norm(views, o),
            Op::Upsample2x(o) => layout::upsample2x(views, o),
        }
    }
}
