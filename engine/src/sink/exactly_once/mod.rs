//! The exactly-once Kafka sink (DESIGN.md, "Delivery").
//!
//! 1. *Write-ahead*: the output of epoch `e` is staged in the worker's
//!    checkpoint of `e` (chunks of encoded records, each with the partition
//!    it goes to), so a completed epoch's output is durable and fixed.
//! 2. *Publish after completion*: the sink learns that checkpoint `e` is
//!    complete from its second input, a feedback edge from
//!    `checkpoint.prepare` whose frontier passes `e` once every worker's
//!    batch of `e` is durable. It then produces the buffer with an
//!    idempotent producer, one epoch at a time, each record carrying the
//!    job, writer, epoch and sequence headers. Once all of it is
//!    acknowledged, the "published" mark (with the partitions' end offsets)
//!    and the removal of the buffer are staged in the next checkpoint.
//! 3. *Resume*: buffered epochs above the mark are published again, less
//!    the records found in the output partitions after the mark's end
//!    offsets ([`rill_connectors::kafka::landed`]).
//!
//! Nothing waits on a worker thread: acknowledgements come back on the
//! producer's thread, which wakes the operator.

mod buffer;
pub(crate) use buffer::{unpublished, KIND};
mod publish;

use std::collections::BTreeMap;
use std::rc::Rc;

use buffer::{Layout, Mark, Rec};
use publish::{Buffered, Publisher};
use rill_connectors::kafka::{landed, partition_of_key, KafkaConfig, KafkaWriter};
use rill_connectors::{Codec, KafkaKey};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use super::kafka::{encode_value, kafka_timestamp};
use crate::context::WorkerCtx;
use crate::{crash, Error, Result};

/// What the sink knows at start-up: its identity, its mark, and the
/// epochs to publish again after a resume.
struct Start {
    layout: Layout,
    mark: Mark,
    /// The mark is new (a fresh start): stage it with the first epoch.
    fresh: bool,
    queue: BTreeMap<u64, Buffered>,
    /// Buffers of epochs the mark covers (removed with the next mark).
    covered: Vec<(u64, u32)>,
}

/// Reads the sink's state at start-up and, after a resume, finds what of
/// each buffered epoch already landed in the topic.
fn start(ctx: &WorkerCtx, step: &str, config: &KafkaConfig, writer: &KafkaWriter) -> Result<Start> {
    let topic = writer.topic();
    let Some(cp) = ctx.checkpointer.clone() else {
        return Err(Error::Config(format!(
            "{step}: exactly-once delivery needs --state-dir: each epoch's output is kept in \
             the checkpoint until it is published"
        )));
    };
    let id = cp
        .borrow_mut()
        .register(step, buffer::meta())
        .map_err(|e| Error::state(step, e))?;
    let layout = Layout {
        step: id,
        writer: ctx.index as u32,
    };
    let conn = |e| Error::connector(step, e);
    let partitions = writer.partition_count().map_err(conn)?;
    let stored = layout
        .load_mark(&cp.borrow())
        .map_err(|e| Error::state(step, e))?;
    let Some(mark) = stored else {
        let mut ends = BTreeMap::new();
        for p in 0..partitions {
            ends.insert(p, (writer.high_watermark(p).map_err(conn)?, false));
        }
        let mark = Mark {
            published: None,
            partitions,
            ends,
        };
        return Ok(Start {
            layout,
            mark,
            fresh: true,
            queue: BTreeMap::new(),
            covered: Vec::new(),
        });
    };
    if mark.partitions != partitions {
        return Err(Error::Config(format!(
            "{step}: output topic {topic} has {partitions} partitions, but it had {} when this \
             job's state was created: records would go to other partitions than before. Restore \
             the partition count, or start with a new --state-dir",
            mark.partitions
        )));
    }
    let buffers = layout
        .load_buffers(&cp.borrow())
        .map_err(|e| Error::state(step, e))?;
    let job = &ctx.shared.job_name;
    let found = landed(config, topic, &mark.scan_from(), job, layout.writer).map_err(conn)?;
    let mut queue = BTreeMap::new();
    let mut covered = Vec::new();
    for (epoch, (records, chunks)) in buffers {
        if mark.published.is_some_and(|p| epoch <= p) {
            covered.push((epoch, chunks));
            continue;
        }
        let landed: BTreeMap<i32, u64> = found
            .range((epoch, i32::MIN)..=(epoch, i32::MAX))
            .map(|(&(_, p), &seq)| (p, seq))
            .collect();
        log::info!(
            "{step}: worker {} publishes epoch {epoch} again: {} records, {} already in the topic",
            layout.writer,
            records.len(),
            landed.values().map(|s| s + 1).sum::<u64>()
        );
        queue.insert(
            epoch,
            Buffered {
                records,
                chunks,
                landed,
            },
        );
    }
    Ok(Start {
        layout,
        mark,
        fresh: false,
        queue,
        covered,
    })
}

/// Builds the exactly-once sink of `stream` to `topic`; `completed` is the
/// feedback edge from `checkpoint.prepare` (delayed by one epoch). Returns
/// its progress stream.
#[allow(clippy::too_many_arguments)]
pub(crate) fn exactly_once_stream<'s, K: KafkaKey, V: 'static, C: Codec<V>>(
    stream: StreamVec<'s, u64, (K, V, u64)>,
    completed: StreamVec<'s, u64, ()>,
    ctx: &WorkerCtx,
    step: &str,
    config: &KafkaConfig,
    topic: &str,
    codec: C,
) -> Result<StreamVec<'s, u64, ()>> {
    let writer = KafkaWriter::new(config, topic).map_err(|e| Error::connector(step, e))?;
    let Start {
        layout,
        mark,
        fresh,
        queue,
        covered,
    } = start(ctx, step, config, &writer)?;
    let cp = ctx.checkpointer.clone().expect("checked by start");
    let scope = stream.scope();
    let mut builder = OperatorBuilder::new(format!("{step}.sink"), scope);
    let info = builder.operator_info();
    let mut data_in = builder.new_input(stream, Pipeline);
    let (_progress_out, progress) = builder.new_output::<Vec<()>>();
    // Completion does not hold the progress output back: no cycle.
    let mut done_in = builder.new_input_connection(completed, Pipeline, []);
    let activator = Rc::new(scope.activator_for(info.address.clone()));
    let wake = scope.worker().sync_activator_for(info.address.to_vec());
    writer.set_wakeup(move || {
        let _ = wake.activate();
    });
    writer.set_on_ack(|acked| crash::reached_count("publish", acked));
    let ctx = ctx.clone();
    let step = step.to_owned();
    let topic = topic.to_owned();
    let in_counter = ctx
        .shared
        .metrics
        .records_in
        .with_label_values(&[&step, &ctx.worker_label()]);
    let partitions = mark.partitions;
    let mut complete: Option<u64> = cp.borrow().resume();
    let mut publisher = Publisher {
        writer,
        job: ctx.shared.job_name.clone(),
        writer_id: layout.writer,
        step: step.clone(),
        queue,
        current: None,
        mark_dirty: fresh || !covered.is_empty(),
        mark,
        covered,
    };
    let mut open: BTreeMap<u64, Vec<Rec>> = BTreeMap::new();
    let (mut key_buf, mut value_buf) = (Vec::new(), Vec::new());
    let start_epoch = ctx.start_epoch;
    builder.build_reschedule(move |caps| {
        let mut held: Option<Capability<u64>> = caps.into_iter().next();
        if let Some(c) = held.as_mut() {
            c.downgrade(&start_epoch);
        }
        let mut failed = false;
        move |frontiers| {
            if failed || ctx.shared.aborted() {
                held = None;
                return false;
            }
            let mut run = || -> Result<bool> {
                let mut encoded: Result<()> = Ok(());
                data_in.for_each(|time, data| {
                    in_counter.inc_by(data.len() as u64);
                    let records = open
                        .entry(time.least().copied().unwrap_or_default())
                        .or_default();
                    for (key, value, t) in data.drain(..) {
                        if encoded.is_err() {
                            return;
                        }
                        key_buf.clear();
                        let has_key = key.encode_key(&mut key_buf);
                        encoded = encode_value(&codec, &value, &mut value_buf, &step, &topic);
                        let partition = if has_key {
                            partition_of_key(&key_buf, partitions)
                        } else {
                            (records.len() as u64 % partitions as u64) as i32
                        };
                        records.push(Rec {
                            partition,
                            key: has_key.then(|| key_buf.clone()),
                            value: value_buf.clone(),
                            timestamp: kafka_timestamp(t),
                        });
                    }
                });
                encoded?;
                done_in.for_each(|_, d| d.clear());
                let state = |e| Error::state(&step, e);
                // 1. Stage every epoch the input has passed.
                let low = frontiers[0].frontier().first().copied();
                while let Some(entry) = open.first_entry() {
                    if low.is_some_and(|l| *entry.key() >= l) {
                        break;
                    }
                    let (epoch, records) = entry.remove_entry();
                    crash::reached("buffer");
                    let chunks = layout
                        .stage_buffer(&mut cp.borrow_mut(), epoch, &records)
                        .map_err(state)?;
                    let landed = BTreeMap::new();
                    let buffered = Buffered {
                        records,
                        chunks,
                        landed,
                    };
                    publisher.queue.insert(epoch, buffered);
                }
                // 2. What is complete.
                let through = match frontiers[1].frontier().first() {
                    Some(&f) => f.checked_sub(2),
                    // The last checkpoint is written: all of it.
                    None => publisher.queue.last_key_value().map(|(e, _)| *e),
                };
                complete = complete.max(through);
                // 3. Publish, one epoch after another.
                if publisher.publish(complete)? {
                    activator.activate();
                }
                // 4. The mark goes into the checkpoint of the epoch the
                //    sink still holds.
                if let (true, Some(h)) = (publisher.mark_dirty, held.as_ref()) {
                    let (mark, covered) = (&publisher.mark, &mut publisher.covered);
                    layout
                        .stage_mark(&mut cp.borrow_mut(), *h.time(), mark, covered)
                        .map_err(state)?;
                    covered.clear();
                    publisher.mark_dirty = false;
                }
                // 5. Let the staged epochs go. At the end of the input,
                //    hold on after the last one until all is published, so
                //    that the last checkpoint holds the mark.
                match (low, held.as_mut()) {
                    (Some(l), Some(h)) if l > *h.time() => h.downgrade(&l),
                    (None, Some(h)) => match publisher.last_epoch() {
                        Some(e) if e + 1 > *h.time() => h.downgrade(&(e + 1)),
                        Some(_) => {}
                        None => held = None,
                    },
                    _ => {}
                }
                Ok(publisher.busy())
            };
            match run() {
                Ok(incomplete) => incomplete,
                Err(e) => {
                    failed = true;
                    held = None;
                    ctx.shared.fail(e);
                    false
                }
            }
        }
    });
    Ok(progress)
}
