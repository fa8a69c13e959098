//! Data movement, one output element per invocation: patchify, unpatchify, upsample2x, copy3d.
use super::super::device::err;
use super::super::dispatch::{Builder, Dispatch, Grid};
use super::super::shaders::{Shader, COPY3D, PATCHIFY, UNPATCHIFY, UPSAMPLE2X};
use super::{binding_elems, elem, float_dtype};
use crate::backend::view_checks;
use crate::backend::{Copy3d, PatchGeometry, Patchify, Unpatchify, Upsample2x, View};
use crate::error::Result;
use crate::tensor::DType;

fn patch_op(shader: &'static Shader, g: &PatchGeometry, x: &View, out: &View) -> Result<Dispatch> {
    let dtype = elem(shader.name, &[("x", x), ("out", out)], &[])?;
    Builder::new(shader, vec![("elem", dtype)])
        .value(x.len)
        .value(g.channels)
        .value(g.height)
        .value(g.width)
        .value(g.patch)
        .view("x", x)
        .view("out", out)
        .finish(Grid::elements(x.len))
}

pub(super) fn patchify(op: &Patchify) -> Result<Dispatch> {
    patch_op(&PATCHIFY, &op.geom, &op.x, &op.out)
}

pub(super) fn unpatchify(op: &Unpatchify) -> Result<Dispatch> {
    patch_op(&UNPATCHIFY, &op.geom, &op.x, &op.out)
}

/// In runs of whole (sample, channel) planes whose views fit the binding limit, one dispatch
/// each.
pub(super) fn upsample2x(op: &Upsample2x, limits: &wgpu::Limits) -> Result<Vec<Dispatch>> {
    let dtype = elem("upsample2x", &[("x", &op.x), ("out", &op.out)], &[])?;
    let (planes, plane) = (op.batch * op.channels, op.height * op.width);
    let run = (binding_elems(limits, dtype) / (4 * plane).max(1)).clamp(1, planes.max(1));
    let runs = (0..planes).step_by(run).map(|first| {
        let count = run.min(planes - first);
        let out = op.out.slice(4 * first * plane, 4 * count * plane);
        Builder::new(&UPSAMPLE2X, vec![("elem", dtype)])
            .part_of("x", &op.x)
            .part_of("out", &op.out)
            .value(out.len)
            .value(op.width)
            .view("x", &op.x.slice(first * plane, count * plane))
            .view("out", &out)
            .finish(Grid::elements(out.len))
    });
    runs.collect()
}

pub(super) fn copy3d(op: &Copy3d) -> Result<Dispatch> {
    let (src, dst) = (op.src.dtype, op.dst.dtype);
    if (src == DType::U32) != (dst == DType::U32) {
        return Err(err(format!("copy3d: {src} to {dst}: on wgpu u32 copies only to u32")));
    }
    if src != DType::U32 {
        float_dtype("copy3d", "src", src)?;
        float_dtype("copy3d", "dst", dst)?;
    }
    if !view_checks::writes_each_element_once(op.dims, op.dst_strides) {
        return Err(err(format!(
            "copy3d: dst strides {:?} over dims {:?} write some elements twice, which has no order on wgpu",
            op.dst_strides, op.dims
        )));
    }
    let [d0, d1, d2] = op.dims;
    let [s0, s1, s2] = op.src_strides;
    let [t0, t1, t2] = op.dst_strides;
    let len = d0 * d1 * d2;
    Builder::new(&COPY3D, vec![("src_elem", src), ("dst_elem", dst)])
        .value(len)
        .value(d1)
        .value(d2)
        .view("src", &op.src)
        .value(s0)
        .value(s1)
        .value(s2)
        .view("dst", &op.dst)
        .value(t0)
        .value(t1)
        .value(t2)
        .finish(Grid::elements(len))
}
