//! DiT's adaLN modulation: every block's linear SiLU(c) -> (shift, scale, gate) x 2 and the
//! final layer's (shift, scale) all read the same c, so their weights are gathered by rows into
//! a few products per step instead of one per block. A group holds consecutive parts and at
//! most GROUP_BYTES of weights in f32: all of them one [depth * 6D + 2D, D] weight would be
//! 861 MiB for DiT-XL/2, beyond WebGPU's default 128 MiB binding and 256 MiB buffer.
use crate::backend::{Activation, PerSample, View};
use crate::graph::GraphBuilder;
use crate::models::layers::Linear;
use crate::models::params::{HostParam, Params};

/// Most weight bytes (in f32) of one group: WebGPU's default storage binding limit. DiT-XL/2
/// (32 MiB a block) gathers 4 blocks a group, 7 groups and the final layer's.
const GROUP_BYTES: usize = 128 << 20;

pub struct Modulation {
    groups: Vec<Linear>,
    /// Per part (blocks, then the final layer): its group and the row (in vectors of D) where
    /// it starts there.
    place: Vec<(usize, usize)>,
    d: usize,
}

impl Modulation {
    /// Gathers `parts` (weight [vectors * D, D], bias [vectors * D], and vectors) into groups.
    pub fn gather(p: &mut Params, parts: Vec<(HostParam, HostParam, usize)>, d: usize) -> Modulation {
        let mut place = Vec::with_capacity(parts.len());
        let mut grouped: Vec<(Vec<HostParam>, Vec<HostParam>, usize)> = Vec::new();
        for (w, b, vectors) in parts {
            let fits = grouped.last().is_some_and(|(.., used)| (used + vectors) * d * d * 4 <= GROUP_BYTES);
            if !fits {
                grouped.push((Vec::new(), Vec::new(), 0));
            }
            let index = grouped.len() - 1;
            let (ws, bs, used) = &mut grouped[index];
            place.push((index, *used));
            ws.push(w);
            bs.push(b);
            *used += vectors;
        }
        let groups = grouped
            .into_iter()
            .enumerate()
            .map(|(i, (ws, bs, vectors))| Linear {
                w: p.store(&format!("adaLN_modulation (group {i})"), HostParam::concat_rows(ws)),
                b: Some(p.store(&format!("adaLN_modulation bias (group {i})"), HostParam::concat_rows(bs))),
                n: vectors * d,
                k: d,
            })
            .collect();
        Modulation { groups, place, d }
    }

    /// Every group's product for `cond` [batch, D] (SiLU applied): every part's vectors.
    pub fn apply(&self, g: &mut GraphBuilder, cond: View, batch: usize) -> Vec<View> {
        self.groups.iter().map(|l| l.apply(g, cond, batch, Activation::None)).collect()
    }

    /// Vector `j` of part `part` per sample, in the products `mods` of `apply`.
    pub fn vector(&self, mods: &[View], batch: usize, part: usize, j: usize) -> PerSample {
        let (group, first) = self.place[part];
        let stride = self.groups[group].n;
        let start = (first + j) * self.d;
        PerSample { view: mods[group].slice(start, (batch - 1) * stride + self.d), stride }
    }
}
