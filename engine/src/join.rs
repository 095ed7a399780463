//! Joins of two keyed streams: windowed (inner, left, full outer), interval,
//! and stream-table. Records too late to join are counted in
//! `rill_window_late_records_total` under the join's step name.

use std::time::Duration;

use rill_operators::{
    millis, IntervalJoin, JoinKind, Joined, States, TableJoin, WindowJoin, Windows,
};
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::operators::Inspect;
use timely::ExchangeData;

use crate::keyed::{Outputs, StateKey, StateValue};
use crate::stream::Stream;
use crate::Error;

impl<'s, K: StateKey, V: ExchangeData + StateValue + Clone> Stream<'s, K, V> {
    /// Joins this stream (left) with `other` (right) on key, within each
    /// of `windows` (tumbling; others are refused): a pair is emitted once, when
    /// its second record arrives. [`JoinKind::Left`] and
    /// [`JoinKind::Outer`] also emit records that met none, once their
    /// window can no longer change (the watermark passed its end plus
    /// `lateness`), never before. Both streams need event time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rill::testing::Timed;
    /// use rill::{JoinKind, Joined, Windows};
    ///
    /// let out = rill::testing::run(2, |flow| {
    ///     let orders = flow
    ///         .source_timed("orders", vec![Timed::Record(1_000, 7u32), Timed::Record(2_000, 8)])
    ///         .key_by("by-id", |id| *id);
    ///     let payments = flow
    ///         .source_timed("payments", vec![Timed::Record(5_000, 7u32)])
    ///         .key_by("paid-by-id", |id| *id);
    ///     let window = Windows::tumbling(Duration::from_secs(10));
    ///     orders.window_join("paid", payments, window, JoinKind::Left, Duration::ZERO)
    /// })
    /// .unwrap();
    /// let mut out: Vec<_> = out.into_iter().map(|(_, j)| j).collect();
    /// out.sort_by_key(|j| format!("{j:?}"));
    /// assert_eq!(out, vec![Joined::Both(7, 7), Joined::Left(8)]);
    /// ```
    pub fn window_join<V2>(
        self,
        name: &str,
        other: Stream<'s, K, V2>,
        windows: Windows,
        kind: JoinKind,
        lateness: Duration,
    ) -> Stream<'s, K, Joined<V, V2>>
    where
        V2: ExchangeData + StateValue + Clone,
    {
        let mut states = States::new();
        let logic = WindowJoin::new(windows, millis(lateness), kind, &mut states);
        let problem = match &logic {
            Err(e) => Some(e.clone()),
            Ok(_) => timeless(&self, &other),
        };
        match (logic, problem) {
            (Ok(logic), None) => counted(name, self.process2(name, other, states, logic)),
            (_, problem) => refused(self, name, problem.unwrap_or_default()),
        }
    }

    /// Joins each record of this stream at `t` with every record of
    /// `other` with its key at `t - lower ..= t + upper`, emitting each
    /// pair once. A record at or behind its stream's watermark is too
    /// late to join (counted). Both streams need event time.
    pub fn interval_join<V2>(
        self,
        name: &str,
        other: Stream<'s, K, V2>,
        lower: Duration,
        upper: Duration,
    ) -> Stream<'s, K, (V, V2)>
    where
        V2: ExchangeData + StateValue + Clone,
    {
        if let Some(problem) = timeless(&self, &other) {
            return refused(self, name, problem);
        }
        let mut states = States::new();
        let logic = IntervalJoin::new(millis(lower), millis(upper), &mut states);
        counted(name, self.process2(name, other, states, logic))
    }

    /// Joins each record with the value its key had in `table` (a stream
    /// of updates, such as a compacted topic) at the record's event time:
    /// emits `(value, Some(latest update at or before it))`, or `(value,
    /// None)` if the key had none. A record waits until the watermark of
    /// both streams reaches its time, so every update before it has
    /// arrived; a record already behind the watermark meets the table as
    /// of the watermark, at once. An update stays until the watermark
    /// passes a later one. Both streams need event time.
    ///
    /// ```
    /// use rill::testing::Timed;
    ///
    /// let out = rill::testing::run(2, |flow| {
    ///     let updates = vec![Timed::Record(0, (1u32, 'a')), Timed::Record(50, (1, 'b'))];
    ///     let names = flow
    ///         .source_timed("names", updates)
    ///         .key_by("names-by-id", |(id, _)| *id)
    ///         .map("name", |(_, name)| name);
    ///     flow.source_timed("ids", vec![Timed::Record(20, 1u32), Timed::Record(70, 1), Timed::Record(70, 2)])
    ///         .key_by("by-id", |id| *id)
    ///         .join_table("named", names)
    /// })
    /// .unwrap();
    /// let mut out: Vec<_> = out.into_iter().map(|(_, j)| j).collect();
    /// out.sort();
    /// // 1 at 20 met 'a' (from 0); 1 at 70 met 'b' (from 50).
    /// assert_eq!(out, vec![(1, Some('a')), (1, Some('b')), (2, None)]);
    /// ```
    pub fn join_table<T>(self, name: &str, table: Stream<'s, K, T>) -> Stream<'s, K, (V, Option<T>)>
    where
        T: ExchangeData + StateValue + Clone,
    {
        if let Some(problem) = timeless(&self, &table) {
            return refused(self, name, problem);
        }
        let mut states = States::new();
        let logic = TableJoin::new(&mut states);
        self.process2::<T, _, (), _>(name, table, states, logic)
            .output
    }
}

/// Why a join over event time cannot run on these streams, if it cannot.
fn timeless<K, V, V2>(left: &Stream<'_, K, V>, right: &Stream<'_, K, V2>) -> Option<String> {
    (left.watermarks.is_none() || right.watermarks.is_none()).then(|| {
        "this join needs event time on both streams, and one has no watermarks \
         (a source with event time, such as a Kafka source or source_timed, gives them)"
            .to_owned()
    })
}

/// A join's output, with its late records counted.
fn counted<'s, K: 'static, O: 'static, D: 'static>(
    name: &str,
    mut outputs: Outputs<'s, K, O, D>,
) -> Stream<'s, K, O> {
    let late = outputs.sides.remove(0);
    let ctx = &late.ctx;
    let counter = (ctx.shared.metrics.late).with_label_values(&[name, &ctx.worker_label()]);
    // Dropped once counted: nothing reads them downstream.
    let _ = late.inner.inspect(move |_| counter.inc());
    outputs.output
}

/// Stops the job with `problem` for step `name`; an empty stream stands in.
pub(crate) fn refused<'s, K: 'static, V: 'static, O: 'static>(
    input: Stream<'s, K, V>,
    name: &str,
    problem: String,
) -> Stream<'s, K, O> {
    let ctx = input.ctx.clone();
    ctx.claim_step(name);
    ctx.shared
        .fail(Error::Job(format!("step {name}: {problem}")));
    let scope = input.inner.scope();
    Stream::new(empty(scope), ctx, input.progress)
}
