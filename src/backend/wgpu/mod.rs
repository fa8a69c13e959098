//! The WGSL backend: every op a compute shader (shaders/, embedded) run through wgpu.
//!
//! Storage is f32 or f16 (arithmetic, reductions and GEMM accumulate in f32; f16 is native
//! where the adapter has SHADER_F16, else packed in u32 pairs, `packed`); bf16 is not
//! supported. An op's rules are checked (`backend::op_rules`), it is lowered to dispatches
//! (`lower`, the backend's op switch), and recorded (`recorded`):
//! views bound to buffer ranges (`memory`), working memory an op's dispatches pass between
//! them in one scratch buffer per recording, parameters in a uniform buffer, a bind group, the
//! pipeline built once per shader and dtype variant (`shaders`). A single launch records and
//! submits at once; `compile` records a whole graph once, and every run submits one command
//! buffer. The adapter is chosen by `adapter` (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME`), the device
//! opened on it by `device`.
#[cfg(test)]
mod access_model;
mod adapter;
mod device;
mod dispatch;
mod lower;
mod lowered;
mod memory;
mod packed;
mod recorded;
mod shaders;

use std::sync::Arc;

use crate::backend::*;
use crate::error::Result;
use crate::tensor::DType;
use device::{err, Gpu};
pub use lowered::Lowered;
use memory::Memory;
use recorded::Recorded;
use shaders::Pipelines;

pub struct WgpuBackend {
    gpu: Arc<Gpu>,
    memory: Memory,
    pipelines: Pipelines,
}

impl WgpuBackend {
    /// The adapter `WGPU_BACKEND` and `WGPU_ADAPTER_NAME` choose (`adapter`); an error, never a
    /// panic, when there is none.
    pub fn new() -> Result<Self> {
        Self::on(adapter::choose()?, Lowered::default())
    }

    /// The adapter `new` chooses with its limits lowered to `lowered`'s: what a smaller adapter
    /// gets, on any adapter (tests).
    pub fn lowered(lowered: Lowered) -> Result<Self> {
        Self::on(adapter::choose()?, lowered)
    }

    /// The first adapter whose name contains `part`, ignoring case: what `WGPU_ADAPTER_NAME=part`
    /// picks.
    pub fn named(part: &str) -> Result<Self> {
        Self::on(adapter::named(part)?, Lowered::default())
    }

    /// The chosen adapter if it is a real GPU; an error for a CPU implementation such as
    /// lavapipe (slower than the CPU backend).
    pub fn hardware() -> Result<Self> {
        let adapter = adapter::choose()?;
        let info = adapter.get_info();
        match info.device_type {
            ::wgpu::DeviceType::Cpu => Err(err(format!("{} ({:?}) is a CPU adapter, slower than the CPU backend", info.name, info.backend))),
            _ => Self::on(adapter, Lowered::default()),
        }
    }

    /// Whether the adapter is a real GPU rather than a CPU implementation such as lavapipe.
    pub fn is_hardware(&self) -> bool {
        self.gpu.info.device_type != ::wgpu::DeviceType::Cpu
    }

    fn on(adapter: ::wgpu::Adapter, lowered: Lowered) -> Result<Self> {
        let gpu = Arc::new(Gpu::new(adapter, lowered)?);
        Ok(WgpuBackend { memory: Memory::new(gpu.clone()), gpu, pipelines: Pipelines::default() })
    }

    /// Checks every op's rules, then lowers `ops`.
    fn lower(&self, ops: &[Op]) -> Result<Vec<dispatch::Dispatch>> {
        let mut dispatches = Vec::with_capacity(ops.len());
        for op in ops {
            op_rules::check(op).map_err(err)?;
            dispatches.extend(lower::lower(op, &self.gpu.limits)?);
        }
        Ok(dispatches)
    }

    /// Checks, lowers and records `ops`.
    fn record(&self, ops: &[Op]) -> Result<Recorded> {
        Recorded::new(&self.gpu, &self.memory, &self.pipelines, self.lower(ops)?)
    }

    /// The ids of an embedding whose rules passed, checked against the table (a read back).
    fn check_ids(&self, op: &Embedding) -> Result<()> {
        let ids = self.read(op.ids)?;
        op_rules::embedding_ids(op, &bytemuck::pod_collect_to_vec::<u8, u32>(&ids)).map_err(err)
    }
}

/// The workgroup grids `op` is dispatched with on an adapter with WebGPU's default limits but
/// `max` workgroups per grid dimension and `binding_bytes` per storage binding, or the error
/// recording it would give. Needs no adapter: nothing is bound or run
/// (`tests/integration/grid_audit.rs` audits full-size graphs with it).
pub fn workgroups(op: &Op, max: u32, binding_bytes: u64) -> Result<Vec<[u32; 3]>> {
    let limits = ::wgpu::Limits { max_compute_workgroups_per_dimension: max, max_storage_buffer_binding_size: binding_bytes, ..Default::default() };
    lower::lower(op, &limits)?.iter().map(|d| d.grid.counts(d.shader.name, max)).collect()
}

impl Backend for WgpuBackend {
    fn name(&self) -> String {
        let packed = if self.gpu.f16 { "" } else { ", f16 packed in u32" };
        format!("wgpu ({}, {:?}{packed})", self.gpu.info.name, self.gpu.info.backend)
    }

    fn supports(&self, dtype: DType) -> bool {
        match dtype {
            DType::F32 | DType::F16 | DType::U32 => true,
            DType::BF16 => false,
        }
    }

    fn buffers(&self) -> Result<&dyn Buffers> {
        Ok(&self.memory)
    }

    fn synchronize(&self) -> Result<()> {
        self.gpu.wait()
    }

    /// A single embedding launch also checks the ids (a read back); in a compiled graph an id
    /// beyond the table gives a row of NaN instead.
    fn launch(&self, op: &Op) -> Result<()> {
        let recorded = self.record(std::slice::from_ref(op))?;
        if let Op::Embedding(o) = op {
            self.check_ids(o)?;
        }
        recorded.submit()
    }

    fn compile(&self, ops: &[Op]) -> Result<Box<dyn CompiledOps>> {
        Ok(Box::new(self.record(ops)?))
    }

    /// Every buffer within the adapter's largest, and every dispatch as `recorded::check` finds
    /// it: what `compile` would refuse, before a buffer exists.
    fn check_placed(&self, ops: &[Op], buffer_bytes: &[usize]) -> Result<()> {
        for &bytes in buffer_bytes {
            memory::buffer_size(&self.gpu.limits, bytes)?;
        }
        self.lower(ops)?.iter().try_for_each(|d| recorded::check(&self.gpu, d).map(drop))
    }
}
