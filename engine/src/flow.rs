//! `Flow`: where a job's sources are created.

use rill_connectors::kafka::{BadInputPolicy, SourceOptions};
use rill_connectors::{Codec, KafkaKey};
use serde::de::DeserializeOwned;
use std::path::Path;
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::Scope;

use crate::context::WorkerCtx;
use crate::source::{
    partition_of, source_stream, Extract, GeneratedDriver, IterDriver, JsonLinesDriver,
    KafkaDriver, Positions, SourceDriver, TimedDriver,
};
use crate::stream::{Progress, Stream};
use crate::testing::Timed;
use crate::{Error, Result};
use rill_operators::Watermarks;
use rill_state::{KeyGroups, StateKind, StepMeta};

/// The step kind of a source whose positions are kept per partition of
/// its input (a Kafka topic's, or the one partition of a file).
pub(crate) const SOURCE: &str = "source";

/// The step kind of a source whose input is split by worker, each keeping
/// its own position: its job resumes only with the same number of workers.
pub(crate) const SOURCE_BY_WORKER: &str = "source-by-worker";

/// A source's saved read position of a partition, if it resumed.
type Saved<'a> = &'a dyn Fn(i32) -> Option<i64>;

/// The dataflow being built on one worker. `Job::run` hands one to the job's
/// closure on every worker; sources start here and return [`Stream`]s.
pub struct Flow<'s> {
    scope: Scope<'s, u64>,
    ctx: WorkerCtx,
    progress: Progress<'s>,
}

impl<'s> Flow<'s> {
    pub(crate) fn new(scope: Scope<'s, u64>, ctx: WorkerCtx) -> Self {
        Flow {
            scope,
            ctx,
            progress: Progress::default(),
        }
    }

    /// The progress streams of every checkpointed step built so far.
    pub(crate) fn progress(&self) -> Progress<'s> {
        self.progress.clone()
    }

    /// This worker's global index.
    pub fn worker_index(&self) -> usize {
        self.ctx.index
    }

    /// The number of workers over all processes.
    pub fn workers(&self) -> usize {
        self.ctx.peers
    }

    fn start<K: 'static, V: 'static>(
        &mut self,
        step: &str,
        kind: &'static str,
        make: impl FnOnce(Saved<'_>) -> Result<Box<dyn SourceDriver<(K, V, u64)>>>,
    ) -> Stream<'s, K, V> {
        self.start_timed(step, kind, false, make)
    }

    /// Starts a source; `event_time`: its stream carries the source's
    /// watermarks. `kind` is [`SOURCE`] or [`SOURCE_BY_WORKER`].
    fn start_timed<K: 'static, V: 'static>(
        &mut self,
        step: &str,
        kind: &'static str,
        event_time: bool,
        make: impl FnOnce(Saved<'_>) -> Result<Box<dyn SourceDriver<(K, V, u64)>>>,
    ) -> Stream<'s, K, V> {
        self.ctx.claim_step(step);
        let positions = match &self.ctx.checkpointer {
            Some(c) => {
                // Positions are read by partition, never routed: one group.
                let groups = KeyGroups::new(1).expect("one group is valid");
                let meta = StepMeta {
                    kind: kind.into(),
                    key_groups: 1,
                    states: vec![("positions".into(), StateKind::Value)],
                };
                let registered = c.borrow_mut().register(step, meta);
                match registered {
                    Ok(id) => Some(std::cell::RefCell::new(Positions::new(
                        step,
                        (id, 0),
                        groups,
                        Some(c.clone()),
                        1 << 16,
                    ))),
                    Err(e) => {
                        self.ctx.shared.fail(Error::state(step, e));
                        None
                    }
                }
            }
            None => None,
        };
        let lookup_error = std::cell::RefCell::new(None);
        let saved = |p: i32| {
            let table = positions.as_ref()?;
            match table.borrow_mut().get(&p) {
                Ok(v) => v.copied(),
                Err(e) => {
                    lookup_error.borrow_mut().get_or_insert(e);
                    None
                }
            }
        };
        let driver = match self.ctx.graph_only {
            true => Ok(Box::new(crate::graph::NoInput) as Box<dyn SourceDriver<(K, V, u64)>>),
            false => make(&saved),
        };
        let driver = match lookup_error.into_inner() {
            Some(e) => Err(Error::state(step, e)),
            None => driver,
        };
        let positions = positions.map(|t| t.into_inner());
        let (inner, marks) = match driver {
            Ok(driver) => {
                let (data, progress, marks) =
                    source_stream(self.scope, &self.ctx, step, driver, positions);
                self.progress.push(progress);
                (data, Some(marks))
            }
            Err(e) => {
                self.ctx.shared.fail(e);
                (empty(self.scope), None)
            }
        };
        let mut stream = Stream::new(inner, self.ctx.clone(), self.progress.clone());
        if event_time {
            stream.watermarks = marks.map(|m| Watermarks::new(m, self.ctx.peers));
        }
        stream
    }

    /// Reads a Kafka topic from the beginning, keys decoded as `K` and values
    /// by `codec`. The step is named after the topic. Records that fail to
    /// decode go to `--dead-letter-topic` if set, else stop the job.
    pub fn kafka_source<K, V>(&mut self, topic: &str, codec: impl Codec<V>) -> Stream<'s, K, V>
    where
        K: KafkaKey,
        V: 'static,
    {
        self.kafka_source_with(topic, codec, SourceOptions::default(), None)
    }

    /// Like [`Flow::kafka_source`], with explicit read options and bad-input
    /// policy (`None`: dead-letter topic if configured, else fail).
    ///
    /// Event time is each record's Kafka timestamp; the source's watermark
    /// trails the latest one of each partition by `options.out_of_orderness`
    /// and is the least over its partitions, leaving out partitions idle for
    /// `options.idle_timeout`. Bounded input ends with the watermark at its
    /// maximum, so every window closes.
    pub fn kafka_source_with<K, V>(
        &mut self,
        topic: &str,
        codec: impl Codec<V>,
        options: SourceOptions,
        bad_input: Option<BadInputPolicy>,
    ) -> Stream<'s, K, V>
    where
        K: KafkaKey,
        V: 'static,
    {
        self.kafka_source_at(topic, codec, options, bad_input, None)
    }

    /// Like [`Flow::kafka_source_with`], with event time read from each
    /// value by `event_time` (milliseconds) instead of the Kafka timestamp.
    pub fn kafka_source_timed<K, V>(
        &mut self,
        topic: &str,
        codec: impl Codec<V>,
        options: SourceOptions,
        event_time: impl Fn(&V) -> u64 + 'static,
    ) -> Stream<'s, K, V>
    where
        K: KafkaKey,
        V: 'static,
    {
        self.kafka_source_at(topic, codec, options, None, Some(Box::new(event_time)))
    }

    fn kafka_source_at<K, V>(
        &mut self,
        topic: &str,
        codec: impl Codec<V>,
        options: SourceOptions,
        bad_input: Option<BadInputPolicy>,
        extract: Option<Extract<V>>,
    ) -> Stream<'s, K, V>
    where
        K: KafkaKey,
        V: 'static,
    {
        let args = &self.ctx.shared.args;
        let policy = bad_input.unwrap_or_else(|| match &args.dead_letter_topic {
            Some(t) => BadInputPolicy::DeadLetter(t.clone()),
            None => BadInputPolicy::Fail,
        });
        let ctx = self.ctx.clone();
        let step = options.name.clone().unwrap_or_else(|| topic.to_owned());
        self.start_timed(&step, SOURCE, true, move |saved| {
            let mut config = ctx.kafka()?;
            // The lag metric's high watermarks, only when metrics are served.
            let stats = "statistics.interval.ms";
            if ctx.shared.args.metrics_addr.is_some() && !config.properties.contains_key(stats) {
                config = config.set(stats, "1000");
            }
            let config = config.with(&options.properties);
            KafkaDriver::<K, V, _>::open(
                &ctx, &config, topic, codec, options, policy, extract, saved,
            )
            .map(|d| Box::new(d) as Box<dyn SourceDriver<(K, V, u64)>>)
        })
    }

    /// A bounded source over in-memory items; worker `w` of `n` takes the
    /// items at positions `w, w + n, ...`. Every worker runs the job closure,
    /// so each builds the iterator and keeps its own share.
    pub fn source_iter<I>(&mut self, step: &str, items: I) -> Stream<'s, (), I::Item>
    where
        I: IntoIterator,
        I::IntoIter: 'static,
        I::Item: 'static,
    {
        let (index, peers) = (self.ctx.index, self.ctx.peers);
        self.start(step, SOURCE_BY_WORKER, move |saved| {
            let items = items.into_iter().map(|v| ((), v, 0));
            let saved = saved(partition_of(index));
            Ok(Box::new(IterDriver::new(items, index, peers, saved)))
        })
    }

    /// Like [`Flow::source_iter`], for `(key, value)` items.
    pub fn source_iter_keyed<I, K, V>(&mut self, step: &str, items: I) -> Stream<'s, K, V>
    where
        I: IntoIterator<Item = (K, V)>,
        I::IntoIter: 'static,
        K: 'static,
        V: 'static,
    {
        let (index, peers) = (self.ctx.index, self.ctx.peers);
        self.start(step, SOURCE_BY_WORKER, move |saved| {
            Ok(Box::new(IterDriver::new(
                items.into_iter().map(|(k, v)| (k, v, 0)),
                index,
                peers,
                saved(partition_of(index)),
            )))
        })
    }

    /// A bounded test feed with event time: records and watermarks in one
    /// list. Worker `w` of `n` emits the records at positions `w, w + n,
    /// ...` among the records, and every worker sends every watermark; each
    /// watermark closes an epoch (on every worker alike, so runs are
    /// deterministic), and keyed steps downstream fire their event-time
    /// timers once the watermark of every worker reached them. At the end
    /// the watermark goes to `u64::MAX`.
    ///
    /// ```
    /// use rill::testing::Timed;
    /// use rill::{Context, LogicResult, Process, States, Timer};
    ///
    /// // Sums values per key and emits the sum when the watermark passes 10.
    /// struct SumUntil(rill::ValueState<u64>, rill::TimerState);
    /// impl Process<u8, u64, u64, ()> for SumUntil {
    ///     fn on_record(&mut self, cx: &mut Context<'_, u8, u64, ()>, v: u64) -> LogicResult {
    ///         cx.value(self.0).update(|s| *s = Some(s.unwrap_or(0) + v))?;
    ///         cx.timers(self.1).set_event_time(10)?;
    ///         Ok(())
    ///     }
    ///     fn on_timer(&mut self, cx: &mut Context<'_, u8, u64, ()>, _: Timer) -> LogicResult {
    ///         let sum = cx.value(self.0).get()?.unwrap_or(0);
    ///         cx.emit(sum);
    ///         Ok(())
    ///     }
    /// }
    /// let items = vec![Timed::Record(1, 1), Timed::Record(2, 2), Timed::Watermark(10), Timed::Record(12, 4)];
    /// let out = rill::testing::run(2, move |flow| {
    ///     let mut states = States::new();
    ///     let logic = SumUntil(states.value("sum"), states.timers());
    ///     flow.source_timed("feed", items.clone())
    ///         .key_by("one", |_| 0u8)
    ///         .process_with("sum", states, logic)
    ///         .output
    /// })
    /// .unwrap();
    /// // The timer fired at watermark 10 with 1 + 2; the record after it
    /// // set it again, and it fired at the end of the input with 7.
    /// let mut out = out;
    /// out.sort();
    /// assert_eq!(out, vec![(0, 3), (0, 7)]);
    /// ```
    pub fn source_timed<V>(&mut self, step: &str, items: Vec<Timed<V>>) -> Stream<'s, (), V>
    where
        V: Clone + 'static,
    {
        let (index, peers) = (self.ctx.index, self.ctx.peers);
        self.start_timed(step, SOURCE_BY_WORKER, true, move |saved| {
            let saved = saved(partition_of(index));
            Ok(Box::new(TimedDriver::new(items, index, peers, saved)))
        })
    }

    /// A source each worker generates its own share of, with event time:
    /// `make(worker, workers)` returns worker `worker`'s records with
    /// their event times (ms), which run at most `out_of_orderness` behind
    /// the latest. The watermark trails the latest time by that much and
    /// goes to the maximum when a worker's share ends (it need not end).
    /// A resumed job skips the records each worker emitted before.
    ///
    /// ```
    /// use std::time::Duration;
    /// use rill::Windows;
    ///
    /// // Each worker generates every other second of a 10 s clock.
    /// let out = rill::testing::run(2, |flow| {
    ///     flow.source_generated("ticks", Duration::ZERO, |worker, workers| {
    ///         (0..10u64).skip(worker).step_by(workers).map(|s| (s * 1000, s))
    ///     })
    ///     .key_by("all", |_| 0u8)
    ///     .window(Windows::tumbling(Duration::from_secs(5)))
    ///     .sum("per-5s")
    /// })
    /// .unwrap();
    /// let mut sums: Vec<u64> = out.into_iter().map(|(_, w)| w.value).collect();
    /// sums.sort();
    /// assert_eq!(sums, vec![0 + 1 + 2 + 3 + 4, 5 + 6 + 7 + 8 + 9]);
    /// ```
    pub fn source_generated<V, I>(
        &mut self,
        step: &str,
        out_of_orderness: std::time::Duration,
        make: impl FnOnce(usize, usize) -> I,
    ) -> Stream<'s, (), V>
    where
        V: 'static,
        I: Iterator<Item = (u64, V)> + 'static,
    {
        let (index, peers) = (self.ctx.index, self.ctx.peers);
        let lag = rill_operators::millis(out_of_orderness);
        self.start_timed(step, SOURCE_BY_WORKER, true, move |saved| {
            let items = make(index, peers).map(|(t, v)| ((), v, t));
            let saved = saved(partition_of(index));
            Ok(Box::new(GeneratedDriver::new(items, index, lag, saved)))
        })
    }

    /// A bounded source over a JSON-lines file, one value per line, read by worker 0.
    pub fn jsonl_source<V>(&mut self, step: &str, path: impl AsRef<Path>) -> Stream<'s, (), V>
    where
        V: DeserializeOwned + 'static,
    {
        let index = self.ctx.index;
        self.start(step, SOURCE, move |saved| {
            JsonLinesDriver::<V>::open(step, path.as_ref(), index, saved(0))
                .map(|d| Box::new(d) as Box<dyn SourceDriver<((), V, u64)>>)
        })
    }
}
