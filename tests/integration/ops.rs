//! Every op on every backend and float dtype against a naive f64 reference written here from
//! the docs in `src/backend/ops.rs`, on fresh random inputs (seed printed on failure).

use crate::common::{for_each_case, round_to, to_f64, Case};
use ditrt::backend::*;
use ditrt::tensor::DType;
use rand::Rng;

// ---------------------------------------------------------------------------------------
// f64 references
// ---------------------------------------------------------------------------------------

/// erf(z) = 2/sqrt(pi) e^{-z^2} sum_n 2^n z^{2n+1} / (2n+1)!!: all terms positive, so no
/// cancellation; beyond |z| = 6, erf is 1 to f64 precision.
fn erf(z: f64) -> f64 {
    if z.abs() > 6.0 {
        return z.signum();
    }
    let (mut term, mut sum, mut n) = (z, z, 0.0);
    while term.abs() > 1e-17 * sum.abs() {
        n += 1.0;
        term *= 2.0 * z * z / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-z * z).exp() * sum
}

fn activate(act: Activation, x: f64) -> f64 {
    match act {
        Activation::None => x,
        Activation::GeluTanh => 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh()),
        Activation::GeluErf => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::QuickGelu => x / (1.0 + (-1.702 * x).exp()),
    }
}

/// (x - mean) / sqrt(var + eps) of one row, biased variance.
fn normalize(x: &[f64], eps: f64) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    x.iter().map(|v| (v - mean) / (var + eps).sqrt()).collect()
}

/// y[r, j] = sum_i x[r * xs + i] w[j * ws + i] for r < m, j < n, i < k.
fn matmul_nt(m: usize, n: usize, k: usize, x: &[f32], xs: usize, w: &[f32], ws: usize) -> Vec<f64> {
    let mut y = vec![0.0; m * n];
    for r in 0..m {
        for j in 0..n {
            y[r * n + j] = (0..k).map(|i| f64::from(x[r * xs + i]) * f64::from(w[j * ws + i])).sum();
        }
    }
    y
}

// ---------------------------------------------------------------------------------------
// linear layers
// ---------------------------------------------------------------------------------------

#[test]
fn gemm() {
    for_each_case(|case| {
        let mut variant = 0;
        for m in [1, 7, 33, 130] {
            for k in [3, 65] {
                for n in [5, 96] {
                    for act in Activation::ALL {
                        for accumulate in [false, true] {
                            variant += 1;
                            gemm_case(case, (m, k, n), act, accumulate, variant % 2 == 0, variant % 3 != 0);
                        }
                    }
                }
            }
        }
    });
}

/// k = 0: out (+)= act(bias), the product empty.
#[test]
fn gemm_with_empty_k() {
    for_each_case(|case| {
        for act in [Activation::None, Activation::Silu] {
            for accumulate in [false, true] {
                gemm_case(case, (7, 0, 5), act, accumulate, true, false);
            }
        }
    });
}

/// The edges of wgpu's product tiles (shaders/lib/tiled_matmul.wgsl: 64 x 64 outputs, each
/// invocation's rows and columns in two halves 32 apart, k 16 at a time through two buffers
/// used in turn): m and n one short of, at and one past a tile; k one short of, at and one
/// past a step, and an even and an odd number of steps.
#[test]
fn gemm_at_tile_edges() {
    for_each_case(|case| {
        for (m, n) in [(63, 65), (64, 1), (65, 64), (1, 63)] {
            for k in [1, 15, 16, 17, 32, 47] {
                gemm_case(case, (m, k, n), Activation::None, false, true, k % 2 == 1);
            }
        }
    });
}

/// DiT-XL/2's fc1 at its real width (rows of 20 tokens, 1152 to 4608), with an activation and
/// accumulation: on CUDA the kernels/linear.cu path (cuBLASLt cannot express it).
#[test]
fn gemm_at_real_width() {
    for_each_case(|case| gemm_case(case, (20, 1152, 4608), Activation::GeluTanh, true, true, false));
}

pub(crate) fn gemm_case(case: &mut Case, (m, k, n): (usize, usize, usize), act: Activation, accumulate: bool, bias: bool, strided: bool) {
    let (x_stride, w_stride) = if strided { (k + 3, k + 2) } else { (k, k) };
    let x = case.random(m * x_stride);
    let w = case.random(n * w_stride);
    let b = case.random(n);
    let init = case.random(m * n);
    let out = case.input(&init);
    if !accumulate {
        case.poison(out);
    }
    let op = Gemm { m, n, k, x: case.input(&x), x_stride, w: case.input(&w), w_stride, bias: bias.then(|| case.input(&b)), out, act, accumulate };
    case.backend.launch(&Op::Gemm(op)).expect("gemm");
    let product = matmul_nt(m, n, k, &x, x_stride, &w, w_stride);
    let want: Vec<f64> = product
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let y = activate(act, p + if bias { f64::from(b[i % n]) } else { 0.0 });
            y + if accumulate { f64::from(init[i]) } else { 0.0 }
        })
        .collect();
    let name = format!("gemm m={m} k={k} n={n} {act:?} accumulate={accumulate} bias={bias} strided={strided}");
    case.check(&name, &case.read(out), &want);
}

#[test]
fn tmsa_qkv() {
    for_each_case(|case| {
        for (batch, tokens, k, n) in [(1, 1, 3, 5), (2, 9, 40, 48), (3, 17, 33, 7)] {
            for bias in [false, true] {
                let x = case.random(batch * tokens * k);
                let w = case.random(n * k);
                let b = case.random(n);
                let time = case.random(batch * n);
                let out = case.output(batch * tokens * n);
                let op = TmsaQkv {
                    batch,
                    tokens,
                    k,
                    n,
                    x: case.input(&x),
                    w: case.input(&w),
                    bias: bias.then(|| case.input(&b)),
                    time: case.input(&time),
                    out,
                };
                case.backend.launch(&Op::TmsaQkv(op)).expect("tmsa_qkv");
                let product = matmul_nt(batch * tokens, n, k, &x, k, &w, k);
                let want: Vec<f64> = product
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let (r, j) = (i / n, i % n);
                        p + f64::from(time[r / tokens * n + j]) + if bias { f64::from(b[j]) } else { 0.0 }
                    })
                    .collect();
                case.check(&format!("tmsa_qkv batch={batch} tokens={tokens} k={k} n={n} bias={bias}"), &case.read(out), &want);
            }
        }
    });
}

#[test]
fn skip_concat_linear() {
    for_each_case(|case| {
        for (rows, dim_x, dim_skip, n) in [(1, 5, 3, 7), (9, 32, 32, 40), (70, 17, 48, 33)] {
            for bias in [false, true] {
                let x = case.random(rows * dim_x);
                let skip = case.random(rows * dim_skip);
                let w = case.random(n * (dim_x + dim_skip));
                let b = case.random(n);
                let out = case.output(rows * n);
                let op = SkipConcatLinear {
                    rows,
                    dim_x,
                    dim_skip,
                    n,
                    x: case.input(&x),
                    skip: case.input(&skip),
                    w: case.input(&w),
                    bias: bias.then(|| case.input(&b)),
                    out,
                };
                case.backend.launch(&Op::SkipConcatLinear(op)).expect("skip_concat_linear");
                // The reference builds the concat the op avoids.
                let concat: Vec<f32> =
                    (0..rows).flat_map(|r| x[r * dim_x..(r + 1) * dim_x].iter().chain(&skip[r * dim_skip..(r + 1) * dim_skip])).copied().collect();
                let dim = dim_x + dim_skip;
                let want: Vec<f64> = matmul_nt(rows, n, dim, &concat, dim, &w, dim)
                    .iter()
                    .enumerate()
                    .map(|(i, p)| p + if bias { f64::from(b[i % n]) } else { 0.0 })
                    .collect();
                let name = format!("skip_concat_linear rows={rows} dim_x={dim_x} dim_skip={dim_skip} n={n} bias={bias}");
                case.check(&name, &case.read(out), &want);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// attention
// ---------------------------------------------------------------------------------------

pub(crate) struct AttentionShape {
    pub batch: usize,
    pub heads: usize,
    pub q_len: usize,
    pub kv_len: usize,
    pub head_dim: usize,
}

#[test]
fn attention() {
    for_each_case(|case| {
        // 64, 72, 96, 128: every head dim of kernels/attention.cu (tensor cores); 80 U-ViT-H's;
        // 32 the fallback.
        for head_dim in [32, 64, 72, 80, 96, 128] {
            // (1, 2, 70, 150): keys span several of the 64-key tiles GPU kernels stream through,
            // and queries two of wgpu's 64-row workgroups.
            for (batch, heads, q_len, kv_len) in [(2, 3, 40, 40), (2, 2, 17, 33), (1, 1, 1, 7), (1, 2, 65, 5), (1, 2, 70, 150)] {
                for bias in [LogitBias::None, LogitBias::Random] {
                    attention_case(case, AttentionShape { batch, heads, q_len, kv_len, head_dim }, bias);
                }
            }
        }
    });
}

/// Query and key counts on each side of wgpu's 64 query rows per workgroup (1, 63, 65; 257:
/// five workgroups, the last with one row) at the head dims of the released models, so every
/// partial workgroup and partial block of keys meets every head width.
#[test]
fn attention_around_64_query_rows() {
    for_each_case(|case| {
        for head_dim in [64, 72, 80, 96, 128] {
            for (q_len, kv_len) in [(1, 1), (63, 63), (65, 63), (257, 9)] {
                attention_case(case, AttentionShape { batch: 1, heads: 1, q_len, kv_len, head_dim }, LogitBias::Random);
            }
        }
    });
}

/// A causal mask as the CLIP text encoder passes it (models/layers.rs `causal_bias`): masked
/// logits get f16's lowest finite value. 77 tokens span two of the GPU kernels' 64-key tiles,
/// so the first queries see a whole tile masked; a key that leaked through would change them.
#[test]
fn attention_causal_mask() {
    for_each_case(|case| {
        for (heads, head_dim) in [(2, 32), (12, 64)] {
            attention_case(case, AttentionShape { batch: 2, heads, q_len: 77, kv_len: 77, head_dim }, LogitBias::Causal);
        }
    });
}

/// Heads wider than one 128-dim chunk of the wgpu shader and the 256 dims the CUDA fallback
/// keeps in registers: the general paths cut the head into chunks. 520 is no multiple of
/// either; 512 over 1024 keys is the SD VAE's mid-block attention at 256 px (64 of its 1024
/// queries: four query tiles, and lavapipe's time stays in seconds).
#[test]
fn attention_wide_heads() {
    for_each_case(|case| {
        for head_dim in [160, 256, 520] {
            for (batch, heads, q_len, kv_len) in [(2, 2, 17, 33), (1, 2, 70, 150)] {
                let bias = if head_dim != 256 { LogitBias::Random } else { LogitBias::None };
                attention_case(case, AttentionShape { batch, heads, q_len, kv_len, head_dim }, bias);
            }
        }
        attention_case(case, AttentionShape { batch: 1, heads: 1, q_len: 64, kv_len: 1024, head_dim: 512 }, LogitBias::None);
    });
}

/// The additive logit bias of an attention case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum LogitBias {
    None,
    /// Standard-normal values.
    Random,
    /// 0 where key <= query, f16's lowest finite value above (every head alike).
    Causal,
}

/// With q_len == kv_len, q, k and v are windows of one packed [q | k | v] buffer (row stride
/// 3 * width); otherwise q is its own buffer and k, v share a packed [k | v] one. The output
/// rows are padded to exercise out_stride.
pub(crate) fn attention_case(case: &mut Case, s: AttentionShape, logit_bias: LogitBias) {
    let AttentionShape { batch, heads, q_len, kv_len, head_dim: hd } = s;
    let width = heads * hd;
    let (q_rows, kv_rows) = (batch * q_len, batch * kv_len);
    let (q_host, q_off, q_stride, kv_host, k_off, v_off, kv_stride, q, k, v);
    if q_len == kv_len {
        let qkv = case.random(q_rows * 3 * width);
        let view = case.input(&qkv);
        let len = qkv.len() - 2 * width;
        (q, k, v) = (view.slice(0, len), view.slice(width, len), view.slice(2 * width, len));
        (q_host, q_off, q_stride) = (qkv.clone(), 0, 3 * width);
        (kv_host, k_off, v_off, kv_stride) = (qkv, width, 2 * width, 3 * width);
    } else {
        let q_values = case.random(q_rows * width);
        let kv = case.random(kv_rows * 2 * width);
        let kv_view = case.input(&kv);
        let len = kv.len() - width;
        (q, k, v) = (case.input(&q_values), kv_view.slice(0, len), kv_view.slice(width, len));
        (q_host, q_off, q_stride) = (q_values, 0, width);
        (kv_host, k_off, v_off, kv_stride) = (kv, 0, width, 2 * width);
    }
    let bias = match logit_bias {
        LogitBias::Causal => {
            let row = |n: usize| (0..kv_len).map(move |j| if j > n { f32::from(half::f16::MIN) } else { 0.0 });
            round_to(&(0..heads * q_len).flat_map(|r| row(r % q_len)).collect::<Vec<_>>(), case.dtype)
        }
        _ => case.random(heads * q_len * kv_len),
    };
    let with_bias = logit_bias != LogitBias::None;
    let out_stride = width + 8;
    let out = case.output(q_rows * out_stride);
    let scale = 1.0 / (hd as f32).sqrt();
    let op = Attention {
        batch,
        heads,
        q_len,
        kv_len,
        head_dim: hd,
        scale,
        q,
        q_stride,
        k,
        v,
        kv_stride,
        bias: with_bias.then(|| case.input(&bias)),
        out,
        out_stride,
    };
    case.backend.launch(&Op::Attention(op)).expect("attention");

    let got = case.read(out);
    let (mut got_rows, mut want) = (Vec::new(), Vec::new());
    let at = |host: &[f32], off: usize, stride: usize, row: usize, h: usize, d: usize| f64::from(host[off + row * stride + h * hd + d]);
    for b in 0..batch {
        for n in 0..q_len {
            let mut row_out = vec![0.0; width];
            for h in 0..heads {
                let scores: Vec<f64> = (0..kv_len)
                    .map(|j| {
                        let dot: f64 = (0..hd)
                            .map(|d| at(&q_host, q_off, q_stride, b * q_len + n, h, d) * at(&kv_host, k_off, kv_stride, b * kv_len + j, h, d))
                            .sum();
                        dot * f64::from(scale) + if with_bias { f64::from(bias[(h * q_len + n) * kv_len + j]) } else { 0.0 }
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = weights.iter().sum();
                for d in 0..hd {
                    row_out[h * hd + d] = (0..kv_len).map(|j| weights[j] / sum * at(&kv_host, v_off, kv_stride, b * kv_len + j, h, d)).sum();
                }
            }
            let row = (b * q_len + n) * out_stride;
            got_rows.extend_from_slice(&got[row..row + width]);
            want.extend(row_out);
            // The padding between rows is not part of the output: it must stay untouched.
            assert!(got[row + width..row + out_stride].iter().all(|v| v.is_nan()), "attention wrote into out_stride padding");
        }
    }
    let name = format!("attention batch={batch} heads={heads} q_len={q_len} kv_len={kv_len} head_dim={hd} bias={logit_bias:?}");
    case.check(&name, &got_rows, &want);
}

// ---------------------------------------------------------------------------------------
// normalisation and modulation
// ---------------------------------------------------------------------------------------

/// DiT's adaLN output per sample: [shift_msa, scale_msa, gate_msa, shift_mlp, ...], 6 * dim.
const MOD_CHUNKS: usize = 6;

/// The f64 reference of DiT's LN-modulate of `x`'s rows, with shift and scale chunks 3 and 4
/// of each sample's `modulation`.
fn modulated(x: &[f32], tokens: usize, dim: usize, modulation: &[f32], eps: f32) -> Vec<f64> {
    let mut want = Vec::new();
    for (r, row) in x.chunks(dim).enumerate() {
        let base = r / tokens * MOD_CHUNKS * dim;
        for (j, v) in normalize(&to_f64(row), eps.into()).iter().enumerate() {
            let (shift, scale) = (modulation[base + 3 * dim + j], modulation[base + 4 * dim + j]);
            want.push(v * (1.0 + f64::from(scale)) + f64::from(shift));
        }
    }
    want
}

#[test]
fn layernorm_modulate() {
    for_each_case(|case| {
        for (batch, tokens, dim) in [(1, 1, 7), (3, 5, 64), (2, 17, 384)] {
            // A large mean relative to the spread makes sloppy statistics visible.
            let x: Vec<f32> = round_to(&case.random(batch * tokens * dim).iter().map(|v| 2.0 * v + 3.0).collect::<Vec<_>>(), case.dtype);
            let modulation = case.random(batch * MOD_CHUNKS * dim);
            let mod_view = case.input(&modulation);
            let stride = MOD_CHUNKS * dim;
            // shift is chunk 3, scale chunk 4: strided windows inside the modulation buffer.
            let window = |chunk: usize| PerSample { view: mod_view.slice(chunk * dim, mod_view.len - chunk * dim), stride };
            let out = case.output(x.len());
            let eps = 1e-6;
            let op = LayerNormModulate { batch, tokens, dim, eps, x: case.input(&x), residual: None, shift: window(3), scale: window(4), out };
            case.backend.launch(&Op::LayerNormModulate(op)).expect("layernorm_modulate");
            let want = modulated(&x, tokens, dim, &modulation, eps);
            case.check(&format!("layernorm_modulate batch={batch} tokens={tokens} dim={dim}"), &case.read(out), &want);
        }
    });
}

/// DiT's gated residual fused into the norm: x += gate * y written back (in x's dtype), then
/// normalised as written; at DiT-XL/2's width too.
#[test]
fn layernorm_modulate_with_a_residual() {
    for_each_case(|case| {
        for (batch, tokens, dim) in [(1, 1, 7), (3, 5, 64), (2, 17, 1152)] {
            let x = round_to(&case.random(batch * tokens * dim).iter().map(|v| 2.0 * v + 3.0).collect::<Vec<_>>(), case.dtype);
            let y = case.random(x.len());
            let modulation = case.random(batch * MOD_CHUNKS * dim);
            let mod_view = case.input(&modulation);
            let stride = MOD_CHUNKS * dim;
            let window = |chunk: usize| PerSample { view: mod_view.slice(chunk * dim, mod_view.len - chunk * dim), stride };
            let (x_view, out) = (case.input(&x), case.output(x.len()));
            let residual = Some(GatedResidual { y: case.input(&y), gate: window(2) });
            let eps = 1e-6;
            let op = LayerNormModulate { batch, tokens, dim, eps, x: x_view, residual, shift: window(3), scale: window(4), out };
            case.backend.launch(&Op::LayerNormModulate(op)).expect("layernorm_modulate");
            let updated: Vec<f64> = (0..x.len())
                .map(|i| {
                    let (r, j) = (i / dim, i % dim);
                    f64::from(x[i]) + f64::from(modulation[r / tokens * stride + 2 * dim + j]) * f64::from(y[i])
                })
                .collect();
            let what = format!("layernorm_modulate with a residual batch={batch} tokens={tokens} dim={dim}");
            case.check(&format!("{what}: x"), &case.read(x_view), &updated);
            // The norm reads x as stored.
            let stored = round_to(&updated.iter().map(|&v| v as f32).collect::<Vec<_>>(), case.dtype);
            case.check(&format!("{what}: out"), &case.read(out), &modulated(&stored, tokens, dim, &modulation, eps));
        }
    });
}

#[test]
fn layernorm() {
    for_each_case(|case| {
        for (rows, dim) in [(1, 5), (9, 64), (33, 1152)] {
            for (affine_gamma, affine_beta) in [(false, false), (true, false), (false, true), (true, true)] {
                let x = case.random(rows * dim);
                let gamma = case.random(dim);
                let beta = case.random(dim);
                let out = case.output(x.len());
                let eps = 1e-5;
                let op = LayerNorm {
                    rows,
                    dim,
                    eps,
                    x: case.input(&x),
                    gamma: affine_gamma.then(|| case.input(&gamma)),
                    beta: affine_beta.then(|| case.input(&beta)),
                    out,
                };
                case.backend.launch(&Op::LayerNorm(op)).expect("layernorm");
                let mut want = Vec::new();
                for row in x.chunks(dim) {
                    for (j, y) in normalize(&to_f64(row), eps.into()).iter().enumerate() {
                        let g = if affine_gamma { f64::from(gamma[j]) } else { 1.0 };
                        let b = if affine_beta { f64::from(beta[j]) } else { 0.0 };
                        want.push(y * g + b);
                    }
                }
                let name = format!("layernorm rows={rows} dim={dim} gamma={affine_gamma} beta={affine_beta}");
                case.check(&name, &case.read(out), &want);
            }
        }
    });
}

#[test]
fn group_norm() {
    for_each_case(|case| {
        for shape in [(1, 4, 1, 1), (2, 12, 20, 3), (2, 12, 7, 12), (1, 32, 64, 8)] {
            for silu in [false, true] {
                group_norm_case(case, shape, silu);
            }
        }
    });
}

/// The SD VAE's widths (32 groups of 512 and 128 channels) over enough pixels that wgpu cuts
/// each (sample, group) into several slices whose statistics it merges (lower/norm.rs: 2048
/// values a slice, at most 64 slices): 16 x 900 = 14400 values are 8 slices, the last of 64;
/// 4 x 1089 = 4356 are 3, the last of 260; and 4 x 33000 = 132000 are 64 of 2063 (no power of
/// two), the last of 2031.
#[test]
fn group_norm_at_vae_widths() {
    for_each_case(|case| {
        for shape in [(1, 512, 900, 32), (1, 128, 1089, 32), (1, 128, 33000, 32)] {
            group_norm_case(case, shape, true);
        }
    });
}

/// GroupNorm of (batch, channels, spatial, groups) against the f64 reference.
pub fn group_norm_case(case: &mut Case, (batch, channels, spatial, groups): (usize, usize, usize, usize), silu: bool) {
    let x = case.random(batch * channels * spatial);
    let gamma = case.random(channels);
    let beta = case.random(channels);
    let out = case.output(x.len());
    let eps = 1e-6;
    let op = GroupNorm { batch, channels, spatial, groups, eps, silu, x: case.input(&x), gamma: case.input(&gamma), beta: case.input(&beta), out };
    case.backend.launch(&Op::GroupNorm(op)).expect("group_norm");
    let block = channels / groups * spatial;
    let mut want = Vec::new();
    for (i, values) in x.chunks(block).enumerate() {
        for (e, y) in normalize(&to_f64(values), eps.into()).iter().enumerate() {
            let c = i % groups * (channels / groups) + e / spatial;
            let y = y * f64::from(gamma[c]) + f64::from(beta[c]);
            want.push(if silu { activate(Activation::Silu, y) } else { y });
        }
    }
    let name = format!("group_norm batch={batch} channels={channels} spatial={spatial} groups={groups} silu={silu}");
    case.check(&name, &case.read(out), &want);
}

// ---------------------------------------------------------------------------------------
// layout and glue
// ---------------------------------------------------------------------------------------

const PATCH_GEOMETRIES: [(usize, usize, usize, usize, usize); 4] = [(2, 3, 8, 12, 1), (2, 3, 8, 12, 2), (1, 4, 8, 16, 4), (2, 1, 12, 8, 4)];

fn geometry((batch, channels, height, width, patch): (usize, usize, usize, usize, usize)) -> PatchGeometry {
    PatchGeometry { batch, channels, height, width, patch }
}

#[test]
fn patchify() {
    for_each_case(|case| {
        for g in PATCH_GEOMETRIES.map(geometry) {
            let PatchGeometry { batch, channels: c, height: h, width: w, patch: p } = g;
            let x = case.random(batch * c * h * w);
            let out = case.output(x.len());
            case.backend.launch(&Op::Patchify(Patchify { geom: g, x: case.input(&x), out })).expect("patchify");
            let (hp, wp) = (h / p, w / p);
            let mut want = vec![f64::NAN; x.len()];
            for b in 0..batch {
                for (hi, wi, ch, i, j) in patch_indices(hp, wp, c, p) {
                    let token = (b * hp * wp + hi * wp + wi) * c * p * p;
                    want[token + (ch * p + i) * p + j] = f64::from(x[((b * c + ch) * h + hi * p + i) * w + wi * p + j]);
                }
            }
            case.check(&format!("patchify {g:?}"), &case.read(out), &want);
        }
    });
}

#[test]
fn unpatchify() {
    for_each_case(|case| {
        for g in PATCH_GEOMETRIES.map(geometry) {
            let PatchGeometry { batch, channels: c, height: h, width: w, patch: p } = g;
            let x = case.random(batch * c * h * w);
            let out = case.output(x.len());
            case.backend.launch(&Op::Unpatchify(Unpatchify { geom: g, x: case.input(&x), out })).expect("unpatchify");
            let (hp, wp) = (h / p, w / p);
            let mut want = vec![f64::NAN; x.len()];
            for b in 0..batch {
                for (hi, wi, ch, i, j) in patch_indices(hp, wp, c, p) {
                    let token = (b * hp * wp + hi * wp + wi) * c * p * p;
                    want[((b * c + ch) * h + hi * p + i) * w + wi * p + j] = f64::from(x[token + (i * p + j) * c + ch]);
                }
            }
            case.check(&format!("unpatchify {g:?}"), &case.read(out), &want);
        }
    });
}

/// Every (patch row, patch column, channel, row in patch, column in patch).
fn patch_indices(hp: usize, wp: usize, c: usize, p: usize) -> impl Iterator<Item = (usize, usize, usize, usize, usize)> {
    (0..hp)
        .flat_map(move |hi| (0..wp).flat_map(move |wi| (0..c).flat_map(move |ch| (0..p).flat_map(move |i| (0..p).map(move |j| (hi, wi, ch, i, j))))))
}

/// patchify orders a token (c, i, j), unpatchify (i, j, c): they invert each other exactly
/// when those orders agree, i.e. with one channel or patch 1.
#[test]
fn patchify_unpatchify_round_trip() {
    for_each_case(|case| {
        for g in [(2, 1, 8, 12, 2), (1, 1, 16, 8, 4), (2, 3, 6, 10, 1), (1, 1, 4, 4, 4)].map(geometry) {
            let x = case.random(g.batch * g.channels * g.height * g.width);
            let tokens = case.output(x.len());
            let back = case.output(x.len());
            case.backend.launch(&Op::Patchify(Patchify { geom: g, x: case.input(&x), out: tokens })).expect("patchify");
            case.backend.launch(&Op::Unpatchify(Unpatchify { geom: g, x: tokens, out: back })).expect("unpatchify");
            let got = case.read(back);
            assert!(got.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()), "round trip {g:?} is not exact");
        }
    });
}

#[test]
fn upsample2x() {
    for_each_case(|case| {
        for shape in [(1, 1, 1, 1), (2, 3, 3, 5), (1, 4, 8, 6)] {
            upsample2x_case(case, shape);
        }
    });
}

/// Nearest x2 of (batch, channels, height, width) against the reference.
pub fn upsample2x_case(case: &mut Case, (batch, channels, height, width): (usize, usize, usize, usize)) {
    let x = case.random(batch * channels * height * width);
    let out = case.output(4 * x.len());
    case.backend.launch(&Op::Upsample2x(Upsample2x { batch, channels, height, width, x: case.input(&x), out })).expect("upsample2x");
    let mut want = Vec::new();
    for plane in 0..batch * channels {
        for y in 0..2 * height {
            for xo in 0..2 * width {
                want.push(f64::from(x[(plane * height + y / 2) * width + xo / 2]));
            }
        }
    }
    case.check(&format!("upsample2x batch={batch} channels={channels} {height}x{width}"), &case.read(out), &want);
}

#[test]
fn timestep_embedding() {
    for_each_case(|case| {
        for dim in [256, 7, 2, 1] {
            let mut t = case.uniform(5, 0.0, 1000.0, DType::F32);
            t[0] = 0.0;
            t[1] = 999.0;
            let out = case.output(t.len() * dim);
            let max_period = 10000.0;
            let op = TimestepEmbedding { batch: t.len(), dim, max_period, t: case.input_as(&t, DType::F32), out };
            case.backend.launch(&Op::TimestepEmbedding(op)).expect("timestep_embedding");
            let half = dim / 2;
            let mut want = Vec::new();
            for &tb in &t {
                let args: Vec<f64> = (0..half).map(|i| f64::from(tb) * (-(f64::from(max_period)).ln() * i as f64 / half as f64).exp()).collect();
                want.extend(args.iter().map(|a| a.cos()));
                want.extend(args.iter().map(|a| a.sin()));
                if dim % 2 == 1 {
                    want.push(0.0);
                }
            }
            case.check(&format!("timestep_embedding dim={dim}"), &case.read(out), &want);
        }
    });
}

/// Angles t f reach ~1e3 rad, where plain f32 arithmetic is ~1e-4 off: the CPU's (in f64) and
/// wgpu's (reduced in turns, shaders/timestep_embedding.wgsl) stay within 1e-6 of the exact
/// values at every step of a 1000-step schedule and between steps.
#[test]
fn timestep_embedding_within_a_millionth() {
    for_each_case(|case| {
        if case.dtype != DType::F32 || case.backend.name().starts_with("cuda") {
            return;
        }
        let mut t: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        t.extend(case.uniform(200, 0.0, 1000.0, DType::F32));
        let (dim, max_period) = (256, 10000.0f32);
        let out = case.output(t.len() * dim);
        let op = TimestepEmbedding { batch: t.len(), dim, max_period, t: case.input_as(&t, DType::F32), out };
        case.backend.launch(&Op::TimestepEmbedding(op)).expect("timestep_embedding");
        let got = case.read(out);
        let half = dim / 2;
        let mut worst = 0.0f64;
        for (b, &tb) in t.iter().enumerate() {
            for i in 0..half {
                let angle = f64::from(tb) * (-(f64::from(max_period)).ln() * i as f64 / half as f64).exp();
                let row = &got[b * dim..];
                worst = worst.max((f64::from(row[i]) - angle.cos()).abs()).max((f64::from(row[half + i]) - angle.sin()).abs());
            }
        }
        assert!(worst <= 1e-6, "{}: timestep features off by up to {worst:.2e}", case.backend.name());
    });
}

#[test]
fn embedding() {
    for_each_case(|case| {
        for (rows, dim, table_rows) in [(1, 8, 1), (7, 65, 11), (16, 384, 1001)] {
            let table = case.random(table_rows * dim);
            let mut ids: Vec<u32> = (0..rows).map(|_| case.rng.random_range(0..table_rows as u32)).collect();
            ids[0] = table_rows as u32 - 1;
            let out = case.output(rows * dim);
            let op = Embedding { rows, dim, table_rows, table: case.input(&table), ids: case.input_ids(&ids), out };
            case.backend.launch(&Op::Embedding(op)).expect("embedding");
            let want: Vec<f64> = ids.iter().flat_map(|&id| to_f64(&table[id as usize * dim..(id as usize + 1) * dim])).collect();
            case.check(&format!("embedding rows={rows} dim={dim} table_rows={table_rows}"), &case.read(out), &want);

            let mut bad = ids.clone();
            bad[rows - 1] = table_rows as u32;
            let op = Embedding { ids: case.input_ids(&bad), ..op };
            let err = case.backend.launch(&Op::Embedding(op)).expect_err("an id >= table_rows must be an error");
            let msg = err.to_string();
            assert!(msg.contains(&table_rows.to_string()), "message should name the id: {msg}");
        }
    });
}

#[test]
fn add() {
    for_each_case(|case| {
        for (len, b_len) in [(1, 1), (1000, 1000), (1000, 40), (4097, 7), (9000, 9000)] {
            for in_place in [false, true] {
                add_case(case, len, b_len, in_place);
            }
        }
    });
}

/// a + b (b repeating over a's `len`), into a itself or a fresh out, against the reference.
pub fn add_case(case: &mut Case, len: usize, b_len: usize, in_place: bool) {
    let a = case.random(len);
    let b = case.random(b_len);
    let a_view = case.input(&a);
    let out = if in_place { a_view } else { case.output(len) };
    case.backend.launch(&Op::Add(Add { a: a_view, b: case.input(&b), out })).expect("add");
    let want: Vec<f64> = (0..len).map(|i| f64::from(a[i]) + f64::from(b[i % b_len])).collect();
    case.check(&format!("add len={len} b_len={b_len} in_place={in_place}"), &case.read(out), &want);
}

#[test]
fn unary() {
    for_each_case(|case| {
        for act in Activation::ALL {
            for len in [1, 1000, 5000] {
                for in_place in [false, true] {
                    // Spread wide enough to reach the activations' tails.
                    let x = round_to(&case.random(len).iter().map(|v| 4.0 * v).collect::<Vec<_>>(), case.dtype);
                    let x_view = case.input(&x);
                    let out = if in_place { x_view } else { case.output(len) };
                    case.backend.launch(&Op::Unary(Unary { act, x: x_view, out })).expect("unary");
                    let want: Vec<f64> = x.iter().map(|&v| activate(act, v.into())).collect();
                    case.check(&format!("unary {act:?} len={len} in_place={in_place}"), &case.read(out), &want);
                }
            }
        }
    });
}

#[test]
fn copy3d() {
    for_each_case(|case| {
        for dst_dtype in crate::common::FLOAT_DTYPES.into_iter().filter(|&d| case.backend.supports(d)) {
            // Token concat: [2, 5, 8] into tokens 2..7 of [2, 7, 8].
            let src = case.random(2 * 5 * 8);
            let dst = case.output_as(2 * 7 * 8, dst_dtype);
            let op = Copy3d {
                dims: [2, 5, 8],
                src: case.input(&src),
                src_strides: [40, 8, 1],
                dst: dst.slice(2 * 8, dst.len - 2 * 8),
                dst_strides: [56, 8, 1],
            };
            case.backend.launch(&Op::Copy3d(op)).expect("copy3d concat");
            let got = case.read(dst);
            let (mut got_placed, mut want) = (Vec::new(), Vec::new());
            for b in 0..2 {
                for t in 0..7 {
                    let row = &got[(b * 7 + t) * 8..(b * 7 + t + 1) * 8];
                    if t < 2 {
                        assert!(row.iter().all(|v| v.is_nan()), "copy3d wrote outside its window");
                    } else {
                        got_placed.extend_from_slice(row);
                        want.extend(to_f64(&src[(b * 5 + t - 2) * 8..(b * 5 + t - 1) * 8]));
                    }
                }
            }
            case.check_as(&format!("copy3d concat {} -> {dst_dtype}", case.dtype), &got_placed, &want, dst_dtype);

            // A transpose: strided innermost reads, dst [3, 4, 6] from src [6, 4, 3].
            let src = case.random(6 * 4 * 3);
            let dst = case.output_as(3 * 4 * 6, dst_dtype);
            let op = Copy3d { dims: [3, 4, 6], src: case.input(&src), src_strides: [1, 3, 12], dst, dst_strides: [24, 6, 1] };
            case.backend.launch(&Op::Copy3d(op)).expect("copy3d transpose");
            let want: Vec<f64> = (0..72).map(|i| f64::from(src[i % 6 * 12 + i / 6 % 4 * 3 + i / 24])).collect();
            case.check_as(&format!("copy3d transpose {} -> {dst_dtype}", case.dtype), &case.read(dst), &want, dst_dtype);
        }

        // u32 to u32 is a bit-exact copy, even beyond f32's integer range.
        let ids = [0u32, 7, (1 << 24) + 1, u32::MAX];
        let dst = case.output_as(4, DType::U32);
        let op = Copy3d { dims: [1, 1, 4], src: case.input_ids(&ids), src_strides: [0, 0, 1], dst, dst_strides: [0, 0, 1] };
        case.backend.launch(&Op::Copy3d(op)).expect("copy3d u32");
        let got = case.backend.read(dst).expect("read");
        assert_eq!(bytemuck::cast_slice::<u8, u32>(&got), &ids, "copy3d u32 is not exact");
    });
}

/// One conv2d launch: `batch` images of `in_c` x `h` x `w`, a `kernel` x `kernel` filter bank of
/// `out_c` filters, zero padding `pad`.
#[derive(Clone, Copy)]
pub struct ConvShape {
    pub batch: usize,
    pub in_c: usize,
    pub out_c: usize,
    pub h: usize,
    pub w: usize,
    pub kernel: usize,
    pub pad: usize,
}

#[test]
fn conv2d() {
    for_each_case(|case| {
        for (kernel, pad) in [(1, 0), (3, 1), (3, 0)] {
            for (batch, in_c, out_c, h, w) in [(1, 1, 1, 3, 3), (2, 3, 5, 7, 9), (1, 8, 4, 16, 12)] {
                for bias in [false, true] {
                    conv2d_case(case, ConvShape { batch, in_c, out_c, h, w, kernel, pad }, bias);
                }
            }
        }
    });
}

/// Convolutions at widths the small cases miss: sizes not a multiple of 4, channel counts not
/// a multiple of 16, two samples, a 520 x 120 plane (several packed blocks on the CPU), and the
/// SD VAE decoder's own layers at a small plane: post_quant_conv (1x1, 4 to 4), conv_in (4 to
/// 512), the 512-channel blocks (k = 4608 per output), the 1x1 shortcuts 512 to 256 and 256
/// to 128, and conv_out (128 to 3).
#[test]
fn conv2d_at_real_widths() {
    for_each_case(|case| {
        for (batch, in_c, out_c, h, w, kernel) in [
            (2, 19, 33, 13, 10, 3),
            (1, 16, 64, 120, 520, 3),
            (1, 4, 4, 5, 7, 1),
            (1, 4, 512, 5, 7, 3),
            (1, 512, 512, 6, 9, 3),
            (1, 512, 256, 6, 9, 1),
            (1, 256, 128, 7, 5, 1),
            (2, 128, 3, 9, 11, 3),
        ] {
            conv2d_case(case, ConvShape { batch, in_c, out_c, h, w, kernel, pad: kernel / 2 }, true);
        }
    });
}

/// No input channels (k = 0 in the implicit GEMM): the output is the bias.
#[test]
fn conv2d_without_input_channels() {
    for_each_case(|case| {
        for kernel in [1, 3] {
            conv2d_case(case, ConvShape { batch: 2, in_c: 0, out_c: 5, h: 3, w: 4, kernel, pad: kernel / 2 }, true);
        }
    });
}

/// More tiles of 64 output pixels (4 x 1025 x 1025 / 64: 65,665) than one grid dimension
/// holds (65535): the wgpu dispatch is split over two (the SD VAE decoder at 512 px from batch
/// 16 on was refused). One channel in and out keeps it cheap.
#[test]
fn conv2d_beyond_one_grid_dimension() {
    for_each_case(|case| {
        // 16.8 million CUDA threads, each a fiber on the emulator: minutes (over 400 s measured),
        // for a split that concerns wgpu only (CUDA's grid x holds 2^31 - 1 blocks).
        if case.backend.name().starts_with("cuda-emu") {
            println!("skipped on {}: too large for the emulator", case.backend.name());
            return;
        }
        conv2d_case(case, ConvShape { batch: 4, in_c: 1, out_c: 1, h: 1025, w: 1025, kernel: 3, pad: 1 }, true)
    });
}

/// conv2d of shape `s` against the f64 reference.
pub fn conv2d_case(case: &mut Case, s: ConvShape, bias: bool) {
    let ConvShape { batch, in_c, out_c, h, w, kernel, pad } = s;
    let x = case.random(batch * in_c * h * w);
    let weight = case.random(out_c * in_c * kernel * kernel);
    let b = case.random(out_c);
    let (oh, ow) = (h + 2 * pad - kernel + 1, w + 2 * pad - kernel + 1);
    let out = case.output(batch * out_c * oh * ow);
    let op = Conv2d {
        batch,
        in_c,
        out_c,
        height: h,
        width: w,
        kernel,
        pad,
        x: case.input(&x),
        weight: case.input(&weight),
        bias: bias.then(|| case.input(&b)),
        out,
    };
    case.backend.launch(&Op::Conv2d(op)).expect("conv2d");
    let mut want = Vec::with_capacity(batch * out_c * oh * ow);
    for bi in 0..batch {
        for oc in 0..out_c {
            for y in 0..oh {
                for xo in 0..ow {
                    let mut sum = if bias { f64::from(b[oc]) } else { 0.0 };
                    for ic in 0..in_c {
                        for ky in 0..kernel {
                            for kx in 0..kernel {
                                let (iy, ix) = ((y + ky) as isize - pad as isize, (xo + kx) as isize - pad as isize);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let pixel = x[((bi * in_c + ic) * h + iy as usize) * w + ix as usize];
                                let wv = weight[((oc * in_c + ic) * kernel + ky) * kernel + kx];
                                sum += f64::from(pixel) * f64::from(wv);
                            }
                        }
                    }
                    want.push(sum);
                }
            }
        }
    }
    let name = format!("conv2d k={kernel} pad={pad} batch={batch} in={in_c} out={out_c} {h}x{w} bias={bias}");
    case.check(&name, &case.read(out), &want);
}

// ---------------------------------------------------------------------------------------
// misuse
// ---------------------------------------------------------------------------------------

/// Every misuse is an `Err` (never a panic) whose message says what is wrong.
#[test]
fn misuse_is_an_error() {
    let seed = crate::common::seed();
    for backend in crate::common::backends() {
        let b = &*backend;
        let case = Case { backend: b, dtype: DType::F32, rng: rand::SeedableRng::seed_from_u64(seed) };
        let expect_err = |what: &str, result: ditrt::Result<()>| {
            let err = result.expect_err(what);
            assert!(matches!(err, ditrt::Error::Backend { .. }), "{what}: not a backend error: {err}");
            println!("{what}: {err}");
            err.to_string()
        };
        let x = case.input(&[1.0; 16]);
        let out = case.output(16);
        let unary = |x: View, out: View| b.launch(&Op::Unary(Unary { act: Activation::Silu, x, out }));

        // Views outside their buffer, misaligned, or in unknown buffers.
        let buf = b.alloc(64).expect("alloc");
        let whole = View { buf, offset: 0, len: 16, dtype: DType::F32 };
        expect_err("view past the end", unary(View { offset: 4, ..whole }, out));
        expect_err("misaligned offset", unary(View { offset: 2, len: 8, ..whole }, out.slice(0, 8)));
        expect_err("write of the wrong length", b.write(whole, &[0u8; 60]));
        expect_err("write past the end", b.write(View { offset: 8, ..whole }, &[0u8; 64]).map(|_| ()));
        b.read(View { offset: 8, ..whole }).expect_err("read past the end");
        b.free(buf);
        expect_err("freed buffer as input", unary(whole, out));
        expect_err("freed buffer as output", unary(x, whole));
        b.read(whole).expect_err("read of a freed buffer");
        let unknown = View { buf: BufId(u32::MAX), ..whole };
        expect_err("unknown buffer", b.write(unknown, &[0u8; 64]));

        // Wrong dtypes.
        let table = case.input(&[0.0; 4 * 8]);
        let float_ids = case.input(&[0.0; 3]);
        let embed = Embedding { rows: 3, dim: 8, table_rows: 4, table, ids: float_ids, out: case.output(24) };
        expect_err("f32 ids", b.launch(&Op::Embedding(embed)));
        let t16 = case.input_as(&[1.0; 2], DType::F16);
        expect_err(
            "f16 timesteps",
            b.launch(&Op::TimestepEmbedding(TimestepEmbedding { batch: 2, dim: 8, max_period: 1e4, t: t16, out: case.output(16) })),
        );
        expect_err("u32 activations", unary(case.input_ids(&[1; 16]), out));

        // Sizes that disagree with the views.
        let gemm = Gemm {
            m: 4,
            n: 4,
            k: 4,
            x,
            x_stride: 4,
            w: case.input(&[1.0; 16]),
            w_stride: 4,
            bias: None,
            out,
            act: Activation::None,
            accumulate: false,
        };
        b.launch(&Op::Gemm(gemm)).expect("a well-formed gemm");
        expect_err("gemm out too short", b.launch(&Op::Gemm(Gemm { out: out.slice(0, 15), ..gemm })));
        expect_err("gemm x too short", b.launch(&Op::Gemm(Gemm { x: x.slice(0, 15), ..gemm })));
        expect_err("gemm x_stride below k", b.launch(&Op::Gemm(Gemm { x_stride: 3, ..gemm })));
        expect_err("gemm bias of the wrong length", b.launch(&Op::Gemm(Gemm { bias: Some(case.input(&[0.0; 5])), ..gemm })));
        expect_err("gemm sizes overflowing usize", b.launch(&Op::Gemm(Gemm { m: usize::MAX, n: 3, ..gemm })));
        let huge = View { len: usize::MAX / 2, ..x };
        expect_err("gemm with an absurdly long x", b.launch(&Op::Gemm(Gemm { x: huge, ..gemm })));
        expect_err("write to an absurdly long view", b.write(huge, &[0u8; 8]));
        b.read(huge).expect_err("read of an absurdly long view");
        expect_err("add out longer than a", b.launch(&Op::Add(Add { a: x.slice(0, 8), b: x.slice(8, 8), out })));
        let geom = PatchGeometry { batch: 1, channels: 1, height: 4, width: 6, patch: 4 };
        expect_err("patch not dividing the image", b.launch(&Op::Patchify(Patchify { geom, x: case.input(&[0.0; 24]), out: case.output(24) })));
        let gn = GroupNorm {
            batch: 1,
            channels: 4,
            spatial: 4,
            groups: 3,
            eps: 1e-6,
            silu: false,
            x,
            gamma: case.input(&[1.0; 4]),
            beta: case.input(&[0.0; 4]),
            out,
        };
        expect_err("channels not a multiple of groups", b.launch(&Op::GroupNorm(gn)));
        let attention = Attention {
            batch: 1,
            heads: 2,
            q_len: 2,
            kv_len: 2,
            head_dim: 4,
            scale: 0.5,
            q: x,
            q_stride: 8,
            k: x,
            v: x,
            kv_stride: 8,
            bias: None,
            out,
            out_stride: 8,
        };
        b.launch(&Op::Attention(attention)).expect("a well-formed attention");
        expect_err("attention out_stride below heads * head_dim", b.launch(&Op::Attention(Attention { out_stride: 7, ..attention })));
        expect_err("attention with no keys", b.launch(&Op::Attention(Attention { kv_len: 0, ..attention })));
        let copy = Copy3d { dims: [2, 2, 4], src: x, src_strides: [8, 4, 1], dst: out, dst_strides: [8, 4, 1] };
        b.launch(&Op::Copy3d(copy)).expect("a well-formed copy3d");
        expect_err("copy3d strides beyond dst", b.launch(&Op::Copy3d(Copy3d { dst_strides: [9, 4, 1], ..copy })));

        // Outputs overlapping inputs, where the op does not allow it.
        expect_err("layernorm in place", b.launch(&Op::LayerNorm(LayerNorm { rows: 2, dim: 8, eps: 1e-5, x, gamma: None, beta: None, out: x })));
        expect_err("add out overlapping a partly", b.launch(&Op::Add(Add { a: x.slice(0, 8), b: x.slice(8, 8), out: x.slice(4, 8) })));
        expect_err("gemm out overlapping x", b.launch(&Op::Gemm(Gemm { out: x, ..gemm })));

        // An id beyond the table names the id and its row.
        let ids = case.input_ids(&[0, 9, 2]);
        let msg = expect_err("id beyond the table", b.launch(&Op::Embedding(Embedding { ids, ..embed })));
        assert!(msg.contains('9') && msg.contains("row 1"), "message should name id 9 at row 1: {msg}");
    }
}
