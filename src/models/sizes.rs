//! The size rules every config must satisfy. Each size is bounded before anything is derived
//! from it (a parameter list, a product), so a config with absurd sizes is refused with an
//! error that names the field, never by an arithmetic overflow or a giant allocation.

/// Largest value of any one width, channel, class or position count: far above any real
/// model's, and small enough that the shapes derived from it cannot overflow.
pub const MAX_SIZE: usize = 1 << 24;
/// Largest image or latent side.
pub const MAX_SIDE: usize = 4096;
/// Most blocks a config may stack (per level, where it has levels).
pub const MAX_DEPTH: usize = 1024;
/// Most parameters a config may have (about 69 billion).
pub const MAX_PARAMS: usize = 1 << 36;

/// The first of `sizes` (name, value) that is zero, as an error.
pub fn check_positive(arch: &str, sizes: &[(&str, usize)]) -> Result<(), String> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(format!("{arch}: {name} must be positive")),
        None => Ok(()),
    }
}

/// The first of `sizes` (name, value, largest allowed) above its bound, as an error.
pub fn check_bounds(arch: &str, sizes: &[(&str, usize, usize)]) -> Result<(), String> {
    match sizes.iter().find(|(_, v, max)| v > max) {
        Some((name, v, max)) => Err(format!("{arch}: {name} {v} is too large (at most {max})")),
        None => Ok(()),
    }
}

/// Parameters of `shapes` (key, shape), counted without overflow; an error above MAX_PARAMS.
pub fn check_params(arch: &str, shapes: &[(String, Vec<usize>)]) -> Result<usize, String> {
    let count = shapes.iter().try_fold(0usize, |sum, (_, shape)| {
        let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        sum.checked_add(n)
    });
    match count {
        Some(n) if n <= MAX_PARAMS => Ok(n),
        Some(n) => Err(format!("{arch}: config too large ({n} parameters, at most {MAX_PARAMS})")),
        None => Err(format!("{arch}: config too large (parameter count overflows)")),
    }
}

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
    pub num_classes: usize,
}

impl TransformerSizes {
    /// Positive and bounded sizes, patches tiling the input, heads splitting the width, and
    /// (only then, as it divides by them) a parameter count of `params` small enough to load.
    pub fn check(&self, params: impl FnOnce() -> Vec<(String, Vec<usize>)>) -> Result<(), String> {
        let arch = self.arch;
        let positive = [
            ("input_size", self.input_size),
            ("patch_size", self.patch_size),
            ("in_channels", self.in_channels),
            ("hidden_size", self.hidden_size),
            ("depth", self.depth),
            ("num_heads", self.num_heads),
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
}
