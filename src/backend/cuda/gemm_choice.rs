//! Which cuBLASLt algorithm a product runs: the heuristic's top candidates are each timed once,
//! the first time a product of that shape, layout, epilogue and alignment is queued outside a
//! stream capture (a graph's eager warm-up run before its capture: `recorded.rs`), and the
//! fastest is kept for the backend's life. During a capture nothing can be timed: a product
//! met there for the first time takes the heuristic's first choice.
use std::collections::HashMap;
use std::sync::Mutex;

use super::device::err;
use crate::error::Result;
use crate::tensor::DType;

/// Candidates asked of the heuristic (cuBLASLt ranks them; the first is its own choice).
pub(super) const CANDIDATES: usize = 8;
/// Timed runs per candidate, after one untimed run.
pub(super) const TIMED_RUNS: usize = 3;

/// Everything cuBLASLt's choice can depend on (not the addresses, but their alignments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct GemmKey {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub x_stride: usize,
    pub w_stride: usize,
    pub dtype: DType,
    pub bias: bool,
    pub gelu_tanh: bool,
    pub accumulate: bool,
    /// Alignments of x, w and out in bytes.
    pub alignments: [u32; 3],
}

/// The kept choices, by key.
pub(super) struct Choices<A> {
    kept: Mutex<HashMap<GemmKey, A>>,
}

impl<A: Copy> Choices<A> {
    pub fn new() -> Self {
        Choices { kept: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, key: &GemmKey) -> Option<A> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied()
    }

    pub fn keep(&self, key: GemmKey, algo: A) {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).insert(key, algo);
    }
}

/// The candidate `time` measures fastest (milliseconds). A candidate that fails to run (cuBLASLt
/// may refuse one the heuristic offered) is passed over; an error only if every one fails.
pub(super) fn fastest<A: Copy>(candidates: &[A], mut time: impl FnMut(&A) -> Result<f32>) -> Result<A> {
    let mut best: Option<(f32, A)> = None;
    let mut last_error = None;
    for candidate in candidates {
        match time(candidate) {
            Ok(ms) if best.is_none_or(|(b, _)| ms < b) => best = Some((ms, *candidate)),
            Ok(_) => {}
            Err(e) => last_error = Some(e),
        }
    }
    match (best, last_error) {
        (Some((_, algo)), _) => Ok(algo),
        (None, Some(e)) => Err(e),
        (None, None) => Err(err("cuBLASLt offered no algorithm to time")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: usize) -> GemmKey {
        GemmKey {
            m,
            n: 64,
            k: 32,
            x_stride: 32,
            w_stride: 32,
            dtype: DType::F16,
            bias: true,
            gelu_tanh: false,
            accumulate: false,
            alignments: [16; 3],
        }
    }

    /// The fastest candidate wins wherever it stands, failing ones are passed over, and only
    /// all failing is an error.
    #[test]
    fn the_fastest_candidate_that_runs_is_chosen() {
        let times = [3.0, 1.5, 2.0, 0.5];
        let time = |&i: &usize| if i == 3 { Err(err("refused")) } else { Ok(times[i]) };
        assert_eq!(fastest(&[0, 1, 2, 3], time).unwrap(), 1);
        assert_eq!(fastest(&[2, 0], |&i: &usize| Ok(times[i])).unwrap(), 2);
        assert!(fastest(&[3], time).unwrap_err().to_string().contains("refused"));
        assert!(fastest(&[] as &[usize], time).is_err());
    }

    /// A choice is kept per key: another shape (or alignment) is timed afresh.
    #[test]
    fn choices_are_kept_per_key() {
        let choices = Choices::new();
        choices.keep(key(16), 7u32);
        assert_eq!(choices.get(&key(16)), Some(7));
        assert_eq!(choices.get(&key(17)), None);
        assert_eq!(choices.get(&GemmKey { alignments: [2, 16, 16], ..key(16) }), None);
    }
}
