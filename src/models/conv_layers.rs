//! Conv-net pieces shared by the VAE decoder and the image-space DiffiT: 2-D convolutions and
//! GroupNorms bound to their parameters, and NCHW <-> token-major transposes.
use crate::backend::{Conv2d, Copy3d, GroupNorm, Op, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::params::Params;

/// A 2-D convolution with bias, zero padding kernel / 2 (odd kernels keep the size).
pub struct Conv {
    weight: View,
    bias: View,
    out_c: usize,
    in_c: usize,
    kernel: usize,
}

impl Conv {
    /// `weight` [out_c, in_c, k, k] and `bias` [out_c].
    pub fn load(mut p: Params, out_c: usize, in_c: usize, kernel: usize) -> Result<Conv> {
        Ok(Conv { weight: p.tensor("weight", &[out_c, in_c, kernel, kernel])?, bias: p.tensor("bias", &[out_c])?, out_c, in_c, kernel })
    }

    /// x [batch, in_c, h, w] -> `out` [batch, out_c, h, w].
    pub fn apply_into(&self, g: &mut GraphBuilder, x: View, batch: usize, h: usize, w: usize, out: View) {
        g.push(Op::Conv2d(Conv2d {
            batch,
            in_c: self.in_c,
            out_c: self.out_c,
            height: h,
            width: w,
            kernel: self.kernel,
            pad: self.kernel / 2,
            x,
            weight: self.weight,
            bias: Some(self.bias),
            out,
        }));
    }

    /// x [batch, in_c, h, w] -> a new [batch, out_c, h, w].
    pub fn apply(&self, g: &mut GraphBuilder, x: View, batch: usize, h: usize, w: usize) -> View {
        let out = g.temp([batch, self.out_c, h, w]);
        self.apply_into(g, x, batch, h, w, out);
        out
    }

    /// The same conv with stride 2 (PyTorch Conv2d(k, stride=2, padding=k/2)) on even h, w:
    /// output (i, j) is the stride-1 output at (2i, 2j), so it is the stride-1 conv followed by
    /// a copy of every other row and column. Returns [batch, out_c, h/2, w/2].
    pub fn apply_stride2(&self, g: &mut GraphBuilder, x: View, batch: usize, h: usize, w: usize) -> View {
        let full = self.apply(g, x, batch, h, w);
        let out = g.temp([batch, self.out_c, h / 2, w / 2]);
        g.push(Op::Copy3d(Copy3d {
            dims: [batch * self.out_c, h / 2, w / 2],
            src: full,
            src_strides: [h * w, 2 * w, 2],
            dst: out,
            dst_strides: [(h / 2) * (w / 2), w / 2, 1],
        }));
        out
    }
}

/// A GroupNorm with affine gamma/beta, optionally followed by SiLU (the GN -> SiLU pair of
/// ResBlocks).
pub struct GroupNormLayer {
    gamma: View,
    beta: View,
    channels: usize,
    groups: usize,
    eps: f32,
}

impl GroupNormLayer {
    /// `weight` (gamma) and `bias` (beta), both [channels].
    pub fn load(mut p: Params, channels: usize, groups: usize, eps: f32) -> Result<GroupNormLayer> {
        Ok(GroupNormLayer { gamma: p.tensor("weight", &[channels])?, beta: p.tensor("bias", &[channels])?, channels, groups, eps })
    }

    /// GN(x) (then SiLU if `silu`) of x [batch, channels, spatial], as a new intermediate.
    pub fn apply(&self, g: &mut GraphBuilder, x: View, batch: usize, spatial: usize, silu: bool) -> View {
        let out = g.temp([batch, self.channels, spatial]);
        g.push(Op::GroupNorm(GroupNorm {
            batch,
            channels: self.channels,
            spatial,
            groups: self.groups,
            eps: self.eps,
            silu,
            x,
            gamma: self.gamma,
            beta: self.beta,
            out,
        }));
        out
    }
}

/// [batch, channels, spatial] -> a new [batch, spatial, channels] (pixels become token rows).
pub fn channels_last(g: &mut GraphBuilder, x: View, batch: usize, channels: usize, spatial: usize) -> View {
    transpose(g, x, batch, channels, spatial)
}

/// [batch, spatial, channels] -> a new [batch, channels, spatial].
pub fn channels_first(g: &mut GraphBuilder, x: View, batch: usize, channels: usize, spatial: usize) -> View {
    transpose(g, x, batch, spatial, channels)
}

/// [batch, rows, cols] -> a new [batch, cols, rows] (one copy3d).
fn transpose(g: &mut GraphBuilder, x: View, batch: usize, rows: usize, cols: usize) -> View {
    let out = g.temp([batch, cols, rows]);
    g.push(Op::Copy3d(Copy3d {
        dims: [batch, cols, rows],
        src: x,
        src_strides: [rows * cols, 1, cols],
        dst: out,
        dst_strides: [rows * cols, rows, 1],
    }));
    out
}
