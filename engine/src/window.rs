//! Event-time windows on a keyed stream: [`Stream::window`] then `count`,
//! `sum`, `aggregate` or `reduce` (Kafka Streams' `windowedBy(..).count()`).
//! Each window's result is emitted once the watermark passes its end, as a
//! [`Window`] with its start and end; within the allowed lateness a late
//! record updates its window, which is emitted again; records later than
//! that go to the `late` output ([`Windowed::on_late`]) and are counted in
//! `rill_window_late_records_total`. A window's state is deleted once it
//! can no longer change.

use std::cell::RefCell;
use std::ops::Add;
use std::rc::Rc;
use std::time::Duration;

use rill_operators::{
    millis, Emit, Fold, Merge, States, Window, WindowLogic, WindowStates, Windows,
};
use timely::dataflow::operators::Inspect;
use timely::ExchangeData;

use crate::join::refused;
use crate::keyed::{StateKey, StateValue};
use crate::stream::Stream;

/// A [`Fold`] from an accumulator's start and a fold into it.
fn folding<V: 'static, A: 'static>(
    init: impl Fn() -> A + 'static,
    mut fold: impl FnMut(&mut A, V) + 'static,
) -> Fold<V, A> {
    Box::new(move |acc, v| {
        let mut a = acc.unwrap_or_else(&init);
        fold(&mut a, v);
        a
    })
}

/// What to do with the records too late for any window.
type OnLate<'s, K, V> = Box<dyn FnOnce(Stream<'s, K, V>) + 's>;

/// A keyed stream grouped into windows; finish it with an aggregation.
pub struct Windowed<'s, K, V> {
    stream: Stream<'s, K, V>,
    windows: Windows,
    lateness: u64,
    early: bool,
    on_late: Option<OnLate<'s, K, V>>,
}

impl<'s, K: StateKey, V: ExchangeData> Stream<'s, K, V> {
    /// Groups each key's records into event-time `windows`. The stream
    /// needs event time (a Kafka source, [`crate::Flow::source_timed`], ...).
    ///
    /// ```
    /// use std::time::Duration;
    /// use rill::testing::Timed;
    /// use rill::Windows;
    ///
    /// // Clicks per user per 10 s window, from (time ms, user) events.
    /// let click = |t, user: &str| Timed::Record(t, user.to_string());
    /// let items = vec![
    ///     click(1_000, "ann"), click(4_000, "bob"), click(9_000, "ann"),
    ///     Timed::Watermark(12_000), click(15_000, "ann"),
    /// ];
    /// let out = rill::testing::run(2, move |flow| {
    ///     flow.source_timed("clicks", items.clone())
    ///         .key_by("by-user", |u: &String| u.clone())
    ///         .window(Windows::tumbling(Duration::from_secs(10)))
    ///         .count("clicks-per-window")
    /// })
    /// .unwrap();
    /// let mut out: Vec<(String, u64, u64)> =
    ///     out.into_iter().map(|(k, w)| (k, w.start, w.value)).collect();
    /// out.sort();
    /// assert_eq!(out, vec![
    ///     ("ann".into(), 0, 2), ("ann".into(), 10_000, 1), ("bob".into(), 0, 1),
    /// ]);
    /// ```
    pub fn window(self, windows: Windows) -> Windowed<'s, K, V> {
        Windowed {
            stream: self,
            windows,
            lateness: 0,
            early: false,
            on_late: None,
        }
    }
}

impl<'s, K: StateKey, V: ExchangeData + Clone> Windowed<'s, K, V> {
    /// Keeps each window open for `lateness` after its end: a late record
    /// within it updates the window, which is emitted again.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = millis(lateness);
        self
    }

    /// Also emits each changed window's current value when an epoch
    /// closes, before the window is complete.
    pub fn early_results(mut self) -> Self {
        self.early = true;
        self
    }

    /// Hands the stream of records too late for every window they belong
    /// to (after the allowed lateness) to `route`: send them to a topic,
    /// say. Without it they are counted and dropped.
    pub fn on_late(mut self, route: impl FnOnce(Stream<'s, K, V>) + 's) -> Self {
        self.on_late = Some(Box::new(route));
        self
    }

    /// Counts each window's records.
    pub fn count(self, name: &str) -> Stream<'s, K, Window<u64>> {
        let fold: Fold<V, u64> = Box::new(|n, _| n.unwrap_or(0) + 1);
        self.aggregate_by(name, fold, Some(Box::new(|a, b| a + b)), true)
    }

    /// Sums each window's values.
    pub fn sum(self, name: &str) -> Stream<'s, K, Window<V>>
    where
        V: Add<Output = V> + StateValue,
    {
        let fold: Fold<V, V> = Box::new(|total, v| match total {
            Some(t) => t + v,
            None => v,
        });
        self.aggregate_by(name, fold, Some(Box::new(|a, b| a + b)), true)
    }

    /// Combines each window's values with `combine(previous, value)`;
    /// session windows that meet combine their values with it too.
    pub fn reduce(
        self,
        name: &str,
        combine: impl FnMut(V, V) -> V + 'static,
    ) -> Stream<'s, K, Window<V>>
    where
        V: StateValue,
    {
        let combine = Rc::new(RefCell::new(combine));
        let merge = combine.clone();
        let fold: Fold<V, V> = Box::new(move |acc, v| match acc {
            Some(a) => (combine.borrow_mut())(a, v),
            None => v,
        });
        self.aggregate_by(
            name,
            fold,
            Some(Box::new(move |a, b| (merge.borrow_mut())(a, b))),
            false,
        )
    }

    /// Folds each window's values into an accumulator that starts as
    /// `init()`. Session windows need [`Windowed::aggregate_merged`].
    pub fn aggregate<A>(
        self,
        name: &str,
        init: impl Fn() -> A + 'static,
        fold: impl FnMut(&mut A, V) + 'static,
    ) -> Stream<'s, K, Window<A>>
    where
        A: StateValue + Clone,
    {
        self.aggregate_by(name, folding(init, fold), None, false)
    }

    /// [`Windowed::aggregate`] with `merge`, which combines the
    /// accumulators of two session windows that grew into one.
    pub fn aggregate_merged<A>(
        self,
        name: &str,
        init: impl Fn() -> A + 'static,
        fold: impl FnMut(&mut A, V) + 'static,
        merge: impl FnMut(A, A) -> A + 'static,
    ) -> Stream<'s, K, Window<A>>
    where
        A: StateValue + Clone,
    {
        self.aggregate_by(name, folding(init, fold), Some(Box::new(merge)), false)
    }

    /// The windowed step, or an error stopping the job if it cannot run.
    /// `slices`: `merge` does not depend on the records' order, so
    /// hopping windows may be kept as slices.
    fn aggregate_by<A>(
        self,
        name: &str,
        fold: Fold<V, A>,
        merge: Option<Merge<A>>,
        slices: bool,
    ) -> Stream<'s, K, Window<A>>
    where
        A: StateValue + Clone,
    {
        let problem = if let Err(e) = self.windows.check() {
            Some(e)
        } else if self.stream.watermarks.is_none() {
            Some("windows need event time, and this stream has no watermarks (a source with event time, such as a Kafka source or source_timed, gives them)".into())
        } else if self.windows.merges() && merge.is_none() {
            Some("session windows merge accumulators: use aggregate_merged".into())
        } else {
            None
        };
        if let Some(problem) = problem {
            return refused(self.stream, name, problem);
        }
        let mut states = States::new();
        let logic = WindowLogic {
            windows: self.windows,
            lateness: self.lateness,
            early: self.early,
            fold,
            merge,
            slices,
            states: WindowStates::declare(&mut states),
        };
        let late_counter = (self.stream.ctx.shared.metrics.late)
            .with_label_values(&[name, &self.stream.ctx.worker_label()]);
        let mut outputs = self
            .stream
            .core_step(name, "window", Emit::EveryUpdate, states, logic);
        let mut late = outputs.sides.remove(0);
        late.inner = late.inner.inspect(move |_| late_counter.inc());
        if let Some(route) = self.on_late {
            route(late);
        }
        outputs.output
    }
}
