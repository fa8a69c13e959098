//! Static graphs: a model records its launches once for (config, batch, dtype) against virtual
//! buffers; the planner gives every intermediate an offset in one arena (buffers whose
//! lifetimes do not overlap share memory); `Session` binds the plan to a backend, uploads the
//! weights once and replays the launches per step.
use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::{Access, Backend, BufId, CompiledOps, Op, View};
use crate::error::{Error, Result};
use crate::tensor::{DType, HostTensor, Shape};

/// Arena offsets are aligned to this many bytes (wgpu's storage-offset alignment, and enough
/// for any vectorised CUDA load).
pub const ALIGN: usize = 256;

#[derive(Clone, Debug)]
enum ValueKind {
    Input(String),
    Output(String),
    Weight(String),
    Temp,
}

#[derive(Clone, Debug)]
struct Value {
    kind: ValueKind,
    shape: Shape,
    dtype: DType,
}

/// Records a model's launches against virtual buffers (one `BufId` per value).
pub struct GraphBuilder {
    dtype: DType,
    values: Vec<Value>,
    weights: Vec<(usize, HostTensor)>,
    ops: Vec<Op>,
}

impl GraphBuilder {
    /// `dtype` is the storage type of weights and activations.
    pub fn new(dtype: DType) -> Self {
        GraphBuilder { dtype, values: Vec::new(), weights: Vec::new(), ops: Vec::new() }
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    fn value(&mut self, kind: ValueKind, shape: Shape, dtype: DType) -> View {
        let id = self.values.len();
        let len = shape.numel();
        self.values.push(Value { kind, shape, dtype });
        View { buf: BufId(id as u32), offset: 0, len, dtype }
    }

    /// A graph input, set before each run (`Session::set_input`).
    pub fn input(&mut self, name: &str, shape: impl Into<Shape>, dtype: DType) -> View {
        self.value(ValueKind::Input(name.to_string()), shape.into(), dtype)
    }

    /// A weight, stored in the graph's dtype and uploaded once per session.
    pub fn weight(&mut self, name: &str, tensor: HostTensor) -> View {
        let tensor = tensor.into_dtype(self.dtype);
        let view = self.value(ValueKind::Weight(name.to_string()), tensor.shape.clone(), self.dtype);
        self.weights.push((view.buf.0 as usize, tensor));
        view
    }

    /// An intermediate in the graph's dtype.
    pub fn temp(&mut self, shape: impl Into<Shape>) -> View {
        let dtype = self.dtype;
        self.value(ValueKind::Temp, shape.into(), dtype)
    }

    /// A buffer that holds a result after each run (`Session::output`).
    pub fn output(&mut self, name: &str, shape: impl Into<Shape>) -> View {
        let dtype = self.dtype;
        self.value(ValueKind::Output(name.to_string()), shape.into(), dtype)
    }

    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    /// Plan the arena and freeze the graph.
    pub fn finish(self) -> Result<Graph> {
        let plan = plan_arena(&self.values, &self.ops)?;
        Ok(Graph { dtype: self.dtype, values: self.values, weights: self.weights, ops: self.ops, plan })
    }
}

/// Offsets of the intermediates in the shared arena.
#[derive(Clone, Debug)]
pub struct ArenaPlan {
    /// Arena offset of each value that is an intermediate (None for the others).
    offsets: Vec<Option<usize>>,
    /// Arena size in bytes.
    pub arena_bytes: usize,
    /// What the intermediates would take without sharing.
    pub unshared_bytes: usize,
}

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// First-fit interval packing: values sorted by first use take the lowest offset not used by a
/// value whose lifetime [first, last] overlaps theirs.
fn plan_arena(values: &[Value], ops: &[Op]) -> Result<ArenaPlan> {
    let mut first = vec![usize::MAX; values.len()];
    let mut last = vec![0usize; values.len()];
    for (i, op) in ops.iter().enumerate() {
        for (view, access) in op.views() {
            let v = view.buf.0 as usize;
            if first[v] == usize::MAX {
                if access == Access::Read && matches!(values[v].kind, ValueKind::Temp) {
                    return Err(Error::invalid(format!("graph: op {i} ({}) reads an intermediate before anything writes it", op.name())));
                }
                first[v] = i;
            }
            last[v] = i;
        }
    }
    let mut temps: Vec<usize> = (0..values.len()).filter(|&v| matches!(values[v].kind, ValueKind::Temp) && first[v] != usize::MAX).collect();
    temps.sort_by_key(|&v| first[v]);
    let size = |v: usize| round_up(values[v].shape.numel() * values[v].dtype.size());

    let mut offsets = vec![None; values.len()];
    let mut placed: Vec<(usize, usize, usize)> = Vec::new(); // (offset, bytes, last use)
    let mut arena_bytes = 0;
    let mut unshared_bytes = 0;
    for v in temps {
        let bytes = size(v);
        unshared_bytes += bytes;
        placed.retain(|&(_, _, end)| end >= first[v]);
        placed.sort_unstable();
        let mut offset = 0;
        for &(o, b, _) in &placed {
            if offset + bytes <= o {
                break;
            }
            offset = offset.max(o + b);
        }
        placed.push((offset, bytes, last[v]));
        offsets[v] = Some(offset);
        arena_bytes = arena_bytes.max(offset + bytes);
    }
    Ok(ArenaPlan { offsets, arena_bytes, unshared_bytes })
}

/// A frozen graph: launches against virtual buffers, the weights, and the arena plan.
pub struct Graph {
    dtype: DType,
    values: Vec<Value>,
    weights: Vec<(usize, HostTensor)>,
    ops: Vec<Op>,
    pub plan: ArenaPlan,
}

impl Graph {
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    fn bytes_of(&self, pick: impl Fn(&ValueKind) -> bool) -> usize {
        self.values.iter().filter(|v| pick(&v.kind)).map(|v| round_up(v.shape.numel() * v.dtype.size())).sum()
    }

    pub fn weight_bytes(&self) -> usize {
        self.bytes_of(|k| matches!(k, ValueKind::Weight(_)))
    }

    /// Device memory a session of this graph holds: weights, inputs, outputs and the arena.
    pub fn peak_bytes(&self) -> usize {
        self.bytes_of(|k| !matches!(k, ValueKind::Temp)) + self.plan.arena_bytes
    }

    /// Where value `i` lives once bound.
    fn home(&self, i: usize) -> Home {
        let v = &self.values[i];
        match (&v.kind, self.plan.offsets[i]) {
            (ValueKind::Temp, Some(offset)) => Home::Arena(offset),
            (ValueKind::Temp, None) => Home::Nowhere,
            _ => Home::Own(round_up(v.shape.numel() * v.dtype.size()).max(ALIGN)),
        }
    }

    /// Refuses, before anything is allocated, a graph `backend` could not bind: a dtype it
    /// lacks, or ops beyond its limits with every view where binding would put it
    /// (`Backend::check_placed`: buffer 0 is the arena, buffer 1 + i value i's own).
    pub fn check(&self, backend: &dyn Backend) -> Result<()> {
        if let Some(v) = self.values.iter().find(|v| !backend.supports(v.dtype)) {
            return Err(Error::Backend { backend: backend.name(), msg: format!("dtype {} is not supported", v.dtype) });
        }
        let mut buffer_bytes = vec![self.plan.arena_bytes];
        let homes: Vec<View> = (0..self.values.len())
            .map(|i| {
                let (buf, offset) = match self.home(i) {
                    Home::Arena(offset) => (0, offset),
                    Home::Own(bytes) => {
                        buffer_bytes.push(bytes);
                        (buffer_bytes.len() - 1, 0)
                    }
                    Home::Nowhere => (UNBOUND.0 as usize, 0),
                };
                View { buf: BufId(buf as u32), offset, len: 0, dtype: self.values[i].dtype }
            })
            .collect();
        backend.check_placed(&rebased(&self.ops, &homes), &buffer_bytes)
    }
}

/// Where a value lives once its graph is bound.
enum Home {
    /// In the arena, at this byte offset.
    Arena(usize),
    /// In a buffer of its own of this many bytes (weights, inputs, outputs).
    Own(usize),
    /// Nowhere: an intermediate no op touches needs no memory.
    Nowhere,
}

/// The buffer of values that live nowhere.
const UNBOUND: BufId = BufId(u32::MAX);

/// `ops` with each view moved into the buffer of its value's home (`homes[value].buf`), at its
/// offset there.
fn rebased(ops: &[Op], homes: &[View]) -> Vec<Op> {
    let mut ops = ops.to_vec();
    for op in &mut ops {
        op.views_mut(&mut |view| {
            let home = homes[view.buf.0 as usize];
            view.buf = home.buf;
            view.offset += home.offset;
        });
    }
    ops
}

/// A graph bound to a backend: weights resident, every buffer allocated, launches rebound to
/// real memory and compiled once by the backend. `run` replays them.
pub struct Session {
    backend: Arc<dyn Backend>,
    compiled: Box<dyn CompiledOps>,
    inputs: HashMap<String, (View, Shape)>,
    outputs: HashMap<String, (View, Shape)>,
    /// Declared last: dropped after `compiled`, which may refer to these buffers.
    _owned: Owned,
}

impl Session {
    /// `graph` bound to `backend`, or, where `backend` refuses it (an op beyond one of its
    /// limits, a dtype it lacks, too little memory) and was chosen by `auto`, to auto's next
    /// choice, with a one-line note on stderr.
    pub fn new(backend: Arc<dyn Backend>, graph: &Graph) -> Result<Self> {
        match Self::bind(backend.clone(), graph) {
            Err(refused @ Error::Backend { .. }) => match backend.fallback() {
                Some(next) => {
                    let next = next?;
                    eprintln!("note: {refused}; auto runs this graph on {} instead", next.name());
                    Self::new(next, graph)
                }
                None => Err(refused),
            },
            bound => bound,
        }
    }

    fn bind(backend: Arc<dyn Backend>, graph: &Graph) -> Result<Self> {
        graph.check(backend.as_ref())?;
        preflight(backend.as_ref(), graph)?;
        let mut owned = Owned { backend: backend.clone(), ids: Vec::new() };
        let mut inputs = HashMap::new();
        let mut outputs = HashMap::new();
        let arena = if graph.plan.arena_bytes > 0 { Some(owned.alloc(graph.plan.arena_bytes)?) } else { None };
        // Real location of each virtual buffer.
        let mut bound: Vec<View> = Vec::with_capacity(graph.values.len());
        for (i, v) in graph.values.iter().enumerate() {
            let len = v.shape.numel();
            let view = match graph.home(i) {
                Home::Arena(offset) => View { buf: arena.expect("arena exists when temps do"), offset, len, dtype: v.dtype },
                Home::Nowhere => View { buf: UNBOUND, offset: 0, len, dtype: v.dtype },
                Home::Own(bytes) => View { buf: owned.alloc(bytes)?, offset: 0, len, dtype: v.dtype },
            };
            match &v.kind {
                ValueKind::Input(name) => {
                    inputs.insert(name.clone(), (view, v.shape.clone()));
                }
                ValueKind::Output(name) => {
                    outputs.insert(name.clone(), (view, v.shape.clone()));
                }
                _ => {}
            }
            bound.push(view);
        }
        for (i, tensor) in &graph.weights {
            if let ValueKind::Weight(name) = &graph.values[*i].kind {
                backend.write(bound[*i], &tensor.bytes).map_err(|e| Error::invalid(format!("uploading weight '{name}': {e}")))?;
            }
        }
        let ops = rebased(&graph.ops, &bound);
        let compiled = backend.compile(&ops)?;
        Ok(Session { backend, compiled, inputs, outputs, _owned: owned })
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Whether the graph has an input called `name`.
    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.contains_key(name)
    }

    /// Copy `tensor` into input `name`, converting floats to the input's dtype.
    pub fn set_input(&self, name: &str, tensor: &HostTensor) -> Result<()> {
        let (view, shape) = self.inputs.get(name).ok_or_else(|| Error::invalid(format!("graph has no input '{name}'")))?;
        if &tensor.shape != shape {
            return Err(Error::invalid(format!("input '{name}': expected shape {shape}, found {}", tensor.shape)));
        }
        let bytes = match (tensor.dtype, view.dtype) {
            (a, b) if a == b => tensor.bytes.clone(),
            (a, b) if a.is_float() && b.is_float() => tensor.to_dtype(b).bytes,
            (a, b) => return Err(Error::invalid(format!("input '{name}': expected dtype {b}, found {a}"))),
        };
        self.backend.write(*view, &bytes)
    }

    /// Replay every launch.
    pub fn run(&self) -> Result<()> {
        self.compiled.run(&*self.backend)
    }

    /// Shape of output `name`.
    pub fn output_shape(&self, name: &str) -> Option<&Shape> {
        self.outputs.get(name).map(|(_, shape)| shape)
    }

    /// Read output `name` back as f32.
    pub fn output(&self, name: &str) -> Result<HostTensor> {
        let (view, shape) = self.outputs.get(name).ok_or_else(|| Error::invalid(format!("graph has no output '{name}'")))?;
        self.backend.synchronize()?;
        let bytes = self.backend.read(*view)?;
        Ok(HostTensor { shape: shape.clone(), dtype: view.dtype, bytes }.to_dtype(DType::F32))
    }
}

/// Refuses a graph whose planned memory (weights, inputs, outputs, arena) exceeds what the
/// backend has free, before anything is allocated: a too-large batch is a one-line error, not an
/// out-of-memory abort halfway through.
pub fn preflight(backend: &dyn Backend, graph: &Graph) -> Result<()> {
    let Some(free) = backend.free_memory() else {
        return Ok(());
    };
    let copies = backend.weight_copy_bytes(graph.weight_bytes(), graph.dtype(), graph.ops()) as u64;
    let need = graph.peak_bytes() as u64 + copies;
    if need <= free {
        return Ok(());
    }
    let batch = graph
        .values
        .iter()
        .find(|v| matches!(&v.kind, ValueKind::Input(name) if name == "x"))
        .and_then(|v| v.shape.0.first())
        .map_or(String::new(), |b| format!("batch {b}: "));
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let packed = if copies > 0 { format!("{:.2} GiB of packed copies, ", gib(copies)) } else { String::new() };
    Err(Error::Backend {
        backend: backend.name(),
        msg: format!(
            "{batch}the graph needs {:.2} GiB ({:.2} GiB weights, {packed}{:.2} GiB activations) but only {:.2} GiB is free; lower --batch",
            gib(need),
            gib(graph.weight_bytes() as u64),
            gib(graph.plan.arena_bytes as u64),
            gib(free)
        ),
    })
}

/// The buffers a session allocated, freed when it drops (or when `Session::new` fails).
struct Owned {
    backend: Arc<dyn Backend>,
    ids: Vec<BufId>,
}

impl Owned {
    fn alloc(&mut self, bytes: usize) -> Result<BufId> {
        let id = self.backend.alloc(bytes)?;
        self.ids.push(id);
        Ok(id)
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            self.backend.free(id);
        }
    }
}
