//! The static performance table (scripts/check_kernels.sh --emulate prints it last; kept in
//! docs/CUDA-STATUS.md): every kernel at a representative launch on the emulator, with per
//! launch the shared-memory requests and their bank conflicts, global requests and their
//! sectors (coalescing), shared loads per mma, and from ptxas (the resources file
//! scripts/check_kernels.sh writes, named by DITRT_PTXAS_RESOURCES) registers, spills and the
//! occupancy the launch shape allows on sm_80 and sm_90.
use std::collections::HashMap;

use super::{CudaEmuBackend, LaunchStats};
use crate::backend::*;
use crate::tensor::DType;

/// Per-SM limits (CUDA C++ Programming Guide, table "Technical Specifications per Compute
/// Capability", 8.0 and 9.0): 64 Ki registers allocated per warp in units of 256, 2048
/// threads, 32 blocks, 164 / 228 KiB of shared memory of which each block reserves 1 KiB.
struct Sm {
    name: &'static str,
    smem: u32,
}
const SMS: [Sm; 2] = [Sm { name: "sm_80", smem: 164 << 10 }, Sm { name: "sm_90", smem: 228 << 10 }];

/// Resident warps per SM over the 64 possible, for blocks of `threads` using `regs` registers
/// per thread and `smem` bytes of static shared memory.
fn occupancy(sm: &Sm, regs: u32, smem: u32, threads: u32) -> f64 {
    let warps = threads.div_ceil(32);
    let by_regs = 65536 / ((regs * 32).next_multiple_of(256) * warps).max(1);
    let by_threads = 2048 / (warps * 32);
    let by_smem = if smem == 0 { 32 } else { sm.smem / (smem + 1024) };
    f64::from(by_regs.min(by_threads).min(by_smem).min(32) * warps) / 64.0
}

/// ptxas's (registers, static shared bytes, spilled bytes) by (function, sm).
fn resources() -> HashMap<(String, String), (u32, u32, u32)> {
    let Ok(path) = std::env::var("DITRT_PTXAS_RESOURCES") else {
        return HashMap::new();
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let parse = |w: &str| w.parse::<u32>().unwrap_or(0);
    text.lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            (w.len() == 7).then(|| ((w[0].to_string(), w[1].to_string()), (parse(w[2]), parse(w[3]), parse(w[5]) + parse(w[6]))))
        })
        .collect()
}

/// A view of `len` elements of `t` on `b`, zeros (the counts do not depend on the values).
fn zeros(b: &dyn Backend, len: usize, t: DType) -> View {
    View { buf: b.alloc(len * t.size()).expect("alloc"), offset: 0, len, dtype: t }
}

/// Self-attention of `heads` heads of `head_dim` over `len` tokens, packed rows.
fn attention(b: &dyn Backend, t: DType, heads: usize, len: usize, head_dim: usize) -> Op {
    let w = heads * head_dim;
    let (q, k, v, out) = (zeros(b, len * w, t), zeros(b, len * w, t), zeros(b, len * w, t), zeros(b, len * w, t));
    let (q_len, kv_len, scale) = (len, len, 0.125);
    Op::Attention(Attention { batch: 1, heads, q_len, kv_len, head_dim, scale, q, q_stride: w, k, v, kv_stride: w, bias: None, out, out_stride: w })
}

/// One op per kernel family at a representative shape (a DiT-XL/2 width where it matters).
fn ops(b: &dyn Backend) -> Vec<Op> {
    let mut ops = Vec::new();
    for t in [DType::F16, DType::BF16] {
        for head_dim in [64, 72, 96, 128] {
            ops.push(attention(b, t, 2, 128, head_dim));
        }
    }
    let t = DType::F16;
    // A head dim attention.cu lacks: attention_fallback.cu.
    ops.push(attention(b, t, 1, 64, 80));
    let (rows, dim) = (16, 1152);
    let (x, out) = (zeros(b, rows * dim, t), zeros(b, rows * dim, t));
    let (shift, scale) = (PerSample { view: zeros(b, dim, t), stride: 0 }, PerSample { view: zeros(b, dim, t), stride: 0 });
    let residual = GatedResidual { y: zeros(b, rows * dim, t), gate: PerSample { view: zeros(b, dim, t), stride: 0 } };
    ops.push(Op::LayerNormModulate(LayerNormModulate { batch: 1, tokens: rows, dim, eps: 1e-6, x, residual: Some(residual), shift, scale, out }));
    ops.push(Op::LayerNorm(LayerNorm { rows, dim, eps: 1e-6, x, gamma: Some(zeros(b, dim, t)), beta: Some(zeros(b, dim, t)), out }));
    ops.push(Op::Add(Add { a: x, b: zeros(b, dim, t), out }));
    ops.push(Op::Unary(Unary { act: Activation::GeluTanh, x, out }));
    ops.push(Op::Copy3d(Copy3d {
        dims: [1, rows, dim],
        src: x,
        src_strides: [0, dim, 1],
        dst: zeros(b, rows * dim, DType::F32),
        dst_strides: [0, dim, 1],
    }));
    let (m, n, k) = (128, 128, 128);
    let (gx, gw, gout) = (zeros(b, m * k, t), zeros(b, n * k, t), zeros(b, m * n, t));
    // Accumulating an activated product: kernels/linear.cu (cuBLASLt cannot).
    ops.push(Op::Gemm(Gemm { m, n, k, x: gx, x_stride: k, w: gw, w_stride: k, bias: None, out: gout, act: Activation::Silu, accumulate: true }));
    let (batch, tokens) = (2, 64);
    let time = zeros(b, batch * n, t);
    ops.push(Op::TmsaQkv(TmsaQkv {
        batch,
        tokens,
        k,
        n,
        x: zeros(b, batch * tokens * k, t),
        w: gw,
        bias: None,
        time,
        out: zeros(b, batch * tokens * n, t),
    }));
    let (c, side) = (64, 16);
    let (cx, cout) = (zeros(b, c * side * side, t), zeros(b, c * side * side, t));
    // f16 and f32 (3xTF32) conv2d, 3x3.
    for ct in [t, DType::F32] {
        ops.push(Op::Conv2d(Conv2d {
            batch: 1,
            in_c: c,
            out_c: c,
            height: side,
            width: side,
            kernel: 3,
            pad: 1,
            x: zeros(b, c * side * side, ct),
            weight: zeros(b, c * c * 9, ct),
            bias: None,
            out: zeros(b, c * side * side, ct),
        }));
    }
    let (gamma, beta) = (zeros(b, c, t), zeros(b, c, t));
    ops.push(Op::GroupNorm(GroupNorm {
        batch: 1,
        channels: c,
        spatial: side * side,
        groups: 32,
        eps: 1e-5,
        silu: true,
        x: cx,
        gamma,
        beta,
        out: cout,
    }));
    let geom = PatchGeometry { batch: 1, channels: 4, height: 32, width: 32, patch: 2 };
    let (img, tok) = (zeros(b, 4 * 32 * 32, t), zeros(b, 4 * 32 * 32, t));
    ops.push(Op::Patchify(Patchify { geom, x: img, out: tok }));
    ops.push(Op::Unpatchify(Unpatchify { geom, x: tok, out: img }));
    ops.push(Op::Upsample2x(Upsample2x { batch: 1, channels: 4, height: 16, width: 16, x: zeros(b, 4 * 256, t), out: img }));
    let ids = zeros(b, rows, DType::U32);
    ops.push(Op::Embedding(Embedding { rows, dim, table_rows: 1000, table: zeros(b, 1000 * dim, t), ids, out }));
    ops.push(Op::TimestepEmbedding(TimestepEmbedding {
        batch: rows,
        dim: 256,
        max_period: 10000.0,
        t: zeros(b, rows, DType::F32),
        out: zeros(b, rows * 256, t),
    }));
    ops
}

fn ratio(a: u64, b: u64) -> String {
    match b {
        0 => "-".into(),
        _ => format!("{:.2}", a as f64 / b as f64),
    }
}

/// One table row per launch.
fn row(l: &LaunchStats, res: &HashMap<(String, String), (u32, u32, u32)>) -> String {
    let c = &l.counts;
    let shared = c.shared_loads + c.shared_stores;
    let per_sm: Vec<Option<&(u32, u32, u32)>> = SMS.iter().map(|sm| res.get(&(l.function.clone(), sm.name.to_string()))).collect();
    let regs = per_sm.iter().map(|r| r.map_or("-".into(), |r| r.0.to_string())).collect::<Vec<_>>().join("/");
    let spills = per_sm.iter().map(|r| r.map_or("-".into(), |r| r.2.to_string())).collect::<Vec<_>>().join("/");
    let occupancy: Vec<String> =
        SMS.iter().zip(&per_sm).map(|(sm, r)| r.map_or("-".into(), |r| format!("{:.0}%", 100.0 * occupancy(sm, r.0, r.1, l.block)))).collect();
    let smem = per_sm[0].map_or("-".into(), |r| r.1.to_string());
    format!(
        "| {} | {}x{}x{} x {} | {} | {} | {} | {} | {} / {} | {} | {} | {} ({}) |",
        l.function,
        l.grid[0],
        l.grid[1],
        l.grid[2],
        l.block,
        regs,
        spills,
        smem,
        occupancy.join("/"),
        c.shared_loads,
        c.shared_stores,
        ratio(c.shared_wavefronts - c.shared_ideal, shared),
        ratio(c.shared_loads, c.mma),
        ratio(c.global_sectors, c.global_requests),
        ratio(c.global_ideal, c.global_requests),
    )
}

#[test]
fn performance_table() {
    let emu = CudaEmuBackend::with_stats();
    for op in ops(&emu) {
        emu.launch(&op).unwrap_or_else(|e| panic!("{}: {e}", op.name()));
    }
    let launches = emu.take_stats();
    for l in &launches {
        let c = &l.counts;
        assert!(c.shared_wavefronts >= c.shared_ideal && c.global_sectors >= c.global_ideal, "{l:?}: counts below their ideal");
        assert!(c.global_requests > 0, "{}: no global access counted", l.function);
    }
    let res = resources();
    println!("== static performance table (emulator; registers and spills from ptxas; occupancy from the launch shape)");
    println!("| kernel | grid x block | regs sm_80/90 | spill B | smem B | occupancy sm_80/90 | shared ld / st requests | bank conflicts per shared request | shared loads per mma | global sectors per request (ideal) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for l in &launches {
        println!("{}", row(l, &res));
    }
}
