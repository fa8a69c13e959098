//! Operands of the GEMM: strided matrices over stored elements (f32, f16 or bf16), read a line
//! at a time for packing, so f16/bf16 weights are never widened as a whole.
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// Stored elements of one view.
#[derive(Clone, Copy)]
pub(in crate::backend::cpu) enum Elems<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Bf16(&'a [bf16]),
}

impl<'a> From<&'a [f32]> for Elems<'a> {
    fn from(data: &'a [f32]) -> Self {
        Elems::F32(data)
    }
}

impl<'a> Elems<'a> {
    pub fn len(&self) -> usize {
        match self {
            Elems::F32(d) => d.len(),
            Elems::F16(d) => d.len(),
            Elems::Bf16(d) => d.len(),
        }
    }

    /// The elements from `from` on (empty past the end).
    pub fn skip(self, from: usize) -> Self {
        let from = from.min(self.len());
        match self {
            Elems::F32(d) => Elems::F32(&d[from..]),
            Elems::F16(d) => Elems::F16(&d[from..]),
            Elems::Bf16(d) => Elems::Bf16(&d[from..]),
        }
    }

    /// `out.len()` elements from `start`, `stride` apart, widened to f32.
    pub fn line_f32(&self, start: usize, stride: usize, out: &mut [f32]) {
        let n = out.len();
        match self {
            Elems::F32(d) if stride == 1 => out.copy_from_slice(&d[start..start + n]),
            Elems::F16(d) if stride == 1 => d[start..start + n].convert_to_f32_slice(out),
            Elems::Bf16(d) if stride == 1 => d[start..start + n].convert_to_f32_slice(out),
            Elems::F32(d) => out.iter_mut().enumerate().for_each(|(i, o)| *o = d[start + i * stride]),
            Elems::F16(d) => out.iter_mut().enumerate().for_each(|(i, o)| *o = d[start + i * stride].to_f32()),
            Elems::Bf16(d) => out.iter_mut().enumerate().for_each(|(i, o)| *o = d[start + i * stride].to_f32()),
        }
    }

    /// As `line_f32`, as bf16 bit patterns (f32 and f16 rounded to nearest even).
    pub fn line_bf16(&self, start: usize, stride: usize, out: &mut [u16]) {
        match self {
            Elems::Bf16(d) if stride == 1 => out.copy_from_slice(bytemuck::cast_slice(&d[start..start + out.len()])),
            Elems::Bf16(d) => out.iter_mut().enumerate().for_each(|(i, o)| *o = d[start + i * stride].to_bits()),
            Elems::F32(d) => out.iter_mut().enumerate().for_each(|(i, o)| *o = bf16::from_f32(d[start + i * stride]).to_bits()),
            Elems::F16(d) => out.iter_mut().enumerate().for_each(|(i, o)| *o = bf16::from_f32(d[start + i * stride].to_f32()).to_bits()),
        }
    }
}

/// A matrix over stored elements: element (i, j) at `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
pub(in crate::backend::cpu) struct MatRef<'a> {
    pub(super) data: Elems<'a>,
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) row_stride: usize,
    pub(super) col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// `rows` x `cols`, row-major with `row_stride`, starting at `data[0]`.
    pub fn new(data: impl Into<Elems<'a>>, rows: usize, cols: usize, row_stride: usize) -> Self {
        let data = data.into();
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * row_stride + cols <= data.len(),
            "cpu backend bug: {rows}x{cols} matrix at stride {row_stride} outside {} elements",
            data.len()
        );
        MatRef { data, rows, cols, row_stride, col_stride: 1 }
    }

    /// [rows, cols, row stride, col stride]: with the first element, what the matrix reads.
    pub fn geometry(&self) -> [usize; 4] {
        [self.rows, self.cols, self.row_stride, self.col_stride]
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }
}
