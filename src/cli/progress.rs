//! Progress of a long run on stderr: a redrawn bar with rate and ETA on a terminal, a plain
//! line every 10% otherwise.
use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    what: &'static str,
    total: usize,
    done: usize,
    start: Instant,
    tty: bool,
    last_decile: usize,
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl Progress {
    /// `total` units of `what` (e.g. "steps").
    pub fn new(what: &'static str, total: usize) -> Self {
        Progress { what, total: total.max(1), done: 0, start: Instant::now(), tty: std::io::stderr().is_terminal(), last_decile: 0 }
    }

    /// One more unit done.
    pub fn tick(&mut self) {
        self.done += 1;
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = self.done as f64 / elapsed.max(1e-9);
        let eta = (self.total.saturating_sub(self.done)) as f64 / rate;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = 30;
            let filled = width * self.done / self.total;
            let bar: String = "#".repeat(filled) + &" ".repeat(width - filled);
            let _ = write!(err, "\r[{bar}] {}/{} {} {rate:.1} {}/s ETA {}   ", self.done, self.total, self.what, self.what, duration(eta));
            let _ = err.flush();
        } else {
            let decile = 10 * self.done / self.total;
            if decile > self.last_decile {
                self.last_decile = decile;
                let _ = writeln!(err, "{}/{} {} ({:.1} {}/s, ETA {})", self.done, self.total, self.what, rate, self.what, duration(eta));
            }
        }
    }

    /// End the bar's line.
    pub fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}
