//! Watching a running job's state entries: the sum of its
//! `rill_state_keys` samples, read every 100 ms, for the peak and the end.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rill::metrics::Metrics;

/// The sum of every `rill_state_keys` sample in a metrics rendering.
fn state_entries(text: &str) -> i64 {
    text.lines()
        .filter(|l| l.starts_with("rill_state_keys{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as i64)
        .sum()
}

/// A thread sampling a job's state entries until [`Watch::finish`].
pub struct Watch {
    metrics: Arc<Metrics>,
    peak: Arc<AtomicI64>,
    done: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
}

impl Watch {
    /// Starts sampling `metrics` (a job's, before it runs).
    pub fn start(metrics: Arc<Metrics>) -> Self {
        let peak = Arc::new(AtomicI64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done, metrics) = (peak.clone(), done.clone(), metrics.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(state_entries(&metrics.render()), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Watch {
            metrics,
            peak,
            done,
            sampler,
        }
    }

    /// Stops sampling: the peak, and the entries now (after the job).
    pub fn finish(self) -> (i64, i64) {
        self.done.store(true, Ordering::Relaxed);
        self.sampler.join().expect("the sampler thread");
        let end = state_entries(&self.metrics.render());
        (self.peak.load(Ordering::Relaxed).max(end), end)
    }
}
