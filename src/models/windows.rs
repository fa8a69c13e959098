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

    /// Moves the channels-last map `pixels` into the window-ordered `rows` (`into_windows`) or
    /// back, one copy3d per window column: dims [batch * windows per column, window rows,
    /// window * channels].
    fn copy_columns(&self, g: &mut GraphBuilder, pixels: View, rows: View, into_windows: bool) {
        let (s, ws, c, nw) = (self.side, self.window, self.channels, self.per_row());
        let grid_strides = [ws * s * c, s * c, 1];
        let window_strides = [nw * ws * ws * c, ws * c, 1];
        for col in 0..nw {
            let map = (pixels.slice(col * ws * c, pixels.len - col * ws * c), grid_strides);
            let windows = (rows.slice(col * ws * ws * c, rows.len - col * ws * ws * c), window_strides);
            let ((src, src_strides), (dst, dst_strides)) = if into_windows { (map, windows) } else { (windows, map) };
            g.push(Op::Copy3d(Copy3d { dims: [self.batch * nw, ws, ws * c], src, src_strides, dst, dst_strides }));
        }
    }
}

/// x [batch, C, side, side] -> rows [batch * side^2, C] in window order.
pub fn to_windows(g: &mut GraphBuilder, x: View, grid: WindowGrid) -> View {
    let pixels = channels_last(g, x, grid.batch, grid.channels, grid.side * grid.side);
    if grid.window == grid.side {
        return pixels; // one window: row-major pixels are already in window order
    }
    let rows = g.temp([grid.batch * grid.side * grid.side, grid.channels]);
    grid.copy_columns(g, pixels, rows, true);
    rows
}

/// Inverse of `to_windows`: rows [batch * side^2, C] in window order -> a new [batch, C, side, side].
pub fn from_windows(g: &mut GraphBuilder, rows: View, grid: WindowGrid) -> View {
    let spatial = grid.side * grid.side;
    let pixels = if grid.window == grid.side {
        rows
    } else {
        let pixels = g.temp([grid.batch * spatial, grid.channels]);
        grid.copy_columns(g, pixels, rows, false);
        pixels
    };
    channels_first(g, pixels, grid.batch, grid.channels, spatial)
}
