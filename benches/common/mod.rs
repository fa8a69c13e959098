//! Helpers shared by the op benches: random uploads and a short rate measurement.
use std::time::Instant;

use ditrt::backend::{Attention, Backend, View};
use ditrt::tensor::{f32_to_bytes, DType};
use rand::rngs::StdRng;
use rand::Rng;

/// A new buffer of `len` values uniform in [-1, 1), stored as `dtype`.
pub fn upload(backend: &dyn Backend, rng: &mut StdRng, len: usize, dtype: DType) -> View {
    let values: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
    let view = View { buf: backend.alloc(len * dtype.size()).expect("alloc"), offset: 0, len, dtype };
    backend.write(view, &f32_to_bytes(&values, dtype)).expect("write");
    view
}

/// Times `run` over `calls` calls (after one untimed) and prints `amount / second` in
/// giga-units.
pub fn print_rate(label: &str, amount: u64, unit: &str, calls: usize, run: impl Fn()) {
    run();
    let start = Instant::now();
    (0..calls).for_each(|_| run());
    let seconds = start.elapsed().as_secs_f64() / calls as f64;
    println!("{label}: {:.2} ms, {:.1} {unit}/s", seconds * 1e3, amount as f64 / seconds / 1e9);
}

/// Self-attention over random packed [q | k | v] rows (as the models lay them out), with a
/// fresh output: `batch` samples of `tokens` tokens, `heads` heads of `head_dim`.
pub fn packed_attention(
    backend: &dyn Backend,
    rng: &mut StdRng,
    (batch, heads, tokens, head_dim): (usize, usize, usize, usize),
    dtype: DType,
) -> Attention {
    let width = heads * head_dim;
    let qkv = upload(backend, rng, batch * tokens * 3 * width, dtype);
    let len = qkv.len - 2 * width;
    Attention {
        batch,
        heads,
        q_len: tokens,
        kv_len: tokens,
        head_dim,
        scale: 1.0 / (head_dim as f32).sqrt(),
        q: qkv.slice(0, len),
        q_stride: 3 * width,
        k: qkv.slice(width, len),
        v: qkv.slice(2 * width, len),
        kv_stride: 3 * width,
        bias: None,
        out: upload(backend, rng, batch * tokens * width, dtype),
        out_stride: width,
    }
}
