//! The CUDA backend: the kernels of kernels/ (sm_80/sm_90 cubins and PTX embedded by build.rs,
//! loaded through cudarc) and cuBLASLt for the linear layers, on one stream of device 0.
//!
//! Storage f32, f16 or bf16 (f32 accumulation everywhere); the float views of one op share one
//! dtype (copy3d converts). An op's rules are checked (`backend::op_rules`), its views resolved
//! to device addresses under the buffer-table lock (`memory`), and launched (`encode`, the
//! backend's op switch) without waiting; `synchronize`, `read` and buffer frees wait. `compile` captures a whole graph as a
//! CUDA graph (`recorded`). docs/CUDA-STATUS.md lists what has been verified on a GPU.
mod blas;
mod device;
#[cfg(feature = "cuda-emu")]
pub mod emulated;
mod encode;
mod gemm_choice;
mod launch;
mod memory;
mod ptx;
mod recorded;
#[cfg(test)]
mod signatures;

use std::sync::Arc;

use crate::backend::*;
use crate::error::Result;
use crate::tensor::DType;
use device::{err, Gpu};
use encode::{encode, Encoder};
use launch::OnDevice;
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
}

/// The ids of an embedding whose rules passed, checked against the table (a read back).
fn check_ids(backend: &dyn Backend, op: &Embedding) -> Result<()> {
    let bytes = backend.read(op.ids)?;
    let ids: Vec<u32> = bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    op_rules::embedding_ids(op, &ids).map_err(err)
}

impl Backend for CudaBackend {
    fn name(&self) -> String {
        let (major, minor) = self.gpu.capability;
        let gemm = match &self.gpu.blas {
            Some(blas) => format!("cuBLASLt {}", blas.version),
            None => "no cuBLASLt: kernels/linear.cu GEMMs".into(),
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

    fn buffers(&self) -> Result<&dyn Buffers> {
        self.gpu.bind()?;
        Ok(self.memory.as_ref())
    }

    fn synchronize(&self) -> Result<()> {
        self.gpu.bind()?;
        let _stream = self.memory.lock();
        self.gpu.wait()
    }

    /// Checks and queues one op. A single embedding launch also checks the ids (a read back);
    /// in a compiled graph an id beyond the table gives a row of NaN instead.
    fn launch(&self, op: &Op) -> Result<()> {
        op_rules::check(op).map_err(err)?;
        if let Op::Embedding(o) = op {
            check_ids(self, o)?;
        }
        self.gpu.bind()?;
        let views = self.memory.lock();
        encode(&Encoder::new(&OnDevice { gpu: &self.gpu, views: &views }), op)
    }

    fn compile(&self, ops: &[Op]) -> Result<Box<dyn CompiledOps>> {
        ops.iter().try_for_each(|op| op_rules::check(op).map_err(err))?;
        Ok(Box::new(Recorded::capture(&self.gpu, &self.memory, ops)?))
    }
}
