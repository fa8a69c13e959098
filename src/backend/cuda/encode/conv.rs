//! conv2d as an implicit GEMM (kernels/conv2d.cu): M = out_c, N = batch * oh * ow pixels,
//! K = in_c * kernel^2, one block per 64 x 64 tile of the output.
use super::{elem, suffix, Encoder, TILE, TILE_THREADS};
use crate::backend::Conv2d;
use crate::error::Result;

pub(super) fn conv2d(e: &Encoder, op: &Conv2d) -> Result<()> {
    let name = "conv2d";
    let dtype = elem(name, &[("x", &op.x), ("weight", &op.weight), ("out", &op.out)], &[("bias", &op.bias)])?;
    let Conv2d { batch, in_c, out_c, height, width, kernel, pad, .. } = *op;
    let pixels = batch * (height + 2 * pad + 1 - kernel) * (width + 2 * pad + 1 - kernel);
    if pixels == 0 || out_c == 0 {
        return Ok(());
    }
    let (x, weight, out) = (e.ptr(name, "x", &op.x)?, e.ptr(name, "weight", &op.weight)?, e.ptr(name, "out", &op.out)?);
    let bias = e.optional(name, "bias", &op.bias)?;
    let args = [
        x.into(),
        weight.into(),
        bias.into(),
        out.into(),
        batch.into(),
        in_c.into(),
        out_c.into(),
        height.into(),
        width.into(),
        kernel.into(),
        pad.into(),
    ];
    let grid = [pixels.div_ceil(TILE), out_c.div_ceil(TILE), 1];
    e.launch(name, &format!("conv2d_{}", suffix(dtype)), grid, TILE_THREADS, &args)
}
