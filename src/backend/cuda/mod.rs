//! The CUDA backend: the kernels of kernels/ (PTX embedded by build.rs, loaded through cudarc)
//! and cuBLASLt for the linear layers, on one stream of device 0.
//!
//! Storage f32, f16 or bf16 (f32 accumulation everywhere); the float views of one op share one
//! dtype (copy3d converts). An op is validated (`backend::validate`), its views resolved to
//! device addresses under the buffer-table lock (`memory`), and launched (`encode`) without
//! waiting; `synchronize`, `read` and buffer frees wait. `compile` captures a whole graph as a
//! CUDA graph (`recorded`). docs/CUDA-STATUS.md lists what has been verified on a GPU.
mod blas;
mod device;
mod encode;
mod launch;
mod memory;
mod ptx;
mod recorded;

use std::sync::Arc;

use crate::backend::*;
use crate::error::Result;
use crate::tensor::DType;
use device::{err, Gpu};
use encode::{encode, Encoder};
use memory::Memory;
use recorded::Recorded;

pub struct CudaBackend {
    gpu: Arc<Gpu>,
    memory: Arc<Memory>,
}

impl CudaBackend {
    /// Device 0. A one-line error, never a panic, when there is no driver, no device, a device
    /// older than sm_80, or when this build embeds no kernels.
    pub fn new() -> Result<Self> {
        let gpu = Arc::new(Gpu::open()?);
        let memory = Arc::new(Memory::new(gpu.stream.clone()));
        Ok(CudaBackend { gpu, memory })
    }

    /// Validates and queues one op.
    fn launch_now(&self, op: &Op) -> Result<()> {
        validate::op(op).map_err(err)?;
        self.gpu.bind()?;
        let views = self.memory.lock();
        encode(&Encoder { gpu: &self.gpu, views: &views }, op)
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> String {
        let (major, minor) = self.gpu.capability;
        let gemm = match &self.gpu.blas {
            Some(blas) => format!("cuBLASLt {}", blas.version),
            None => "no cuBLASLt: SIMT GEMMs".into(),
        };
        format!("cuda ({}, sm_{major}{minor}, {gemm})", self.gpu.device_name)
    }

    fn supports(&self, _dtype: DType) -> bool {
        true
    }

    fn free_memory(&self) -> Option<u64> {
        self.gpu.bind().ok()?;
        cudarc::driver::result::mem_get_info().ok().map(|(free, _total)| free as u64)
    }

    fn alloc(&self, bytes: usize) -> Result<BufId> {
        self.gpu.bind()?;
        self.memory.alloc(bytes)
    }

    fn free(&self, buf: BufId) {
        if self.gpu.bind().is_ok() {
            self.memory.free(buf)
        }
    }

    fn write(&self, dst: View, bytes: &[u8]) -> Result<()> {
        self.gpu.bind()?;
        self.memory.write(dst, bytes)
    }

    fn read(&self, src: View) -> Result<Vec<u8>> {
        self.gpu.bind()?;
        self.memory.read(src)
    }

    fn synchronize(&self) -> Result<()> {
        self.gpu.bind()?;
        let _stream = self.memory.lock();
        self.gpu.wait()
    }

    fn gemm(&self, op: &Gemm) -> Result<()> {
        self.launch_now(&Op::Gemm(*op))
    }

    fn layernorm_modulate(&self, op: &LayerNormModulate) -> Result<()> {
        self.launch_now(&Op::LayerNormModulate(*op))
    }

    fn gate_residual(&self, op: &GateResidual) -> Result<()> {
        self.launch_now(&Op::GateResidual(*op))
    }

    fn layernorm(&self, op: &LayerNorm) -> Result<()> {
        self.launch_now(&Op::LayerNorm(*op))
    }

    fn attention(&self, op: &Attention) -> Result<()> {
        self.launch_now(&Op::Attention(*op))
    }

    fn tmsa_qkv(&self, op: &TmsaQkv) -> Result<()> {
        self.launch_now(&Op::TmsaQkv(*op))
    }

    fn patchify(&self, op: &Patchify) -> Result<()> {
        self.launch_now(&Op::Patchify(*op))
    }

    fn unpatchify(&self, op: &Unpatchify) -> Result<()> {
        self.launch_now(&Op::Unpatchify(*op))
    }

    fn timestep_embedding(&self, op: &TimestepEmbedding) -> Result<()> {
        self.launch_now(&Op::TimestepEmbedding(*op))
    }

    /// A single launch also checks the ids (a read back); in a compiled graph an id beyond the
    /// table gives a row of NaN instead.
    fn embedding(&self, op: &Embedding) -> Result<()> {
        validate::embedding(op).map_err(err)?;
        let bytes = self.read(op.ids)?;
        let ids: Vec<u32> = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        validate::embedding_ids(op, &ids).map_err(err)?;
        self.launch_now(&Op::Embedding(*op))
    }

    fn add(&self, op: &Add) -> Result<()> {
        self.launch_now(&Op::Add(*op))
    }

    fn unary(&self, op: &Unary) -> Result<()> {
        self.launch_now(&Op::Unary(*op))
    }

    fn copy3d(&self, op: &Copy3d) -> Result<()> {
        self.launch_now(&Op::Copy3d(*op))
    }

    fn skip_concat_linear(&self, op: &SkipConcatLinear) -> Result<()> {
        self.launch_now(&Op::SkipConcatLinear(*op))
    }

    fn conv2d(&self, op: &Conv2d) -> Result<()> {
        self.launch_now(&Op::Conv2d(*op))
    }

    fn group_norm(&self, op: &GroupNorm) -> Result<()> {
        self.launch_now(&Op::GroupNorm(*op))
    }

    fn upsample2x(&self, op: &Upsample2x) -> Result<()> {
        self.launch_now(&Op::Upsample2x(*op))
    }

    fn compile(&self, ops: &[Op]) -> Result<Box<dyn CompiledOps>> {
        ops.iter().try_for_each(|op| validate::op(op).map_err(err))?;
        Ok(Box::new(Recorded::capture(&self.gpu, &self.memory, ops)?))
    }
}
