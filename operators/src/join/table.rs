//! [`TableJoin`]: each record of a stream meets the value its key had in
//! a table stream (a compacted topic, say) at the record's event time: the
//! latest table update at or before it.
//!
//! A record waits, in `pending` state with a timer at its time, until the
//! watermark of both inputs reaches it: by then every table update at or
//! before its time has arrived. The table keeps its updates as versions by
//! event time; once the watermark passes a version's time, the versions
//! before it can no longer be met and are deleted. A record already behind
//! the watermark when it arrives meets the table as of the watermark (the
//! oldest version still kept), at once.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{between, reached, ByTime, Ids};
use crate::keyed::{Context, States, Timer, TimerKind, TimerState};
use crate::process::LogicResult;
use crate::process2::Process2;

/// A stream-table join's logic and states.
pub struct TableJoin<V, T> {
    pending: ByTime<V>,
    versions: ByTime<T>,
    timers: TimerState,
    ids: Ids,
}

impl<V, T> TableJoin<V, T>
where
    V: Serialize + DeserializeOwned,
    T: Serialize + DeserializeOwned,
{
    /// Declares the join's states in `states`.
    pub fn new<K>(states: &mut States<K>) -> Self
    where
        K: Hash + Eq + Clone + Serialize + std::fmt::Debug + 'static,
    {
        TableJoin {
            pending: states.map("pending"),
            versions: states.map("versions"),
            timers: states.timers(),
            ids: Ids::default(),
        }
    }
}

/// The latest of `versions` (in time order) at or before `time`.
fn as_of<T: Clone>(versions: &[((u64, u64), T)], time: u64) -> Option<T> {
    let before = versions.partition_point(|((t, _), _)| *t <= time);
    before.checked_sub(1).map(|i| versions[i].1.clone())
}

impl<K, V, T> Process2<K, V, T, (V, Option<T>), ()> for TableJoin<V, T>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    V: Serialize + DeserializeOwned + Clone + 'static,
    T: Serialize + DeserializeOwned + Clone + 'static,
{
    fn on_left(&mut self, cx: &mut Context<'_, K, (V, Option<T>), ()>, v: V) -> LogicResult {
        let t = cx.time();
        if reached(cx.watermark(), t) {
            let at = cx.watermark().unwrap_or(t).max(t);
            let versions = between(cx, self.versions, 0, at)?;
            cx.emit((v, as_of(&versions, at)));
            return Ok(());
        }
        let id = self.ids.next(cx.epoch());
        cx.map(self.pending).put(&(t, id), &v)?;
        cx.timers(self.timers).set_event_time(t)?;
        Ok(())
    }

    fn on_right(&mut self, cx: &mut Context<'_, K, (V, Option<T>), ()>, update: T) -> LogicResult {
        let t = cx.time();
        let id = self.ids.next(cx.epoch());
        cx.map(self.versions).put(&(t, id), &update)?;
        // When the watermark passes it, the versions before it go.
        cx.timers(self.timers).set_event_time(t)?;
        Ok(())
    }

    fn on_timer(
        &mut self,
        cx: &mut Context<'_, K, (V, Option<T>), ()>,
        timer: Timer,
    ) -> LogicResult {
        if timer.kind != TimerKind::EventTime {
            return Ok(());
        }
        // Only what is due: a hot key's timers do not read all its records.
        let versions = between(cx, self.versions, 0, timer.time)?;
        for ((t, id), v) in between(cx, self.pending, 0, timer.time)? {
            cx.emit_at(t, (v, as_of(&versions, t)));
            cx.map(self.pending).remove(&(t, id))?;
        }
        let kept = versions.partition_point(|((t, _), _)| *t <= timer.time);
        for (at, _) in &versions[..kept.saturating_sub(1)] {
            cx.map(self.versions).remove(at)?;
        }
        Ok(())
    }
}
