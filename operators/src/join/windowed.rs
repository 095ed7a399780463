//! [`WindowJoin`]: records of two streams with the same key and in the
//! same tumbling window meet. A pair is emitted once, when the
//! second of the two arrives; "no match" for a left (or, outer, a right)
//! record only once its window can no longer change: the watermark passed
//! the window's end plus the allowed lateness. Then the window's records
//! are deleted.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{between, reached, ByTime, Ids, JoinKind, Joined};
use crate::keyed::{Context, SideOutput, States, Timer, TimerKind, TimerState};
use crate::process::LogicResult;
use crate::process2::{Either, Process2};
use crate::window::Windows;

/// One side's records: (window start, id) → (event time, record).
type Side<T> = ByTime<(u64, T)>;

/// A windowed join's logic and states.
pub struct WindowJoin<L, R> {
    windows: Windows,
    size: u64,
    lateness: u64,
    kind: JoinKind,
    lefts: Side<L>,
    rights: Side<R>,
    timers: TimerState,
    late: SideOutput,
    ids: Ids,
}

impl<L, R> WindowJoin<L, R>
where
    L: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    /// A join over tumbling `windows` (`Err` for others),
    /// declaring its states in `states`: both sides, timers, and a `late`
    /// side output for records whose every window had closed.
    pub fn new<K>(
        windows: Windows,
        lateness: u64,
        kind: JoinKind,
        states: &mut States<K>,
    ) -> Result<Self, String>
    where
        K: Hash + Eq + Clone + Serialize + std::fmt::Debug + 'static,
    {
        windows.check()?;
        // In overlapping windows a pair would meet once per window, and a
        // record could match in one and not in another.
        let Windows::Tumbling { size } = windows else {
            return Err("a windowed join takes tumbling windows".into());
        };
        Ok(WindowJoin {
            windows,
            size,
            lateness,
            kind,
            lefts: states.map("lefts"),
            rights: states.map("rights"),
            timers: states.timers(),
            late: states.side_output("late"),
            ids: Ids::default(),
        })
    }

    fn closes(&self, start: u64) -> u64 {
        start
            .saturating_add(self.size)
            .saturating_sub(1)
            .saturating_add(self.lateness)
    }
}

impl<L, R> WindowJoin<L, R>
where
    L: Serialize + DeserializeOwned + Clone + 'static,
    R: Serialize + DeserializeOwned + Clone + 'static,
{
    /// Stores `record` (of side `mine`) in each of its open windows and
    /// pairs it with the other side's records there (`pair` orders them).
    #[allow(clippy::too_many_arguments)]
    fn arrive<K, M, T>(
        &mut self,
        cx: &mut Context<'_, K, Joined<L, R>, Either<L, R>>,
        record: M,
        mine: Side<M>,
        theirs: Side<T>,
        pair: impl Fn(M, T) -> Joined<L, R>,
        late: impl FnOnce(M) -> Either<L, R>,
    ) -> LogicResult
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
        M: Serialize + DeserializeOwned + Clone,
        T: Serialize + DeserializeOwned,
    {
        let (time, w) = (cx.time(), cx.watermark());
        let mut any = false;
        for (start, _) in self.windows.assign(time) {
            if reached(w, self.closes(start)) {
                continue;
            }
            any = true;
            for (_, (_, other)) in between(cx, theirs, start, start)? {
                cx.emit(pair(record.clone(), other));
            }
            let id = self.ids.next(cx.epoch());
            cx.map(mine).put(&(start, id), &(time, record.clone()))?;
            let closes = self.closes(start);
            cx.timers(self.timers).set_event_time(closes)?;
        }
        if !any {
            cx.emit_to(self.late, late(record));
        }
        Ok(())
    }
}

impl<K, L, R> Process2<K, L, R, Joined<L, R>, Either<L, R>> for WindowJoin<L, R>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    L: Serialize + DeserializeOwned + Clone + 'static,
    R: Serialize + DeserializeOwned + Clone + 'static,
{
    fn on_left(
        &mut self,
        cx: &mut Context<'_, K, Joined<L, R>, Either<L, R>>,
        value: L,
    ) -> LogicResult {
        let (lefts, rights) = (self.lefts, self.rights);
        self.arrive(cx, value, lefts, rights, Joined::Both, Either::Left)
    }

    fn on_right(
        &mut self,
        cx: &mut Context<'_, K, Joined<L, R>, Either<L, R>>,
        value: R,
    ) -> LogicResult {
        let (lefts, rights) = (self.lefts, self.rights);
        self.arrive(
            cx,
            value,
            rights,
            lefts,
            |r, l| Joined::Both(l, r),
            Either::Right,
        )
    }

    fn on_timer(
        &mut self,
        cx: &mut Context<'_, K, Joined<L, R>, Either<L, R>>,
        timer: Timer,
    ) -> LogicResult {
        if timer.kind != TimerKind::EventTime {
            return Ok(());
        }
        // The window that can no longer change at this instant.
        let Some(start) = (timer.time + 1)
            .checked_sub(self.lateness)
            .and_then(|t| t.checked_sub(self.size))
        else {
            return Ok(());
        };
        let lefts = between(cx, self.lefts, start, start)?;
        let rights = between(cx, self.rights, start, start)?;
        let unmatched = |mine: bool, theirs: bool| !theirs && mine;
        let emit_lefts = self.kind != JoinKind::Inner;
        let emit_rights = self.kind == JoinKind::Outer;
        if emit_lefts && unmatched(!lefts.is_empty(), !rights.is_empty()) {
            for (_, (time, l)) in &lefts {
                cx.emit_at(*time, Joined::Left(l.clone()));
            }
        }
        if emit_rights && unmatched(!rights.is_empty(), !lefts.is_empty()) {
            for (_, (time, r)) in &rights {
                cx.emit_at(*time, Joined::Right(r.clone()));
            }
        }
        for (id, _) in lefts {
            cx.map(self.lefts).remove(&id)?;
        }
        for (id, _) in rights {
            cx.map(self.rights).remove(&id)?;
        }
        Ok(())
    }
}
