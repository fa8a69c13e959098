//! Elementwise glue: add, unary and copy3d (kernels/elementwise.cu).
use cudarc::driver::sys::CUdeviceptr;

use super::{activation_code, elem, suffix, Encoder};
use crate::backend::{view_checks, Activation, Add, Copy3d, Unary};
use crate::error::Result;
use crate::tensor::DType;

use super::super::device::err;

pub(super) fn add(e: &Encoder, op: &Add) -> Result<()> {
    let name = "add";
    let dtype = elem(name, &[("a", &op.a), ("b", &op.b), ("out", &op.out)], &[])?;
    let (a, b, out) = (e.ptr(name, "a", &op.a)?, e.ptr(name, "b", &op.b)?, e.ptr(name, "out", &op.out)?);
    launch_add(e, dtype, a, b, out, op.a.len, op.b.len)
}

/// out[i] = a[i] + b[i % b_len] over `n` elements of `dtype` (out == a runs in place).
pub(super) fn launch_add(e: &Encoder, dtype: DType, a: CUdeviceptr, b: CUdeviceptr, out: CUdeviceptr, n: usize, b_len: usize) -> Result<()> {
    e.launch_flat("elementwise", &format!("add_{}", suffix(dtype)), n, &[a.into(), b.into(), out.into(), n.into(), b_len.into()])
}

pub(super) fn unary(e: &Encoder, op: &Unary) -> Result<()> {
    let name = "unary";
    let dtype = elem(name, &[("x", &op.x), ("out", &op.out)], &[])?;
    let (x, out) = (e.ptr(name, "x", &op.x)?, e.ptr(name, "out", &op.out)?);
    launch_unary(e, dtype, x, out, op.x.len, op.act)
}

/// out = act(x) over `n` elements of `dtype` (x == out runs in place).
pub(super) fn launch_unary(e: &Encoder, dtype: DType, x: CUdeviceptr, out: CUdeviceptr, n: usize, act: Activation) -> Result<()> {
    let args = [x.into(), out.into(), n.into(), activation_code(act).into()];
    e.launch_flat("elementwise", &format!("unary_{}", suffix(dtype)), n, &args)
}

/// The copy3d kernel for a (src, dst) dtype pair: the bits as they are for equal dtypes, else
/// a conversion through f32 between float dtypes.
fn copy3d_kernel(src: DType, dst: DType) -> Result<String> {
    match (src, dst) {
        (s, d) if s == d => Ok(format!("copy3d_b{}", 8 * s.size())),
        (s, d) if s.is_float() && d.is_float() => Ok(format!("copy3d_{}_{}", suffix(s), suffix(d))),
        (s, d) => Err(err(format!("copy3d: {s} to {d}: on cuda u32 copies only to u32"))),
    }
}

pub(super) fn copy3d(e: &Encoder, op: &Copy3d) -> Result<()> {
    let name = "copy3d";
    let function = copy3d_kernel(op.src.dtype, op.dst.dtype)?;
    if !view_checks::writes_each_element_once(op.dims, op.dst_strides) {
        return Err(err(format!(
            "{name}: dst strides {:?} over dims {:?} write some elements twice, which has no order on cuda",
            op.dst_strides, op.dims
        )));
    }
    let (src, dst) = (e.ptr(name, "src", &op.src)?, e.ptr(name, "dst", &op.dst)?);
    let [d0, d1, d2] = op.dims;
    let [s0, s1, s2] = op.src_strides;
    let [t0, t1, t2] = op.dst_strides;
    let n = d0 * d1 * d2;
    let args = [src.into(), dst.into(), d1.into(), d2.into(), n.into(), s0.into(), s1.into(), s2.into(), t0.into(), t1.into(), t2.into()];
    e.launch_flat("elementwise", &function, n, &args)
}
