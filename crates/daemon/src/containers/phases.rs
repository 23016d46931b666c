//! Wall-clock split of one container operation, logged at debug level as one line
//! (`BERTHD_LOG=berth_daemon=debug` or `--log-level debug`): where a `run` spends its time
//! between berthd's steps. Costs two clock reads per step when debug is off.

use std::time::Instant;

/// Steps of one operation, timed from [`Phases::new`] to each [`Phases::mark`].
#[derive(Debug)]
pub struct Phases {
    op: &'static str,
    id: String,
    start: Instant,
    last: Instant,
    steps: Vec<(&'static str, u128)>,
}

impl Phases {
    /// Starts timing `op` on container `id`.
    pub fn new(op: &'static str, id: &str) -> Phases {
        let now = Instant::now();
        if berth_runtime::timing::enabled() {
            berth_runtime::timing::mark(&format!("berthd {op}: begin"));
        }
        Phases {
            op,
            id: id.get(..12).unwrap_or(id).to_owned(),
            start: now,
            last: now,
            steps: Vec::new(),
        }
    }

    /// Ends the step `name` now.
    pub fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        if berth_runtime::timing::enabled() {
            berth_runtime::timing::mark(&format!("berthd {}: {name}", self.op));
        }
        self.steps
            .push((name, now.duration_since(self.last).as_micros()));
        self.last = now;
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|(n, us)| format!("{n}={us}us"))
            .collect();
        tracing::debug!(
            op = self.op,
            id = %self.id,
            total_us = self.start.elapsed().as_micros() as u64,
            steps = %steps.join(" "),
            "phases"
        );
    }
}
