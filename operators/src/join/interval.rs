//! [`IntervalJoin`]: a left record at `t` meets every right record of its
//! key at `t - lower ..= t + upper`. A record at or behind the watermark
//! is late (it goes to the `late` side output): that keeps every pair
//! emitted exactly once, whatever the order records arrive in. A left
//! record is deleted once the watermark passes `t + upper`, a right one
//! once it passes `t + lower`: no later record can meet them.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{between, reached, ByTime, Ids};
use crate::keyed::{Context, SideOutput, States, Timer, TimerKind, TimerState};
use crate::process::LogicResult;
use crate::process2::{Either, Process2};

/// One side's records: (event time, id) → record.
type Side<T> = ByTime<T>;

/// An interval join's logic and states.
pub struct IntervalJoin<L, R> {
    lower: u64,
    upper: u64,
    lefts: Side<L>,
    rights: Side<R>,
    timers: TimerState,
    late: SideOutput,
    ids: Ids,
}

impl<L, R> IntervalJoin<L, R>
where
    L: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    /// A join of left records at `t` with right records at `t - lower
    /// ..= t + upper` (ms), declaring its states in `states`.
    pub fn new<K>(lower: u64, upper: u64, states: &mut States<K>) -> Self
    where
        K: Hash + Eq + Clone + Serialize + std::fmt::Debug + 'static,
    {
        IntervalJoin {
            lower,
            upper,
            lefts: states.map("lefts"),
            rights: states.map("rights"),
            timers: states.timers(),
            late: states.side_output("late"),
            ids: Ids::default(),
        }
    }
}

impl<K, L, R> Process2<K, L, R, (L, R), Either<L, R>> for IntervalJoin<L, R>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    L: Serialize + DeserializeOwned + Clone + 'static,
    R: Serialize + DeserializeOwned + Clone + 'static,
{
    fn on_left(&mut self, cx: &mut Context<'_, K, (L, R), Either<L, R>>, l: L) -> LogicResult {
        let t = cx.time();
        if reached(cx.watermark(), t) {
            cx.emit_to(self.late, Either::Left(l));
            return Ok(());
        }
        let (from, to) = (t.saturating_sub(self.lower), t.saturating_add(self.upper));
        for (_, r) in between(cx, self.rights, from, to)? {
            cx.emit((l.clone(), r));
        }
        let id = self.ids.next(cx.epoch());
        cx.map(self.lefts).put(&(t, id), &l)?;
        cx.timers(self.timers).set_event_time(to)?;
        Ok(())
    }

    fn on_right(&mut self, cx: &mut Context<'_, K, (L, R), Either<L, R>>, r: R) -> LogicResult {
        let t = cx.time();
        if reached(cx.watermark(), t) {
            cx.emit_to(self.late, Either::Right(r));
            return Ok(());
        }
        let (from, to) = (t.saturating_sub(self.upper), t.saturating_add(self.lower));
        for (_, l) in between(cx, self.lefts, from, to)? {
            cx.emit((l, r.clone()));
        }
        let id = self.ids.next(cx.epoch());
        cx.map(self.rights).put(&(t, id), &r)?;
        cx.timers(self.timers).set_event_time(to)?;
        Ok(())
    }

    fn on_timer(
        &mut self,
        cx: &mut Context<'_, K, (L, R), Either<L, R>>,
        timer: Timer,
    ) -> LogicResult {
        if timer.kind != TimerKind::EventTime {
            return Ok(());
        }
        if let Some(last) = timer.time.checked_sub(self.upper) {
            for (id, _) in between(cx, self.lefts, 0, last)? {
                cx.map(self.lefts).remove(&id)?;
            }
        }
        if let Some(last) = timer.time.checked_sub(self.lower) {
            for (id, _) in between(cx, self.rights, 0, last)? {
                cx.map(self.rights).remove(&id)?;
            }
        }
        Ok(())
    }
}
