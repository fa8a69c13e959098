//! `compile`: a graph's launches captured once as a CUDA graph, replayed per step with one
//! cuGraphLaunch. Before the capture the launches run once eagerly: that loads every kernel
//! module and lets cuBLASLt load its kernels outside the capture (loading is not a stream
//! operation), and it is harmless because a graph's launches recompute every intermediate
//! from the inputs (a replay must be repeatable anyway).
use std::sync::{Arc, Mutex};

use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::CudaGraph;

use super::device::{err, Gpu};
use super::encode::{encode, Encoder};
use super::launch::OnDevice;
use super::memory::{DeviceBuffer, Memory};
use crate::backend::{Backend, CompiledOps, Op};
use crate::error::Result;

/// A captured graph. cudarc's `CudaGraph` is not Send: a CUDA graph may be used from any
/// thread as long as calls on it are serialized, which the mutex does.
struct Exec(CudaGraph);
// SAFETY: see above; every use goes through `Recorded::graph`'s mutex.
unsafe impl Send for Exec {}

/// Fields drop in declaration order, after `Drop::drop` (which destroys the graph itself): the
/// buffers, then the buffer table, and the device last, since when this holds the last `Arc`
/// of it, its modules, cuBLASLt handle and workspace go with it.
pub(super) struct Recorded {
    /// None for an empty op list (or once dropped).
    graph: Mutex<Option<Exec>>,
    /// The buffers the graph reads and writes, alive as long as it is.
    buffers: Vec<Arc<DeviceBuffer>>,
    memory: Arc<Memory>,
    gpu: Arc<Gpu>,
}

impl Recorded {
    /// Captures `ops` (their rules checked by the caller) on the backend's stream.
    pub fn capture(gpu: &Arc<Gpu>, memory: &Arc<Memory>, ops: &[Op]) -> Result<Recorded> {
        gpu.bind()?;
        let views = memory.lock();
        let device = OnDevice { gpu, views: &views };
        let encoder = Encoder::new(&device);
        ops.iter().try_for_each(|op| encode(&encoder, op))?;
        gpu.wait()?;
        let used: Vec<_> = ops.iter().flat_map(|op| op.views()).map(|(view, _)| view).collect();
        let buffers = views.keep_alive(&used);
        gpu.stream.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL).map_err(|e| err(format!("begin capture: {e}")))?;
        let encoded = ops.iter().try_for_each(|op| encode(&encoder, op));
        // End the capture whatever happened, so the stream is usable again.
        let captured = gpu.stream.end_capture(CUgraphInstantiate_flags(0)).map_err(|e| err(format!("end capture: {e}")));
        encoded?;
        let graph = captured?.map(Exec);
        if let Some(Exec(g)) = &graph {
            g.upload().map_err(|e| err(format!("graph upload: {e}")))?;
        }
        drop(views);
        Ok(Recorded { graph: Mutex::new(graph), buffers, memory: memory.clone(), gpu: gpu.clone() })
    }
}

impl Drop for Recorded {
    /// The graph goes first, once its last replay is done, while everything it launches (the
    /// kernel modules, cuBLASLt's workspace) is still alive. Then the buffers: the last
    /// reference to one waits for the stream when it goes. Both under the stream lock, so never
    /// while another thread captures.
    fn drop(&mut self) {
        let _stream = self.memory.lock();
        if let Some(graph) = self.graph.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            // Errors cannot be reported from here; destroying the graph is all that is left to do.
            let _ = self.gpu.bind().and_then(|()| self.gpu.wait());
            drop(graph);
        }
        self.buffers.clear();
    }
}

impl CompiledOps for Recorded {
    fn run(&self, _backend: &dyn Backend) -> Result<()> {
        let graph = self.graph.lock().unwrap_or_else(|p| p.into_inner());
        let Some(Exec(g)) = graph.as_ref() else {
            return Ok(());
        };
        self.gpu.bind()?;
        let _stream = self.memory.lock();
        g.launch().map_err(|e| err(format!("graph launch: {e}")))
    }
}
