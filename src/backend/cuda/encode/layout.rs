//! Data movement between image and token layouts: patchify, unpatchify, upsample2x (one .cu
//! file each), one thread per output element.
use super::{elem, suffix, Encoder};
use crate::backend::{PatchGeometry, Patchify, Unpatchify, Upsample2x, View};
use crate::error::Result;

/// Patchify and unpatchify take the same arguments: x, out, n, channels, height, width, patch.
fn patch_op(e: &Encoder, name: &'static str, g: &PatchGeometry, x: &View, out: &View) -> Result<()> {
    let dtype = elem(name, &[("x", x), ("out", out)], &[])?;
    let (x_ptr, out_ptr) = (e.ptr(name, "x", x)?, e.ptr(name, "out", out)?);
    let args = [x_ptr.into(), out_ptr.into(), x.len.into(), g.channels.into(), g.height.into(), g.width.into(), g.patch.into()];
    e.launch_flat(name, &format!("{name}_{}", suffix(dtype)), x.len, &args)
}

pub(super) fn patchify(e: &Encoder, op: &Patchify) -> Result<()> {
    patch_op(e, "patchify", &op.geom, &op.x, &op.out)
}

pub(super) fn unpatchify(e: &Encoder, op: &Unpatchify) -> Result<()> {
    patch_op(e, "unpatchify", &op.geom, &op.x, &op.out)
}

pub(super) fn upsample2x(e: &Encoder, op: &Upsample2x) -> Result<()> {
    let name = "upsample2x";
    let dtype = elem(name, &[("x", &op.x), ("out", &op.out)], &[])?;
    let (x, out) = (e.ptr(name, "x", &op.x)?, e.ptr(name, "out", &op.out)?);
    let n = op.out.len;
    let args = [x.into(), out.into(), n.into(), op.height.into(), op.width.into()];
    e.launch_flat("upsample", &format!("upsample2x_{}", suffix(dtype)), n, &args)
}
