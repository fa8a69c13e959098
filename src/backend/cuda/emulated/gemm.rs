//! cuBLASLt's part on the emulator: the same row-major product and epilogues as
//! src/backend/cuda/blas.rs sets up, out[m, n] = epilogue(x[m, k] w[n, k]^T + beta out + bias)
//! with beta = accumulate and the GELU epilogue's tanh approximation, on the CPU with f32
//! accumulation (cuBLASLt's compute type) and one rounding to the storage type.
use super::super::blas::RowMajorGemm;
use crate::tensor::{bytes_to_f32, f32_to_bytes};

/// The `rows` x `cols` matrix with row stride `stride` elements at host address `ptr`, as f32.
///
/// # Safety
/// The bytes from `ptr` to its last element must lie in one live buffer.
unsafe fn load(ptr: u64, rows: usize, cols: usize, stride: usize, g: &RowMajorGemm) -> Vec<f32> {
    let len = (rows - 1) * stride + cols;
    let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len * g.dtype.size()) };
    let all = bytes_to_f32(bytes, g.dtype);
    (0..rows).flat_map(|r| all[r * stride..r * stride + cols].iter().copied()).collect()
}

/// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
fn gelu_tanh(x: f32) -> f32 {
    0.5 * x * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

/// Runs `g` (m, n, k non-zero, as cuBLASLt gets them).
///
/// # Safety
/// Every address of `g` must point into live buffers holding its matrices, out not
/// overlapping x, w or bias.
pub(super) unsafe fn gemm(g: &RowMajorGemm) {
    let x = unsafe { load(g.x, g.m, g.k, g.x_stride, g) };
    let w = unsafe { load(g.w, g.n, g.k, g.w_stride, g) };
    let bias = g.bias.map(|b| unsafe { load(b, 1, g.n, g.n, g) });
    let mut out = match g.accumulate {
        true => unsafe { load(g.out, g.m, g.n, g.n, g) },
        false => vec![0.0; g.m * g.n],
    };
    for (r, row) in out.chunks_mut(g.n).enumerate() {
        for (c, o) in row.iter_mut().enumerate() {
            let dot = x[r * g.k..(r + 1) * g.k].iter().zip(&w[c * g.k..(c + 1) * g.k]).fold(0.0f32, |acc, (a, b)| a.mul_add(*b, acc));
            let v = dot + *o + bias.as_ref().map_or(0.0, |b| b[c]);
            *o = if g.gelu_tanh { gelu_tanh(v) } else { v };
        }
    }
    let bytes = f32_to_bytes(&out, g.dtype);
    // SAFETY: out is m x n dense in a live buffer (the caller's contract).
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), g.out as *mut u8, bytes.len()) };
}
