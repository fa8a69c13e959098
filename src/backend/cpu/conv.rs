//! conv2d (stride 1, zero padding) as im2col + GEMM, over blocks of output rows so the
//! column matrix stays bounded: out[b][:, rows] = weight [out_c, in_c k k] x col [in_c k k,
//! rows * ow]; each finished segment of an output channel's row goes straight to out (+ bias).
use super::gemm::{matmul_rows, Isa, MatRef, PackedB};
use super::memory::Views;
use super::parallel;
use crate::backend::Conv2d;
use crate::error::Result;
use crate::tensor::DType;

/// Upper bound on the elements of one column-matrix block (16 MiB of f32).
const COL_BLOCK: usize = 1 << 22;

pub(super) fn conv2d(views: &Views, op: &Conv2d) -> Result<()> {
    let name = "conv2d";
    let Conv2d { batch, in_c, out_c, height: h, width: w, kernel: k, pad, .. } = *op;
    let (oh, ow) = (h + 2 * pad - k + 1, w + 2 * pad - k + 1);
    let kk = in_c * k * k;

    let bias = op.bias.as_ref().map(|b| views.src(name, "bias", b)).transpose()?.map(|b| b.values());
    let x = views.src(name, "x", &op.x)?;
    let weight = views.src(name, "weight", &op.weight)?;
    let out = views.dst(name, "out", &op.out)?;
    if batch * out_c * oh * ow == 0 {
        return Ok(());
    }
    // bf16 x bf16 products when both are stored as bf16 (the columns are then exactly bf16).
    let bf16 = x.dtype() == DType::BF16 && weight.dtype() == DType::BF16;
    let weight = MatRef::new(weight.elems(), out_c, kk, kk);
    let x = x.values();
    let block_rows = (COL_BLOCK / kk.saturating_mul(ow).max(1)).clamp(1, oh);
    let mut col = vec![0.0f32; kk * block_rows * ow];
    for b in 0..batch {
        let image = &x[b * in_c * h * w..(b + 1) * in_c * h * w];
        for y0 in (0..oh).step_by(block_rows) {
            let cols = block_rows.min(oh - y0) * ow;
            let col = &mut col[..kk * cols];
            // Column-matrix row (c, ky, kx) holds input pixel (y + ky - pad, x + kx - pad) of
            // channel c for every output pixel (y, x) of the block, zero outside the image.
            parallel::for_each_row(col, cols, |r, col_row| {
                let (c, ky, kx) = (r / (k * k), r / k % k, r % k);
                for (i, v) in col_row.iter_mut().enumerate() {
                    let (y, xo) = (y0 + i / ow + ky, i % ow + kx);
                    let inside = y >= pad && y - pad < h && xo >= pad && xo - pad < w;
                    *v = if inside { image[(c * h + y - pad) * w + xo - pad] } else { 0.0 };
                }
            });
            let col = PackedB::new(MatRef::new(&*col, kk, cols, cols), Isa::best(), bf16, true);
            let store = |oc: usize, first: usize, seg: &mut [f32]| {
                if let Some(bias) = &bias {
                    seg.iter_mut().for_each(|v| *v += bias[oc]);
                }
                out.store(((b * out_c + oc) * oh + y0) * ow + first, seg);
            };
            matmul_rows(&[weight], &col, None, &store, true);
        }
    }
    Ok(())
}
