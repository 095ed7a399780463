//! Hopping windows kept as slices: with a merge that may combine partial
//! results in any order (count, sum), a key's records are folded into
//! back-to-back slices of `gcd(size, slide)` ms, and a window's value is
//! the merge of the slices it covers. A record then updates one entry
//! instead of the `size / slide` windows it belongs to.
//!
//! The slices live in the step's `windows` map, keyed by slice start. A
//! slice's timers are its windows' ends (results) and the end of the
//! newest window holding it plus the lateness (its removal).

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::hash::Hash;

use super::logic::{last, reached, WindowLogic};
use super::Window;
use crate::keyed::{Context, Timer, TimerKind};
use crate::process::LogicResult;

/// A result of user-facing logic, as [`LogicResult`] with a value.
type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A hopping window's geometry, in ms.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hop {
    pub size: u64,
    pub slide: u64,
}

impl Hop {
    /// The length of a slice: every window start and end falls on one.
    pub(super) fn slice(&self) -> u64 {
        let (mut a, mut b) = (self.size, self.slide);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }

    /// The start of the window ending at `end`, if a window ends there.
    fn start_of(&self, end: u64) -> Option<u64> {
        end.checked_sub(self.size).filter(|s| s % self.slide == 0)
    }
}

impl<V, A: Clone> WindowLogic<V, A> {
    /// The merge of the slices of `[start, end)` in `slices` (by start).
    fn merged(&mut self, slices: &[(u64, A)], start: u64, end: u64) -> Fallible<Option<A>> {
        let merge = self.merge.as_mut().ok_or("sliced windows need a merge")?;
        let mut acc: Option<A> = None;
        for (_, a) in slices.iter().filter(|(s, _)| start <= *s && *s < end) {
            acc = Some(match acc {
                None => a.clone(),
                Some(b) => merge(b, a.clone()),
            });
        }
        Ok(acc)
    }

    /// The key's slices in `[start, end)`, read by point lookups.
    fn read_slices<K, O, D>(
        &self,
        cx: &mut Context<'_, K, O, D>,
        hop: Hop,
        start: u64,
        end: u64,
    ) -> Fallible<Vec<(u64, A)>>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
        A: Serialize + DeserializeOwned,
    {
        let mut found = Vec::new();
        for s in (start..end).step_by(hop.slice() as usize) {
            if let Some((_, a)) = cx.map(self.states.windows).get(&s)? {
                found.push((s, a));
            }
        }
        Ok(found)
    }

    /// Emits window `[start, end)` from `slices`, if any holds a record.
    fn emit_window<K, D>(
        &mut self,
        cx: &mut Context<'_, K, Window<A>, D>,
        slices: &[(u64, A)],
        (start, end): (u64, u64),
    ) -> LogicResult
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    {
        if let Some(value) = self.merged(slices, start, end)? {
            cx.emit_at(last(end), Window { start, end, value });
        }
        Ok(())
    }

    /// [`WindowLogic`]'s `on_record` for sliced hopping windows.
    pub(super) fn record_sliced<K>(
        &mut self,
        cx: &mut Context<'_, K, Window<A>, V>,
        hop: Hop,
        value: V,
    ) -> LogicResult
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
        A: Serialize + DeserializeOwned,
    {
        let (time, w) = (cx.time(), cx.watermark());
        let windows = self.windows.assign(time);
        let Some(&(_, newest_end)) = windows.last() else {
            // In no window (hopping windows with gaps between them).
            return Ok(());
        };
        if reached(w, self.closes(newest_end)) {
            cx.emit_to(self.states.late, value);
            return Ok(());
        }
        let slice = time - time % hop.slice();
        let known = cx.map(self.states.windows).get(&slice)?;
        if known.is_none() {
            let mut timers = cx.timers(self.states.timers);
            for &(_, end) in windows.iter().filter(|(_, e)| !reached(w, last(*e))) {
                timers.set_event_time(last(end))?;
            }
            timers.set_event_time(self.closes(newest_end))?;
        }
        let acc = (self.fold)(known.map(|(_, a)| a), value);
        let slice_end = slice.saturating_add(hop.slice());
        cx.map(self.states.windows).put(&slice, &(slice_end, acc))?;
        // A late record re-emits its complete windows that are still open.
        let lateness = self.lateness;
        let open = windows
            .iter()
            .filter(|(_, e)| !reached(w, last(*e) + lateness));
        for &(start, end) in open.filter(|(_, e)| reached(w, last(*e))) {
            let slices = self.read_slices(cx, hop, start, end)?;
            self.emit_window(cx, &slices, (start, end))?;
        }
        if self.early && windows.iter().any(|(_, e)| !reached(w, last(*e))) {
            let epoch = cx.epoch();
            cx.timers(self.states.timers).set_epoch(epoch)?;
        }
        Ok(())
    }

    /// [`WindowLogic`]'s `on_timer` for sliced hopping windows.
    pub(super) fn timer_sliced<K>(
        &mut self,
        cx: &mut Context<'_, K, Window<A>, V>,
        hop: Hop,
        timer: Timer,
    ) -> LogicResult
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
        A: Serialize + DeserializeOwned,
    {
        let w = cx.watermark();
        if timer.kind == TimerKind::Epoch {
            // Early results: every window of the key not complete yet.
            let slices: Vec<(u64, A)> = (cx.map(self.states.windows).entries()?)
                .into_iter()
                .map(|(s, (_, a))| (s, a))
                .collect();
            let windows: BTreeSet<(u64, u64)> = slices
                .iter()
                .flat_map(|(s, _)| self.windows.assign(*s))
                .filter(|(_, e)| !reached(w, last(*e)))
                .collect();
            for window in windows {
                self.emit_window(cx, &slices, window)?;
            }
            return Ok(());
        }
        let end = timer.time.saturating_add(1);
        if let Some(start) = hop.start_of(end) {
            let slices = self.read_slices(cx, hop, start, end)?;
            self.emit_window(cx, &slices, (start, end))?;
        }
        // The slices whose newest window closes now can no longer change.
        let newest_end = timer.time.checked_sub(self.lateness).map(|t| t + 1);
        if let Some(start) = newest_end.and_then(|e| hop.start_of(e)) {
            for s in (start..start.saturating_add(hop.slide)).step_by(hop.slice() as usize) {
                cx.map(self.states.windows).remove(&s)?;
            }
        }
        Ok(())
    }
}
