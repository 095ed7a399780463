//! [`WindowLogic`]: the keyed-core logic of a windowed aggregation.
//!
//! Each key's open windows live in one `Map` state, keyed by window start
//! (so they iterate in time order), each holding its end and accumulator.
//! An event-time timer at `end - 1` emits the window's result; one at
//! `end - 1 + lateness` deletes it. Until then a late record updates the
//! window and the window re-emits at once; a record whose every window is
//! gone goes to the `late` side output.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;

use super::slices::Hop;
use super::{Window, Windows};
use crate::keyed::{Context, MapState, SideOutput, States, Timer, TimerKind, TimerState};
use crate::process::{LogicResult, Process};

/// Adds a record to a window's accumulator (`None`: the window's first).
pub type Fold<V, A> = Box<dyn FnMut(Option<A>, V) -> A>;

/// Merges two accumulators (session windows that grew into each other).
pub type Merge<A> = Box<dyn FnMut(A, A) -> A>;

/// The states of a windowed step.
#[derive(Clone, Copy)]
pub struct WindowStates<A> {
    pub(super) windows: MapState<u64, (u64, A)>,
    pub(super) timers: TimerState,
    pub(super) late: SideOutput,
}

impl<A: Serialize + DeserializeOwned> WindowStates<A> {
    /// Declares a windowed step's states in `states`: its windows, timers
    /// and `late` side output.
    pub fn declare<K>(states: &mut States<K>) -> Self
    where
        K: Hash + Eq + Clone + Serialize + std::fmt::Debug + 'static,
    {
        WindowStates {
            windows: states.map("windows"),
            timers: states.timers(),
            late: states.side_output("late"),
        }
    }
}

/// A windowed aggregation over records of type `V` into `A`.
pub struct WindowLogic<V, A> {
    /// How records are grouped.
    pub windows: Windows,
    /// How long after its end (ms) a window still takes late records.
    pub lateness: u64,
    /// Emit each changed window's current value when an epoch closes.
    pub early: bool,
    /// Adds a record to an accumulator.
    pub fold: Fold<V, A>,
    /// Merges accumulators: required for session windows.
    pub merge: Option<Merge<A>>,
    /// Keep hopping windows as slices merged at each window's end (one
    /// update per record, not one per window): only for a `merge` whose
    /// result does not depend on the order of the records, such as a
    /// count or a sum.
    pub slices: bool,
    /// The step's states.
    pub states: WindowStates<A>,
}

/// The most slices a window is merged from; beyond it, each window is
/// kept whole.
const MOST_SLICES: u64 = 64;

/// The instant a window `[_, end)` is complete at.
pub(super) fn last(end: u64) -> u64 {
    end.saturating_sub(1)
}

impl<V, A> WindowLogic<V, A> {
    /// The instant after which a window ending at `end` can no longer change.
    pub(super) fn closes(&self, end: u64) -> u64 {
        last(end).saturating_add(self.lateness)
    }

    /// The geometry of hopping windows kept as slices, if these are: not
    /// when a window would merge more than [`MOST_SLICES`] slices (a size
    /// and slide with a tiny common divisor, such as 60,001 ms and 1 s).
    fn sliced(&self) -> Option<Hop> {
        match self.windows {
            Windows::Hopping { size, slide } if self.slices && self.merge.is_some() => {
                let hop = Hop { size, slide };
                (size / hop.slice() <= MOST_SLICES).then_some(hop)
            }
            _ => None,
        }
    }

    /// Sets the timers of a window ending at `end`: its result (unless the
    /// watermark is past it already) and its removal.
    fn set_timers<K, O, D>(&self, cx: &mut Context<'_, K, O, D>, end: u64) -> LogicResult
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    {
        let complete = reached(cx.watermark(), last(end));
        let mut timers = cx.timers(self.states.timers);
        if !complete {
            timers.set_event_time(last(end))?;
        }
        timers.set_event_time(self.closes(end))?;
        Ok(())
    }
}

/// Whether watermark `w` has reached `time`.
pub(super) fn reached(w: Option<u64>, time: u64) -> bool {
    w.is_some_and(|w| w >= time)
}

impl<K, V, A> Process<K, V, Window<A>, V> for WindowLogic<V, A>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    V: Clone + 'static,
    A: Serialize + DeserializeOwned + Clone + 'static,
{
    fn on_record(&mut self, cx: &mut Context<'_, K, Window<A>, V>, value: V) -> LogicResult {
        if let Some(hop) = self.sliced() {
            return self.record_sliced(cx, hop, value);
        }
        let time = cx.time();
        let w = cx.watermark();
        let assigned = self.windows.assign(time);
        if assigned.is_empty() {
            // In no window (hopping windows with gaps between them).
            return Ok(());
        }
        let mut updated = Vec::new();
        if self.windows.merges() {
            let (start, end) = assigned[0];
            let open = cx.map(self.states.windows).entries()?;
            let touching: Vec<(u64, (u64, A))> = open
                .into_iter()
                .filter(|(s, (e, _))| *s < end && start < *e)
                .collect();
            if touching.is_empty() && reached(w, self.closes(end)) {
                cx.emit_to(self.states.late, value);
                return Ok(());
            }
            let (mut start, mut end, mut acc) = (start, end, None);
            // The merged sessions' timers stay: when they fire they find
            // no window ending there, or one that is due then anyway.
            for (s, (e, a)) in touching {
                cx.map(self.states.windows).remove(&s)?;
                start = start.min(s);
                end = end.max(e);
                acc = Some(match (acc, self.merge.as_mut()) {
                    (None, _) => a,
                    (Some(b), Some(merge)) => merge(b, a),
                    (Some(_), None) => return Err("session windows need a merge".into()),
                });
            }
            let acc = (self.fold)(acc, value);
            cx.map(self.states.windows)
                .put(&start, &(end, acc.clone()))?;
            self.set_timers(cx, end)?;
            updated.push((start, end, acc));
        } else {
            for (start, end) in assigned {
                if reached(w, self.closes(end)) {
                    continue;
                }
                let known = cx.map(self.states.windows).get(&start)?;
                if known.is_none() {
                    self.set_timers(cx, end)?;
                }
                let acc = (self.fold)(known.map(|(_, a)| a), value.clone());
                cx.map(self.states.windows)
                    .put(&start, &(end, acc.clone()))?;
                updated.push((start, end, acc));
            }
            if updated.is_empty() {
                cx.emit_to(self.states.late, value);
                return Ok(());
            }
        }
        for (start, end, acc) in updated {
            if reached(w, last(end)) {
                // Complete already: a late update re-emits the window.
                let window = Window {
                    start,
                    end,
                    value: acc,
                };
                cx.emit_at(last(end), window);
            } else if self.early {
                let epoch = cx.epoch();
                cx.timers(self.states.timers).set_epoch(epoch)?;
            }
        }
        Ok(())
    }

    fn on_timer(&mut self, cx: &mut Context<'_, K, Window<A>, V>, timer: Timer) -> LogicResult {
        if let Some(hop) = self.sliced() {
            return self.timer_sliced(cx, hop, timer);
        }
        let w = cx.watermark();
        let open = match (timer.kind, self.windows.size()) {
            // Windows of fixed length: the two that may be due now, by
            // their start (point lookups, not a scan of the key's windows).
            (TimerKind::EventTime, Some(size)) => {
                let complete = (timer.time + 1).checked_sub(size);
                let closed = complete.and_then(|s| s.checked_sub(self.lateness));
                let mut due = Vec::new();
                for start in [complete, closed].into_iter().flatten() {
                    if let Some(window) = cx.map(self.states.windows).get(&start)? {
                        due.push((start, window));
                    }
                    if self.lateness == 0 {
                        break;
                    }
                }
                due
            }
            _ => cx.map(self.states.windows).entries()?,
        };
        for (start, (end, acc)) in open {
            match timer.kind {
                TimerKind::EventTime => {
                    if timer.time == last(end) {
                        let window = Window {
                            start,
                            end,
                            value: acc,
                        };
                        cx.emit_at(last(end), window);
                    }
                    if timer.time >= self.closes(end) {
                        cx.map(self.states.windows).remove(&start)?;
                    }
                }
                TimerKind::Epoch => {
                    if !reached(w, last(end)) {
                        let window = Window {
                            start,
                            end,
                            value: acc,
                        };
                        cx.emit_at(last(end), window);
                    }
                }
            }
        }
        Ok(())
    }
}
