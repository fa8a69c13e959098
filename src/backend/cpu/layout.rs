//! Pure data movement between image and token layouts: patchify, unpatchify, nearest x2
//! upsampling. Each task gathers one output row and stores it at once.
use super::memory::Views;
use super::parallel;
use crate::backend::{PatchGeometry, Patchify, Unpatchify, Upsample2x};
use crate::error::Result;

pub(super) fn patchify(views: &Views, op: &Patchify) -> Result<()> {
    let PatchGeometry { batch, channels, height, width, patch: p } = op.geom;
    let (x, out) = (views.src("patchify", "x", &op.x)?, views.dst("patchify", "out", &op.out)?);
    let ((hp, wp), token_dim) = (op.geom.grid(), op.geom.token_dim());
    parallel::for_each_index(
        batch * hp * wp,
        token_dim,
        || vec![0.0f32; token_dim],
        |token, i| {
            let (b, hi, wi) = (i / (hp * wp), i / wp % hp, i % wp);
            // Row i of the patch of channel c is p contiguous pixels of image row hi * p + i.
            for (c_i, run) in token.chunks_exact_mut(p).enumerate() {
                let (c, pi) = (c_i / p, c_i % p);
                x.load(((b * channels + c) * height + hi * p + pi) * width + wi * p, run);
            }
            out.store(i * token_dim, token);
        },
    );
    Ok(())
}

pub(super) fn unpatchify(views: &Views, op: &Unpatchify) -> Result<()> {
    let PatchGeometry { batch, channels, height, width, patch: p } = op.geom;
    let (x, out) = (views.src("unpatchify", "x", &op.x)?, views.dst("unpatchify", "out", &op.out)?);
    let ((hp, wp), token_dim) = (op.geom.grid(), op.geom.token_dim());
    // One task per (sample, image row y): it loads the wp tokens of patch row y / p and writes
    // row y of every channel.
    let scratch = || (vec![0.0f32; wp * token_dim], vec![0.0f32; width]);
    parallel::for_each_index(batch * height, wp * token_dim, scratch, |(tokens, line), i| {
        let (b, y) = (i / height, i % height);
        let (hi, pi) = (y / p, y % p);
        x.load((b * hp * wp + hi * wp) * token_dim, tokens);
        for c in 0..channels {
            for (col, value) in line.iter_mut().enumerate() {
                let (wi, pj) = (col / p, col % p);
                *value = tokens[wi * token_dim + (pi * p + pj) * channels + c];
            }
            out.store(((b * channels + c) * height + y) * width, line);
        }
    });
    Ok(())
}

pub(super) fn upsample2x(views: &Views, op: &Upsample2x) -> Result<()> {
    let name = "upsample2x";
    let Upsample2x { batch, channels, height, width, .. } = *op;
    let x = views.src(name, "x", &op.x)?;
    let out = views.dst(name, "out", &op.out)?;
    // Input row r (of all batch * channels * height rows) becomes output rows 2r and 2r + 1.
    let scratch = || (vec![0.0f32; width], vec![0.0f32; 2 * width]);
    parallel::for_each_index(batch * channels * height, 6 * width, scratch, |(row, line), r| {
        x.load(r * width, row);
        for (pair, &v) in line.chunks_exact_mut(2).zip(row.iter()) {
            pair.fill(v);
        }
        out.store(2 * r * 2 * width, line);
        out.store((2 * r + 1) * 2 * width, line);
    });
    Ok(())
}
