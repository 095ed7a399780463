//! `Flow`: where a job's sources are created.

use rill_connectors::kafka::{BadInputPolicy, SourceOptions};
use rill_connectors::{Codec, KafkaKey};
use serde::de::DeserializeOwned;
use std::path::Path;
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::Scope;

use crate::context::WorkerCtx;
use crate::source::{source_stream, IterDriver, JsonLinesDriver, KafkaDriver, SourceDriver};
use crate::stream::Stream;
use crate::Result;

/// The dataflow being built on one worker. `Job::run` hands one to the job's
/// closure on every worker; sources start here and return [`Stream`]s.
pub struct Flow<'s> {
    scope: Scope<'s, u64>,
    ctx: WorkerCtx,
}

impl<'s> Flow<'s> {
    pub(crate) fn new(scope: Scope<'s, u64>, ctx: WorkerCtx) -> Self {
        Flow { scope, ctx }
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
        driver: Result<Box<dyn SourceDriver<(K, V)>>>,
    ) -> Stream<'s, K, V> {
        self.ctx.claim_step(step);
        let inner = match driver {
            Ok(driver) => source_stream(self.scope, &self.ctx, step, driver),
            Err(e) => {
                self.ctx.shared.fail(e);
                empty(self.scope)
            }
        };
        Stream::new(inner, self.ctx.clone())
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
        let args = &self.ctx.shared.args;
        let policy = bad_input.unwrap_or_else(|| match &args.dead_letter_topic {
            Some(t) => BadInputPolicy::DeadLetter(t.clone()),
            None => BadInputPolicy::Fail,
        });
        let driver = self.ctx.kafka().and_then(|config| {
            KafkaDriver::<K, V, _>::open(&self.ctx, &config, topic, codec, options, policy)
                .map(|d| Box::new(d) as Box<dyn SourceDriver<(K, V)>>)
        });
        self.start(topic, driver)
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
        let driver = IterDriver::new(
            items.into_iter().map(|v| ((), v)),
            self.ctx.index,
            self.ctx.peers,
        );
        self.start(step, Ok(Box::new(driver)))
    }

    /// Like [`Flow::source_iter`], for `(key, value)` items.
    pub fn source_iter_keyed<I, K, V>(&mut self, step: &str, items: I) -> Stream<'s, K, V>
    where
        I: IntoIterator<Item = (K, V)>,
        I::IntoIter: 'static,
        K: 'static,
        V: 'static,
    {
        let driver = IterDriver::new(items.into_iter(), self.ctx.index, self.ctx.peers);
        self.start(step, Ok(Box::new(driver)))
    }

    /// A bounded source over a JSON-lines file, one value per line, read by worker 0.
    pub fn jsonl_source<V>(&mut self, step: &str, path: impl AsRef<Path>) -> Stream<'s, (), V>
    where
        V: DeserializeOwned + 'static,
    {
        let driver = JsonLinesDriver::<V>::open(step, path.as_ref(), self.ctx.index)
            .map(|d| Box::new(d) as Box<dyn SourceDriver<((), V)>>);
        self.start(step, driver)
    }
}
