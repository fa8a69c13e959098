//! f32 matrix products through matrixmultiply's sgemm (threaded, SIMD chosen at run time).
//! Operands are strided views of slices, so transposes and column windows cost no copy.

/// A matrix borrowed from a slice: element (i, j) at `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
pub(super) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// `rows` x `cols`, row-major with `row_stride`, starting at `data[0]`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        let m = MatRef { data, rows, cols, row_stride, col_stride: 1 };
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * row_stride + cols <= data.len(),
            "cpu backend bug: {rows}x{cols} matrix at stride {row_stride} outside {} elements",
            data.len()
        );
        m
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Rows `start..start + rows` of a row-major matrix.
    pub fn row_block(self, start: usize, rows: usize) -> Self {
        assert!(start + rows <= self.rows, "cpu backend bug: rows {start}+{rows} of {}", self.rows);
        let from = (start * self.row_stride).min(self.data.len());
        MatRef { data: &self.data[from..], rows, ..self }
    }
}

/// c = a b, or c += a b with `accumulate`; c is dense row-major [a.rows, b.cols].
pub(super) fn matmul(a: MatRef, b: MatRef, c: &mut [f32], accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && c.len() == m * n, "cpu backend bug: matmul [{m}, {k}] x [{}, {n}] into {}", b.rows, c.len());
    if c.is_empty() {
        return;
    }
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: `MatRef::new` checked that every element of a and b lies inside its slice (a
    // transpose addresses the same elements); c is exclusively borrowed with exactly m * n
    // elements, so it aliases neither. With beta = 0, sgemm does not read c.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}
