//! The hard limits of docs/LIMITS.md, at their edges: exactly at a limit an op compiles (is
//! bound and recorded, as when a session builds its graph; the limits are checked there, and
//! running 65535 workgroups on lavapipe would take minutes), one beyond it is refused in one
//! line naming the op, the limit and the backend; and `auto` binds a graph its choice refuses
//! to the next backend.
use std::sync::Arc;

use ditrt::backend::auto::{Auto, Opener};
use ditrt::backend::{Attention, Backend, Op, View};
use ditrt::graph::{GraphBuilder, Session};
use ditrt::tensor::{DType, HostTensor};

/// The adapter's workgroups per grid dimension (wgpu's `max_compute_workgroups_per_dimension`:
/// WebGPU's default, and what lavapipe and Vulkan drivers give for y and z) and the CUDA grid's
/// y and z extent.
const GRID_DIM: usize = 65535;

/// An f32 view of `len` elements in a fresh buffer (contents unspecified: nothing runs).
fn buffer(b: &dyn Backend, len: usize) -> View {
    View { buf: b.alloc(len * 4).expect("alloc"), offset: 0, len, dtype: DType::F32 }
}

/// Compiles self-attention of `batch` samples, `heads` heads of `head_dim`, `q_len` queries over
/// one key.
fn attention(b: &dyn Backend, batch: usize, heads: usize, q_len: usize, head_dim: usize) -> ditrt::Result<()> {
    let width = heads * head_dim;
    let (q, k, v, out) = (buffer(b, batch * q_len * width), buffer(b, batch * width), buffer(b, batch * width), buffer(b, batch * q_len * width));
    let op = Attention {
        batch,
        heads,
        q_len,
        kv_len: 1,
        head_dim,
        scale: 1.0,
        q,
        q_stride: width,
        k,
        v,
        kv_stride: width,
        bias: None,
        out,
        out_stride: width,
    };
    let result = b.compile(&[Op::Attention(op)]).map(drop);
    for view in [q, k, v, out] {
        b.free(view.buf);
    }
    result
}

/// (what, the launch at the limit, the launch one beyond it) of attention on `backend`: the
/// grid dimensions its kernels take from the op's sizes.
type Edge = (&'static str, [usize; 4], [usize; 4]);

fn attention_edges(backend: &str) -> Vec<Edge> {
    // [batch, heads, q_len, head_dim]
    match backend {
        // Workgroups of the fused shader (64 query rows, head, sample; heads of up to 128
        // dims). Wider heads run as products per head, in flat runs of workgroups.
        b if b.starts_with("wgpu") => vec![
            ("heads", [1, GRID_DIM, 1, 1], [1, GRID_DIM + 1, 1, 1]),
            ("batch", [GRID_DIM, 1, 1, 1], [GRID_DIM + 1, 1, 1, 1]),
            ("query tiles of 64", [1, 1, 64 * GRID_DIM, 1], [1, 1, 64 * GRID_DIM + 1, 1]),
        ],
        // Blocks (rows, head x 256-dim chunk, sample) of the fallback kernel (f32 here).
        b if b.starts_with("cuda") => vec![
            ("heads", [1, GRID_DIM, 1, 1], [1, GRID_DIM + 1, 1, 1]),
            ("heads x 256-dim chunks", [1, GRID_DIM / 3, 1, 3 * 256], [1, GRID_DIM / 3 + 1, 1, 3 * 256]),
            ("batch", [GRID_DIM, 1, 1, 1], [GRID_DIM + 1, 1, 1, 1]),
        ],
        _ => Vec::new(),
    }
}

#[test]
fn attention_at_and_beyond_each_grid_limit() {
    for backend in crate::common::backends() {
        let b = &*backend;
        for (what, at, beyond) in attention_edges(&b.name()) {
            let [batch, heads, q_len, head_dim] = at;
            attention(b, batch, heads, q_len, head_dim).unwrap_or_else(|e| panic!("{}: {what} at the limit: {e}", b.name()));
            let [batch, heads, q_len, head_dim] = beyond;
            let msg = attention(b, batch, heads, q_len, head_dim).expect_err(what).to_string();
            println!("{what} beyond the limit: {msg}");
            let backend_word = b.name().split(' ').next().unwrap_or_default().to_string();
            assert!(msg.starts_with(&format!("backend {backend_word}")), "{msg}");
            assert!(msg.contains("attention") && msg.contains(&GRID_DIM.to_string()) && !msg.contains('\n'), "{what}: {msg}");
        }
    }
}

/// A one-op graph: attention of 65536 one-dim heads over one key, which copies v to out. Beyond
/// wgpu's 65535 workgroups per dimension, so wgpu refuses it and the CPU runs it.
#[test]
fn auto_binds_a_graph_its_choice_refuses_to_the_next_backend() {
    const OPENERS: &[Opener] = &[|| Ok(Arc::new(ditrt::backend::wgpu::WgpuBackend::new()?)), || Ok(Arc::new(ditrt::backend::cpu::CpuBackend::new()))];
    let auto = Auto::first(OPENERS).expect("the CPU opens");
    if !auto.name().starts_with("wgpu") {
        return eprintln!("skipped: no wgpu adapter ({} chosen)", auto.name());
    }
    let heads = GRID_DIM + 1;
    let mut g = GraphBuilder::new(DType::F32);
    let qkv = g.input("x", [1, 3 * heads], DType::F32);
    let out = g.output("out", [1, heads]);
    let (q, k, v) = (qkv.slice(0, heads), qkv.slice(heads, heads), qkv.slice(2 * heads, heads));
    let op = Attention {
        batch: 1,
        heads,
        q_len: 1,
        kv_len: 1,
        head_dim: 1,
        scale: 1.0,
        q,
        q_stride: heads,
        k,
        v,
        kv_stride: heads,
        bias: None,
        out,
        out_stride: heads,
    };
    g.push(Op::Attention(op));
    let graph = g.finish().expect("graph");
    let session = Session::new(auto, &graph).expect("auto falls back to the CPU");
    assert!(session.backend().name().starts_with("cpu"), "{}", session.backend().name());
    let x: Vec<f32> = (0..3 * heads).map(|i| i as f32).collect();
    session.set_input("x", &HostTensor::from_f32([1, 3 * heads], &x)).expect("input");
    session.run().expect("run");
    assert_eq!(session.output("out").expect("output").to_f32(), x[2 * heads..]);
}
