//! One file per subcommand; each parses its flags and calls the library.
pub mod bench;
pub mod inspect;
pub mod merge;
pub mod progress;
pub mod sample;
pub mod soak;
pub mod tokenize;
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

/// Storage dtypes the commands take.
pub const DTYPES: &[&str] = &["f32", "f16", "bf16"];

/// `--seed`: a number, or None for -1 (a random seed, which the command picks and prints).
#[derive(Clone, Copy, Debug)]
pub struct Seed(pub Option<u64>);

/// Parses `--seed`.
pub fn seed(text: &str) -> Result<Seed, String> {
    match text {
        "-1" => Ok(Seed(None)),
        _ => text.parse::<u64>().map(|s| Seed(Some(s))).map_err(|e| format!("'{text}': {e} (a seed is 0..2^64-1, or -1 for a random one)")),
    }
}

/// Sizes the one thread pool the CPU backend runs on (rayon's: loops and matrix products alike)
/// before any work starts; None keeps all cores.
pub fn set_threads(threads: Option<usize>) -> ditrt::Result<()> {
    let Some(n) = threads else { return Ok(()) };
    rayon::ThreadPoolBuilder::new().num_threads(n).build_global().map_err(|e| ditrt::Error::invalid(format!("--threads {n}: {e}")))
}

/// "675.1M"-style rendering of a count.
pub fn human(n: f64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    units.iter().find(|(scale, _)| n >= *scale).map(|(scale, unit)| format!("{:.1}{unit}", n / scale)).unwrap_or_else(|| format!("{n}"))
}
