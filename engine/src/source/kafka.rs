//! The Kafka source driver: decodes records and applies the bad-input policy.

use prometheus::IntCounter;
use rill_connectors::kafka::{
    BadInputPolicy, DeadLetterWriter, GroupCommitter, KafkaConfig, KafkaReader, RawRecord,
    SourceOptions,
};
use rill_connectors::{Codec, ConnectorError, FormatError, KafkaKey};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::rc::Rc;
use timely::scheduling::SyncActivator;

use super::event_clock::EventClock;
use super::{Polled, SourceDriver};
use rill_operators::Mark;
use std::time::Instant;

/// Reads a record's event time from its value.
pub(crate) type Extract<V> = Box<dyn Fn(&V) -> u64>;
use crate::context::WorkerCtx;
use crate::{Error, Result};

/// A source's positions at each epoch's close, until they are committed.
type Staged = Rc<RefCell<BTreeMap<u64, Vec<(i32, i64)>>>>;

pub(crate) struct KafkaDriver<K, V, C> {
    step: String,
    reader: KafkaReader,
    codec: C,
    policy: BadInputPolicy,
    dead_letters: Option<DeadLetterWriter>,
    max_batch: usize,
    skipped: IntCounter,
    dead_lettered: IntCounter,
    clock: EventClock,
    /// The job's event time; else the record's Kafka timestamp.
    extract: Option<Extract<V>>,
    /// With `--group-id`: the positions at each epoch's close, until its
    /// checkpoint is complete and they are committed to the group.
    to_commit: Option<Staged>,
    lag: prometheus::IntGaugeVec,
    _marker: PhantomData<fn() -> (K, V)>,
}

impl<K: KafkaKey, V: 'static, C: Codec<V>> KafkaDriver<K, V, C> {
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        ctx: &WorkerCtx,
        config: &KafkaConfig,
        topic: &str,
        codec: C,
        mut options: SourceOptions,
        policy: BadInputPolicy,
        extract: Option<Extract<V>>,
        saved: &dyn Fn(i32) -> Option<i64>,
    ) -> Result<Self> {
        let step = options.name.clone().unwrap_or_else(|| topic.to_owned());
        options.bounded |= ctx.shared.args.stop_at_end;
        let reader = KafkaReader::open(config, topic, ctx.index, ctx.peers, &options, saved)
            .map_err(|e| Error::connector(&step, e))?;
        let dead_letters = match &policy {
            BadInputPolicy::DeadLetter(dlq) => {
                Some(DeadLetterWriter::new(config, dlq).map_err(|e| Error::connector(&step, e))?)
            }
            _ => None,
        };
        let to_commit = match &ctx.shared.args.group_id {
            Some(group) => Some(commit_to_group(ctx, config, group, topic)?),
            None => None,
        };
        let worker = ctx.worker_label();
        let metrics = &ctx.shared.metrics;
        Ok(KafkaDriver {
            to_commit,
            lag: metrics.consumer_lag.clone(),
            skipped: metrics.skipped.with_label_values(&[&step, &worker]),
            dead_lettered: metrics.dead_lettered.with_label_values(&[&step, &worker]),
            step,
            reader,
            codec,
            policy,
            dead_letters,
            max_batch: options.max_batch.max(1),
            clock: EventClock::new(options.out_of_orderness, options.idle_timeout),
            extract,
            _marker: PhantomData,
        })
    }
}

/// The positions a source stages for `group`: once an epoch's checkpoint
/// is complete, the positions at its close are committed (in the
/// background; the last one waited for). A failed commit is logged and
/// the job goes on: the group only mirrors the checkpoint.
fn commit_to_group(
    ctx: &WorkerCtx,
    config: &KafkaConfig,
    group: &str,
    topic: &str,
) -> Result<Staged> {
    let committer =
        GroupCommitter::new(config, group, topic).map_err(|e| Error::connector(topic, e))?;
    let staged: Staged = Rc::default();
    let pending = staged.clone();
    let (topic, group) = (topic.to_owned(), group.to_owned());
    ctx.on_complete.borrow_mut().push(Box::new(move |done, last| {
        let mut pending = pending.borrow_mut();
        let later = pending.split_off(&(done + 1));
        let Some((_, positions)) = std::mem::replace(&mut *pending, later).pop_last() else {
            return;
        };
        if let Err(e) = committer.commit(&positions, last) {
            log::warn!("kafka source {topic}: could not commit epoch {done}'s offsets to group {group}: {e}");
        }
    }));
    Ok(staged)
}

fn decode<K: KafkaKey, V, C: Codec<V>>(
    codec: &C,
    raw: &RawRecord<'_>,
) -> Result<(K, V, u64), FormatError> {
    let key = K::decode_key(raw.key).map_err(|e| FormatError(format!("key: {e}")))?;
    let time = raw.timestamp.map_or(0, |t| t.max(0) as u64);
    Ok((key, codec.decode_record(raw)?, time))
}

impl<K: KafkaKey, V: 'static, C: Codec<V>> SourceDriver<(K, V, u64)> for KafkaDriver<K, V, C> {
    fn poll(&mut self, out: &mut Vec<(K, V, u64)>) -> Result<Polled> {
        let KafkaDriver {
            step,
            reader,
            codec,
            policy,
            dead_letters,
            skipped,
            dead_lettered,
            clock,
            extract,
            ..
        } = self;
        let now = Instant::now();
        let read = reader.poll_batch(self.max_batch, |raw| -> Result<(), ConnectorError> {
            match decode::<K, V, C>(codec, &raw) {
                Ok((k, v, stamp)) => {
                    let time = extract.as_ref().map_or(stamp, |f| f(&v));
                    clock.saw(raw.partition, time, now);
                    out.push((k, v, time));
                }
                Err(e) => match policy {
                    BadInputPolicy::Fail => {
                        return Err(ConnectorError::Decode {
                            topic: raw.topic.to_owned(),
                            partition: raw.partition,
                            offset: raw.offset,
                            reason: e.0,
                        })
                    }
                    BadInputPolicy::Skip => {
                        log::debug!(
                            "{step}: skipping {}/{}@{}: {e}",
                            raw.topic,
                            raw.partition,
                            raw.offset
                        );
                        skipped.inc();
                    }
                    BadInputPolicy::DeadLetter(_) => {
                        if let Some(dlq) = dead_letters.as_mut() {
                            dlq.send(&raw, &e.0)?;
                            dead_lettered.inc();
                        }
                    }
                },
            }
            Ok(())
        });
        let read = read.map_err(|e| Error::connector(step, e))?;
        Ok(if self.reader.is_finished() {
            Polled::Finished
        } else if read > 0 {
            Polled::Data
        } else {
            Polled::Idle
        })
    }

    fn on_epoch_close(&mut self, epoch: u64) -> Result<()> {
        if let Some(dlq) = self.dead_letters.as_mut() {
            dlq.flush().map_err(|e| Error::connector(&self.step, e))?;
        }
        for (partition, lag) in self.reader.lag() {
            self.lag
                .with_label_values(&[self.reader.topic(), &partition.to_string()])
                .set(lag);
        }
        if let Some(staged) = &self.to_commit {
            let positions = SourceDriver::<(K, V, u64)>::positions(self);
            staged.borrow_mut().insert(epoch, positions);
        }
        Ok(())
    }

    fn positions(&self) -> Vec<(i32, i64)> {
        self.reader.positions().into_iter().collect()
    }

    fn watermark(&mut self) -> Option<Mark> {
        if self.reader.is_finished() {
            // Bounded input ended: every window closes.
            return Some(Mark::At(u64::MAX));
        }
        self.clock.mark(self.reader.caught_up(), Instant::now())
    }

    fn set_wakeup(&mut self, wake: SyncActivator) {
        self.reader.set_wakeup(move || {
            let _ = wake.activate();
        });
    }
}
