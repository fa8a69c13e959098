//! The op benches, each on every backend that answers: cpu always, wgpu (feature `wgpu`) when an
//! adapter answers, cuda (feature `cuda`) when a device answers.
//!
//!     cargo bench --bench ops [-- [--quick] [--backend cpu|wgpu|cuda]... [FILTER]]
//!
//! Cases: GEMMs (DiT-S/2 and DiT-XL/2 layers, squares up to the 8192^3 peak), attention (DiT-S/2,
//! DiT-XL/2, head dims 64 to 128), the norms, elementwise and layout ops at DiT-XL/2 rows, the
//! VAE-sized conv2d, group norm and upsample, and a whole DiT-S/2 forward at 256 px with random
//! weights, on random data. A case runs on the backends its size suits: the large ones on GPUs
//! only, none of the heavy ones on a CPU adapter such as lavapipe (about 1 GFLOP/s). It runs in
//! each float dtype of the backend: f32 and bf16 on cpu; f32 and f16 (with SHADER_F16) on wgpu; bf16 and
//! f32 on cuda.
//!
//! Each op is compiled once (`Backend::compile`, the static-graph path: a recorded wgpu command
//! buffer, a CUDA graph) and timed in batches of runs between two synchronizations, so launch
//! gaps count: the median time per run, and its rate (FLOP/s for products, GB/s of the bytes an
//! op must move for the rest). Rows print as they are timed and again as one table per backend
//! at the end, FLOP rates also as a share of the fastest GEMM of that backend and dtype. Then,
//! unless `--quick` or on a CPU adapter (one timed run per case there), criterion benches the
//! case as `<op>/<backend> <dtype> <shape>` with FLOPs as elements (so "Gelem/s" reads
//! GFLOP/s). FILTER keeps the ops whose name contains it, e.g. `gemm`. Without `--bench` (as
//! `cargo test --benches` runs it) every case runs once, untimed.
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ditrt::backend::cpu::CpuBackend;
use ditrt::backend::*;
use ditrt::models::dit::DitConfig;
use ditrt::models::ModelConfig;
use ditrt::tensor::{f32_to_bytes, DType};
use ditrt::tools::bench::random_session;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const F32: DType = DType::F32;

/// DiT-S/2 at 256 px, batch 8: 256 tokens, hidden 384, 6 heads of 64.
const S2: (usize, usize, usize) = (8, 256, 384);
/// DiT-XL/2 at 256 px, batch 8: 256 tokens, hidden 1152, 16 heads of 72.
const XL2: (usize, usize, usize) = (8, 256, 1152);
/// Rows of a batch of 8 x 256 tokens.
const ROWS: usize = 8 * 256;

/// Which backends a case is sized for.
#[derive(Clone, Copy)]
enum Size {
    /// Every backend.
    Small,
    /// All but a CPU adapter.
    Medium,
    /// GPUs only.
    Large,
}

/// A backend under test.
struct Target {
    /// "cpu", "wgpu" or "cuda", as `--backend` names it.
    name: &'static str,
    backend: Arc<dyn Backend>,
    /// A real GPU: large cases fit.
    gpu: bool,
    /// A CPU adapter (lavapipe): one timed run per case, no criterion.
    slow: bool,
    /// The float dtypes cases run in, the backend's main one first.
    dtypes: Vec<DType>,
}

impl Target {
    fn fits(&self, size: Size) -> bool {
        match size {
            Size::Small => true,
            Size::Medium => !self.slow,
            Size::Large => self.gpu,
        }
    }

    fn synchronize(&self) {
        self.backend.synchronize().expect("synchronize");
    }
}

/// The backends to bench: those `--backend` names (all when none), each if it answers.
fn targets(wanted: &[String]) -> Vec<Target> {
    if let Some(other) = wanted.iter().find(|w| !BACKEND_NAMES.contains(&w.as_str()) || *w == "auto") {
        panic!("ops: unknown backend '{other}' (expected cpu, wgpu or cuda)");
    }
    let wants = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let mut targets = Vec::new();
    if wants("cpu") {
        targets.push(Target { name: "cpu", backend: Arc::new(CpuBackend::new()), gpu: false, slow: false, dtypes: vec![F32, DType::BF16] });
    }
    #[cfg(feature = "wgpu")]
    if wants("wgpu") {
        match ditrt::backend::wgpu::WgpuBackend::new() {
            Ok(backend) => {
                let hardware = backend.is_hardware();
                let dtypes = [F32, DType::F16].into_iter().filter(|&d| backend.supports(d)).collect();
                targets.push(Target { name: "wgpu", backend: Arc::new(backend), gpu: hardware, slow: !hardware, dtypes });
            }
            Err(e) => println!("ops: wgpu skipped: {e}"),
        }
    }
    #[cfg(feature = "cuda")]
    if wants("cuda") {
        match ditrt::backend::cuda::CudaBackend::new() {
            Ok(backend) => targets.push(Target { name: "cuda", backend: Arc::new(backend), gpu: true, slow: false, dtypes: vec![DType::BF16, F32] }),
            Err(e) => println!("ops: cuda skipped: {e}"),
        }
    }
    #[cfg(not(feature = "wgpu"))]
    if !wanted.is_empty() && wants("wgpu") {
        println!("ops: wgpu skipped: not compiled in (build with --features wgpu)");
    }
    #[cfg(not(feature = "cuda"))]
    if !wanted.is_empty() && wants("cuda") {
        println!("ops: cuda skipped: not compiled in (build with --features cuda)");
    }
    targets
}

/// The command line: `--bench` (cargo bench passes it; without it every case runs once,
/// untimed), `--quick` (no criterion), `--backend NAME` (repeatable), FILTER.
#[derive(Default)]
struct Args {
    bench: bool,
    quick: bool,
    backends: Vec<String>,
    filter: Option<String>,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args::default();
        let mut words = std::env::args().skip(1);
        while let Some(word) = words.next() {
            match word.as_str() {
                "--bench" => args.bench = true,
                "--quick" => args.quick = true,
                "--backend" => args.backends.push(words.next().expect("ops: --backend needs a name")),
                flag if flag.starts_with('-') => panic!("ops: unknown option {flag} (expected --quick, --backend NAME, a filter)"),
                _ => args.filter = Some(word),
            }
        }
        args
    }
}

/// What one run does, for its rate.
#[derive(Clone, Copy)]
enum Work {
    Flops(f64),
    Bytes(f64),
}

impl Work {
    fn rate(self, seconds: f64) -> String {
        match self {
            Work::Flops(f) if f / seconds >= 1e12 => format!("{:.1} TFLOP/s", f / seconds * 1e-12),
            Work::Flops(f) => format!("{:.1} GFLOP/s", f / seconds * 1e-9),
            Work::Bytes(b) => format!("{:.1} GB/s", b / seconds * 1e-9),
        }
    }

    fn throughput(self) -> Throughput {
        match self {
            Work::Flops(f) => Throughput::Elements(f as u64),
            Work::Bytes(b) => Throughput::Bytes(b as u64),
        }
    }
}

/// One timed case on one backend.
struct Row {
    backend: &'static str,
    op: &'static str,
    shape: String,
    dtype: DType,
    work: Work,
    seconds: f64,
}

/// Random buffers of one case on one backend, freed when the case is done.
struct Buffers<'a> {
    backend: &'a dyn Backend,
    rng: StdRng,
    ids: Vec<BufId>,
}

impl<'a> Buffers<'a> {
    fn new(target: &'a Target) -> Self {
        Buffers { backend: &*target.backend, rng: StdRng::seed_from_u64(0), ids: Vec::new() }
    }

    /// A new buffer of `len` values uniform in [-1, 1), stored as `dtype`.
    fn random(&mut self, len: usize, dtype: DType) -> View {
        let values: Vec<f32> = (0..len).map(|_| self.rng.random_range(-1.0..1.0)).collect();
        let view = View { buf: self.backend.alloc(len * dtype.size()).expect("alloc"), offset: 0, len, dtype };
        self.ids.push(view.buf);
        self.backend.write(view, &f32_to_bytes(&values, dtype)).expect("write");
        view
    }
}

impl Drop for Buffers<'_> {
    fn drop(&mut self) {
        self.ids.drain(..).for_each(|id| self.backend.free(id));
    }
}

struct Bench {
    args: Args,
    criterion: Criterion,
    rows: Vec<Row>,
}

impl Bench {
    /// Whether `op` passes the filter.
    fn wants(&self, op: &str) -> bool {
        self.args.filter.as_ref().is_none_or(|f| op.contains(f.as_str()))
    }

    /// Times `op`, compiled once, on `target`.
    fn op(&mut self, target: &Target, name: &'static str, shape: String, dtype: DType, work: Work, op: Op) {
        let compiled = target.backend.compile(&[op]).unwrap_or_else(|e| panic!("{name} {shape}: {e}"));
        self.measure(target, name, shape, dtype, work, &|| compiled.run(&*target.backend).expect(name));
    }

    /// Times `run` (which does not wait) on `target`, prints the row and keeps it for the table,
    /// then benches it with criterion.
    fn measure(&mut self, target: &Target, op: &'static str, shape: String, dtype: DType, work: Work, run: &dyn Fn()) {
        let id = format!("{} {dtype} {shape}", target.name);
        // The first run builds pipelines or loads kernels: untimed.
        run();
        target.synchronize();
        if !self.args.bench {
            println!("{op} {id}: ok");
            return;
        }
        let seconds = median_seconds(target, run);
        println!("{op} {id}: {}, {}", format_seconds(seconds), work.rate(seconds));
        if !self.args.quick && !target.slow {
            let mut group = self.criterion.benchmark_group(op);
            group.throughput(work.throughput());
            group.bench_function(&id, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    (0..iters).for_each(|_| run());
                    target.synchronize();
                    start.elapsed()
                })
            });
            group.finish();
        }
        self.rows.push(Row { backend: target.name, op, shape, dtype, work, seconds });
    }

    /// One table per backend.
    fn print_tables(&self, targets: &[Target]) {
        for target in targets {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.backend == target.name).collect();
            if rows.is_empty() {
                continue;
            }
            // Share of the fastest GEMM of the same dtype.
            let peak = |dtype: DType| {
                let gemms = rows.iter().filter(|r| r.op.starts_with("gemm") && r.dtype == dtype);
                gemms.filter_map(|r| if let Work::Flops(f) = r.work { Some(f / r.seconds) } else { None }).fold(0.0, f64::max)
            };
            println!("\n== {}", target.backend.name());
            println!("{:<20} {:<40} {:<5} {:>10} {:>15} {:>7}", "op", "shape", "dtype", "time", "rate", "of peak");
            for r in rows.iter() {
                let share = match r.work {
                    Work::Flops(f) if peak(r.dtype) > 0.0 => format!("{:.0}%", 100.0 * f / r.seconds / peak(r.dtype)),
                    _ => String::new(),
                };
                let (time, rate) = (format_seconds(r.seconds), r.work.rate(r.seconds));
                println!("{:<20} {:<40} {:<5} {:>10} {:>15} {:>7}", r.op, r.shape, r.dtype.to_string(), time, rate, share);
            }
        }
    }
}

/// Seconds per run: the median over 7 batches of runs (up to 20, about 20 ms) between two
/// synchronizations; a single run where one takes over 0.25 s or the backend is slow.
fn median_seconds(target: &Target, run: &dyn Fn()) -> f64 {
    let per_run = |runs: usize| {
        let start = Instant::now();
        (0..runs).for_each(|_| run());
        target.synchronize();
        start.elapsed().as_secs_f64() / runs as f64
    };
    let once = per_run(1);
    if target.slow || once > 0.25 {
        return once;
    }
    let runs = ((0.02 / once) as usize).clamp(1, 20);
    let mut samples: Vec<f64> = (0..7).map(|_| per_run(runs)).collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn format_seconds(seconds: f64) -> String {
    match seconds {
        s if s < 1e-3 => format!("{:.1} us", s * 1e6),
        s if s < 1.0 => format!("{:.2} ms", s * 1e3),
        s => format!("{s:.2} s"),
    }
}

// ---------------------------------------------------------------------------------------
// cases
// ---------------------------------------------------------------------------------------

/// name, size, (m, k, n), activation, accumulate; every GEMM has a bias.
type GemmCase = (&'static str, Size, (usize, usize, usize), Activation, bool);

const GEMMS: [GemmCase; 12] = [
    ("gemm peak", Size::Large, (8192, 8192, 8192), Activation::None, false),
    ("gemm square", Size::Small, (1024, 1024, 1024), Activation::None, false),
    ("gemm square", Size::Large, (4096, 4096, 4096), Activation::None, false),
    ("gemm qkv", Size::Medium, (ROWS, S2.2, 3 * S2.2), Activation::None, false),
    ("gemm fc1 gelu", Size::Medium, (ROWS, S2.2, 4 * S2.2), Activation::GeluTanh, false),
    ("gemm fc2", Size::Medium, (ROWS, 4 * S2.2, S2.2), Activation::None, false),
    ("gemm qkv", Size::Large, (ROWS, XL2.2, 3 * XL2.2), Activation::None, false),
    ("gemm fc1 gelu", Size::Large, (ROWS, XL2.2, 4 * XL2.2), Activation::GeluTanh, false),
    ("gemm fc2 residual", Size::Large, (ROWS, 4 * XL2.2, XL2.2), Activation::None, true),
    ("gemm fc1 gelu-erf", Size::Large, (ROWS, XL2.2, 4 * XL2.2), Activation::GeluErf, false),
    // CLIP-L's text MLP over 16 prompts of 77 tokens.
    ("gemm fc1 quick-gelu", Size::Medium, (16 * 77, 768, 3072), Activation::QuickGelu, false),
    ("gemm simt (acc+act)", Size::Large, (ROWS, XL2.2, 4 * XL2.2), Activation::GeluTanh, true),
];

fn gemm(bench: &mut Bench, target: &Target) {
    for (name, size, (m, k, n), act, accumulate) in GEMMS {
        if !bench.wants(name) || !target.fits(size) {
            continue;
        }
        for &dtype in &target.dtypes {
            let mut buffers = Buffers::new(target);
            let op = Gemm {
                m,
                n,
                k,
                x: buffers.random(m * k, dtype),
                x_stride: k,
                w: buffers.random(n * k, dtype),
                w_stride: k,
                bias: Some(buffers.random(n, dtype)),
                out: buffers.random(m * n, dtype),
                act,
                accumulate,
            };
            let shape = format!("m={m} k={k} n={n} {act:?} acc={accumulate}");
            bench.op(target, name, shape, dtype, Work::Flops(2.0 * (m * n * k) as f64), Op::Gemm(op));
        }
    }
}

/// Self-attention over packed [q | k | v] rows, as the models lay them out:
/// (size, (batch, heads, tokens, head_dim)).
const ATTENTIONS: [(Size, (usize, usize, usize, usize)); 4] =
    [(Size::Small, (S2.0, 6, S2.1, 64)), (Size::Small, (2, 16, XL2.1, 72)), (Size::Large, (XL2.0, 16, XL2.1, 72)), (Size::Large, (4, 8, 1024, 128))];

fn attention(bench: &mut Bench, target: &Target) {
    let name = "attention";
    if !bench.wants(name) {
        return;
    }
    for (size, (batch, heads, tokens, head_dim)) in ATTENTIONS {
        if !target.fits(size) {
            continue;
        }
        for &dtype in &target.dtypes {
            let mut buffers = Buffers::new(target);
            let width = heads * head_dim;
            let qkv = buffers.random(batch * tokens * 3 * width, dtype);
            let op = Attention::packed(batch, heads, tokens, head_dim, qkv, buffers.random(batch * tokens * width, dtype), None);
            let flops = 4.0 * (batch * heads * tokens * tokens * head_dim) as f64;
            bench.op(target, name, format!("b={batch} h={heads} n={tokens} d={head_dim}"), dtype, Work::Flops(flops), Op::Attention(op));
        }
    }
}

/// The per-row ops at DiT-S/2 and DiT-XL/2 rows (8 x 256 tokens), reading shift, scale, gate
/// from one modulation buffer [batch, 6 * dim] as DiT does.
fn per_row(bench: &mut Bench, target: &Target) {
    for (name, (batch, tokens, dim)) in
        [("layernorm_modulate", S2), ("layernorm_modulate", XL2), ("layernorm", XL2), ("layernorm_modulate_residual", XL2)]
    {
        if !bench.wants(name) {
            continue;
        }
        for &dtype in &target.dtypes {
            let mut buffers = Buffers::new(target);
            let rows = batch * tokens;
            let (x, out) = (buffers.random(rows * dim, dtype), buffers.random(rows * dim, dtype));
            let modulation = buffers.random(batch * 6 * dim, dtype);
            let window = |chunk: usize| PerSample { view: modulation.slice(chunk * dim, modulation.len - chunk * dim), stride: 6 * dim };
            let bytes = 2.0 * (rows * dim * dtype.size()) as f64;
            let (op, bytes) = match name {
                "layernorm_modulate" => {
                    let op = LayerNormModulate { batch, tokens, dim, eps: 1e-6, x, residual: None, shift: window(0), scale: window(1), out };
                    (Op::LayerNormModulate(op), bytes)
                }
                "layernorm" => {
                    let op = LayerNorm { rows, dim, eps: 1e-6, x, gamma: Some(window(0).view.slice(0, dim)), beta: None, out };
                    (Op::LayerNorm(op), bytes)
                }
                // DiT's gated residual fused in: x and y read, x and out written.
                _ => {
                    let residual = Some(GatedResidual { y: buffers.random(rows * dim, dtype), gate: window(2) });
                    let op = LayerNormModulate { batch, tokens, dim, eps: 1e-6, x, residual, shift: window(0), scale: window(1), out };
                    (Op::LayerNormModulate(op), 2.0 * bytes)
                }
            };
            bench.op(target, name, format!("rows={rows} dim={dim}"), dtype, Work::Bytes(bytes), op);
        }
    }
}

/// GELU (erf) in place and a cast to f32, over a DiT-XL/2 MLP activation [2048, 4608].
fn elementwise(bench: &mut Bench, target: &Target) {
    let len = ROWS * 4 * XL2.2;
    for &dtype in &target.dtypes {
        if bench.wants("unary gelu-erf") {
            let mut buffers = Buffers::new(target);
            let wide = buffers.random(len, dtype);
            let op = Op::Unary(Unary { act: Activation::GeluErf, x: wide, out: wide });
            bench.op(target, "unary gelu-erf", format!("n={len}"), dtype, Work::Bytes(2.0 * (len * dtype.size()) as f64), op);
        }
        let name = "copy3d to f32";
        if bench.wants(name) {
            let mut buffers = Buffers::new(target);
            let (src, dst) = (buffers.random(len, dtype), buffers.random(len, F32));
            let strides = [0, 4 * XL2.2, 1];
            let op = Op::Copy3d(Copy3d { dims: [1, ROWS, 4 * XL2.2], src, src_strides: strides, dst, dst_strides: strides });
            bench.op(target, name, format!("n={len}"), dtype, Work::Bytes((len * (dtype.size() + F32.size())) as f64), op);
        }
    }
}

/// Patchify and unpatchify of DiT-S/2 latents [8, 4, 32, 32], patch 2.
fn patches(bench: &mut Bench, target: &Target) {
    let geom = PatchGeometry { batch: 8, channels: 4, height: 32, width: 32, patch: 2 };
    let len = 8 * 4 * 32 * 32;
    for name in ["patchify", "unpatchify"] {
        if !bench.wants(name) {
            continue;
        }
        for &dtype in &target.dtypes {
            let mut buffers = Buffers::new(target);
            let (x, out) = (buffers.random(len, dtype), buffers.random(len, dtype));
            let op = match name {
                "patchify" => Op::Patchify(Patchify { geom, x, out }),
                _ => Op::Unpatchify(Unpatchify { geom, x, out }),
            };
            bench.op(target, name, "b=8 c=4 32x32 p=2".into(), dtype, Work::Bytes(2.0 * (len * dtype.size()) as f64), op);
        }
    }
}

/// VAE decoder sizes: a 3x3 conv at 128 channels, 256 x 256; group norm + SiLU at 512
/// channels, 64 x 64; upsampling 256 channels of 128 x 128.
fn vae(bench: &mut Bench, target: &Target) {
    for &dtype in &target.dtypes {
        let (c, side) = (128, 256);
        if bench.wants("conv2d 3x3") && target.fits(Size::Medium) {
            let mut buffers = Buffers::new(target);
            let op = Conv2d {
                batch: 1,
                in_c: c,
                out_c: c,
                height: side,
                width: side,
                kernel: 3,
                pad: 1,
                x: buffers.random(c * side * side, dtype),
                weight: buffers.random(c * c * 9, dtype),
                bias: Some(buffers.random(c, dtype)),
                out: buffers.random(c * side * side, dtype),
            };
            let flops = 2.0 * (c * c * 9 * side * side) as f64;
            bench.op(target, "conv2d 3x3", format!("c={c} {side}x{side}"), dtype, Work::Flops(flops), Op::Conv2d(op));
        }
        let (c, side) = (512, 64);
        if bench.wants("group_norm silu") {
            let mut buffers = Buffers::new(target);
            let (x, out) = (buffers.random(c * side * side, dtype), buffers.random(c * side * side, dtype));
            let (gamma, beta) = (buffers.random(c, dtype), buffers.random(c, dtype));
            let op = GroupNorm { batch: 1, channels: c, spatial: side * side, groups: 32, eps: 1e-6, silu: true, x, gamma, beta, out };
            let bytes = 2.0 * (x.len * dtype.size()) as f64;
            bench.op(target, "group_norm silu", format!("c={c} {side}x{side} g=32"), dtype, Work::Bytes(bytes), Op::GroupNorm(op));
        }
        let (c, side) = (256, 128);
        if bench.wants("upsample2x") {
            let mut buffers = Buffers::new(target);
            let (x, out) = (buffers.random(c * side * side, dtype), buffers.random(4 * c * side * side, dtype));
            let op = Upsample2x { batch: 1, channels: c, height: side, width: side, x, out };
            let bytes = 5.0 * (x.len * dtype.size()) as f64;
            bench.op(target, "upsample2x", format!("c={c} {side}x{side}"), dtype, Work::Bytes(bytes), Op::Upsample2x(op));
        }
    }
}

/// A whole DiT-S/2 forward at 256 px with random weights, compiled once (batch 8 not on a CPU
/// adapter, which also runs f32 only).
fn dit_s2_forward(bench: &mut Bench, target: &Target) {
    let name = "dit_s2_forward";
    if !bench.wants(name) {
        return;
    }
    let config = ModelConfig::Dit(DitConfig::preset("DiT-S/2").expect("DiT-S/2 preset"));
    let dtypes = if target.slow { &target.dtypes[..1] } else { &target.dtypes[..] };
    for (batch, size) in [(1, Size::Small), (8, Size::Medium)] {
        if !target.fits(size) {
            continue;
        }
        for &dtype in dtypes {
            let (session, _, _) = random_session(target.backend.clone(), &config, batch, dtype, 0).expect("DiT-S/2 session");
            let flops = 2.0 * config.macs_per_image() * batch as f64;
            bench.measure(target, name, format!("batch={batch}"), dtype, Work::Flops(flops), &|| session.run().expect("forward"));
        }
    }
}

fn main() {
    let args = Args::parse();
    let targets = targets(&args.backends);
    for target in &targets {
        println!("ops on {}", target.backend.name());
    }
    let criterion = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    let mut bench = Bench { args, criterion, rows: Vec::new() };
    let cases: [fn(&mut Bench, &Target); 7] = [gemm, attention, per_row, elementwise, patches, vae, dit_s2_forward];
    for case in cases {
        for target in &targets {
            case(&mut bench, target);
        }
    }
    bench.print_tables(&targets);
}
