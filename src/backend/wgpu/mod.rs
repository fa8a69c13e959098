//! The WGSL backend: every op a compute shader (shaders/, embedded) run through wgpu.
//!
//! Storage is f32, or f16 where the adapter has SHADER_F16 (arithmetic, reductions and GEMM
//! accumulate in f32); bf16 is not supported. An op is validated (`backend::validate`),
//! lowered to one dispatch (`lower`), and recorded (`recorded`): views bound to buffer ranges
//! (`memory`), parameters in a uniform buffer, a bind group, the pipeline built once per shader
//! and dtype variant (`shaders`). A single launch records and submits at once; `compile`
//! records a whole graph once, and every run submits one command buffer.
mod device;
mod dispatch;
mod lower;
mod memory;
mod recorded;
mod shaders;

use std::sync::Arc;

use crate::backend::*;
use crate::error::Result;
use crate::tensor::DType;
use device::{err, Gpu};
use memory::Memory;
use recorded::Recorded;
use shaders::Pipelines;

pub struct WgpuBackend {
    gpu: Arc<Gpu>,
    memory: Memory,
    pipelines: Pipelines,
}

impl WgpuBackend {
    /// The preferred adapter (see `WGPU_BACKEND`); an error, never a panic, when there is none.
    pub fn new() -> Result<Self> {
        Self::on(Gpu::adapter()?)
    }

    /// The preferred adapter if it is a real GPU; an error for a CPU implementation such as
    /// lavapipe (slower than the CPU backend).
    pub fn hardware() -> Result<Self> {
        let adapter = Gpu::adapter()?;
        let info = adapter.get_info();
        match info.device_type {
            ::wgpu::DeviceType::Cpu => Err(err(format!("{} ({:?}) is a CPU adapter", info.name, info.backend))),
            _ => Self::on(adapter),
        }
    }

    /// Whether the adapter is a real GPU rather than a CPU implementation such as lavapipe.
    pub fn is_hardware(&self) -> bool {
        self.gpu.info.device_type != ::wgpu::DeviceType::Cpu
    }

    fn on(adapter: ::wgpu::Adapter) -> Result<Self> {
        let gpu = Arc::new(Gpu::new(adapter)?);
        Ok(WgpuBackend { memory: Memory::new(gpu.clone()), gpu, pipelines: Pipelines::default() })
    }

    /// Validates and records `ops`.
    fn record(&self, ops: &[Op]) -> Result<Recorded> {
        let dispatches = ops
            .iter()
            .map(|op| {
                validate::op(op).map_err(err)?;
                lower::lower(op)
            })
            .collect::<Result<Vec<_>>>()?;
        Recorded::new(&self.gpu, &self.memory, &self.pipelines, dispatches)
    }

    fn launch_now(&self, op: Op) -> Result<()> {
        self.record(&[op])?.submit()
    }
}

impl Backend for WgpuBackend {
    fn name(&self) -> String {
        format!("wgpu ({}, {:?})", self.gpu.info.name, self.gpu.info.backend)
    }

    fn supports(&self, dtype: DType) -> bool {
        match dtype {
            DType::F32 | DType::U32 => true,
            DType::F16 => self.gpu.f16,
            DType::BF16 => false,
        }
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
        self.gpu.wait()
    }

    fn gemm(&self, op: &Gemm) -> Result<()> {
        self.launch_now(Op::Gemm(*op))
    }

    fn layernorm_modulate(&self, op: &LayerNormModulate) -> Result<()> {
        self.launch_now(Op::LayerNormModulate(*op))
    }

    fn gate_residual(&self, op: &GateResidual) -> Result<()> {
        self.launch_now(Op::GateResidual(*op))
    }

    fn layernorm(&self, op: &LayerNorm) -> Result<()> {
        self.launch_now(Op::LayerNorm(*op))
    }

    fn attention(&self, op: &Attention) -> Result<()> {
        self.launch_now(Op::Attention(*op))
    }

    fn tmsa_qkv(&self, op: &TmsaQkv) -> Result<()> {
        self.launch_now(Op::TmsaQkv(*op))
    }

    fn patchify(&self, op: &Patchify) -> Result<()> {
        self.launch_now(Op::Patchify(*op))
    }

    fn unpatchify(&self, op: &Unpatchify) -> Result<()> {
        self.launch_now(Op::Unpatchify(*op))
    }

    fn timestep_embedding(&self, op: &TimestepEmbedding) -> Result<()> {
        self.launch_now(Op::TimestepEmbedding(*op))
    }

    /// A single launch also checks the ids (a read back); in a compiled graph an id beyond the
    /// table gives a row of NaN instead.
    fn embedding(&self, op: &Embedding) -> Result<()> {
        validate::embedding(op).map_err(err)?;
        let ids = self.read(op.ids)?;
        validate::embedding_ids(op, &bytemuck::pod_collect_to_vec::<u8, u32>(&ids)).map_err(err)?;
        self.launch_now(Op::Embedding(*op))
    }

    fn add(&self, op: &Add) -> Result<()> {
        self.launch_now(Op::Add(*op))
    }

    fn unary(&self, op: &Unary) -> Result<()> {
        self.launch_now(Op::Unary(*op))
    }

    fn copy3d(&self, op: &Copy3d) -> Result<()> {
        self.launch_now(Op::Copy3d(*op))
    }

    fn skip_concat_linear(&self, op: &SkipConcatLinear) -> Result<()> {
        self.launch_now(Op::SkipConcatLinear(*op))
    }

    fn conv2d(&self, op: &Conv2d) -> Result<()> {
        self.launch_now(Op::Conv2d(*op))
    }

    fn group_norm(&self, op: &GroupNorm) -> Result<()> {
        self.launch_now(Op::GroupNorm(*op))
    }

    fn upsample2x(&self, op: &Upsample2x) -> Result<()> {
        self.launch_now(Op::Upsample2x(*op))
    }

    fn compile(&self, ops: &[Op]) -> Result<Box<dyn CompiledOps>> {
        Ok(Box::new(self.record(ops)?))
    }
}
