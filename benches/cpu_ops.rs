//! CPU backend ops at DiT-S/2 shapes (batch 8, 256 tokens, hidden 384, 6 heads of 64).
//! Compute-bound ops report FLOPs as criterion elements (so "Gelem/s" reads GFLOP/s) and
//! print GFLOP/s from a short timing of their own; memory-bound ops report bytes moved.
mod common;

use common::print_rate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ditrt::backend::cpu::CpuBackend;
use ditrt::backend::*;
use ditrt::tensor::DType;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Duration;

const BATCH: usize = 8;
const TOKENS: usize = 256;
const HIDDEN: usize = 384;
const HEADS: usize = 6;

/// Calls timed by `print_rate`.
const CALLS: usize = 5;

fn upload(backend: &CpuBackend, rng: &mut StdRng, len: usize) -> View {
    common::upload(backend, rng, len, DType::F32)
}

fn gemm(c: &mut Criterion) {
    let backend = CpuBackend::new();
    let rng = &mut StdRng::seed_from_u64(0);
    let m = BATCH * TOKENS;
    let mut group = c.benchmark_group("gemm");
    for (name, k, n, act) in [
        ("qkv", HIDDEN, 3 * HIDDEN, Activation::None),
        ("mlp_fc1_gelu", HIDDEN, 4 * HIDDEN, Activation::GeluTanh),
        ("mlp_fc2", 4 * HIDDEN, HIDDEN, Activation::None),
    ] {
        let op = Gemm {
            m,
            n,
            k,
            x: upload(&backend, rng, m * k),
            x_stride: k,
            w: upload(&backend, rng, n * k),
            w_stride: k,
            bias: Some(upload(&backend, rng, n)),
            out: upload(&backend, rng, m * n),
            act,
            accumulate: false,
        };
        let flops = (2 * m * n * k) as u64;
        let run = || backend.gemm(&op).expect("gemm");
        print_rate(&format!("gemm {name} m={m} k={k} n={n}"), flops, "GFLOP", CALLS, run);
        group.throughput(Throughput::Elements(flops));
        group.bench_function(name, |b| b.iter(run));
    }
    group.finish();
}

fn attention(c: &mut Criterion) {
    let backend = CpuBackend::new();
    let rng = &mut StdRng::seed_from_u64(1);
    let head_dim = HIDDEN / HEADS;
    let op = common::packed_attention(&backend, rng, (BATCH, HEADS, TOKENS, head_dim), DType::F32);
    let flops = (4 * BATCH * HEADS * TOKENS * TOKENS * head_dim) as u64;
    let run = || backend.attention(&op).expect("attention");
    print_rate("attention batch=8 heads=6 tokens=256 head_dim=64", flops, "GFLOP", CALLS, run);
    let mut group = c.benchmark_group("attention");
    group.throughput(Throughput::Elements(flops));
    group.bench_function("dit_s2", |b| b.iter(run));
    group.finish();
}

fn layernorm_modulate(c: &mut Criterion) {
    let backend = CpuBackend::new();
    let rng = &mut StdRng::seed_from_u64(2);
    let rows = BATCH * TOKENS;
    let modulation = upload(&backend, rng, BATCH * 6 * HIDDEN);
    let window = |chunk: usize| PerSample { view: modulation.slice(chunk * HIDDEN, modulation.len - chunk * HIDDEN), stride: 6 * HIDDEN };
    let op = LayerNormModulate {
        batch: BATCH,
        tokens: TOKENS,
        dim: HIDDEN,
        eps: 1e-6,
        x: upload(&backend, rng, rows * HIDDEN),
        shift: window(0),
        scale: window(1),
        out: upload(&backend, rng, rows * HIDDEN),
    };
    let bytes = (2 * rows * HIDDEN * 4) as u64;
    let run = || backend.layernorm_modulate(&op).expect("layernorm_modulate");
    print_rate("layernorm_modulate rows=2048 dim=384", bytes, "GB", CALLS, run);
    let mut group = c.benchmark_group("layernorm_modulate");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("dit_s2", |b| b.iter(run));
    group.finish();
}

fn patchify(c: &mut Criterion) {
    let backend = CpuBackend::new();
    let rng = &mut StdRng::seed_from_u64(3);
    // DiT-S/2 at 256px: latents [8, 4, 32, 32], patch 2.
    let geom = PatchGeometry { batch: BATCH, channels: 4, height: 32, width: 32, patch: 2 };
    let len = BATCH * 4 * 32 * 32;
    let op = Patchify { geom, x: upload(&backend, rng, len), out: upload(&backend, rng, len) };
    let bytes = (2 * len * 4) as u64;
    let run = || backend.patchify(&op).expect("patchify");
    print_rate("patchify [8, 4, 32, 32] p=2", bytes, "GB", CALLS, run);
    let mut group = c.benchmark_group("patchify");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("dit_s2", |b| b.iter(run));
    group.finish();
}

/// A whole DiT-S/2 forward at 256 px with random weights (batch 1 and 8).
fn dit_s2_forward(c: &mut Criterion) {
    use ditrt::models::{dit::DitConfig, ModelConfig};
    use ditrt::tools::bench::random_session;
    let config = ModelConfig::Dit(DitConfig::preset("DiT-S/2").expect("DiT-S/2 preset"));
    let mut group = c.benchmark_group("dit_s2_forward");
    for batch in [1, BATCH] {
        let (session, _, _) = random_session(std::sync::Arc::new(CpuBackend::new()), &config, batch, DType::F32, 0).expect("session");
        let flops = (2.0 * config.macs_per_image() * batch as f64) as u64;
        let run = || session.run().expect("forward");
        print_rate(&format!("DiT-S/2 forward batch={batch}"), flops, "GFLOP", 2, run);
        group.throughput(Throughput::Elements(flops));
        group.bench_function(format!("batch{batch}"), |b| b.iter(run));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    targets = gemm, attention, layernorm_modulate, patchify, dit_s2_forward
}
criterion_main!(benches);
