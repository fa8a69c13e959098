//! One file per subcommand; each parses its flags and calls the library.
pub mod bench;
pub mod inspect;
pub mod merge;
pub mod progress;
pub mod sample;
pub mod soak;
pub mod verify;

/// Parses a count that must be at least 1 (`--batch`, `--iters`, `--steps`): 0 is refused
/// rather than quietly run as 1.
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("'{text}': {e}")),
    }
}

/// "675.1M"-style rendering of a count.
pub fn human(n: f64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    units.iter().find(|(scale, _)| n >= *scale).map(|(scale, unit)| format!("{:.1}{unit}", n / scale)).unwrap_or_else(|| format!("{n}"))
}
