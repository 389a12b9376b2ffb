//! `-v` and `-vv`: what the helper opened and joined, and how long each step took, one line
//! each on stderr. stdout keeps its one JSON document.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static LEVEL: AtomicU8 = AtomicU8::new(0);
static START: OnceLock<Instant> = OnceLock::new();

/// `-v` (1): each step and what it opened and joined; `-vv` (2): also each namespace of a
/// walk and each process of `--all`.
pub fn init(level: u8) {
    START.get_or_init(Instant::now);
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn enabled(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

/// Prints `message` at `level` and above, stamped with the time since the helper started.
/// The message is only built when it will be printed.
pub fn say(level: u8, message: impl FnOnce() -> String) {
    if enabled(level) {
        let elapsed = START.get_or_init(Instant::now).elapsed();
        eprintln!(
            "nshelper: [{:9.3} ms] {}",
            elapsed.as_secs_f64() * 1000.0,
            crate::one_line(&message())
        );
    }
}

/// A step of the call, timed from [`step`] to [`Step::done`].
#[must_use]
pub struct Step {
    name: &'static str,
    started: Instant,
}

pub fn step(name: &'static str) -> Step {
    Step {
        name,
        started: Instant::now(),
    }
}

impl Step {
    /// Prints at `-v` how long the step took, with what it found.
    pub fn done(self, detail: impl FnOnce() -> String) {
        let took = self.started.elapsed();
        say(1, || {
            let detail = detail();
            let took = took.as_secs_f64() * 1000.0;
            if detail.is_empty() {
                format!("{}: {took:.3} ms", self.name)
            } else {
                format!("{}: {took:.3} ms: {detail}", self.name)
            }
        });
    }
}
