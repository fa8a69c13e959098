//! The emulator catches the bugs it exists for, each planted on purpose: a swapped mma
//! fragment register and an ldmatrix without .trans (wrong results against the CPU backend), a
//! missing `__syncthreads` (a shared-memory race, reported), a missing cp.async wait (stale
//! shared data, a wrong result) and an argument-order mismatch (a wrong result, or a global
//! access outside every buffer). The planted kernels are variants of kernels/*.cu that build.rs
//! compiles alongside the real ones (ptx_build/emulator.rs `PLANTED`); each test first checks
//! that the unplanted kernel passes the same comparison.
use std::cell::RefCell;

use cudarc::driver::sys::CUdeviceptr;

use super::super::blas::RowMajorGemm;
use super::super::encode::{encode, Encoder, Kernel, Target};
use super::super::launch::Arg;
use super::{CudaEmuBackend, OnEmulator};
use crate::backend::cpu::CpuBackend;
use crate::backend::*;
use crate::error::Result;
use crate::tensor::{bytes_to_f32, f32_to_bytes, DType};

/// Deterministic inputs in [-2, 2) (a 64-bit LCG; the values only need to be varied).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

/// A view of `n` elements of `dtype` holding `values(n, seed)` on `backend`.
fn upload(backend: &dyn Backend, n: usize, dtype: DType, seed: u64) -> View {
    let buf = backend.alloc(n * dtype.size()).expect("alloc");
    let view = View { buf, offset: 0, len: n, dtype };
    backend.write(view, &f32_to_bytes(&values(n, seed), dtype)).expect("write");
    view
}

fn download(backend: &dyn Backend, view: View) -> Vec<f32> {
    bytes_to_f32(&backend.read(view).expect("read"), view.dtype)
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Self-attention of one head of `head_dim` over `len` tokens, f16, on `backend`.
fn attention(backend: &dyn Backend, head_dim: usize, len: usize) -> Result<Vec<f32>> {
    let t = DType::F16;
    let n = len * head_dim;
    let (q, k, v) = (upload(backend, n, t, 1), upload(backend, n, t, 2), upload(backend, n, t, 3));
    let out = upload(backend, n, t, 4);
    let op = Attention {
        batch: 1,
        heads: 1,
        q_len: len,
        kv_len: len,
        head_dim,
        scale: 1.0 / (head_dim as f32).sqrt(),
        q,
        q_stride: head_dim,
        k,
        v,
        kv_stride: head_dim,
        bias: None,
        out,
        out_stride: head_dim,
    };
    backend.launch(&Op::Attention(op))?;
    Ok(download(backend, out))
}

/// f16 attention outputs are within a few half ulps of 1 of the CPU's.
const ATTENTION_TOLERANCE: f32 = 1e-2;

/// Self-attention over `len` tokens at `head_dim` with attention.cu replaced by `variant` runs
/// and is far off the CPU's, while the real kernel is within tolerance.
fn planted_attention_is_wrong(variant: &'static str, head_dim: usize, len: usize) {
    let reference = attention(&CpuBackend::new(), head_dim, len).expect("cpu");
    let clean = attention(&CudaEmuBackend::new(), head_dim, len).expect("emulated");
    assert!(max_difference(&clean, &reference) < ATTENTION_TOLERANCE, "the real kernel is off by {}", max_difference(&clean, &reference));
    let planted = CudaEmuBackend::with_planted_bug("attention", variant);
    let wrong = attention(&planted, head_dim, len).expect("the planted kernel runs");
    let off = max_difference(&wrong, &reference);
    assert!(off > 10.0 * ATTENTION_TOLERANCE, "{variant} went unnoticed: off by only {off}");
}

#[test]
fn a_swapped_mma_fragment_register_gives_a_wrong_result() {
    planted_attention_is_wrong("attention.swapped_fragment", 64, 40);
}

#[test]
fn an_ldmatrix_without_trans_for_v_gives_a_wrong_result() {
    planted_attention_is_wrong("attention.untransposed_v", 64, 40);
}

#[test]
fn a_missing_cp_async_wait_reads_stale_data() {
    // One K/V tile: the V copies never land (the kernel ends first), so P V reads what the
    // tile held before (zeros in a fresh thread).
    planted_attention_is_wrong("attention.missing_wait", 72, 40);
}

#[test]
fn a_missing_syncthreads_is_reported_as_a_race() {
    // Two K/V tiles of 64 keys: the second overwrites the first while other warps read it.
    attention(&CudaEmuBackend::new(), 72, 100).expect("the real kernel has no race");
    let planted = CudaEmuBackend::with_planted_bug("attention", "attention.missing_sync");
    let e = attention(&planted, 72, 100).expect_err("the race must be reported").to_string();
    assert!(e.contains("shared-memory race") && e.contains("since the last __syncthreads"), "{e}");
}

/// The emulator with the arguments of `function`'s launches permuted by `permute` first.
struct Permuted<'a> {
    inner: OnEmulator<'a>,
    function: &'static str,
    permute: fn(&mut [Arg]),
    applied: RefCell<bool>,
}

impl Target for Permuted<'_> {
    fn ptr(&self, op: &str, field: &str, view: &View) -> Result<CUdeviceptr> {
        self.inner.ptr(op, field, view)
    }

    fn launch(&self, kernel: &Kernel) -> Result<()> {
        let mut args = kernel.args.to_vec();
        if kernel.function == self.function {
            (self.permute)(&mut args);
            *self.applied.borrow_mut() = true;
        }
        self.inner.launch(&Kernel { args: &args, ..*kernel })
    }

    fn gemm(&self, g: &RowMajorGemm) -> Result<bool> {
        self.inner.gemm(g)
    }
}

/// Encodes `op` on `emu` with the arguments of its `function` launch permuted by `permute`.
fn launch_permuted(emu: &CudaEmuBackend, op: &Op, function: &'static str, permute: fn(&mut [Arg])) -> Result<()> {
    let views = emu.memory.lock();
    let target = Permuted { inner: OnEmulator { backend: emu, views: &views }, function, permute, applied: RefCell::new(false) };
    encode(&Encoder::new(&target), op)?;
    assert!(target.applied.into_inner(), "{op:?} launched no {function}");
    Ok(())
}

/// layernorm_modulate over 3 rows of 100 f32, its inputs uploaded to `backend`; and its output.
fn layernorm_modulate(backend: &dyn Backend) -> (Op, View) {
    let (rows, dim, t) = (3, 100, DType::F32);
    let x = upload(backend, rows * dim, t, 5);
    let (shift, scale) = (upload(backend, dim, t, 6), upload(backend, dim, t, 7));
    let out = upload(backend, rows * dim, t, 8);
    let shift = PerSample { view: shift, stride: 0 };
    let scale = PerSample { view: scale, stride: 0 };
    (Op::LayerNormModulate(LayerNormModulate { batch: 1, tokens: rows, dim, eps: 1e-6, x, residual: None, shift, scale, out }), out)
}

#[test]
fn an_argument_order_mismatch_is_caught() {
    let cpu = CpuBackend::new();
    let (op, out) = layernorm_modulate(&cpu);
    cpu.launch(&op).expect("cpu");
    let reference = download(&cpu, out);
    let emu = CudaEmuBackend::new();
    let (op, out) = layernorm_modulate(&emu);
    let function = "layernorm_modulate_f32";
    launch_permuted(&emu, &op, function, |_| {}).expect("the encoder's order runs");
    assert!(max_difference(&download(&emu, out), &reference) < 1e-5, "the encoder's order is wrong");
    // shift and scale (both pointers) swapped: it runs, and the result is wrong.
    launch_permuted(&emu, &op, function, |a| a.swap(3, 4)).expect("swapped pointers run");
    let off = max_difference(&download(&emu, out), &reference);
    assert!(off > 0.1, "shift and scale swapped went unnoticed: off by only {off}");
    // out and dim swapped: the kernel reads x far past its buffer.
    let e = launch_permuted(&emu, &op, function, |a| a.swap(5, 6)).expect_err("must fault").to_string();
    assert!(e.contains("inside no buffer") || e.contains("runs past the end"), "{e}");
}
