//! conv2d (stride 1, zero padding) as an implicit GEMM over blocks of output rows:
//! out[b][:, rows] = weight [out_c, in_c k k] x col [in_c k k, rows * ow], the column matrix
//! never built (its packed panels are gathered from the image, bounded per block); each finished
//! segment of an output channel's row goes straight to out (+ bias).
use crate::backend::cpu::gemm::{product_rows, Isa, PackedA, PackedB};
use crate::backend::cpu::memory::Dst;
use crate::backend::Conv2d;

/// Upper bound on the elements of one packed column-matrix block (16 MiB of f32).
const COL_BLOCK: usize = 1 << 22;

/// out = conv2d(x, weight) + bias for the f32 image `x` and the weight packed as [out_c, in_c k k]
/// (`bf16`: for bf16 x bf16 products, the columns packed as bf16).
pub(super) fn conv2d(op: &Conv2d, x: &[f32], weight: &PackedA, bias: Option<&[f32]>, out: &Dst, bf16: bool) {
    let Conv2d { batch, in_c, out_c, height: h, width: w, kernel: k, pad, .. } = *op;
    let (oh, ow) = (h + 2 * pad - k + 1, w + 2 * pad - k + 1);
    let kk = in_c * k * k;
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
                if let Some(bias) = bias {
                    seg.iter_mut().for_each(|v| *v += bias[oc]);
                }
                out.store(((b * out_c + oc) * oh + y0) * ow + first, seg);
            };
            product_rows(weight, &col, None, &store, true);
        }
    }
}
