//! One compute dispatch as lowering describes it: the shader and its dtype variant, what each
//! storage binding holds, the parameter words and the workgroup grid. Views stay symbolic here;
//! `recorded` binds them and writes each view's element offset into its parameter slot.
use super::device::err;
use super::shaders::{Consts, Shader, Variant};
use crate::backend::View;
use crate::error::Result;

/// Invocations per workgroup of the flat (one element per invocation) shaders and the norms.
pub(super) const FLAT_THREADS: usize = 256;

/// What a storage binding holds.
pub(super) enum Source {
    View(View),
    /// An optional view that is not there (the shader is told so and never reads it).
    Absent,
    /// Constant f32 data owned by the dispatch.
    Data(Vec<f32>),
    /// This many f32 words of working memory from the start of the recording's scratch buffer
    /// (`recorded`), one buffer that every dispatch of a recording asking for scratch shares:
    /// the dispatches run in order, so one of an op's dispatches hands its results to the next
    /// through it, and the next op reuses it.
    Scratch(usize),
}

pub(super) struct Slot {
    pub field: &'static str,
    pub source: Source,
    /// The parameter that receives the index of the view's first element in its binding.
    pub offset_param: usize,
}

/// The workgroups of a dispatch.
#[derive(Clone, Copy, Debug)]
pub(super) enum Grid {
    /// This many workgroups in a row, split over x and y when one dimension cannot hold them
    /// (shaders/lib/flat_index.wgsl puts them back in order).
    Flat(usize),
    /// An explicit 3-D grid.
    Fixed([usize; 3]),
}

impl Grid {
    /// Workgroups of `FLAT_THREADS` invocations, one per element.
    pub fn elements(len: usize) -> Grid {
        Grid::Flat(len.div_ceil(FLAT_THREADS))
    }

    /// The workgroup counts, each at most `max` (the adapter's per-dimension limit).
    pub fn counts(self, op: &str, max: u32) -> Result<[u32; 3]> {
        let max = max as usize;
        let dims = match self {
            Grid::Flat(groups) if groups <= max => [groups, 1, 1],
            Grid::Flat(groups) => [max, groups.div_ceil(max), 1],
            Grid::Fixed(dims) => dims,
        };
        match dims.iter().all(|&d| d <= max) {
            true => Ok(dims.map(|d| d as u32)),
            false => Err(err(format!("{op}: {dims:?} workgroups exceed the adapter's {max} per dimension"))),
        }
    }
}

pub(super) struct Dispatch {
    pub shader: &'static Shader,
    pub variant: Variant,
    /// Constants of the shader set to other values (`Builder::constant`).
    pub consts: Consts,
    /// Views as the op gave them, of which this dispatch binds a part: each must lie in its
    /// buffer all the same (`Builder::part_of`).
    pub wholes: Vec<(&'static str, View)>,
    /// Storage bindings 1, 2, ... (binding 0 is the parameters).
    pub slots: Vec<Slot>,
    pub params: Vec<u32>,
    pub grid: Grid,
}

/// Builds a `Dispatch` in the order of the shader's `Params` struct: each call appends one
/// parameter (a view appends its element offset, an optional view a presence flag first) and
/// each view also takes the next storage binding.
pub(super) struct Builder {
    shader: &'static Shader,
    variant: Variant,
    consts: Consts,
    wholes: Vec<(&'static str, View)>,
    slots: Vec<Slot>,
    params: Vec<usize>,
}

impl Builder {
    pub fn new(shader: &'static Shader, variant: Variant) -> Self {
        Builder { shader, variant, consts: Vec::new(), wholes: Vec::new(), slots: Vec::new(), params: Vec::new() }
    }

    /// Records that a view bound below is a part of `whole` (field `field` of the op), which
    /// binding checks against its buffer too; no parameter.
    pub fn part_of(mut self, field: &'static str, whole: &View) -> Self {
        self.wholes.push((field, *whole));
        self
    }

    /// Sets the shader's `const name: u32` to `value` (a pipeline of its own); no parameter.
    pub fn constant(mut self, name: &'static str, value: u32) -> Self {
        self.consts.push((name, value));
        self
    }

    fn slot(mut self, field: &'static str, source: Source) -> Self {
        self.slots.push(Slot { field, source, offset_param: self.params.len() });
        self.params.push(0);
        self
    }

    pub fn view(self, field: &'static str, view: &View) -> Self {
        self.slot(field, Source::View(*view))
    }

    pub fn optional(self, field: &'static str, view: &Option<View>) -> Self {
        match view {
            Some(view) => self.value(1).view(field, view),
            None => self.value(0).slot(field, Source::Absent),
        }
    }

    pub fn data(self, field: &'static str, values: Vec<f32>) -> Self {
        self.slot(field, Source::Data(values))
    }

    pub fn scratch(self, field: &'static str, words: usize) -> Self {
        self.slot(field, Source::Scratch(words))
    }

    pub fn value(mut self, value: usize) -> Self {
        self.params.push(value);
        self
    }

    pub fn float(self, value: f32) -> Self {
        self.value(value.to_bits() as usize)
    }

    /// The dispatch, or an error if a parameter does not fit the shaders' u32 arithmetic.
    pub fn finish(self, grid: Grid) -> Result<Dispatch> {
        let name = self.shader.name;
        let params = self
            .params
            .iter()
            .map(|&v| u32::try_from(v).map_err(|_| err(format!("{name}: a size or index of {v} exceeds the shaders' 32-bit indexing"))))
            .collect::<Result<Vec<u32>>>()?;
        Ok(Dispatch { shader: self.shader, variant: self.variant, consts: self.consts, wholes: self.wholes, slots: self.slots, params, grid })
    }
}
