//! copy3d: a strided 3-D copy (token concat/split) that converts dtype when src and dst
//! differ. Same-dtype copies move raw bytes, so they are exact for every dtype, u32 included.
use super::memory::{Dst, Src, Views};
use super::parallel;
use crate::backend::view_checks::last_index;
use crate::backend::Copy3d;
use crate::error::Result;

/// Copies `n` elements along the last dim: from element `from.0` of src in steps of `from.1`
/// to element `to.0` of dst in steps of `to.1`; `buf` is conversion scratch.
fn copy_run(src: &Src, from: (usize, usize), dst: &Dst, to: (usize, usize), n: usize, buf: &mut [f32]) {
    let ((s, s_step), (d, d_step)) = (from, to);
    let same = src.dtype() == dst.dtype();
    match (same, s_step == 1 && d_step == 1) {
        (true, true) => dst.store_raw(d, src.raw(s, n)),
        (true, false) => (0..n).for_each(|k| dst.store_raw(d + k * d_step, src.raw(s + k * s_step, 1))),
        (false, true) => {
            let size = buf.len();
            for start in (0..n).step_by(size) {
                let chunk = &mut buf[..size.min(n - start)];
                src.load(s + start, chunk);
                dst.store(d + start, chunk);
            }
        }
        (false, false) => (0..n).for_each(|k| dst.set(d + k * d_step, src.get(s + k * s_step))),
    }
}

pub(super) fn copy3d(views: &Views, op: &Copy3d) -> Result<()> {
    let Copy3d { dims, src_strides: ss, dst_strides: ds, .. } = *op;
    let src = views.src("copy3d", "src", &op.src)?;
    let dst = views.dst("copy3d", "dst", &op.dst)?;
    let Some(inner_last) = last_index([dims[1], dims[2], 1], [ds[1], ds[2], 0]) else {
        return Ok(()); // nothing to copy
    };
    let copy_plane = |i: usize, buf: &mut [f32]| {
        for j in 0..dims[1] {
            copy_run(&src, (i * ss[0] + j * ss[1], ss[2]), &dst, (i * ds[0] + j * ds[1], ds[2]), dims[2], buf);
        }
    };
    // Planes along dim 0 run in parallel only when their destinations cannot overlap;
    // otherwise the copy is serial, so overlapping writes land in a defined order.
    let plane_work = dims[1] * dims[2];
    if ds[0] > inner_last {
        parallel::for_each_index(dims[0], plane_work, || vec![0.0f32; 1024], |buf, i| copy_plane(i, buf));
    } else {
        let mut buf = vec![0.0f32; 1024];
        (0..dims[0]).for_each(|i| copy_plane(i, &mut buf));
    }
    Ok(())
}
