//! The size rules every patch transformer config (DiT, in-context LDM, DiffiT) must satisfy.

/// A patch transformer's sizes, as its config states them.
pub struct TransformerSizes {
    pub arch: &'static str,
    pub input_size: usize,
    pub patch_size: usize,
    pub in_channels: usize,
    pub hidden_size: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: f64,
}

impl TransformerSizes {
    /// Positive sizes, patches tiling the input, heads splitting the width, and (only then,
    /// as it divides by them) a parameter count from `params` small enough to load.
    pub fn check(&self, params: impl FnOnce() -> usize) -> Result<(), String> {
        let arch = self.arch;
        let positive = [
            ("input_size", self.input_size),
            ("patch_size", self.patch_size),
            ("in_channels", self.in_channels),
            ("hidden_size", self.hidden_size),
            ("depth", self.depth),
            ("num_heads", self.num_heads),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{arch}: {name} must be positive"));
        }
        if !self.input_size.is_multiple_of(self.patch_size) {
            return Err(format!("{arch}: input_size {} is not a multiple of patch_size {}", self.input_size, self.patch_size));
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(format!("{arch}: hidden_size {} is not a multiple of num_heads {}", self.hidden_size, self.num_heads));
        }
        if !(self.mlp_ratio > 0.0 && self.mlp_ratio <= 64.0) {
            return Err(format!("{arch}: mlp_ratio {} out of range", self.mlp_ratio));
        }
        let params = params();
        if params > 1 << 36 || self.input_size > 4096 {
            return Err(format!("{arch}: config too large ({params} parameters, input {})", self.input_size));
        }
        Ok(())
    }
}
