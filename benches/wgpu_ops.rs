//! wgpu backend ops on the adapter `WgpuBackend::new` picks: gemm at 1024^3 and 4096^3 in f32
//! and f16 (when the adapter has SHADER_F16), attention at DiT-XL/2 shapes, layernorm_modulate,
//! and a DiT-S/2 forward. Each op is compiled once (one recorded dispatch, the static-graph
//! path) and timed to completion: submit + wait. Every case prints GFLOP/s (or GB/s for
//! memory-bound ops) from a short timing of its own; on a real GPU it is also a criterion
//! bench, with FLOPs as elements (so "Gelem/s" reads GFLOP/s). A CPU adapter (lavapipe, about
//! 1 GFLOP/s) gets one timed call per case, no criterion, no 4096^3 GEMMs and an f32-only
//! forward, so that a full run there takes a minute or two.
mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{packed_attention, print_rate, upload};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use ditrt::backend::wgpu::WgpuBackend;
use ditrt::backend::*;
use ditrt::models::dit::DitConfig;
use ditrt::models::ModelConfig;
use ditrt::tensor::DType;
use ditrt::tools::bench::random_session;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn backend() -> Arc<WgpuBackend> {
    static BACKEND: OnceLock<Arc<WgpuBackend>> = OnceLock::new();
    let init = || {
        let backend = WgpuBackend::new().unwrap_or_else(|e| panic!("wgpu_ops needs an adapter: {e}"));
        println!("wgpu_ops on {}", backend.name());
        Arc::new(backend)
    };
    BACKEND.get_or_init(init).clone()
}

/// The float dtypes the adapter computes on.
fn dtypes(backend: &WgpuBackend) -> Vec<DType> {
    [DType::F32, DType::F16].into_iter().filter(|&d| backend.supports(d)).collect()
}

/// Prints the rate of `run` (`amount` FLOPs, or bytes for `Throughput::Bytes`) and, on a real
/// GPU, benches it with criterion as `id`.
fn measure(group: &mut BenchmarkGroup<WallTime>, backend: &WgpuBackend, label: &str, id: &str, amount: Throughput, run: impl Fn()) {
    let (count, unit) = match amount {
        Throughput::Bytes(n) => (n, "GB"),
        Throughput::Elements(n) => (n, "GFLOP"),
        other => panic!("unexpected throughput {other:?}"),
    };
    print_rate(label, count, unit, if backend.is_hardware() { 3 } else { 1 }, &run);
    if backend.is_hardware() {
        group.throughput(amount);
        group.bench_function(id, |b| b.iter(&run));
    }
}

/// `op` compiled once; the closure runs it to completion.
fn runner(backend: &WgpuBackend, op: Op) -> impl Fn() + '_ {
    let compiled = backend.compile(&[op]).unwrap_or_else(|e| panic!("{}: {e}", op.name()));
    move || {
        compiled.run(backend).expect("run");
        backend.synchronize().expect("synchronize");
    }
}

fn gemm(c: &mut Criterion) {
    let backend = backend();
    let rng = &mut StdRng::seed_from_u64(0);
    let mut group = c.benchmark_group("wgpu_gemm");
    group.sampling_mode(SamplingMode::Flat);
    for size in [1024, 4096] {
        if size > 1024 && !backend.is_hardware() {
            println!("gemm {size}^3: skipped on a CPU adapter ({})", backend.name());
            continue;
        }
        for dtype in dtypes(&backend) {
            let op = Op::Gemm(Gemm {
                m: size,
                n: size,
                k: size,
                x: upload(&*backend, rng, size * size, dtype),
                x_stride: size,
                w: upload(&*backend, rng, size * size, dtype),
                w_stride: size,
                bias: Some(upload(&*backend, rng, size, dtype)),
                out: upload(&*backend, rng, size * size, dtype),
                act: Activation::None,
                accumulate: false,
            });
            let label = format!("gemm {size}^3 {dtype}");
            measure(&mut group, &backend, &label, &format!("{size}^3_{dtype}"), Throughput::Elements(2 * (size as u64).pow(3)), runner(&backend, op));
        }
    }
    group.finish();
}

/// DiT-XL/2 at 256 px: 256 tokens, 16 heads of 72.
fn attention(c: &mut Criterion) {
    let backend = backend();
    let rng = &mut StdRng::seed_from_u64(1);
    let (batch, tokens, heads, head_dim) = (2, 256, 16, 72);
    let mut group = c.benchmark_group("wgpu_attention");
    group.sampling_mode(SamplingMode::Flat);
    for dtype in dtypes(&backend) {
        let op = Op::Attention(packed_attention(&*backend, rng, (batch, heads, tokens, head_dim), dtype));
        let flops = Throughput::Elements((4 * batch * heads * tokens * tokens * head_dim) as u64);
        let label = format!("attention DiT-XL/2 batch={batch} {dtype}");
        measure(&mut group, &backend, &label, &format!("dit_xl2_{dtype}"), flops, runner(&backend, op));
    }
    group.finish();
}

/// DiT-XL/2 rows: 8 samples x 256 tokens of 1152.
fn layernorm_modulate(c: &mut Criterion) {
    let backend = backend();
    let rng = &mut StdRng::seed_from_u64(2);
    let (batch, tokens, dim) = (8, 256, 1152);
    let mut group = c.benchmark_group("wgpu_layernorm_modulate");
    for dtype in dtypes(&backend) {
        let modulation = upload(&*backend, rng, batch * 6 * dim, dtype);
        let window = |chunk: usize| PerSample { view: modulation.slice(chunk * dim, modulation.len - chunk * dim), stride: 6 * dim };
        let rows = batch * tokens;
        let op = Op::LayerNormModulate(LayerNormModulate {
            batch,
            tokens,
            dim,
            eps: 1e-6,
            x: upload(&*backend, rng, rows * dim, dtype),
            shift: window(0),
            scale: window(1),
            out: upload(&*backend, rng, rows * dim, dtype),
        });
        let bytes = Throughput::Bytes((2 * rows * dim * dtype.size()) as u64);
        let label = format!("layernorm_modulate rows={rows} dim={dim} {dtype}");
        measure(&mut group, &backend, &label, &format!("dit_xl2_{dtype}"), bytes, runner(&backend, op));
    }
    group.finish();
}

/// A whole DiT-S/2 forward at 256 px with random weights, as one command buffer.
fn dit_s2_forward(c: &mut Criterion) {
    let backend = backend();
    let config = ModelConfig::Dit(DitConfig::preset("DiT-S/2").expect("DiT-S/2 preset"));
    let batch = 1;
    let mut group = c.benchmark_group("wgpu_dit_s2_forward");
    group.sampling_mode(SamplingMode::Flat);
    let dtypes = if backend.is_hardware() { dtypes(&backend) } else { vec![DType::F32] };
    for dtype in dtypes {
        let (session, _, _) = random_session(backend.clone(), &config, batch, dtype, 0).expect("DiT-S/2 session");
        let flops = Throughput::Elements((2.0 * config.macs_per_image() * batch as f64) as u64);
        let run = || {
            session.run().expect("run");
            backend.synchronize().expect("synchronize");
        };
        measure(&mut group, &backend, &format!("DiT-S/2 forward batch={batch} {dtype}"), &format!("batch{batch}_{dtype}"), flops, run);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    targets = gemm, attention, layernorm_modulate, dit_s2_forward
}
criterion_main!(benches);
