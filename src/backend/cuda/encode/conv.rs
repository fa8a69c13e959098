//! conv2d as an implicit GEMM (kernels/conv2d.cu): M = out_c, N = batch * oh * ow pixels,
//! K = in_c * kernel^2, one block per 64 x 64 tile of the output, on tensor cores (f32 as
//! 3xTF32): conv2d_k1_*, conv2d_k3_* for the 1x1 and 3x3 kernels, conv2d_* for any other size.
//! conv2d_k1/k3 split k into (channel, tap) in 32 bits, so they take K = in_c * kernel^2 up to
//! 2^32 (the SD VAE's largest is 4608); beyond, conv2d_* (64 bits).
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
    let function = match kernel {
        1 | 3 if in_c * kernel * kernel <= 1 << 32 => format!("conv2d_k{kernel}_{}", suffix(dtype)),
        _ => format!("conv2d_{}", suffix(dtype)),
    };
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
    e.launch(name, &function, grid, TILE_THREADS, &args)
}
