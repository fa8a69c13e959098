//! What an adapter with smaller limits than the test machine's gets (lavapipe with its limits
//! lowered, `WgpuBackend::lowered`): products whose views exceed the storage binding limit run
//! in blocks, batches beyond the limits run in launches of the largest that fits, a graph
//! that cannot fit is refused before any weight is uploaded, and f16 without SHADER_F16 is
//! packed in u32 and computes what native f16 does.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ditrt::backend::wgpu::Lowered;
use ditrt::backend::{Backend, Buffers, CompiledOps, Embedding, Op, View};
use ditrt::graph::Session;
use ditrt::io::safetensors::SafetensorsFile;
use ditrt::models::weight_source::{FileWeights, ZeroWeights};
use ditrt::models::ModelConfig;
use ditrt::pipeline::denoiser::GraphDenoiser;
use ditrt::pipeline::vae_decode::LatentDecoder;
use ditrt::sampling::{BatchCondition, Denoiser};
use ditrt::tensor::DType;
use ditrt::tools::bench::random_session;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{wgpu_backend, wgpu_lowered, Case};
use crate::ops::{add_case, attention_case, conv2d_case, gemm_case, group_norm_case, upsample2x_case, AttentionShape, ConvShape, LogitBias};

/// Whether wgpu runs `op` in blocks where its views exceed the binding limit.
fn splits(op: &Op) -> bool {
    matches!(op, Op::Gemm(_) | Op::Conv2d(_) | Op::GroupNorm(_) | Op::Upsample2x(_) | Op::Add(_))
}

/// Bytes the largest view of any op that does not split (or one (sample, group) of a group_norm,
/// the least it splits into) spans in `config`'s graph at `batch`, plus what binding may add
/// (the offset alignment): a binding limit that batch fits.
fn binding_for(config: &ModelConfig, batch: usize) -> u64 {
    let graph = config.build(&mut ZeroWeights(DType::F32), batch, DType::F32).unwrap();
    let unsplit = graph.ops().iter().filter(|op| !splits(op)).flat_map(Op::views).map(|(v, _)| v.bytes() as u64);
    let groups = graph.ops().iter().filter_map(|op| match op {
        Op::GroupNorm(g) => Some((g.channels / g.groups * g.spatial * g.x.dtype.size()) as u64),
        _ => None,
    });
    unsplit.chain(groups).max().unwrap() + 512
}

/// Bytes of the largest view of any op in `config`'s graph at batch 1.
fn largest_view(config: &ModelConfig) -> u64 {
    let graph = config.build(&mut ZeroWeights(DType::F32), 1, DType::F32).unwrap();
    graph.ops().iter().flat_map(Op::views).map(|(v, _)| v.bytes() as u64).max().unwrap()
}

/// Runs `body` once per float dtype of a wgpu backend with `lowered` limits (none without an
/// adapter, outside CI), each with a random source started from the test's seed.
fn for_each_lowered_case(lowered: Lowered, mut body: impl FnMut(&mut Case)) {
    let Some(backend) = wgpu_lowered(lowered) else { return };
    let seed = crate::common::seed();
    for dtype in [DType::F32, DType::F16].into_iter().filter(|&d| backend.supports(d)) {
        body(&mut Case { backend: &*backend, dtype, rng: StdRng::seed_from_u64(seed) });
    }
}

/// Products whose weight, input and output views are each beyond a 64 KiB binding limit run as
/// blocks of rows and columns (out keeps its row stride), and equal the reference like an
/// unsplit one.
#[test]
fn a_gemm_beyond_the_binding_limit_runs_in_blocks() {
    for_each_lowered_case(Lowered { binding_bytes: Some(64 << 10), ..Default::default() }, |case| {
        // w: 300 rows of 67 (80 KiB in f32); x and out: 54 rows per block at most.
        for (m, k, n) in [(130, 65, 300), (1, 1152, 200), (700, 8, 40)] {
            for act in ditrt::backend::Activation::ALL {
                gemm_case(case, (m, k, n), act, act != ditrt::backend::Activation::None, true, true);
            }
        }
    });
}

/// The ops of an image beyond a 64 KiB binding limit (16 K f32 elements less slack) run in
/// blocks and equal the reference like unsplit ones: conv2d per sample in blocks of output
/// channels and of input channels (a 37 x 41 plane is 6 KiB: 24 channels are 3 or 2 blocks of
/// each in f32 or f16), group_norm in runs of whole groups (6000 values each) across the
/// sample edge, upsample2x in runs of planes, add in runs of elements (b cut alike, or whole
/// with runs of whole repeats).
#[test]
fn image_ops_beyond_the_binding_limit_run_in_blocks() {
    for_each_lowered_case(Lowered { binding_bytes: Some(64 << 10), ..Default::default() }, |case| {
        for (kernel, pad) in [(3, 1), (1, 0), (3, 0)] {
            conv2d_case(case, ConvShape { batch: 2, in_c: 24, out_c: 24, h: 37, w: 41, kernel, pad }, true);
        }
        conv2d_case(case, ConvShape { batch: 1, in_c: 30, out_c: 3, h: 37, w: 41, kernel: 3, pad: 1 }, false);
        for silu in [false, true] {
            group_norm_case(case, (2, 32, 1500, 8), silu);
        }
        upsample2x_case(case, (2, 5, 40, 50));
        for (len, b_len) in [(40000, 40000), (40001, 7)] {
            for in_place in [false, true] {
                add_case(case, len, b_len, in_place);
            }
        }
    });
}

/// A table beyond a 64 KiB binding limit (1001 rows of 65 f32: 254 KiB) is bound in blocks of
/// rows: ids on each side of every block edge give their rows, and in a compiled graph (which
/// checks no ids) an id beyond the table gives a row of NaN, the others theirs.
#[test]
fn an_embedding_table_beyond_the_binding_limit_is_bound_in_blocks() {
    let (dim, table_rows) = (65, 1001);
    for_each_lowered_case(Lowered { binding_bytes: Some(64 << 10), ..Default::default() }, |case| {
        let table = case.random(table_rows * dim);
        let mut ids: Vec<u32> = (0..40).map(|_| case.rng.random_range(0..table_rows as u32)).collect();
        ids.extend([0, 1, 249, 250, 251, 252, 500, 501, 502, 503, 1000]);
        ids.push(table_rows as u32);
        let rows = ids.len();
        let out = case.output(rows * dim);
        let op = Embedding { rows, dim, table_rows, table: case.input(&table), ids: case.input_ids(&ids), out };
        case.backend.compile(&[Op::Embedding(op)]).unwrap().run(case.backend).unwrap();
        let got = case.read(out);
        let want: Vec<f64> = ids[..rows - 1].iter().flat_map(|&id| table[id as usize * dim..][..dim].iter().map(|&v| f64::from(v))).collect();
        case.check("embedding in blocks", &got[..(rows - 1) * dim], &want);
        assert!(got[(rows - 1) * dim..].iter().all(|v| v.is_nan()), "an id beyond the table gave a row of numbers");
    });
}

/// Attention on an adapter with WebGPU's default 16 KiB of workgroup memory equals the
/// reference at the released head dims (64: DiT, U-ViT, CLIP, 16 keys per block in exactly
/// 16 KiB; 72: DiT-XL/2; 80: U-ViT-H; 96; 128; 512: the SD VAE's one head, and 520, through the
/// products, whose tiles take 16 KiB). The fused shader takes 16 KiB at most on any adapter.
#[test]
fn attention_within_16_kib_of_workgroup_memory() {
    for_each_lowered_case(Lowered { workgroup_bytes: Some(16 << 10), ..Default::default() }, |case| {
        for head_dim in [64, 72, 80, 96, 128, 520] {
            for (batch, heads, q_len, kv_len) in [(2, 2, 17, 33), (1, 2, 70, 150)] {
                attention_case(case, AttentionShape { batch, heads, q_len, kv_len, head_dim }, LogitBias::Random);
            }
        }
        attention_case(case, AttentionShape { batch: 1, heads: 1, q_len: 64, kv_len: 1024, head_dim: 512 }, LogitBias::None);
    });
}

/// Below 16 KiB (no WebGPU adapter, but the lowering does not assume it) the fused shader takes
/// smaller blocks of keys: at 8 KiB, 8 keys per block at 64 dims (exactly 8 KiB) and 4 at 128
/// (6 KiB), and equals the reference.
#[test]
fn attention_within_8_kib_of_workgroup_memory_takes_smaller_blocks_of_keys() {
    for_each_lowered_case(Lowered { workgroup_bytes: Some(8 << 10), ..Default::default() }, |case| {
        for head_dim in [64, 128] {
            attention_case(case, AttentionShape { batch: 1, heads: 2, q_len: 70, kv_len: 150, head_dim }, LogitBias::Random);
        }
    });
}

/// A head of the SD VAE's 512 dims whose f32 scores exceed a 2.5 MiB binding limit (1200 x 600
/// keys: 2.7 MiB; q, k, v and out each fit) runs in chunks of query rows, each chunk's scores
/// within the limit (lower/wide_attention.rs: 1088 rows, 17 tiles of 64, then 112), and equals
/// the reference; neither token count is a multiple of the product's 64-row tiles.
#[test]
fn a_wide_head_beyond_the_binding_limit_runs_in_chunks_of_query_rows() {
    for_each_lowered_case(Lowered { binding_bytes: Some(5 << 19), ..Default::default() }, |case| {
        attention_case(case, AttentionShape { batch: 1, heads: 1, q_len: 1200, kv_len: 600, head_dim: 512 }, LogitBias::Random);
    });
}

/// `count` latents through a decoder, and DiT inputs through a denoiser, random from `seed`.
fn random(count: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A denoiser asked for batches of 8 on an adapter whose binding limit holds 3 samples' views
/// runs launches of 3 (found before any weight is uploaded) and predicts what launches of 8 do.
#[test]
fn a_denoiser_batch_beyond_the_binding_limit_runs_in_launches_that_fit() {
    let Some(full) = wgpu_backend() else { return };
    let file = SafetensorsFile::open(crate::fixture("dit_p2.safetensors")).unwrap();
    let config = ModelConfig::from_file(&file).unwrap();
    let binding = binding_for(&config, 3);
    assert!(binding_for(&config, 4) > binding, "views do not grow with the batch");
    let Some(small) = wgpu_lowered(Lowered { binding_bytes: Some(binding), ..Default::default() }) else { return };
    let g = config.input_geometry().unwrap();
    let n = 8;
    let x = random(n * g.channels * g.height * g.width, 1);
    let t: Vec<f32> = (0..n).map(|i| 100.0 * i as f32 + 7.0).collect();
    let y: Vec<u32> = (0..n as u32).map(|i| i % config.num_classes().unwrap() as u32).collect();
    let predict = |backend: Arc<dyn Backend>| {
        let mut denoiser = GraphDenoiser::new(backend, &config, &mut FileWeights::new(&file), n, DType::F32).unwrap();
        let batch = denoiser.batch();
        (batch, denoiser.predict(&x, &t, BatchCondition::Labels(&y)).unwrap())
    };
    let (batch, want) = predict(full);
    assert_eq!(batch, n);
    let (batch, got) = predict(small);
    assert_eq!(batch, 3, "binding limit {binding}: launches of {batch}");
    assert_eq!(got, want, "launches of 3 predict otherwise than launches of 8");
}

/// The VAE decoder asked for batches of 4 (`sample --vae --batch 4`) on an adapter whose
/// binding limit holds one image's views of the ops that do not split (attention, copies)
/// decodes one latent per launch, and on one whose largest
/// buffer holds the arena of two, two per launch; alike.
#[test]
fn a_decoder_batch_beyond_the_limits_runs_in_launches_that_fit() {
    let Some(full) = wgpu_backend() else { return };
    let file = SafetensorsFile::open(crate::fixture("vae_f8.safetensors")).unwrap();
    let ModelConfig::Vae(mut vae) = ModelConfig::from_file(&file).unwrap() else { panic!("vae_f8 is a VAE") };
    vae.latent_size = 8;
    let config = ModelConfig::Vae(vae.clone());
    let arena = |batch| config.build(&mut ZeroWeights(DType::F32), batch, DType::F32).unwrap().plan.arena_bytes as u64;
    let latent = ditrt::tensor::ImageGeometry { channels: vae.latent_channels, height: 8, width: 8 };
    let latents = random(4 * vae.latent_channels * 64, 2);
    let decode = |backend: Arc<dyn Backend>| {
        let decoder = LatentDecoder::new(backend, &file, latent, 0.5, 4, DType::F32).unwrap();
        (decoder.batch(), decoder.decode(&latents, 4).unwrap())
    };
    let (batch, (want, geometry)) = decode(full);
    assert_eq!(batch, 4);
    assert_eq!(want.len(), 4 * geometry.channels * geometry.height * geometry.width);
    // Under the binding limit the convolutions also sum blocks of input channels through out:
    // alike within f32 rounding; under the buffer limit bit for bit.
    let limits = [
        (Lowered { binding_bytes: Some(binding_for(&config, 1)), ..Default::default() }, 1, 1e-6),
        (Lowered { buffer_bytes: Some(arena(2)), ..Default::default() }, 2, 0.0),
    ];
    for (lowered, fits, tol) in limits {
        let Some(small) = wgpu_lowered(lowered) else { return };
        let (batch, (got, _)) = decode(small);
        assert_eq!(batch, fits, "{lowered:?}: launches of {batch}");
        let cmp = ditrt::tools::verify::Comparison::new(&got, &want);
        assert!(cmp.passes(tol), "{lowered:?}: launches of {batch} decode otherwise than of 4: rel_l2 {:.3e}", cmp.rel_l2);
    }
}

/// f16 on an adapter without SHADER_F16 (packed in u32 pairs) computes what native f16 does,
/// bit for bit on lavapipe: the DiT denoiser (gemm, attention, layernorm_modulate,
/// gate_residual, patchify, unpatchify, embeddings) and the VAE decoder (conv2d, group_norm,
/// upsample2x, head-dim-512 attention, add) on fresh random inputs. Skipped where the adapter
/// has no SHADER_F16 (the shared backend packs already).
#[test]
fn f16_without_shader_f16_equals_native_f16() {
    let Some(native) = wgpu_backend() else { return };
    if native.name().contains("packed") {
        return println!("skipped: {} has no SHADER_F16 to compare with", native.name());
    }
    let Some(packed) = wgpu_lowered(Lowered { no_f16: true, ..Default::default() }) else { return };
    assert!(packed.name().contains("f16 packed"), "{}", packed.name());
    let seed = crate::common::seed();

    let file = SafetensorsFile::open(crate::fixture("dit_p2.safetensors")).unwrap();
    let config = ModelConfig::from_file(&file).unwrap();
    let g = config.input_geometry().unwrap();
    let n = 3;
    let x = random(n * g.channels * g.height * g.width, seed);
    let t: Vec<f32> = (0..n).map(|i| 300.0 * i as f32 + 11.0).collect();
    let y: Vec<u32> = (0..n as u32).map(|i| i % config.num_classes().unwrap() as u32).collect();
    let predict = |backend: Arc<dyn Backend>| {
        let mut denoiser = GraphDenoiser::new(backend, &config, &mut FileWeights::new(&file), n, DType::F16).unwrap();
        denoiser.predict(&x, &t, BatchCondition::Labels(&y)).unwrap()
    };
    let want = predict(native.clone());
    assert!(want.iter().all(|v| v.is_finite()));
    assert_eq!(predict(packed.clone()), want, "the DiT denoiser in f16: packed differs from native");

    let file = SafetensorsFile::open(crate::fixture("vae_f8.safetensors")).unwrap();
    let ModelConfig::Vae(vae) = ModelConfig::from_file(&file).unwrap() else { panic!("vae_f8 is a VAE") };
    let latent = ditrt::tensor::ImageGeometry { channels: vae.latent_channels, height: 8, width: 8 };
    let latents = random(2 * vae.latent_channels * 64, seed + 1);
    let decode = |backend: Arc<dyn Backend>| LatentDecoder::new(backend, &file, latent, 0.5, 2, DType::F16).unwrap().decode(&latents, 2).unwrap().0;
    let want = decode(native);
    assert!(want.iter().all(|v| v.is_finite()));
    assert_eq!(decode(packed), want, "the VAE decoder in f16: packed differs from native");
}

/// The VAE decoder on an adapter whose binding limit holds none of its full-resolution
/// activations (each 4 x or more the limit, so batch 1 was refused) but every view of the ops
/// that do not split (attention, copies at the lowest resolution) and one (sample, group) of
/// every GroupNorm decodes with its convolutions, GroupNorms, upsamplings and residual adds in
/// blocks, and equals the CPU's decode within the f32 model tolerance.
#[test]
fn a_decoder_image_beyond_the_binding_limit_runs_in_blocks() {
    let file = SafetensorsFile::open(crate::fixture("vae_f8.safetensors")).unwrap();
    let ModelConfig::Vae(mut vae) = ModelConfig::from_file(&file).unwrap() else { panic!("vae_f8 is a VAE") };
    vae.latent_size = 8;
    let config = ModelConfig::Vae(vae.clone());
    let whole = binding_for(&config, 1);
    assert!(4 * whole <= largest_view(&config), "the largest view is under 4 x the limit {whole}");
    let Some(small) = wgpu_lowered(Lowered { binding_bytes: Some(whole), ..Default::default() }) else { return };
    let latent = ditrt::tensor::ImageGeometry { channels: vae.latent_channels, height: 8, width: 8 };
    let latents = random(2 * vae.latent_channels * 64, 3);
    let decode = |backend: Arc<dyn Backend>| LatentDecoder::new(backend, &file, latent, 0.5, 2, DType::F32).unwrap().decode(&latents, 2).unwrap().0;
    let want = decode(Arc::new(ditrt::backend::cpu::CpuBackend::new()));
    let cmp = ditrt::tools::verify::Comparison::new(&decode(small), &want);
    println!("binding limit {whole} bytes: rel_l2 {:.3e} max_abs {:.3e}", cmp.rel_l2, cmp.max_abs);
    assert!(cmp.passes(1e-5), "rel_l2 {:.3e} (non-finite: {})", cmp.rel_l2, cmp.non_finite);
}

/// The SD VAE decoder at its real widths (128 to 512 channels) at 64 px, random weights, on an
/// adapter whose binding limit is a quarter of its largest activation (256 channels at 64 x 64,
/// 4 MiB; at 512 px against 128 MiB it is twice): like the CPU.
#[test]
fn the_sd_vae_at_real_widths_beyond_the_binding_limit_runs_like_the_cpu() {
    let ModelConfig::Vae(mut vae) = ModelConfig::preset("vae", "SD-VAE-KL-f8").unwrap() else { panic!("a VAE preset") };
    vae.latent_size = 8;
    let config = ModelConfig::Vae(vae);
    let limit = 256 * 64 * 64 * 4 / 4;
    assert!(binding_for(&config, 1) <= limit, "a view that does not split is over {limit} bytes");
    let Some(small) = wgpu_lowered(Lowered { binding_bytes: Some(limit), ..Default::default() }) else { return };
    let decode = |backend: Arc<dyn Backend>| {
        let (session, ..) = random_session(backend, &config, 1, DType::F32, 9).unwrap();
        session.run().unwrap();
        session.output("out").unwrap().to_f32()
    };
    let want = decode(Arc::new(ditrt::backend::cpu::CpuBackend::new()));
    let cmp = ditrt::tools::verify::Comparison::new(&decode(small), &want);
    println!("SD VAE at 64 px, binding limit {limit} bytes: rel_l2 {:.3e}", cmp.rel_l2);
    assert!(cmp.passes(1e-5), "rel_l2 {:.3e} (non-finite: {})", cmp.rel_l2, cmp.non_finite);
}

/// A backend that counts the bytes written to it (weights uploaded), otherwise `inner`.
struct CountingWrites {
    inner: Arc<dyn Backend>,
    written: AtomicUsize,
}

impl Buffers for CountingWrites {
    fn alloc(&self, bytes: usize) -> ditrt::Result<ditrt::backend::BufId> {
        self.inner.alloc(bytes)
    }
    fn free(&self, buf: ditrt::backend::BufId) {
        self.inner.free(buf)
    }
    fn write(&self, dst: View, bytes: &[u8]) -> ditrt::Result<()> {
        self.written.fetch_add(bytes.len(), Ordering::Relaxed);
        self.inner.write(dst, bytes)
    }
    fn read(&self, src: View) -> ditrt::Result<Vec<u8>> {
        self.inner.read(src)
    }
}

impl Backend for CountingWrites {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn supports(&self, dtype: DType) -> bool {
        self.inner.supports(dtype)
    }
    fn buffers(&self) -> ditrt::Result<&dyn Buffers> {
        Ok(self)
    }
    fn synchronize(&self) -> ditrt::Result<()> {
        self.inner.synchronize()
    }
    fn launch(&self, op: &Op) -> ditrt::Result<()> {
        self.inner.launch(op)
    }
    fn compile(&self, ops: &[Op]) -> ditrt::Result<Box<dyn CompiledOps>> {
        self.inner.compile(ops)
    }
    fn check_placed(&self, ops: &[Op], buffer_bytes: &[usize]) -> ditrt::Result<()> {
        self.inner.check_placed(ops, buffer_bytes)
    }
}

/// A graph whose views (even at batch 1) exceed the binding limit, or whose arena exceeds the
/// largest buffer, is refused in one line naming the op and the limit, before a byte of weights
/// is uploaded; the pipeline's batch search leaves that refusal to binding.
#[test]
fn a_graph_beyond_the_limits_is_refused_before_any_upload() {
    let file = SafetensorsFile::open(crate::fixture("dit_p2.safetensors")).unwrap();
    let config = ModelConfig::from_file(&file).unwrap();
    let graph = config.build(&mut FileWeights::new(&file), 1, DType::F32).unwrap();
    let arena = graph.plan.arena_bytes as u64;
    let limits = [
        (Lowered { binding_bytes: Some(1024), ..Default::default() }, "storage binding limit of 1024 bytes"),
        (Lowered { buffer_bytes: Some(arena - 4), ..Default::default() }, "largest buffer"),
    ];
    for (lowered, names) in limits {
        let Some(inner) = wgpu_lowered(lowered) else { return };
        let counting = Arc::new(CountingWrites { inner, written: AtomicUsize::new(0) });
        let msg = Session::new(counting.clone(), &graph).err().expect("a graph beyond the limits bound").to_string();
        assert!(msg.contains(names) && !msg.contains('\n'), "{msg}");
        assert_eq!(counting.written.load(Ordering::Relaxed), 0, "weights were uploaded before the refusal: {msg}");
        let msg = GraphDenoiser::new(counting.clone(), &config, &mut FileWeights::new(&file), 4, DType::F32).err().expect("refused").to_string();
        assert!(msg.contains(names), "{msg}");
        assert_eq!(counting.written.load(Ordering::Relaxed), 0, "weights were uploaded before the refusal: {msg}");
    }
}
