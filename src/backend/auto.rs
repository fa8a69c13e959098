//! `--backend auto`: the first backend that opens, in the order CUDA, wgpu on a hardware
//! adapter, CPU; and for a graph that backend refuses (an op beyond one of its limits,
//! docs/LIMITS.md), the next in that order (`Backend::fallback`, used by `Session::new`).
use std::sync::Arc;

use super::{Backend, Buffers, CompiledOps, Op};
use crate::error::{Error, Result};
use crate::tensor::DType;

/// Opens one backend.
pub type Opener = fn() -> Result<Arc<dyn Backend>>;

/// The backend `auto` chose, and the openers after it. Every call goes to the chosen one.
pub struct Auto {
    chosen: Arc<dyn Backend>,
    rest: Vec<Opener>,
}

impl Auto {
    /// The first of `order` that opens, remembering the ones after it; else the last error.
    /// When it is not the first, one line on stderr says why the ones before it did not open
    /// (no CUDA driver, no Vulkan driver, a CPU adapter, ...).
    pub fn first(order: &[Opener]) -> Result<Arc<dyn Backend>> {
        let mut passed_over = Vec::new();
        for (i, open) in order.iter().enumerate() {
            match open() {
                Ok(chosen) => {
                    if !passed_over.is_empty() {
                        let why: Vec<String> = passed_over.iter().map(Error::to_string).collect();
                        eprintln!("note: auto runs on {}: {}", chosen.name(), why.join("; "));
                    }
                    return Ok(Arc::new(Auto { chosen, rest: order[i + 1..].to_vec() }));
                }
                Err(e) => passed_over.push(e),
            }
        }
        Err(passed_over.pop().unwrap_or_else(|| Error::invalid("auto: no backend to choose from")))
    }
}

impl Backend for Auto {
    fn name(&self) -> String {
        self.chosen.name()
    }
    fn supports(&self, dtype: DType) -> bool {
        self.chosen.supports(dtype)
    }
    fn free_memory(&self) -> Option<u64> {
        self.chosen.free_memory()
    }
    fn buffers(&self) -> Result<&dyn Buffers> {
        self.chosen.buffers()
    }
    fn synchronize(&self) -> Result<()> {
        self.chosen.synchronize()
    }
    fn launch(&self, op: &Op) -> Result<()> {
        self.chosen.launch(op)
    }
    fn compile(&self, ops: &[Op]) -> Result<Box<dyn CompiledOps>> {
        self.chosen.compile(ops)
    }
    fn check_placed(&self, ops: &[Op], buffer_bytes: &[usize]) -> Result<()> {
        self.chosen.check_placed(ops, buffer_bytes)
    }
    fn fallback(&self) -> Option<Result<Arc<dyn Backend>>> {
        (!self.rest.is_empty()).then(|| Auto::first(&self.rest))
    }
}
