//! conv2d (stride 1, zero padding) as an implicit GEMM over blocks of output rows:
//! out[b][:, rows] = weight [out_c, in_c k k] x col [in_c k k, rows * ow], the column matrix
//! never built (its packed panels are gathered from the image, bounded per block); each finished
//! segment of an output channel's row goes straight to out (+ bias).
use super::gemm::{matmul_rows, Isa, MatRef, PackedB};
use super::memory::Views;
use crate::backend::Conv2d;
use crate::error::Result;
use crate::tensor::DType;

/// Upper bound on the elements of one packed column-matrix block (16 MiB of f32).
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
    for b in 0..batch {
        let image = &x[b * in_c * h * w..(b + 1) * in_c * h * w];
        for y0 in (0..oh).step_by(block_rows) {
            let cols = block_rows.min(oh - y0) * ow;
            // Column-matrix row (c, ky, kx) holds input pixel (y + ky - pad, x + kx - pad) of
            // channel c for every output pixel (y, x) of the block, zero outside the image; it
            // is packed straight from the image, run by run.
            let run = |r: usize, first: usize, out: &mut [f32]| {
                let (c, ky, kx) = (r / (k * k), r / k % k, r % k);
                // Output x reads input x + kx - pad: inside the image for x in [x_lo, x_hi).
                let (x_lo, x_hi) = (pad.saturating_sub(kx).min(ow), (w + pad).saturating_sub(kx).min(ow));
                let (len, mut done) = (out.len(), 0);
                while done < len {
                    let (yy, x0) = ((first + done) / ow, (first + done) % ow);
                    let seg = &mut out[done..(done + ow - x0).min(len)];
                    done += seg.len();
                    let y = y0 + yy + ky; // input row + pad
                    if y < pad || y - pad >= h {
                        seg.fill(0.0);
                        continue;
                    }
                    let row = &image[(c * h + y - pad) * w..][..w];
                    // seg covers output x in [x0, x0 + len): zeros, the image, zeros.
                    let lo = x_lo.clamp(x0, x0 + seg.len());
                    let hi = x_hi.clamp(lo, x0 + seg.len());
                    seg[..lo - x0].fill(0.0);
                    seg[lo - x0..hi - x0].copy_from_slice(&row[lo + kx - pad..hi + kx - pad]);
                    seg[hi - x0..].fill(0.0);
                }
            };
            let col = PackedB::from_runs(kk, cols, Isa::best(), bf16, true, &run);
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
