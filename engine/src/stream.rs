//! `Stream`: a stream of `(key, value)` records, with the job's operators.

use prometheus::IntCounter;
use rill_connectors::{Codec, KafkaKey};
use rill_operators::{
    FilterStep, FlatMapStep, InspectStep, KeyByStep, MapStep, MergeStep, Meter, Step, Watermarks,
};
use std::cell::RefCell;
use std::fmt::Debug;
use std::hash::Hash;
use std::rc::Rc;
use timely::dataflow::operators::feedback::Handle;
use timely::dataflow::operators::Feedback;
use timely::dataflow::{Scope, StreamVec};
use timely::ExchangeData;

use crate::branch::Branch;
use crate::context::WorkerCtx;
use crate::sink::{
    exactly_once_stream, sink_stream, Collector, ForEachDriver, KafkaSinkDriver, SinkDriver,
    StdoutDriver,
};
use crate::{Delivery, SinkOptions};

/// A stream of `(key, value)` records flowing through a job.
///
/// Operators act on values and keep each record's key (`map`, `filter`, ...,
/// like Kafka Streams' `mapValues`), except `key_by`, which sets a new key and
/// moves records to the worker that owns it. Unkeyed streams have key `()`.
pub struct Stream<'s, K, V> {
    /// `(key, value, event time)`; the time is 0 for records without one.
    pub(crate) inner: StreamVec<'s, u64, (K, V, u64)>,
    pub(crate) ctx: WorkerCtx,
    pub(crate) progress: Progress<'s>,
    /// Every record is on the worker owning its key's key group (after
    /// `key_by`, until the key changes): a keyed step need not exchange.
    pub(crate) routed: bool,
    /// The upstream workers' watermarks, when the stream has event time.
    pub(crate) watermarks: Option<Watermarks<'s>>,
}

/// A stream can feed several steps: each gets every record.
impl<K: Clone + 'static, V: Clone + 'static> Clone for Stream<'_, K, V> {
    fn clone(&self) -> Self {
        Stream {
            inner: self.inner.clone(),
            ctx: self.ctx.clone(),
            progress: self.progress.clone(),
            routed: self.routed,
            watermarks: self.watermarks.clone(),
        }
    }
}

/// A stream's context, progress, routing and watermarks: what goes on to
/// the stream a step makes of it.
#[derive(Clone)]
pub(crate) struct Meta<'s> {
    pub ctx: WorkerCtx,
    pub progress: Progress<'s>,
    pub routed: bool,
    pub watermarks: Option<Watermarks<'s>>,
}

impl<'s> Meta<'s> {
    /// New records with the same keys: routing and watermarks go on.
    pub fn then<K: 'static, V: 'static>(
        self,
        inner: StreamVec<'s, u64, (K, V, u64)>,
    ) -> Stream<'s, K, V> {
        let routed = self.routed;
        self.rekeyed(inner, routed)
    }

    /// Records with new keys, routed by them or not.
    pub fn rekeyed<K: 'static, V: 'static>(
        self,
        inner: StreamVec<'s, u64, (K, V, u64)>,
        routed: bool,
    ) -> Stream<'s, K, V> {
        Stream {
            inner,
            ctx: self.ctx,
            progress: self.progress,
            routed,
            watermarks: self.watermarks,
        }
    }
}

/// The progress streams of a dataflow's checkpointed steps (sources, stateful
/// steps, sinks): the checkpoint writer waits for all of them to pass an
/// epoch before it writes the epoch's batch. Also the feedback edges of the
/// steps that must learn when a checkpoint is complete (exactly-once sinks).
#[derive(Clone, Default)]
pub(crate) struct Progress<'s> {
    streams: Rc<RefCell<Vec<StreamVec<'s, u64, ()>>>>,
    completions: Rc<RefCell<Vec<CompletionHandle<'s>>>>,
}

/// The loose end of a feedback edge that `checkpoint.prepare`'s output
/// closes: its frontier passes `e + 1` once checkpoint `e` is complete.
pub(crate) type CompletionHandle<'s> = Handle<'s, u64, Vec<()>>;

impl<'s> Progress<'s> {
    /// Adds a step's progress stream.
    pub fn push(&self, stream: StreamVec<'s, u64, ()>) {
        self.streams.borrow_mut().push(stream);
    }

    /// Takes every progress stream added so far.
    pub fn take(&self) -> Vec<StreamVec<'s, u64, ()>> {
        std::mem::take(&mut *self.streams.borrow_mut())
    }

    /// A stream whose frontier passes `e + 1` once checkpoint `e` is
    /// complete on every worker.
    pub fn completions(&self, scope: Scope<'s, u64>) -> StreamVec<'s, u64, ()> {
        let (handle, stream) = scope.feedback::<Vec<()>>(1);
        self.completions.borrow_mut().push(handle);
        stream
    }

    /// Takes every feedback edge to close.
    pub fn take_completions(&self) -> Vec<CompletionHandle<'s>> {
        std::mem::take(&mut *self.completions.borrow_mut())
    }
}

struct StepMeter {
    records_in: IntCounter,
    records_out: IntCounter,
}

impl Meter for StepMeter {
    fn record(&self, input: u64, output: u64) {
        self.records_in.inc_by(input);
        self.records_out.inc_by(output);
    }
}

impl<'s, K: 'static, V: 'static> Stream<'s, K, V> {
    pub(crate) fn new(
        inner: StreamVec<'s, u64, (K, V, u64)>,
        ctx: WorkerCtx,
        progress: Progress<'s>,
    ) -> Self {
        Stream {
            inner,
            ctx,
            progress,
            routed: false,
            watermarks: None,
        }
    }

    /// The records, and everything else about the stream.
    pub(crate) fn split(self) -> (StreamVec<'s, u64, (K, V, u64)>, Meta<'s>) {
        let meta = Meta {
            ctx: self.ctx,
            progress: self.progress,
            routed: self.routed,
            watermarks: self.watermarks,
        };
        (self.inner, meta)
    }

    pub(crate) fn step(&self, name: &str) -> Step {
        self.ctx.claim_step(name);
        let worker = self.ctx.worker_label();
        let metrics = &self.ctx.shared.metrics;
        let meter = StepMeter {
            records_in: metrics.records_in.with_label_values(&[name, &worker]),
            records_out: metrics.records_out.with_label_values(&[name, &worker]),
        };
        Step::with_meter(name, Rc::new(meter))
    }

    /// Keeps the records whose value `predicate` accepts.
    pub fn filter(self, name: &str, mut predicate: impl FnMut(&V) -> bool + 'static) -> Self {
        let step = self.step(name);
        let (inner, meta) = self.split();
        let inner = inner.filter_step(&step, move |(_, v, _)| predicate(v));
        meta.then(inner)
    }

    /// Replaces each value with `logic(value)`; the key stays.
    pub fn map<V2: 'static>(
        self,
        name: &str,
        mut logic: impl FnMut(V) -> V2 + 'static,
    ) -> Stream<'s, K, V2> {
        let step = self.step(name);
        let (inner, meta) = self.split();
        let inner = inner.map_step(&step, move |(k, v, t)| (k, logic(v), t));
        meta.then(inner)
    }

    /// Replaces each record with `logic(key, value)`. The records stay on
    /// their worker: use [`Stream::key_by`] to route by a new key.
    pub fn map_kv<K2: 'static, V2: 'static>(
        self,
        name: &str,
        mut logic: impl FnMut(K, V) -> (K2, V2) + 'static,
    ) -> Stream<'s, K2, V2> {
        let step = self.step(name);
        let (inner, meta) = self.split();
        let inner = inner.map_step(&step, move |(k, v, t)| {
            let (k, v) = logic(k, v);
            (k, v, t)
        });
        meta.rekeyed(inner, false)
    }

    /// Replaces each value with the values `logic(value)` yields, each with the record's key.
    pub fn flat_map<I>(
        self,
        name: &str,
        mut logic: impl FnMut(V) -> I + 'static,
    ) -> Stream<'s, K, I::Item>
    where
        I: IntoIterator,
        I::Item: 'static,
        K: Clone,
    {
        let step = self.step(name);
        let (inner, meta) = self.split();
        let inner = inner.flat_map_step(&step, move |(k, v, t)| {
            logic(v).into_iter().map(move |out| (k.clone(), out, t))
        });
        meta.then(inner)
    }

    /// Calls `logic` with each record and passes it on unchanged.
    pub fn inspect(self, name: &str, mut logic: impl FnMut(&K, &V) + 'static) -> Self {
        let step = self.step(name);
        let (inner, meta) = self.split();
        let inner = inner.inspect_step(&step, move |(k, v, _)| logic(k, v));
        meta.then(inner)
    }

    /// Merges `others` into this stream. The merged stream has event time
    /// when every merged stream has: its watermark is the least of theirs.
    pub fn merge(self, name: &str, others: impl IntoIterator<Item = Self>) -> Self {
        let step = self.step(name);
        let mut routed = self.routed;
        let mut watermarks = self.watermarks.clone();
        let others = others
            .into_iter()
            .map(|s| {
                routed &= s.routed;
                watermarks = match (watermarks.take(), s.watermarks) {
                    (Some(a), Some(b)) => Some(a.merge(b)),
                    _ => None,
                };
                s.inner
            })
            .collect();
        let (inner, mut meta) = self.split();
        meta.watermarks = watermarks;
        let inner = inner.merge_step(&step, others);
        meta.rekeyed(inner, routed)
    }

    /// Starts a branch: add routes with [`Branch::when`], then [`Branch::split`].
    pub fn branch(self, name: &str) -> Branch<'s, K, V> {
        Branch::new(self, name)
    }

    /// Sets each record's key to `key(&value)` and moves it to the worker
    /// that owns the key's key group. Keyed stateful steps follow this.
    pub fn key_by<K2>(
        self,
        name: &str,
        mut key: impl FnMut(&V) -> K2 + 'static,
    ) -> Stream<'s, K2, V>
    where
        K2: ExchangeData + Hash,
        V: ExchangeData,
    {
        let step = self.step(name);
        let groups = self.ctx.key_groups();
        let (inner, meta) = self.split();
        let inner = inner.key_by_step(&step, groups, move |(_, v, t)| (key(&v), v, t));
        meta.rekeyed(inner, true)
    }

    /// Moves each record to the worker that owns its current key's key group
    /// (for streams keyed by their source, such as Kafka keys).
    pub fn group_by_key(self, name: &str) -> Self
    where
        K: ExchangeData + Hash,
        V: ExchangeData,
    {
        let step = self.step(name);
        let groups = self.ctx.key_groups();
        let (inner, meta) = self.split();
        let inner = inner.key_by_step(&step, groups, |kv| kv);
        meta.rekeyed(inner, true)
    }

    fn sink(self, name: &str, driver: crate::Result<Box<dyn SinkDriver<(K, V, u64)>>>) {
        self.ctx.claim_step(name);
        self.ctx.add_sink();
        match driver {
            Ok(driver) => {
                let progress = sink_stream(self.inner, &self.ctx, name, driver);
                self.progress.push(progress);
            }
            Err(e) => self.ctx.shared.fail(e),
        }
    }

    /// Produces every record to Kafka `topic`: the key as [`KafkaKey`] bytes,
    /// the value encoded by `codec`, with the job's `--delivery`. The step
    /// is named `kafka-sink:{topic}`. Records of one key keep their order
    /// (one partition per key).
    pub fn kafka_sink<C: Codec<V>>(self, topic: &str, codec: C)
    where
        K: KafkaKey,
    {
        let delivery = self.ctx.shared.args.delivery;
        self.kafka_sink_with(topic, codec, delivery);
    }

    /// [`Stream::kafka_sink`] with this sink's own settings: a
    /// [`Delivery`] whatever the job's `--delivery`, or [`SinkOptions`]
    /// (delivery and librdkafka properties).
    pub fn kafka_sink_with<C: Codec<V>>(
        self,
        topic: &str,
        codec: C,
        options: impl Into<SinkOptions>,
    ) where
        K: KafkaKey,
    {
        let options: SinkOptions = options.into();
        let delivery = options.delivery.unwrap_or(self.ctx.shared.args.delivery);
        let kafka = || self.ctx.kafka().map(|c| c.with(&options.properties));
        let name = format!("kafka-sink:{topic}");
        if self.ctx.graph_only {
            return self.sink(&name, Ok(Box::new(crate::graph::Discard)));
        }
        if delivery == Delivery::AtLeastOnce {
            let driver = kafka().and_then(|config| {
                KafkaSinkDriver::<K, V, C>::new(&name, &config, topic, codec)
                    .map(|d| Box::new(d) as Box<dyn SinkDriver<(K, V, u64)>>)
            });
            return self.sink(&name, driver);
        }
        self.ctx.claim_step(&name);
        self.ctx.add_sink();
        let completed = self.progress.completions(self.inner.scope());
        let built = kafka().and_then(|config| {
            exactly_once_stream(
                self.inner, completed, &self.ctx, &name, &config, topic, codec,
            )
        });
        match built {
            Ok(progress) => self.progress.push(progress),
            Err(e) => self.ctx.shared.fail(e),
        }
    }

    /// Collects every record into `collector` (tests and demos).
    pub fn collect(self, name: &str, collector: &Collector<(K, V)>) {
        self.sink(name, Ok(Box::new(collector.clone())));
    }

    /// Calls `f(key, value)` with every record, on the worker holding it (a
    /// sink for side effects and measurements; not checkpointed output).
    pub fn for_each(self, name: &str, f: impl FnMut(K, V) + 'static) {
        self.sink(name, Ok(Box::new(ForEachDriver(f))));
    }

    /// Prints `key<TAB>value` lines to stdout (demos).
    pub fn print(self, name: &str)
    where
        K: Debug,
        V: Debug,
    {
        self.sink(name, Ok(Box::new(StdoutDriver)));
    }
}
