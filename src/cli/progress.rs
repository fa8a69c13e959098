//! Progress of a sampling run on stderr. On a terminal: one line redrawn in place, cut to the
//! terminal's width; piped: a plain line every 10 s (and the last one), so a log shows life on
//! a run of hours without a line per evaluation. Each shows images done, the sampler step of the
//! current batch, the rate and the time left.
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use ditrt::pipeline::generate::RunProgress;

/// How often a piped run prints.
const PIPED_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    start: Instant,
    last_line: Instant,
    /// Terminal columns; None when stderr is not a terminal.
    columns: Option<usize>,
    last: Option<RunProgress>,
}

fn duration(secs: f64) -> String {
    let s = if secs.is_finite() { secs.round() as u64 } else { 0 };
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Width of the terminal on stderr: the kernel's window size, else $COLUMNS, else 80.
fn terminal_columns() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct for a terminal fd and fails otherwise.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0 && size.ws_col > 0 {
        return size.ws_col as usize;
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(80)
}

/// "64/400 images, step 12/20, 3.2 steps/s, ETA 1m20s", the words dropped from the end first
/// where `width` is short.
pub fn status(p: &RunProgress, elapsed: f64, width: usize) -> String {
    let rate = p.evaluations_done as f64 / elapsed.max(1e-9);
    let eta = p.evaluations.saturating_sub(p.evaluations_done) as f64 / rate;
    let parts = [
        format!("{}/{} images", p.images_done, p.images),
        format!("step {}/{}", p.step, p.steps),
        format!("{rate:.1} steps/s"),
        format!("ETA {}", duration(eta)),
    ];
    let mut line = String::new();
    for part in parts {
        let sep = if line.is_empty() { "" } else { ", " };
        if line.chars().count() + sep.len() + part.chars().count() > width {
            break;
        }
        line = line + sep + &part;
    }
    line
}

impl Progress {
    pub fn new() -> Self {
        let now = Instant::now();
        Progress { start: now, last_line: now, columns: std::io::stderr().is_terminal().then(terminal_columns), last: None }
    }

    /// After each model evaluation.
    pub fn update(&mut self, p: RunProgress) {
        self.last = Some(p);
        let elapsed = self.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        match self.columns {
            Some(columns) => {
                // A bar where the line has room for one after the words; \r and a cleared tail
                // redraw the same line.
                let text = status(&p, elapsed, columns.saturating_sub(1));
                let room = columns.saturating_sub(text.chars().count() + 4).min(30);
                let bar = match room {
                    0..=5 => String::new(),
                    width => {
                        let filled = width * p.evaluations_done / p.evaluations.max(1);
                        format!("[{}{}] ", "#".repeat(filled), " ".repeat(width - filled))
                    }
                };
                let _ = write!(err, "\r{bar}{text}\x1b[K");
                let _ = err.flush();
            }
            None if self.last_line.elapsed() >= PIPED_EVERY => {
                self.last_line = Instant::now();
                let _ = writeln!(err, "{}", status(&p, elapsed, usize::MAX));
            }
            None => {}
        }
    }

    /// Ends the redrawn line, or prints the last state of a piped run.
    pub fn finish(&self) {
        match (self.columns, &self.last) {
            (Some(_), _) => eprintln!(),
            // The run is done: every image is, though the last report came before its batch ended.
            (None, Some(p)) => eprintln!("{}", status(&RunProgress { images_done: p.images, ..*p }, self.start.elapsed().as_secs_f64(), usize::MAX)),
            (None, None) => {}
        }
    }
}
