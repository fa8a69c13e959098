//! The argument rules of every op (dtypes, sizes against views, overlaps). `check` is their one
//! entry, called at each backend's entry points (`launch`, and a `compile` that records) before
//! it touches memory, so each launch is checked once and no backend repeats a rule. The rule
//! that depends on data (embedding ids, `embedding_ids`) is applied by the backends where they
//! can see the ids. The checks the rules are made of, shared with the backends' buffer tables,
//! are in `view_checks`.
use super::view_checks::{self, Checked};
use super::*;
use crate::tensor::DType;

/// The rules of `op`: `Err` is a one-line message naming the op and the field, which the
/// backend wraps into `Error::Backend` under its own name.
pub fn check(op: &Op) -> Checked {
    match op {
        Op::Gemm(o) => gemm(o),
        Op::LayerNormModulate(o) => layernorm_modulate(o),
        Op::LayerNorm(o) => layernorm(o),
        Op::Attention(o) => attention(o),
        Op::TmsaQkv(o) => tmsa_qkv(o),
        Op::Patchify(o) => patchify(o),
        Op::Unpatchify(o) => unpatchify(o),
        Op::TimestepEmbedding(o) => timestep_embedding(o),
        Op::Embedding(o) => embedding(o),
        Op::Add(o) => add(o),
        Op::Unary(o) => unary(o),
        Op::Copy3d(o) => copy3d(o),
        Op::SkipConcatLinear(o) => skip_concat_linear(o),
        Op::Conv2d(o) => conv2d(o),
        Op::GroupNorm(o) => group_norm(o),
        Op::Upsample2x(o) => upsample2x(o),
    }
}

/// A float vector of `len` elements (bias, affine parameter).
fn vector(op: &str, field: &str, view: &View, len: usize, what: &str) -> Checked {
    view_checks::float(op, field, view)?;
    view_checks::len_eq(op, field, view, len, what)
}

fn optional_vector(op: &str, field: &str, view: &Option<View>, len: usize, what: &str) -> Checked {
    view.as_ref().map_or(Ok(()), |view| vector(op, field, view, len, what))
}

/// `inputs` plus the optional views that are present.
fn with_optional<'a>(mut inputs: Vec<(&'a str, &'a View)>, optional: &[(&'a str, &'a Option<View>)]) -> Vec<(&'a str, &'a View)> {
    inputs.extend(optional.iter().filter_map(|(name, v)| v.as_ref().map(|v| (*name, v))));
    inputs
}

fn gemm(op: &Gemm) -> Checked {
    let name = "gemm";
    let Gemm { m, n, k, x_stride, w_stride, .. } = *op;
    for (field, view) in [("x", &op.x), ("w", &op.w), ("out", &op.out)] {
        view_checks::float(name, field, view)?;
    }
    view_checks::rows_fit(name, "x", &op.x, m, k, x_stride)?;
    view_checks::rows_fit(name, "w", &op.w, n, k, w_stride)?;
    view_checks::len_eq(name, "out", &op.out, view_checks::product(name, "m * n", &[m, n])?, "m * n")?;
    let inputs = with_optional(vec![("x", &op.x), ("w", &op.w)], &[("bias", &op.bias)]);
    view_checks::disjoint(name, ("out", &op.out), &inputs)?;
    optional_vector(name, "bias", &op.bias, n, "n")
}

fn tmsa_qkv(op: &TmsaQkv) -> Checked {
    let name = "tmsa_qkv";
    let TmsaQkv { batch, tokens, k, n, .. } = *op;
    for (field, view) in [("x", &op.x), ("w", &op.w), ("time", &op.time), ("out", &op.out)] {
        view_checks::float(name, field, view)?;
    }
    let rows = view_checks::product(name, "batch * tokens", &[batch, tokens])?;
    view_checks::len_eq(name, "x", &op.x, view_checks::product(name, "batch * tokens * k", &[rows, k])?, "batch * tokens * k")?;
    view_checks::len_eq(name, "w", &op.w, view_checks::product(name, "n * k", &[n, k])?, "n * k")?;
    view_checks::len_eq(name, "time", &op.time, view_checks::product(name, "batch * n", &[batch, n])?, "batch * n")?;
    view_checks::len_eq(name, "out", &op.out, view_checks::product(name, "batch * tokens * n", &[rows, n])?, "batch * tokens * n")?;
    let inputs = with_optional(vec![("x", &op.x), ("w", &op.w), ("time", &op.time)], &[("bias", &op.bias)]);
    view_checks::disjoint(name, ("out", &op.out), &inputs)?;
    optional_vector(name, "bias", &op.bias, n, "n")
}

fn skip_concat_linear(op: &SkipConcatLinear) -> Checked {
    let name = "skip_concat_linear";
    let SkipConcatLinear { rows, dim_x, dim_skip, n, .. } = *op;
    for (field, view) in [("x", &op.x), ("skip", &op.skip), ("w", &op.w), ("out", &op.out)] {
        view_checks::float(name, field, view)?;
    }
    let dim = dim_x.checked_add(dim_skip).ok_or_else(|| format!("{name}: dim_x + dim_skip overflows usize"))?;
    view_checks::len_eq(name, "x", &op.x, view_checks::product(name, "rows * dim_x", &[rows, dim_x])?, "rows * dim_x")?;
    view_checks::len_eq(name, "skip", &op.skip, view_checks::product(name, "rows * dim_skip", &[rows, dim_skip])?, "rows * dim_skip")?;
    view_checks::len_eq(name, "w", &op.w, view_checks::product(name, "n * (dim_x + dim_skip)", &[n, dim])?, "n * (dim_x + dim_skip)")?;
    view_checks::len_eq(name, "out", &op.out, view_checks::product(name, "rows * n", &[rows, n])?, "rows * n")?;
    let inputs = with_optional(vec![("x", &op.x), ("skip", &op.skip), ("w", &op.w)], &[("bias", &op.bias)]);
    view_checks::disjoint(name, ("out", &op.out), &inputs)?;
    optional_vector(name, "bias", &op.bias, n, "n")
}

fn attention(op: &Attention) -> Checked {
    let name = "attention";
    let Attention { batch, heads, q_len, kv_len, head_dim, q_stride, kv_stride, out_stride, .. } = *op;
    for (field, view) in [("q", &op.q), ("k", &op.k), ("v", &op.v), ("out", &op.out)] {
        view_checks::float(name, field, view)?;
    }
    let width = view_checks::product(name, "heads * head_dim", &[heads, head_dim])?;
    let q_rows = view_checks::product(name, "batch * q_len", &[batch, q_len])?;
    let kv_rows = view_checks::product(name, "batch * kv_len", &[batch, kv_len])?;
    view_checks::rows_fit(name, "q", &op.q, q_rows, width, q_stride)?;
    view_checks::rows_fit(name, "k", &op.k, kv_rows, width, kv_stride)?;
    view_checks::rows_fit(name, "v", &op.v, kv_rows, width, kv_stride)?;
    view_checks::rows_fit(name, "out", &op.out, q_rows, width, out_stride)?;
    if let Some(bias) = &op.bias {
        view_checks::float(name, "bias", bias)?;
        let want = view_checks::product(name, "heads * q_len * kv_len", &[heads, q_len, kv_len])?;
        view_checks::len_eq(name, "bias", bias, want, "heads * q_len * kv_len")?;
    }
    let inputs = with_optional(vec![("q", &op.q), ("k", &op.k), ("v", &op.v)], &[("bias", &op.bias)]);
    view_checks::disjoint(name, ("out", &op.out), &inputs)?;
    if kv_len == 0 && q_rows > 0 && width > 0 {
        return Err(format!("{name}: kv_len is 0, a softmax over no keys"));
    }
    Ok(())
}

fn layernorm_modulate(op: &LayerNormModulate) -> Checked {
    let name = "layernorm_modulate";
    let LayerNormModulate { batch, tokens, dim, .. } = *op;
    for (field, view) in [("x", &op.x), ("shift", &op.shift.view), ("scale", &op.scale.view), ("out", &op.out)] {
        view_checks::float(name, field, view)?;
    }
    let rows = view_checks::product(name, "batch * tokens", &[batch, tokens])?;
    let numel = view_checks::product(name, "batch * tokens * dim", &[rows, dim])?;
    view_checks::len_eq(name, "x", &op.x, numel, "batch * tokens * dim")?;
    view_checks::len_eq(name, "out", &op.out, numel, "batch * tokens * dim")?;
    view_checks::per_sample_fits(name, "shift", &op.shift, batch, dim)?;
    view_checks::per_sample_fits(name, "scale", &op.scale, batch, dim)?;
    let mut inputs = vec![("x", &op.x), ("shift", &op.shift.view), ("scale", &op.scale.view)];
    if let Some(r) = &op.residual {
        view_checks::float(name, "residual y", &r.y)?;
        view_checks::float(name, "residual gate", &r.gate.view)?;
        view_checks::len_eq(name, "residual y", &r.y, numel, "batch * tokens * dim")?;
        view_checks::per_sample_fits(name, "residual gate", &r.gate, batch, dim)?;
        // x is written (the residual added): nothing it reads may overlap it.
        view_checks::disjoint(
            name,
            ("x", &op.x),
            &[("residual y", &r.y), ("residual gate", &r.gate.view), ("shift", &op.shift.view), ("scale", &op.scale.view)],
        )?;
        inputs.extend([("residual y", &r.y), ("residual gate", &r.gate.view)]);
    }
    view_checks::disjoint(name, ("out", &op.out), &inputs)
}

fn layernorm(op: &LayerNorm) -> Checked {
    let name = "layernorm";
    let LayerNorm { rows, dim, .. } = *op;
    view_checks::float(name, "x", &op.x)?;
    view_checks::float(name, "out", &op.out)?;
    let numel = view_checks::product(name, "rows * dim", &[rows, dim])?;
    view_checks::len_eq(name, "x", &op.x, numel, "rows * dim")?;
    view_checks::len_eq(name, "out", &op.out, numel, "rows * dim")?;
    let inputs = with_optional(vec![("x", &op.x)], &[("gamma", &op.gamma), ("beta", &op.beta)]);
    view_checks::disjoint(name, ("out", &op.out), &inputs)?;
    optional_vector(name, "gamma", &op.gamma, dim, "dim")?;
    optional_vector(name, "beta", &op.beta, dim, "dim")
}

fn group_norm(op: &GroupNorm) -> Checked {
    let name = "group_norm";
    let GroupNorm { batch, channels, spatial, groups, .. } = *op;
    view_checks::float(name, "x", &op.x)?;
    view_checks::float(name, "out", &op.out)?;
    if groups == 0 || !channels.is_multiple_of(groups) {
        return Err(format!("{name}: channels {channels} is not a multiple of groups {groups}"));
    }
    let numel = view_checks::product(name, "batch * channels * spatial", &[batch, channels, spatial])?;
    view_checks::len_eq(name, "x", &op.x, numel, "batch * channels * spatial")?;
    view_checks::len_eq(name, "out", &op.out, numel, "batch * channels * spatial")?;
    view_checks::disjoint(name, ("out", &op.out), &[("x", &op.x), ("gamma", &op.gamma), ("beta", &op.beta)])?;
    vector(name, "gamma", &op.gamma, channels, "channels")?;
    vector(name, "beta", &op.beta, channels, "channels")
}

/// Patchify and unpatchify: the geometry, and both views' dtypes and lengths (images and
/// tokens hold the same number of elements).
fn patch_op(op: &str, g: &PatchGeometry, x: &View, out: &View) -> Checked {
    view_checks::float(op, "x", x)?;
    view_checks::float(op, "out", out)?;
    if g.patch == 0 || !g.height.is_multiple_of(g.patch) || !g.width.is_multiple_of(g.patch) {
        return Err(format!("{op}: image {}x{} is not divisible into patches of {}", g.height, g.width, g.patch));
    }
    let numel = view_checks::product(op, "batch * channels * height * width", &[g.batch, g.channels, g.height, g.width])?;
    view_checks::len_eq(op, "x", x, numel, "batch * channels * height * width")?;
    view_checks::len_eq(op, "out", out, numel, "batch * channels * height * width")?;
    view_checks::disjoint(op, ("out", out), &[("x", x)])
}

fn patchify(op: &Patchify) -> Checked {
    patch_op("patchify", &op.geom, &op.x, &op.out)
}

fn unpatchify(op: &Unpatchify) -> Checked {
    patch_op("unpatchify", &op.geom, &op.x, &op.out)
}

fn upsample2x(op: &Upsample2x) -> Checked {
    let name = "upsample2x";
    let Upsample2x { batch, channels, height, width, .. } = *op;
    view_checks::float(name, "x", &op.x)?;
    view_checks::float(name, "out", &op.out)?;
    let numel = view_checks::product(name, "batch * channels * height * width", &[batch, channels, height, width])?;
    view_checks::len_eq(name, "x", &op.x, numel, "batch * channels * height * width")?;
    let out_numel = view_checks::product(name, "4 * batch * channels * height * width", &[numel, 4])?;
    view_checks::len_eq(name, "out", &op.out, out_numel, "4 * batch * channels * height * width")?;
    view_checks::disjoint(name, ("out", &op.out), &[("x", &op.x)])
}

fn timestep_embedding(op: &TimestepEmbedding) -> Checked {
    let name = "timestep_embedding";
    view_checks::dtype(name, "t", &op.t, DType::F32)?;
    view_checks::float(name, "out", &op.out)?;
    view_checks::len_eq(name, "t", &op.t, op.batch, "batch")?;
    view_checks::len_eq(name, "out", &op.out, view_checks::product(name, "batch * dim", &[op.batch, op.dim])?, "batch * dim")?;
    view_checks::disjoint(name, ("out", &op.out), &[("t", &op.t)])
}

/// Everything but the range of the ids, which only the data can tell.
fn embedding(op: &Embedding) -> Checked {
    let name = "embedding";
    let Embedding { rows, dim, table_rows, .. } = *op;
    view_checks::float(name, "table", &op.table)?;
    view_checks::dtype(name, "ids", &op.ids, DType::U32)?;
    view_checks::float(name, "out", &op.out)?;
    view_checks::len_eq(name, "table", &op.table, view_checks::product(name, "table_rows * dim", &[table_rows, dim])?, "table_rows * dim")?;
    view_checks::len_eq(name, "ids", &op.ids, rows, "rows")?;
    view_checks::len_eq(name, "out", &op.out, view_checks::product(name, "rows * dim", &[rows, dim])?, "rows * dim")?;
    view_checks::disjoint(name, ("out", &op.out), &[("table", &op.table), ("ids", &op.ids)])
}

/// The first out-of-range id of an embedding, as the error the op reports.
pub fn embedding_ids(op: &Embedding, ids: &[u32]) -> Checked {
    match ids.iter().enumerate().find(|(_, &id)| id as usize >= op.table_rows) {
        Some((row, id)) => Err(format!("embedding: id {id} at row {row} is out of range for a table of {} rows", op.table_rows)),
        None => Ok(()),
    }
}

fn add(op: &Add) -> Checked {
    let name = "add";
    for (field, view) in [("a", &op.a), ("b", &op.b), ("out", &op.out)] {
        view_checks::float(name, field, view)?;
    }
    view_checks::len_eq(name, "out", &op.out, op.a.len, "a.len")?;
    if op.b.len == 0 && op.a.len > 0 {
        return Err(format!("{name}: b is empty, nothing to broadcast over {} elements", op.a.len));
    }
    view_checks::disjoint_or_same(name, ("out", &op.out), ("a", &op.a), &[("b", &op.b)])
}

fn unary(op: &Unary) -> Checked {
    let name = "unary";
    view_checks::float(name, "x", &op.x)?;
    view_checks::float(name, "out", &op.out)?;
    view_checks::len_eq(name, "out", &op.out, op.x.len, "x.len")?;
    view_checks::disjoint_or_same(name, ("out", &op.out), ("x", &op.x), &[])
}

fn copy3d(op: &Copy3d) -> Checked {
    let fits = |field: &str, view: &View, strides: [usize; 3]| match view_checks::last_index(op.dims, strides) {
        Some(last) if last >= view.len => {
            Err(format!("copy3d: {field} strides {strides:?} over dims {:?} reach element {last}, beyond its {} elements", op.dims, view.len))
        }
        _ => Ok(()),
    };
    fits("src", &op.src, op.src_strides)?;
    fits("dst", &op.dst, op.dst_strides)?;
    view_checks::disjoint("copy3d", ("dst", &op.dst), &[("src", &op.src)])
}

fn conv2d(op: &Conv2d) -> Checked {
    let name = "conv2d";
    let Conv2d { batch, in_c, out_c, height: h, width: w, kernel: k, pad, .. } = *op;
    for (field, view) in [("x", &op.x), ("weight", &op.weight), ("out", &op.out)] {
        view_checks::float(name, field, view)?;
    }
    let padded = |n: usize| pad.checked_mul(2).and_then(|p| p.checked_add(n));
    let (oh, ow) = match (padded(h), padded(w)) {
        (Some(ph), Some(pw)) if k > 0 && ph >= k && pw >= k => (ph - k + 1, pw - k + 1),
        _ => return Err(format!("{name}: kernel {k} does not fit a {h}x{w} image padded by {pad}")),
    };
    let kk = view_checks::product(name, "in_c * kernel * kernel", &[in_c, k, k])?;
    view_checks::len_eq(
        name,
        "x",
        &op.x,
        view_checks::product(name, "batch * in_c * h * w", &[batch, in_c, h, w])?,
        "batch * in_c * height * width",
    )?;
    view_checks::len_eq(
        name,
        "weight",
        &op.weight,
        view_checks::product(name, "out_c * in_c * k * k", &[out_c, kk])?,
        "out_c * in_c * kernel * kernel",
    )?;
    let out_numel = view_checks::product(name, "batch * out_c * oh * ow", &[batch, out_c, oh, ow])?;
    view_checks::len_eq(name, "out", &op.out, out_numel, "batch * out_c * out_height * out_width")?;
    let inputs = with_optional(vec![("x", &op.x), ("weight", &op.weight)], &[("bias", &op.bias)]);
    view_checks::disjoint(name, ("out", &op.out), &inputs)?;
    optional_vector(name, "bias", &op.bias, out_c, "out_c")
}
