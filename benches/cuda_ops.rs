//! CUDA backend ops at DiT-XL/2 256 px shapes (batch 8: 256 tokens, hidden 1152, 16 heads of
//! 72, MLP 4608) and a few others (head dims 64 and 128, a VAE-sized conv and group norm), on
//! random data: per op the median time of one launch (batches of launches between two
//! synchronizations, so launch gaps count), and its rate: TFLOP/s for products, GB/s of the
//! bytes an op must move for the rest. The first row, a large bf16 GEMM, is the measured peak
//! the GEMM rows are a fraction of. Prints one table (scripts/gpu_run.sh runs it); no device:
//! says so and exits 0. The op tests check correctness; run them first.
// Uploads and the attention set-up are shared; `print_rate` is not used here (it does not wait
// for the device: this bench times between synchronizations).
#[allow(dead_code)]
mod common;

use std::time::Instant;

use ditrt::backend::cuda::CudaBackend;
use ditrt::backend::*;
use ditrt::tensor::DType;
use rand::rngs::StdRng;
use rand::SeedableRng;

const BATCH: usize = 8;
const TOKENS: usize = 256;
const HIDDEN: usize = 1152;
const HEADS: usize = 16;
const ROWS: usize = BATCH * TOKENS;
const BF16: DType = DType::BF16;

/// What one launch does, for its rate.
enum Work {
    Flops(f64),
    Bytes(f64),
}

struct Row {
    op: String,
    shape: String,
    dtype: DType,
    micros: f64,
    work: Work,
}

struct Bench {
    backend: CudaBackend,
    rng: StdRng,
    rows: Vec<Row>,
}

impl Bench {
    /// A buffer of `len` random values in [-1, 1) stored as `dtype`.
    fn random(&mut self, len: usize, dtype: DType) -> View {
        common::upload(&self.backend, &mut self.rng, len, dtype)
    }

    /// Median microseconds per launch of `run` over 7 batches of launches, after a warm-up.
    fn time(&mut self, op: &str, shape: String, dtype: DType, work: Work, run: impl Fn(&CudaBackend)) {
        let batch = 20;
        for _ in 0..3 {
            run(&self.backend);
        }
        self.backend.synchronize().expect("warm-up");
        let mut samples: Vec<f64> = (0..7)
            .map(|_| {
                let start = Instant::now();
                (0..batch).for_each(|_| run(&self.backend));
                self.backend.synchronize().expect("synchronize");
                start.elapsed().as_secs_f64() * 1e6 / batch as f64
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        self.rows.push(Row { op: op.into(), shape, dtype, micros: samples[samples.len() / 2], work });
    }

    fn gemm(&mut self, label: &str, (m, k, n): (usize, usize, usize), dtype: DType, act: Activation, accumulate: bool) {
        let op = Gemm {
            m,
            n,
            k,
            x: self.random(m * k, dtype),
            x_stride: k,
            w: self.random(n * k, dtype),
            w_stride: k,
            bias: Some(self.random(n, dtype)),
            out: self.random(m * n, dtype),
            act,
            accumulate,
        };
        let flops = 2.0 * (m * n * k) as f64;
        self.time(label, format!("m={m} k={k} n={n} {act:?} acc={accumulate}"), dtype, Work::Flops(flops), |b| b.gemm(&op).expect("gemm"));
    }

    fn attention(&mut self, shape: (usize, usize, usize, usize), dtype: DType) {
        let op = common::packed_attention(&self.backend, &mut self.rng, shape, dtype);
        let (batch, heads, tokens, head_dim) = shape;
        let flops = 4.0 * (batch * heads * tokens * tokens * head_dim) as f64;
        let shape = format!("b={batch} h={heads} n={tokens} d={head_dim}");
        self.time("attention", shape, dtype, Work::Flops(flops), |b| b.attention(&op).expect("attention"));
    }

    fn print(&self) {
        let peak = self.rows.first().map(|r| rate(r) * 1e-3).unwrap_or(f64::NAN);
        println!("{:<20} {:<44} {:<5} {:>10} {:>12} {:>8}", "op", "shape", "dtype", "us", "rate", "of peak");
        for row in &self.rows {
            let (value, unit, share) = match row.work {
                Work::Flops(_) => (rate(row) * 1e-3, "TFLOP/s", format!("{:.0}%", 100.0 * rate(row) * 1e-3 / peak)),
                Work::Bytes(_) => (rate(row), "GB/s", String::new()),
            };
            println!("{:<20} {:<44} {:<5} {:>10.1} {:>6.1} {:<7} {:>6}", row.op, row.shape, row.dtype, row.micros, value, unit, share);
        }
    }
}

/// GFLOP/s or GB/s of a row.
fn rate(row: &Row) -> f64 {
    let amount = match row.work {
        Work::Flops(f) | Work::Bytes(f) => f,
    };
    amount / (row.micros * 1e-6) / 1e9
}

fn main() {
    let backend = match CudaBackend::new() {
        Ok(b) => b,
        Err(e) => {
            println!("cuda_ops: skipped: {e}");
            return;
        }
    };
    println!("cuda_ops on {}", backend.name());
    let mut bench = Bench { backend, rng: StdRng::seed_from_u64(0), rows: Vec::new() };

    bench.gemm("gemm peak", (8192, 8192, 8192), BF16, Activation::None, false);
    bench.gemm("gemm qkv", (ROWS, HIDDEN, 3 * HIDDEN), BF16, Activation::None, false);
    bench.gemm("gemm fc1 gelu", (ROWS, HIDDEN, 4 * HIDDEN), BF16, Activation::GeluTanh, false);
    bench.gemm("gemm fc2 residual", (ROWS, 4 * HIDDEN, HIDDEN), BF16, Activation::None, true);
    bench.gemm("gemm fc1 gelu-erf", (ROWS, HIDDEN, 4 * HIDDEN), BF16, Activation::GeluErf, false);
    bench.gemm("gemm simt (acc+act)", (ROWS, HIDDEN, 4 * HIDDEN), BF16, Activation::GeluTanh, true);
    bench.gemm("gemm qkv", (ROWS, HIDDEN, 3 * HIDDEN), DType::F32, Activation::None, false);

    bench.attention((BATCH, HEADS, TOKENS, 72), BF16);
    bench.attention((BATCH, 6, TOKENS, 64), BF16);
    bench.attention((4, 8, 1024, 128), BF16);
    bench.attention((BATCH, HEADS, TOKENS, 72), DType::F32);

    let elem = BF16.size() as f64;
    let (x, modulation, out) = (bench.random(ROWS * HIDDEN, BF16), bench.random(BATCH * 6 * HIDDEN, BF16), bench.random(ROWS * HIDDEN, BF16));
    let window = |chunk: usize| PerSample { view: modulation.slice(chunk * HIDDEN, modulation.len - chunk * HIDDEN), stride: 6 * HIDDEN };
    let op = LayerNormModulate { batch: BATCH, tokens: TOKENS, dim: HIDDEN, eps: 1e-6, x, shift: window(0), scale: window(1), out };
    let bytes = 2.0 * (ROWS * HIDDEN) as f64 * elem;
    bench.time("layernorm_modulate", format!("rows={ROWS} dim={HIDDEN}"), BF16, Work::Bytes(bytes), |b| b.layernorm_modulate(&op).expect("ln"));
    let op = LayerNorm { rows: ROWS, dim: HIDDEN, eps: 1e-6, x, gamma: Some(window(0).view.slice(0, HIDDEN)), beta: None, out };
    bench.time("layernorm", format!("rows={ROWS} dim={HIDDEN}"), BF16, Work::Bytes(bytes), |b| b.layernorm(&op).expect("ln"));
    let op = GateResidual { batch: BATCH, tokens: TOKENS, dim: HIDDEN, x: out, y: x, gate: window(2) };
    bench.time("gate_residual", format!("rows={ROWS} dim={HIDDEN}"), BF16, Work::Bytes(1.5 * bytes), |b| b.gate_residual(&op).expect("gate"));

    let wide = bench.random(ROWS * 4 * HIDDEN, BF16);
    let op = Unary { act: Activation::GeluErf, x: wide, out: wide };
    bench.time("unary gelu-erf", format!("n={}", wide.len), BF16, Work::Bytes(2.0 * wide.len as f64 * elem), |b| b.unary(&op).expect("unary"));
    let wide32 = bench.random(ROWS * 4 * HIDDEN, DType::F32);
    let op = Copy3d { dims: [1, ROWS, 4 * HIDDEN], src: wide, src_strides: [0, 4 * HIDDEN, 1], dst: wide32, dst_strides: [0, 4 * HIDDEN, 1] };
    bench.time("copy3d bf16->f32", format!("n={}", wide.len), BF16, Work::Bytes(3.0 * wide.len as f64 * elem), |b| b.copy3d(&op).expect("copy3d"));

    let geom = PatchGeometry { batch: BATCH, channels: 4, height: 32, width: 32, patch: 2 };
    let (image, tokens) = (bench.random(BATCH * 4 * 32 * 32, BF16), bench.random(BATCH * 4 * 32 * 32, BF16));
    let bytes = 2.0 * image.len as f64 * elem;
    bench.time("patchify", "b=8 c=4 32x32 p=2".into(), BF16, Work::Bytes(bytes), |b| {
        b.patchify(&Patchify { geom, x: image, out: tokens }).expect("patchify")
    });
    bench.time("unpatchify", "same".into(), BF16, Work::Bytes(bytes), |b| {
        b.unpatchify(&Unpatchify { geom, x: tokens, out: image }).expect("unpatchify")
    });

    // VAE decoder sizes: 128 channels at 256 x 256, 512 channels at 64 x 64.
    let (c, side) = (128, 256);
    let op = Conv2d {
        batch: 1,
        in_c: c,
        out_c: c,
        height: side,
        width: side,
        kernel: 3,
        pad: 1,
        x: bench.random(c * side * side, BF16),
        weight: bench.random(c * c * 9, BF16),
        bias: Some(bench.random(c, BF16)),
        out: bench.random(c * side * side, BF16),
    };
    let flops = 2.0 * (c * c * 9 * side * side) as f64;
    bench.time("conv2d 3x3", format!("c={c} {side}x{side}"), BF16, Work::Flops(flops), |b| b.conv2d(&op).expect("conv2d"));
    let (c, side) = (512, 64);
    let (x, out) = (bench.random(c * side * side, BF16), bench.random(c * side * side, BF16));
    let (gamma, beta) = (bench.random(c, BF16), bench.random(c, BF16));
    let op = GroupNorm { batch: 1, channels: c, spatial: side * side, groups: 32, eps: 1e-6, silu: true, x, gamma, beta, out };
    bench.time("group_norm silu", format!("c={c} {side}x{side} g=32"), BF16, Work::Bytes(2.0 * x.len as f64 * elem), |b| {
        b.group_norm(&op).expect("gn")
    });
    let (c, side) = (256, 128);
    let (x, out) = (bench.random(c * side * side, BF16), bench.random(4 * c * side * side, BF16));
    let op = Upsample2x { batch: 1, channels: c, height: side, width: side, x, out };
    bench.time("upsample2x", format!("c={c} {side}x{side}"), BF16, Work::Bytes(5.0 * x.len as f64 * elem), |b| b.upsample2x(&op).expect("up"));

    bench.print();
}
