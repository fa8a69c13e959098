//! The access table (scripts/check_shaders.sh prints it; kept in docs/WGSL-STATUS.md): every
//! shader at a shape of the released models (DiT-XL/2's 256 tokens of width 1152, 16 heads of
//! 72; the SD VAE's 512 channels at 32 x 32), f32 and f16, lowered for a desktop adapter (48 KiB
//! of workgroup memory, no binding limit in the way), one workgroup replayed per dispatch.
use super::{replay, Replayed};
use crate::backend::wgpu::dispatch::Dispatch;
use crate::backend::wgpu::lower::lower;
use crate::backend::*;
use crate::tensor::DType;

fn view(len: usize, dtype: DType) -> View {
    View { buf: BufId(0), offset: 0, len, dtype }
}

/// (label, op) per shader at its representative shape.
fn ops(t: DType) -> Vec<(&'static str, Op)> {
    let (tokens, dim, heads, head_dim) = (256, 1152, 16, 72);
    let (x, out) = (view(tokens * dim, t), view(tokens * dim, t));
    let per_sample = PerSample { view: view(dim, t), stride: 0 };
    let hidden = 4 * dim;
    let gemm = Gemm {
        m: tokens,
        n: hidden,
        k: dim,
        x,
        x_stride: dim,
        w: view(hidden * dim, t),
        w_stride: dim,
        bias: Some(view(hidden, t)),
        out: view(tokens * hidden, t),
        act: Activation::GeluTanh,
        accumulate: false,
    };
    let qkv = view(tokens * 3 * dim, t);
    let (c, side) = (512, 32);
    let image = view(c * side * side, t);
    vec![
        ("DiT-XL/2 fc1 256x4608x1152", Op::Gemm(gemm)),
        ("DiT-XL/2 16 heads of 72", Op::Attention(Attention::packed(1, heads, tokens, head_dim, qkv, out, None))),
        ("DiT-B/2 12 heads of 64", Op::Attention(Attention::packed(1, 12, tokens, 64, view(tokens * 3 * 768, t), view(tokens * 768, t), None))),
        ("16 heads of 80, 256 tokens", Op::Attention(Attention::packed(1, 16, tokens, 80, view(tokens * 3 * 1280, t), view(tokens * 1280, t), None))),
        ("12 heads of 96, 256 tokens", Op::Attention(Attention::packed(1, 12, tokens, 96, qkv, out, None))),
        ("9 heads of 128, 256 tokens", Op::Attention(Attention::packed(1, 9, tokens, 128, qkv, out, None))),
        ("CLIP 12 heads of 64, 77 tokens", Op::Attention(Attention::packed(1, 12, 77, 64, view(77 * 3 * 768, t), view(77 * 768, t), None))),
        ("SD VAE 1 head of 512, 1024 tokens", Op::Attention(Attention::packed(1, 1, 1024, 512, view(1024 * 3 * 512, t), view(1024 * 512, t), None))),
        (
            "DiffiT-XL/2 qkv 256x3456x1152",
            Op::TmsaQkv(TmsaQkv { batch: 1, tokens, k: dim, n: 3 * dim, x, w: view(3 * dim * dim, t), bias: None, time: view(3 * dim, t), out: qkv }),
        ),
        (
            "U-ViT-H/2 skip 256x1152x2304",
            Op::SkipConcatLinear(SkipConcatLinear {
                rows: tokens,
                dim_x: dim,
                dim_skip: dim,
                n: dim,
                x,
                skip: x,
                w: view(dim * 2 * dim, t),
                bias: None,
                out,
            }),
        ),
        (
            "SD VAE 3x3 512->512 at 32x32",
            Op::Conv2d(Conv2d {
                batch: 1,
                in_c: c,
                out_c: c,
                height: side,
                width: side,
                kernel: 3,
                pad: 1,
                x: image,
                weight: view(c * c * 9, t),
                bias: Some(view(c, t)),
                out: image,
            }),
        ),
        (
            "SD VAE 512 channels at 32x32",
            Op::GroupNorm(GroupNorm {
                batch: 1,
                channels: c,
                spatial: side * side,
                groups: 32,
                eps: 1e-6,
                silu: true,
                x: image,
                gamma: view(c, t),
                beta: view(c, t),
                out: image,
            }),
        ),
        (
            "DiT-XL/2 256x1152",
            Op::LayerNormModulate(LayerNormModulate {
                batch: 1,
                tokens,
                dim,
                eps: 1e-6,
                x,
                residual: Some(GatedResidual { y: view(tokens * dim, t), gate: per_sample }),
                shift: per_sample,
                scale: per_sample,
                out,
            }),
        ),
        ("DiT-XL/2 256x1152", Op::LayerNorm(LayerNorm { rows: tokens, dim, eps: 1e-6, x, gamma: Some(view(dim, t)), beta: Some(view(dim, t)), out })),
        ("DiT-XL/2 256x1152", Op::Add(Add { a: x, b: view(dim, t), out })),
        ("DiT-XL/2 256x4608", Op::Unary(Unary { act: Activation::GeluErf, x: gemm.out, out: gemm.out })),
        (
            "DiT-XL/2 tokens to heads",
            Op::Copy3d(Copy3d {
                dims: [tokens, heads, head_dim],
                src: x,
                src_strides: [dim, head_dim, 1],
                dst: out,
                dst_strides: [head_dim, tokens * head_dim, 1],
            }),
        ),
        (
            "SD VAE 512 ch 32x32",
            Op::Upsample2x(Upsample2x { batch: 1, channels: c, height: side, width: side, x: image, out: view(4 * c * side * side, t) }),
        ),
        (
            "DiT-XL/2 4x32x32, patch 2",
            Op::Patchify(Patchify {
                geom: PatchGeometry { batch: 1, channels: 4, height: 32, width: 32, patch: 2 },
                x: view(4096, t),
                out: view(4096, t),
            }),
        ),
        (
            "DiT-XL/2 8x32x32, patch 2",
            Op::Unpatchify(Unpatchify {
                geom: PatchGeometry { batch: 1, channels: 8, height: 32, width: 32, patch: 2 },
                x: view(8192, t),
                out: view(8192, t),
            }),
        ),
        (
            "DiT-XL/2 class table",
            Op::Embedding(Embedding { rows: 8, dim, table_rows: 1001, table: view(1001 * dim, t), ids: view(8, DType::U32), out: view(8 * dim, t) }),
        ),
        (
            "DiT 256 features",
            Op::TimestepEmbedding(TimestepEmbedding { batch: 8, dim: 256, max_period: 10000.0, t: view(8, DType::F32), out: view(8 * 256, t) }),
        ),
    ]
}

/// Prints the table; each op's replay must run (a shader the model cannot interpret fails) and
/// no shader may load workgroup memory it has not stored.
/// About a minute: run by scripts/check_shaders.sh (`--ignored`), which CI runs.
#[test]
#[ignore]
fn table() {
    let limits =
        ::wgpu::Limits { max_compute_workgroup_storage_size: 48 << 10, max_storage_buffer_binding_size: u64::MAX >> 1, ..Default::default() };
    println!("== static access table (workgroup memory: 32 banks of 4 bytes, warps of 32; storage: 32-byte sectors)");
    println!("| shader | dtype | shape | grid x workgroup | workgroup B | wg ld / st requests | bank conflicts per wg request | wg ld B per multiply | storage requests | sectors per request (ideal) | runtime int ÷ per storage ld |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut fused = Vec::new();
    for t in [DType::F32, DType::F16] {
        for (label, op) in ops(t) {
            for d in lower(&op, &limits).unwrap() {
                let r = replay(&d, &limits).unwrap_or_else(|e| panic!("{label}: {e}"));
                if let (Op::Attention(a), "attention") = (&op, d.shader.name) {
                    fused.push(fused_attention_row(&d, &r, a, t, label));
                }
                let c = r.counts;
                // What lets shaders.rs turn off wgpu's zero-initialisation of workgroup memory.
                assert_eq!(c.unwritten_loads, 0, "{} {label}: loads workgroup memory before storing it", d.shader.name);
                let grid = r.grid.map(|g| g.to_string()).join("x");
                let size = r.workgroup_size.iter().product::<u32>();
                let conflicts = if c.workgroup_loads + c.workgroup_stores > 0 { format!("{:.2}", c.conflicts_per_request()) } else { "-".into() };
                let reuse = if c.multiplies > 0 && c.workgroup_load_bytes > 0 { format!("{:.3}", c.load_bytes_per_multiply()) } else { "-".into() };
                let per = |n: u64| n as f64 / c.global_requests.max(1) as f64;
                let divides = if c.storage_loads > 0 { format!("{:.2}", c.divides_per_storage_load()) } else { "-".into() };
                println!(
                    "| {} | {t} | {label} | {grid} x {size} | {} | {} / {} | {conflicts} | {reuse} | {} | {:.2} ({:.2}) | {divides} |",
                    d.shader.name,
                    r.workgroup_bytes,
                    c.workgroup_loads,
                    c.workgroup_stores,
                    c.global_requests,
                    per(c.sectors),
                    per(c.ideal_sectors)
                );
            }
        }
    }
    println!("== fused attention per workgroup (the replayed one)");
    println!("| dtype | shape | query rows | keys | barriers | barriers per key | k + v sectors | k + v sectors per query row |");
    println!("|---|---|---|---|---|---|---|---|");
    fused.iter().for_each(|row| println!("{row}"));
}

/// A row of the fused-attention table: the query rows the replayed workgroup wrote (distinct
/// bytes of out over a head's bytes), the barriers it passed per key and the sectors of k and v
/// it moved, in all and per query row.
fn fused_attention_row(d: &Dispatch, r: &Replayed, a: &Attention, t: DType, label: &str) -> String {
    let binding = |field: &str| d.slots.iter().position(|s| s.field == field).map(|i| i as u32 + 1).expect("the fused shader binds its views");
    let of = |field: &str| r.counts.bindings.get(&binding(field)).copied().unwrap_or_default();
    let rows = of("out").1 / (a.head_dim * t.size()) as u64;
    let kv_sectors = of("k").0 + of("v").0;
    let per_key = r.barriers as f64 / a.kv_len as f64;
    format!(
        "| {t} | {label} | {rows} | {} | {} | {per_key:.3} | {kv_sectors} | {:.1} |",
        a.kv_len,
        r.barriers,
        kv_sectors as f64 / rows.max(1) as f64
    )
}
