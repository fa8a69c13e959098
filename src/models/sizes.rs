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
