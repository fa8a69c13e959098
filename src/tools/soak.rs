//! Soak: many sampling steps in one process with resident memory sampled, to show that a run
//! of hours holds steady memory (no per-step growth in ditrt, the allocator or a driver).
use serde::Serialize;

use crate::error::Result;
use crate::pipeline::generate::{Pipeline, Run};

/// Resident set size of this process in bytes (/proc/self/statm); 0 where it cannot be read.
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    pub steps: usize,
    pub warmup_steps: usize,
    /// (steps done, resident bytes) after each whole sampling run.
    pub samples: Vec<(usize, u64)>,
    /// Resident bytes when the warm-up ended.
    pub rss_after_warmup: u64,
    /// Largest resident bytes after the warm-up.
    pub rss_max_after_warmup: u64,
    /// rss_max_after_warmup - rss_after_warmup.
    pub growth_bytes: u64,
}

/// Runs whole sampling runs of `run` with seeds 0, 1, 2, ... until `steps` model evaluations
/// are done, sampling the resident memory after each; the first `warmup_steps` are the warm-up.
pub fn soak(pipeline: &mut Pipeline, run: &Run, steps: usize, warmup_steps: usize, progress: &mut dyn FnMut(usize, u64)) -> Result<SoakReport> {
    let mut done = 0;
    let mut samples = Vec::new();
    let mut rss_after_warmup = None;
    for seed in 0u64.. {
        if done >= steps {
            break;
        }
        let mut evaluations = 0;
        pipeline.generate(&Run { seed, ..run.clone() }, &mut |_| evaluations += 1)?;
        done += evaluations;
        let rss = resident_bytes();
        samples.push((done, rss));
        progress(done, rss);
        if done >= warmup_steps && rss_after_warmup.is_none() {
            rss_after_warmup = Some(rss);
        }
    }
    let rss_after_warmup = rss_after_warmup.unwrap_or(0);
    let rss_max_after_warmup = samples.iter().filter(|(s, _)| *s > warmup_steps).map(|(_, r)| *r).max().unwrap_or(rss_after_warmup);
    Ok(SoakReport {
        steps: done,
        warmup_steps,
        samples,
        rss_after_warmup,
        rss_max_after_warmup,
        growth_bytes: rss_max_after_warmup.saturating_sub(rss_after_warmup),
    })
}
