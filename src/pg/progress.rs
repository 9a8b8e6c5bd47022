//! Progress NOTICEs for long training runs, at most one per `customer_value.progress_interval`
//! seconds, so a DBA watching a scheduled retrain (or an analyst in psql) sees rows read, step
//! and elapsed time — and a quick run stays silent.

use std::time::{Duration, Instant};

pub struct Progress {
    what: &'static str,
    started: Instant,
    last: Instant,
    interval: Option<Duration>,
    steps: u64,
}

impl Progress {
    pub fn new(what: &'static str) -> Progress {
        let seconds = super::guc::PROGRESS_INTERVAL.get();
        let now = Instant::now();
        Progress {
            what,
            started: now,
            last: now,
            interval: (seconds > 0).then(|| Duration::from_secs(seconds as u64)),
            steps: 0,
        }
    }

    fn due(&mut self) -> bool {
        match self.interval {
            Some(interval) if self.last.elapsed() >= interval => {
                self.last = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// After each row read; looks at the clock every 4096 rows only.
    #[inline]
    pub fn tick(&mut self, rows_read: usize) {
        if rows_read.is_multiple_of(4096) && self.due() {
            pgrx::notice!(
                "customer_value: {}: {rows_read} rows read, {:.1} s elapsed",
                self.what,
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    /// After each unit of training work (a tree, an optimiser iteration, a candidate).
    pub fn step(&mut self) {
        self.steps += 1;
        if self.due() {
            pgrx::notice!(
                "customer_value: {}: step {}, {:.1} s elapsed",
                self.what,
                self.steps,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
