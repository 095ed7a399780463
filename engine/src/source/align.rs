//! Watermark alignment within a process (`--max-watermark-drift`): a
//! source worker whose watermark runs more than the drift ahead of the
//! least watermark of the process's other workers of the same source stops
//! reading until they catch up. Downstream, an event-time step waits for
//! the least watermark over all workers, so every window a worker opens
//! ahead of the others is held in state until they get there; alignment
//! bounds that gap. Workers of other processes are not seen.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rill_operators::Mark;

/// The latest watermark of each worker of each source in this process.
#[derive(Debug, Default)]
pub(crate) struct SourceMarks(Mutex<HashMap<String, BTreeMap<usize, u64>>>);

impl SourceMarks {
    fn with<R>(&self, step: &str, f: impl FnOnce(&mut BTreeMap<usize, u64>) -> R) -> R {
        let mut marks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !marks.contains_key(step) {
            marks.insert(step.to_owned(), BTreeMap::new());
        }
        f(marks.get_mut(step).expect("just inserted"))
    }

    /// Worker `me` reads source `step`: until it has a watermark, it holds
    /// the others back as if at time 0.
    pub fn join(&self, step: &str, me: usize) {
        self.with(step, |of_step| {
            of_step.entry(me).or_insert(0);
        });
    }

    /// Records worker `me`'s watermark of source `step` and tells whether
    /// it is more than `drift` ms ahead of the least of the others'. No
    /// watermark yet keeps the last one; an idle or finished worker is
    /// left out: it holds no one back.
    pub fn ahead(&self, step: &str, me: usize, mark: Option<Mark>, drift: u64) -> bool {
        self.with(step, |of_step| {
            let t = match mark {
                None => return false,
                Some(Mark::At(t)) if t != u64::MAX => t,
                Some(_) => {
                    of_step.remove(&me);
                    return false;
                }
            };
            of_step.insert(me, t);
            let others = of_step.iter().filter(|(w, _)| **w != me);
            others
                .map(|(_, t)| *t)
                .min()
                .is_some_and(|least| t > least.saturating_add(drift))
        })
    }

    /// Worker `me` of source `step` read all it will: it holds no one back.
    pub fn leave(&self, step: &str, me: usize) {
        self.with(step, |of_step| of_step.remove(&me));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_waits_only_while_it_is_ahead_of_a_live_other_by_more_than_the_drift() {
        let marks = SourceMarks::default();
        assert!(!marks.ahead("s", 0, Some(Mark::At(5_000)), 1_000), "alone");
        marks.join("s", 1);
        assert!(
            marks.ahead("s", 0, Some(Mark::At(5_000)), 1_000),
            "1 starts"
        );
        assert!(!marks.ahead("s", 1, None, 1_000), "1 has no mark yet");
        assert!(marks.ahead("s", 0, Some(Mark::At(5_000)), 1_000), "still");
        assert!(!marks.ahead("s", 1, Some(Mark::At(4_500)), 1_000));
        assert!(
            !marks.ahead("s", 0, Some(Mark::At(5_500)), 1_000),
            "1 s ahead"
        );
        assert!(marks.ahead("s", 0, Some(Mark::At(5_501)), 1_000), "more");
        assert!(
            !marks.ahead("t", 0, Some(Mark::At(9_999)), 1_000),
            "another source"
        );
        assert!(!marks.ahead("s", 1, Some(Mark::Idle), 1_000), "1 idles");
        assert!(
            !marks.ahead("s", 0, Some(Mark::At(9_000)), 1_000),
            "1 left out"
        );
        assert!(
            !marks.ahead("s", 1, Some(Mark::At(100)), 1_000),
            "1 is back"
        );
        assert!(marks.ahead("s", 0, Some(Mark::At(9_000)), 1_000));
        assert!(
            !marks.ahead("s", 1, Some(Mark::At(u64::MAX)), 1_000),
            "1 ends"
        );
        assert!(!marks.ahead("s", 0, Some(Mark::At(9_000)), 1_000));
        assert!(!marks.ahead("s", 1, Some(Mark::At(100)), 1_000));
        marks.leave("s", 1);
        assert!(!marks.ahead("s", 0, Some(Mark::At(9_000)), 1_000), "1 left");
    }
}
