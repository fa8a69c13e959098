//! NCHW feature maps <-> token rows in window order, for windowed attention: windows row-major
//! over the grid, tokens row-major inside a window (Swin's window_partition order), so the
//! tokens of one window are consecutive rows. Copy3d launches only.
use crate::backend::{Copy3d, Op, View};
use crate::graph::GraphBuilder;
use crate::models::conv_layers::{channels_first, channels_last};

/// A [batch, channels, side, side] map cut into windows of window x window pixels.
#[derive(Clone, Copy, Debug)]
pub struct WindowGrid {
    pub batch: usize,
    pub channels: usize,
    pub side: usize,
    pub window: usize,
}

impl WindowGrid {
    fn per_row(&self) -> usize {
        self.side / self.window
    }

    /// Element strides of [batch * windows per column, window rows, window * channels] in the
    /// channels-last map (`grid`) and in the windowed rows (`windows`), and each window column's
    /// offset in both: one copy3d per window column moves a column of windows.
    fn column_copies(&self) -> ([usize; 3], [usize; 3], impl Iterator<Item = (usize, usize)>) {
        let (s, ws, c, nw) = (self.side, self.window, self.channels, self.per_row());
        let grid_strides = [ws * s * c, s * c, 1];
        let window_strides = [nw * ws * ws * c, ws * c, 1];
        (grid_strides, window_strides, (0..nw).map(move |col| (col * ws * c, col * ws * ws * c)))
    }

    fn dims(&self) -> [usize; 3] {
        [self.batch * self.per_row(), self.window, self.window * self.channels]
    }
}

/// x [batch, C, side, side] -> rows [batch * side^2, C] in window order.
pub fn to_windows(g: &mut GraphBuilder, x: View, grid: WindowGrid) -> View {
    let spatial = grid.side * grid.side;
    let pixels = channels_last(g, x, grid.batch, grid.channels, spatial);
    if grid.window == grid.side {
        return pixels; // one window: row-major pixels are already in window order
    }
    let out = g.temp([grid.batch * spatial, grid.channels]);
    let (grid_strides, window_strides, columns) = grid.column_copies();
    for (src_at, dst_at) in columns {
        g.push(Op::Copy3d(Copy3d {
            dims: grid.dims(),
            src: pixels.slice(src_at, pixels.len - src_at),
            src_strides: grid_strides,
            dst: out.slice(dst_at, out.len - dst_at),
            dst_strides: window_strides,
        }));
    }
    out
}

/// Inverse of `to_windows`: rows [batch * side^2, C] in window order -> a new [batch, C, side, side].
pub fn from_windows(g: &mut GraphBuilder, rows: View, grid: WindowGrid) -> View {
    let spatial = grid.side * grid.side;
    let pixels = if grid.window == grid.side {
        rows
    } else {
        let pixels = g.temp([grid.batch * spatial, grid.channels]);
        let (grid_strides, window_strides, columns) = grid.column_copies();
        for (grid_at, rows_at) in columns {
            g.push(Op::Copy3d(Copy3d {
                dims: grid.dims(),
                src: rows.slice(rows_at, rows.len - rows_at),
                src_strides: window_strides,
                dst: pixels.slice(grid_at, pixels.len - grid_at),
                dst_strides: grid_strides,
            }));
        }
        pixels
    };
    channels_first(g, pixels, grid.batch, grid.channels, spatial)
}
