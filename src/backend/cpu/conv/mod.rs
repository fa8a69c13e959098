//! conv2d (stride 1, zero padding): 3x3 kernels with padding 1 and enough channels by Winograd
//! F(4x4, 3x3) (`winograd`), every other shape as an implicit GEMM (`im2col`). Either way the
//! weight is transformed or packed once and kept (`Views::kept`).
mod im2col;
mod winograd;
mod winograd_tiles;

use super::gemm::{Isa, MatRef, PackedA};
use super::memory::Views;
use super::packed_cache::PackForm;
use crate::backend::{Conv2d, Op};
use crate::error::Result;
use crate::tensor::DType;
pub(super) use winograd::WinogradWeights;
use winograd_tiles::POINTS;

/// Below this many input or output channels the Winograd transforms cost more than the
/// multiply-adds they save (the SD VAE's 4-channel conv_in and 3-channel conv_out).
const WINOGRAD_MIN_CHANNELS: usize = 16;

/// Whether `op` runs as Winograd F(4x4, 3x3).
fn uses_winograd(op: &Conv2d) -> bool {
    op.kernel == 3 && op.pad == 1 && op.in_c.min(op.out_c) >= WINOGRAD_MIN_CHANNELS
}

/// Bytes a Winograd convolution's kept weights take beyond the f32 packing of its 3x3 weight
/// (`weight_copy_bytes` counts that): 36 - 9 more f32 per (out, in) channel pair; 0 for other ops.
pub(super) fn winograd_extra_bytes(op: &Op) -> usize {
    match op {
        Op::Conv2d(conv) if uses_winograd(conv) => (POINTS - 9) * conv.out_c * conv.in_c * 4,
        _ => 0,
    }
}

pub(super) fn conv2d(views: &Views, op: &Conv2d) -> Result<()> {
    let name = "conv2d";
    let Conv2d { batch, in_c, out_c, height: h, width: w, kernel: k, pad, .. } = *op;
    let bias = op.bias.as_ref().map(|b| views.src(name, "bias", b)).transpose()?.map(|b| b.values());
    let x = views.src(name, "x", &op.x)?;
    let weight = views.src(name, "weight", &op.weight)?;
    let out = views.dst(name, "out", &op.out)?;
    let (oh, ow) = (h + 2 * pad - k + 1, w + 2 * pad - k + 1);
    if batch * out_c * oh * ow == 0 {
        return Ok(());
    }
    let geometry = [out_c, in_c * k * k, in_c * k * k, 1];
    if uses_winograd(op) {
        let make = || WinogradWeights::new(weight.elems(), out_c, in_c, Isa::best());
        let weights = views.kept(name, "weight", &op.weight, (PackForm::Winograd, geometry, false), make)?;
        let load = |b: usize, c: usize, y: usize, row: &mut [f32]| x.load(((b * in_c + c) * h + y) * w, row);
        let store = |b: usize, o: usize, y: usize, row: &[f32]| out.store(((b * out_c + o) * h + y) * w, row);
        winograd::conv3x3((batch, in_c, out_c, h, w), &weights, bias.as_deref(), &load, &store, winograd::BLOCK_ELEMS);
        return Ok(());
    }
    // bf16 x bf16 products when both are stored as bf16.
    let bf16 = x.dtype() == DType::BF16 && weight.dtype() == DType::BF16;
    let make = || PackedA::new(&[MatRef::new(weight.elems(), out_c, in_c * k * k, in_c * k * k)], Isa::best(), bf16, true);
    let weight = views.kept(name, "weight", &op.weight, (PackForm::A, geometry, bf16), make)?;
    im2col::conv2d(op, &x.values(), &weight, bias.as_deref(), &out, bf16);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BufId, View};

    /// The preflight's extra bytes follow the routing: Winograd convolutions only.
    #[test]
    fn winograd_weights_are_counted_where_winograd_runs() {
        let view = View { buf: BufId(0), offset: 0, len: 1, dtype: DType::F32 };
        let conv = |kernel: usize, channels: usize| {
            let op = Conv2d {
                batch: 1,
                in_c: channels,
                out_c: 2 * channels,
                height: 8,
                width: 8,
                kernel,
                pad: kernel / 2,
                x: view,
                weight: view,
                bias: None,
                out: view,
            };
            (uses_winograd(&op), winograd_extra_bytes(&Op::Conv2d(op)))
        };
        assert_eq!(conv(3, 16), (true, 27 * 16 * 32 * 4));
        assert_eq!(conv(3, 8), (false, 0));
        assert_eq!(conv(1, 512), (false, 0));
    }
}
