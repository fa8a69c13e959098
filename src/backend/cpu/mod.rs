//! The CPU backend: the reference every other backend is checked against.
//!
//! Exactly the math documented in `ops.rs`, in f32 (f64 where it is cheap and buys accuracy:
//! normalisation, timestep angles; exp is a vectorised polynomial good to ~1 ulp). Storage may be f32, f16 or bf16 (widened
//! to f32 on load, rounded to nearest even on store) and u32 for ids; the float views of one op
//! may mix dtypes. Loops run on the rayon pool, matrix products on matrixmultiply's threads.
//! Every misuse (unknown buffer, view outside its buffer, wrong dtype, sizes that disagree
//! with the views, overlapping in/out views, out-of-range ids) is an `Error::Backend`: each op
//! first passes `backend::validate`, then its views are resolved by `memory`.
//!
//! One file per op family; `memory` owns buffers and the unsafe view resolution, `convert`
//! the dtype conversions, `check` the backend's error.
mod activation;
mod attention;
mod check;
mod conv;
mod convert;
mod copy;
mod elementwise;
mod embedding;
mod layout;
mod linear;
mod math;
mod matmul;
mod memory;
mod norm;
mod parallel;

use crate::backend::*;
use crate::error::Result;
use crate::tensor::DType;
use memory::Memory;

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
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn supports(&self, _dtype: DType) -> bool {
        true
    }

    fn free_memory(&self) -> Option<u64> {
        memory::host_available()
    }

    fn alloc(&self, bytes: usize) -> Result<BufId> {
        self.memory.alloc(bytes)
    }

    fn free(&self, buf: BufId) {
        self.memory.free(buf)
    }

    fn write(&self, dst: View, bytes: &[u8]) -> Result<()> {
        self.memory.write(dst, bytes)
    }

    fn read(&self, src: View) -> Result<Vec<u8>> {
        self.memory.read(src)
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    fn gemm(&self, op: &Gemm) -> Result<()> {
        validate::gemm(op).map_err(check::err)?;
        linear::gemm(&self.memory.lock(), op)
    }

    fn layernorm_modulate(&self, op: &LayerNormModulate) -> Result<()> {
        validate::layernorm_modulate(op).map_err(check::err)?;
        norm::layernorm_modulate(&self.memory.lock(), op)
    }

    fn gate_residual(&self, op: &GateResidual) -> Result<()> {
        validate::gate_residual(op).map_err(check::err)?;
        elementwise::gate_residual(&self.memory.lock(), op)
    }

    fn layernorm(&self, op: &LayerNorm) -> Result<()> {
        validate::layernorm(op).map_err(check::err)?;
        norm::layernorm(&self.memory.lock(), op)
    }

    fn attention(&self, op: &Attention) -> Result<()> {
        validate::attention(op).map_err(check::err)?;
        attention::attention(&self.memory.lock(), op)
    }

    fn tmsa_qkv(&self, op: &TmsaQkv) -> Result<()> {
        validate::tmsa_qkv(op).map_err(check::err)?;
        linear::tmsa_qkv(&self.memory.lock(), op)
    }

    fn patchify(&self, op: &Patchify) -> Result<()> {
        validate::patchify(op).map_err(check::err)?;
        layout::patchify(&self.memory.lock(), op)
    }

    fn unpatchify(&self, op: &Unpatchify) -> Result<()> {
        validate::unpatchify(op).map_err(check::err)?;
        layout::unpatchify(&self.memory.lock(), op)
    }

    fn timestep_embedding(&self, op: &TimestepEmbedding) -> Result<()> {
        validate::timestep_embedding(op).map_err(check::err)?;
        embedding::timestep_embedding(&self.memory.lock(), op)
    }

    fn embedding(&self, op: &Embedding) -> Result<()> {
        validate::embedding(op).map_err(check::err)?;
        embedding::embedding(&self.memory.lock(), op)
    }

    fn add(&self, op: &Add) -> Result<()> {
        validate::add(op).map_err(check::err)?;
        elementwise::add(&self.memory.lock(), op)
    }

    fn unary(&self, op: &Unary) -> Result<()> {
        validate::unary(op).map_err(check::err)?;
        elementwise::unary(&self.memory.lock(), op)
    }

    fn copy3d(&self, op: &Copy3d) -> Result<()> {
        validate::copy3d(op).map_err(check::err)?;
        copy::copy3d(&self.memory.lock(), op)
    }

    fn skip_concat_linear(&self, op: &SkipConcatLinear) -> Result<()> {
        validate::skip_concat_linear(op).map_err(check::err)?;
        linear::skip_concat_linear(&self.memory.lock(), op)
    }

    fn conv2d(&self, op: &Conv2d) -> Result<()> {
        validate::conv2d(op).map_err(check::err)?;
        conv::conv2d(&self.memory.lock(), op)
    }

    fn group_norm(&self, op: &GroupNorm) -> Result<()> {
        validate::group_norm(op).map_err(check::err)?;
        norm::group_norm(&self.memory.lock(), op)
    }

    fn upsample2x(&self, op: &Upsample2x) -> Result<()> {
        validate::upsample2x(op).map_err(check::err)?;
        layout::upsample2x(&self.memory.lock(), op)
    }
}
