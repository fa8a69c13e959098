//! The scoped binder every backbone loads its parameters through, after candle's
//! `VarBuilder::pp`: `p.pp("attn").pp("qkv")` is the scope `attn.qkv`, where a layer asks for
//! its tensors by their last name (`weight`, `bias`). The loading code runs in one of two modes:
//! binding (each tensor fetched from a `WeightSource`, checked, and stored in the graph) or
//! recording (only the key and shape are noted; nothing is fetched, allocated or built), which
//! is how a config lists its parameters: in the order its loading code asks for them, which
//! each backbone keeps to checkpoint order.
//!
//! A loader of one layer takes its own scope by value (`Linear::load(p.pp("qkv"), ..)`); a
//! loader of several keys at its caller's level takes the caller's scope (`&mut Params`).
use std::fmt::Display;

use crate::backend::{BufId, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::weight_source::WeightSource;
use crate::tensor::{DType, HostTensor, Shape};

/// Where a binder's parameters go.
trait Sink {
    /// The tensor `key` of `shape`; None when only recording.
    fn fetch(&mut self, key: &str, shape: &[usize]) -> Result<Option<HostTensor>>;
    /// `tensor` stored in the graph as `name`.
    fn store(&mut self, name: &str, tensor: HostParam) -> View;
}

/// Binding: checked tensors from a weight source, stored in a graph.
struct Bind<'a> {
    graph: &'a mut GraphBuilder,
    weights: &'a mut dyn WeightSource,
}

impl Sink for Bind<'_> {
    fn fetch(&mut self, key: &str, shape: &[usize]) -> Result<Option<HostTensor>> {
        self.weights.fetch(key, shape).map(Some)
    }

    fn store(&mut self, name: &str, tensor: HostParam) -> View {
        self.graph.weight(name, tensor.0.expect("a binder's tensors are fetched"))
    }
}

/// Recording: each (key, shape) asked for, in order.
struct Record(Vec<(String, Vec<usize>)>);

impl Sink for Record {
    fn fetch(&mut self, key: &str, shape: &[usize]) -> Result<Option<HostTensor>> {
        self.0.push((key.to_string(), shape.to_vec()));
        Ok(None)
    }

    /// A view of no buffer: a recorded model is dropped, never run.
    fn store(&mut self, _name: &str, _tensor: HostParam) -> View {
        View { buf: BufId(u32::MAX), offset: 0, len: 0, dtype: DType::F32 }
    }
}

/// A parameter on the host, to be transformed before it is stored (rows concatenated, a table
/// gathered); absent when only recording.
pub struct HostParam(Option<HostTensor>);

impl HostParam {
    pub fn map(self, f: impl FnOnce(&HostTensor) -> HostTensor) -> HostParam {
        HostParam(self.0.as_ref().map(f))
    }

    /// Rows of one parameter after another (all of one width), in the first part's dtype. The
    /// bytes are copied once into a buffer of the final size (a group of DiT-XL/2's adaLN
    /// weights is up to 128 MiB in f32: no f32 staging copies beside it).
    pub fn concat_rows(parts: Vec<HostParam>) -> HostParam {
        let tensors: Option<Vec<HostTensor>> = parts.into_iter().map(|p| p.0).collect();
        HostParam(tensors.map(|parts| {
            let rows: usize = parts.iter().map(|t| t.shape.dims()[0]).sum();
            let cols = parts[0].numel() / parts[0].shape.dims()[0];
            let dtype = parts[0].dtype;
            let len = rows * cols * dtype.size();
            // All-zero parts (`ZeroWeights`, planning) give a fresh zero buffer, whose pages the
            // OS maps only when written: a plan stays free of resident weights. Real weights
            // stop the scan at their first nonzero byte.
            let bytes = if parts.iter().all(|p| p.bytes.iter().all(|&b| b == 0)) {
                vec![0; len]
            } else {
                let mut bytes = Vec::with_capacity(len);
                for part in parts {
                    bytes.extend_from_slice(&part.into_dtype(dtype).bytes);
                }
                bytes
            };
            let shape = if cols == 1 { Shape(vec![rows]) } else { Shape(vec![rows, cols]) };
            HostTensor { shape, dtype, bytes }
        }))
    }
}

/// A scope of parameter keys over a binding or recording sink.
pub struct Params<'a> {
    prefix: String,
    sink: &'a mut dyn Sink,
}

impl Params<'_> {
    /// The sub-scope `name` (a module name or a block index).
    pub fn pp(&mut self, name: impl Display) -> Params<'_> {
        Params { prefix: self.key(&name.to_string()), sink: &mut *self.sink }
    }

    /// This scope again, for a loader that takes its scope by value (as `Iterator::by_ref`).
    pub fn by_ref(&mut self) -> Params<'_> {
        Params { prefix: self.prefix.clone(), sink: &mut *self.sink }
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The tensor `name` of exactly `shape`, stored in the graph under its key.
    pub fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<View> {
        let tensor = self.host(name, shape)?;
        Ok(self.store(name, tensor))
    }

    /// The tensor `name` of exactly `shape`, kept on the host for `store`.
    pub fn host(&mut self, name: &str, shape: &[usize]) -> Result<HostParam> {
        let key = self.key(name);
        self.sink.fetch(&key, shape).map(HostParam)
    }

    /// A host parameter stored in the graph under `name` in this scope.
    pub fn store(&mut self, name: &str, tensor: HostParam) -> View {
        let key = self.key(name);
        self.sink.store(&key, tensor)
    }
}

/// Every (key, shape) `load` asks for, in order, with nothing fetched or built.
pub fn record<T>(load: impl FnOnce(Params) -> Result<T>) -> Vec<(String, Vec<usize>)> {
    let mut sink = Record(Vec::new());
    load(Params { prefix: String::new(), sink: &mut sink }).map(drop).expect("recording fetches nothing, so it cannot fail");
    sink.0
}

/// Runs `load` with each tensor fetched from `weights` and stored in `graph`.
pub fn bind<T>(graph: &mut GraphBuilder, weights: &mut dyn WeightSource, load: impl FnOnce(Params) -> Result<T>) -> Result<T> {
    load(Params { prefix: String::new(), sink: &mut Bind { graph, weights } })
}
