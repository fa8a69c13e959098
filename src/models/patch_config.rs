//! The config DiT, the in-context LDM and latent DiffiT share (DiT's fields and meaning), its
//! size rules, DiT's size family, and what the three compute alike from it: token counts,
//! embedder and head multiply-adds, the output unpatchify.
use serde::{Deserialize, Serialize};

use crate::backend::{Op, PatchGeometry, Unpatchify, View};
use crate::graph::GraphBuilder;
use crate::models::backbone::{GraphIo, ModelInput};
use crate::models::embedders::FREQ_DIM;
use crate::models::sizes::{check_bounds, check_params, check_positive, MAX_DEPTH, MAX_SIDE, MAX_SIZE};
use crate::tensor::ImageGeometry;

/// A latent patch transformer's sizes as `ditrt.config` states them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchConfig {
    /// Latent height = width.
    pub input_size: usize,
    pub patch_size: usize,
    pub in_channels: usize,
    pub hidden_size: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: f64,
    /// Classes without the null class; the label table has num_classes + 1 rows.
    pub num_classes: usize,
    /// Output 2C channels [eps | v] for the learned variance.
    pub learn_sigma: bool,
}

/// Declares `$name`, one architecture's `PatchConfig`: the same JSON (serde transparent, so
/// unknown fields are still refused by name), its fields read through `Deref`.
macro_rules! patch_config {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $crate::models::patch_config::PatchConfig);

        impl std::ops::Deref for $name {
            type Target = $crate::models::patch_config::PatchConfig;
            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }
    };
}
pub(crate) use patch_config;

/// DiT's sizes: (name, depth, width, heads).
pub const SIZES: &[(&str, usize, usize, usize)] = &[("S", 12, 384, 6), ("B", 12, 768, 12), ("L", 24, 1024, 16), ("XL", 28, 1152, 16)];

impl PatchConfig {
    /// A member of DiT's size family named "<size>/<patch>[-<resolution>]" ("XL/2", "XL/2-512"):
    /// sizes S/B/L/XL, patch 2, 4 or 8, resolution 256 (default) or 512 px; an ImageNet
    /// class-conditional model on 4-channel latents at 1/8 resolution with learned sigma.
    pub fn family(name: &str) -> Option<PatchConfig> {
        let (size, rest) = name.split_once('/')?;
        let (patch, res) = match rest.split_once('-') {
            Some((p, r)) => (p, r.parse::<usize>().ok()?),
            None => (rest, 256),
        };
        let patch_size: usize = patch.parse().ok()?;
        let &(_, depth, hidden_size, num_heads) = SIZES.iter().find(|s| s.0 == size)?;
        if ![2, 4, 8].contains(&patch_size) || ![256, 512].contains(&res) {
            return None;
        }
        Some(PatchConfig {
            input_size: res / 8,
            patch_size,
            in_channels: 4,
            hidden_size,
            depth,
            num_heads,
            mlp_ratio: 4.0,
            num_classes: 1000,
            learn_sigma: true,
        })
    }

    /// "<prefix>-<size>/<patch>" ("DiT-XL/2") for the family's sizes, else "<prefix> (custom)/<patch>".
    /// The family's preset names under `prefix`, compactly: "DiT-{S,B,L,XL}/{2,4,8}[-512]".
    pub fn family_names(prefix: &str) -> String {
        let sizes: Vec<&str> = SIZES.iter().map(|s| s.0).collect();
        format!("{prefix}{{{}}}/{{2,4,8}}[-512]", sizes.join(","))
    }

    pub fn family_name(&self, prefix: &str) -> String {
        match SIZES.iter().find(|s| (s.1, s.2, s.3) == (self.depth, self.hidden_size, self.num_heads)) {
            Some(s) => format!("{prefix}-{}/{}", s.0, self.patch_size),
            None => format!("{prefix} (custom)/{}", self.patch_size),
        }
    }

    pub fn out_channels(&self) -> usize {
        if self.learn_sigma {
            2 * self.in_channels
        } else {
            self.in_channels
        }
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.input_size / self.patch_size
    }

    /// Patch tokens per image.
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid()
    }

    pub fn mlp_hidden(&self) -> usize {
        (self.hidden_size as f64 * self.mlp_ratio) as usize
    }

    /// Class-conditional, the null class last.
    pub fn io(&self) -> GraphIo {
        GraphIo {
            input: ModelInput::Image(ImageGeometry { channels: self.in_channels, height: self.input_size, width: self.input_size }),
            output_channels: self.out_channels(),
            num_classes: Some(self.num_classes),
            null_class: Some(self.num_classes as u32),
            context: None,
        }
    }

    /// `channels` x input_size^2 images cut into patches.
    pub fn patch_geometry(&self, batch: usize, channels: usize) -> PatchGeometry {
        PatchGeometry { batch, channels, height: self.input_size, width: self.input_size, patch: self.patch_size }
    }

    /// Positive and bounded sizes, patches tiling the input, heads splitting the width, and
    /// (only then, as it divides by them) a parameter count of `params` small enough to load.
    pub fn check(&self, arch: &str, params: impl FnOnce() -> Vec<(String, Vec<usize>)>) -> Result<(), String> {
        let positive = [
            ("input_size", self.input_size),
            ("patch_size", self.patch_size),
            ("in_channels", self.in_channels),
            ("hidden_size", self.hidden_size),
            ("depth", self.depth),
            ("num_heads", self.num_heads),
            // Class-conditional by design: the label table is num_classes real rows + the null
            // row, and sampling draws classes from 0..num_classes.
            ("num_classes", self.num_classes),
        ];
        check_positive(arch, &positive)?;
        check_bounds(
            arch,
            &[
                ("input_size", self.input_size, MAX_SIDE),
                ("in_channels", self.in_channels, MAX_SIZE),
                ("hidden_size", self.hidden_size, MAX_SIZE),
                ("depth", self.depth, MAX_DEPTH),
                ("num_classes", self.num_classes, MAX_SIZE),
            ],
        )?;
        if !self.input_size.is_multiple_of(self.patch_size) {
            return Err(format!("{arch}: input_size {} is not a multiple of patch_size {}", self.input_size, self.patch_size));
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(format!("{arch}: hidden_size {} is not a multiple of num_heads {}", self.hidden_size, self.num_heads));
        }
        if !(self.mlp_ratio > 0.0 && self.mlp_ratio <= 64.0) {
            return Err(format!("{arch}: mlp_ratio {} out of range", self.mlp_ratio));
        }
        check_params(arch, &params())?;
        Ok(())
    }

    /// "<name>: depth .., <tokens> tokens<tokens_note>, .." — the sizes every patch model names.
    pub fn describe(&self, name: &str, tokens_note: &str) -> String {
        let (d, s) = (self.hidden_size, self.input_size);
        format!(
            "{name}: depth {}, width {d}, heads {} (head dim {}), patch {}, input {}x{s}x{s}, {} tokens{tokens_note}, {} classes, learn_sigma {}",
            self.depth,
            self.num_heads,
            d / self.num_heads,
            self.patch_size,
            self.in_channels,
            self.tokens(),
            self.num_classes,
            self.learn_sigma
        )
    }

    /// Multiply-adds per image of the embedders (patch embedding, timestep MLP) and of the
    /// output linear over the patch tokens.
    pub fn embed_and_head_macs(&self) -> f64 {
        let (n, d) = (self.tokens() as f64, self.hidden_size as f64);
        let (c, p, co) = (self.in_channels as f64, self.patch_size as f64, self.out_channels() as f64);
        n * c * p * p * d + FREQ_DIM as f64 * d + d * d + n * d * p * p * co
    }

    /// The graph output `out` [batch, C_out, H, W] from the head's patch tokens, in the official
    /// unpatchify order.
    pub fn unpatchify_output(&self, g: &mut GraphBuilder, tokens: View, batch: usize) {
        let (co, s) = (self.out_channels(), self.input_size);
        let out = g.output("out", [batch, co, s, s]);
        g.push(Op::Unpatchify(Unpatchify { geom: self.patch_geometry(batch, co), x: tokens, out }));
    }
}
