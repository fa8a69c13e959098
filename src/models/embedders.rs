//! The DiT-family embedders (DiT, DiffiT, the in-context LDM) bound to their official keys:
//! patch embedding plus the stored position table, the timestep MLP and the class table.
use crate::backend::{Activation, Add, Embedding, Op, PatchGeometry, Patchify, TimestepEmbedding, View};
use crate::error::Result;
use crate::graph::GraphBuilder;
use crate::models::dit::FREQ_DIM;
use crate::models::layers::Linear;
use crate::models::weight_source::WeightSource;

/// Patch tokens [batch * tokens, dim] of x: patchify, `x_embedder.proj` (a conv with kernel =
/// stride = p, i.e. a GEMM over patches), plus `pos_embed` (1, tokens, dim) as stored.
pub fn patch_tokens(g: &mut GraphBuilder, w: &mut dyn WeightSource, x: View, geom: PatchGeometry, dim: usize) -> Result<View> {
    let (c, p) = (geom.channels, geom.patch);
    let tokens = (geom.height / p) * (geom.width / p);
    let pos = w.fetch("pos_embed", &[1, tokens, dim])?;
    let patches = g.temp([geom.batch, tokens, c * p * p]);
    g.push(Op::Patchify(Patchify { geom, x, out: patches }));
    let embed = Linear::load(g, w, "x_embedder.proj", &[dim, c, p, p], true)?;
    let h = embed.apply(g, patches, geom.batch * tokens, Activation::None);
    let pos = g.weight("pos_embed", pos);
    g.push(Op::Add(Add { a: h, b: pos, out: h }));
    Ok(h)
}

/// DiT's TimestepEmbedder: `{prefix}.2`(SiLU(`{prefix}.0`(features))) over the 256 sinusoidal
/// features of t (f32 [batch]); returns [batch, width].
pub fn timestep_mlp(g: &mut GraphBuilder, w: &mut dyn WeightSource, prefix: &str, t: View, batch: usize, width: usize) -> Result<View> {
    let freqs = g.temp([batch, FREQ_DIM]);
    g.push(Op::TimestepEmbedding(TimestepEmbedding { batch, dim: FREQ_DIM, max_period: 10000.0, t, out: freqs }));
    let first = Linear::load(g, w, &format!("{prefix}.0"), &[width, FREQ_DIM], true)?;
    let second = Linear::load(g, w, &format!("{prefix}.2"), &[width, width], true)?;
    let hidden = first.apply(g, freqs, batch, Activation::Silu);
    Ok(second.apply(g, hidden, batch, Activation::None))
}

/// Rows of the table `key` ([table_rows, dim]) picked by the u32 labels y: [batch, dim].
pub fn label_embedding(
    g: &mut GraphBuilder,
    w: &mut dyn WeightSource,
    key: &str,
    y: View,
    batch: usize,
    table_rows: usize,
    dim: usize,
) -> Result<View> {
    let table = w.fetch(key, &[table_rows, dim])?;
    let table = g.weight(key, table);
    let out = g.temp([batch, dim]);
    g.push(Op::Embedding(Embedding { rows: batch, dim, table_rows, table, ids: y, out }));
    Ok(out)
}

/// Keys and shapes of the DiT-family embedders, in checkpoint order: position table over
/// `tokens` patches, patch embedding (a conv with kernel = stride = `patch`), timestep MLP
/// and the label table with its null-class row.
pub fn embedder_shapes(tokens: usize, dim: usize, in_channels: usize, patch: usize, num_classes: usize) -> Vec<(String, Vec<usize>)> {
    let d = dim;
    vec![
        ("pos_embed".into(), vec![1, tokens, d]),
        ("x_embedder.proj.weight".into(), vec![d, in_channels, patch, patch]),
        ("x_embedder.proj.bias".into(), vec![d]),
        ("t_embedder.mlp.0.weight".into(), vec![d, crate::models::dit::FREQ_DIM]),
        ("t_embedder.mlp.0.bias".into(), vec![d]),
        ("t_embedder.mlp.2.weight".into(), vec![d, d]),
        ("t_embedder.mlp.2.bias".into(), vec![d]),
        ("y_embedder.embedding_table.weight".into(), vec![num_classes + 1, d]),
    ]
}
