//! The one source operator every source runs in.
//!
//! It holds the capability for the current epoch and downgrades it every
//! `epoch_interval`, so an epoch closes everywhere downstream once every
//! source has moved past it. It reads batches from a [`SourceDriver`] without
//! blocking the worker, and reschedules itself: at once while data flows,
//! on the driver's wake-up, or at the next epoch boundary when idle.
//!
//! With durable state, the driver's read positions at the close of each
//! epoch are staged in the source's [`Table`] (partition → next offset) and
//! the operator's second, data-less output holds the epoch until they are:
//! a checkpoint of epoch `e` records exactly what was read up to `e`.

use rill_state::Table;
use std::rc::Rc;
use std::time::{Duration, Instant};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

use crate::context::WorkerCtx;
use crate::{Error, Result};
use rill_operators::{Mark, Watermark};

/// A source's checkpointed read positions: partition → next offset.
pub(crate) type Positions = Table<i32, i64>;

/// What one poll of a driver produced.
pub(crate) enum Polled {
    /// Records were read; poll again soon.
    Data,
    /// Nothing now; more may come.
    Idle,
    /// The source is exhausted.
    Finished,
    /// Records were read up to an epoch boundary the input itself marks
    /// (a test feed's watermark): close the epoch now, then poll again.
    CloseEpoch,
}

/// The part of a source that reads records.
pub(crate) trait SourceDriver<D>: 'static {
    /// Appends up to a batch of records to `out`.
    fn poll(&mut self, out: &mut Vec<D>) -> Result<Polled>;
    /// Called when the source closes an epoch and before it finishes.
    fn on_epoch_close(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }
    /// Gives the driver a way to wake the operator from another thread.
    fn set_wakeup(&mut self, _wake: SyncActivator) {}
    /// Where the driver would resume reading: `(partition, next offset)`.
    fn positions(&self) -> Vec<(i32, i64)> {
        Vec::new()
    }
    /// The driver's watermark (event time), if it tracks one: a time, or
    /// [`Mark::Idle`] while it has nothing to deliver.
    fn watermark(&mut self) -> Option<Mark> {
        None
    }
    /// False when the input marks its own epochs ([`Polled::CloseEpoch`]):
    /// the source then closes none every epoch interval.
    fn epochs_on_time(&self) -> bool {
        true
    }
}

/// How often a source that is two epochs ahead checks whether the job
/// caught up.
const BEHIND_RECHECK: Duration = Duration::from_millis(1);

/// The longest an idle source sleeps before checking again.
const IDLE_RECHECK: Duration = Duration::from_millis(100);

/// Whether `mark` tells downstream something after `sent`: a later time,
/// or a change between idle and not.
fn news(sent: Option<Mark>, mark: Mark) -> bool {
    match (sent, mark) {
        (None, _) => true,
        (Some(Mark::At(s)), Mark::At(t)) => t > s,
        (Some(s), m) => s != m,
    }
}

/// Stages the driver's positions as of the close of `epoch`.
fn checkpoint<D: 'static>(
    driver: &dyn SourceDriver<D>,
    positions: &mut Option<Positions>,
    epoch: u64,
    step: &str,
) -> Result<()> {
    let Some(table) = positions.as_mut() else {
        return Ok(());
    };
    for (partition, offset) in driver.positions() {
        // An idle partition writes no new version.
        let known = table.get(&partition).map_err(|e| Error::state(step, e))?;
        if known == Some(&offset) {
            continue;
        }
        table
            .update(&partition, epoch, |s| *s = Some(offset))
            .map_err(|e| Error::state(step, e))?;
    }
    table.stage(epoch).map_err(|e| Error::state(step, e))
}

/// Moves the source on to the next epoch: every held capability, the
/// gauge and the epoch's clock.
fn next_epoch(
    epoch: &mut u64,
    held: &mut [Capability<u64>],
    gauge: &prometheus::IntGauge,
    started: &mut Instant,
) {
    *epoch += 1;
    for cap in held.iter_mut() {
        cap.downgrade(epoch);
    }
    gauge.set(*epoch as i64);
    *started = Instant::now();
}

/// Runs `driver` as a timely source operator named `"{step}.source"`.
/// Returns the data stream and the progress stream.
pub(crate) fn source_stream<'s, D: 'static>(
    scope: Scope<'s, u64>,
    ctx: &WorkerCtx,
    step: &str,
    mut driver: Box<dyn SourceDriver<D>>,
    mut positions: Option<Positions>,
) -> (
    StreamVec<'s, u64, D>,
    StreamVec<'s, u64, ()>,
    StreamVec<'s, u64, Watermark>,
) {
    let ctx = ctx.clone();
    let step = step.to_owned();
    let interval = ctx.shared.args.epoch_interval;
    let max_records = ctx.shared.args.epoch_max_records;
    let drift = (ctx.shared.args.max_watermark_drift).map(|d| d.as_millis() as u64);
    if drift.is_some() {
        ctx.shared.source_marks.join(&step, ctx.index);
    }
    let worker = ctx.worker_label();
    let out_counter = ctx
        .shared
        .metrics
        .records_out
        .with_label_values(&[&step, &worker]);
    let epoch_gauge = ctx.shared.metrics.epoch.with_label_values(&[&worker]);
    let mut builder = OperatorBuilder::new(format!("{step}.source"), scope);
    let info = builder.operator_info();
    let (output, stream) = builder.new_output();
    let mut output = OutputBuilder::from(output);
    let (_progress_output, progress) = builder.new_output::<Vec<()>>();
    let (marks_output, marks) = builder.new_output::<Vec<Watermark>>();
    let mut marks_output = OutputBuilder::from(marks_output);
    let me = ctx.index;
    let mut sent_mark: Option<Mark> = None;
    let on_time = driver.epochs_on_time();
    let activator = Rc::new(scope.activator_for(info.address.clone()));
    driver.set_wakeup(scope.worker().sync_activator_for(info.address.to_vec()));
    let mut epoch: u64 = ctx.start_epoch;
    builder.build(move |mut caps| {
        for cap in caps.iter_mut() {
            cap.downgrade(&epoch);
        }
        let mut caps = Some(caps);
        let mut epoch_start = Instant::now();
        let mut batch: Vec<D> = Vec::new();
        // Records read in the current epoch.
        let mut in_epoch: u64 = 0;
        epoch_gauge.set(epoch as i64);
        activator.activate();
        move |_frontiers| {
            let Some(held) = caps.as_mut() else {
                return;
            };
            if ctx.shared.aborted() {
                caps = None;
                return;
            }
            let mut close =
                |epoch: u64, driver: &mut Box<dyn SourceDriver<D>>, held: &[Capability<u64>]| {
                    // The watermark goes out in the epoch it closes.
                    if let Some(mark) = driver.watermark().filter(|&m| news(sent_mark, m)) {
                        marks_output.activate().session(&held[2]).give((me, mark));
                        sent_mark = Some(mark);
                    }
                    driver
                        .on_epoch_close(epoch)
                        .and_then(|()| checkpoint(&**driver, &mut positions, epoch, &step))
                };
            let full = max_records.is_some_and(|m| in_epoch >= m);
            if on_time && (full || epoch_start.elapsed() >= interval) {
                if let Err(e) = close(epoch, &mut driver, held) {
                    ctx.shared.fail(e);
                    caps = None;
                    return;
                }
                next_epoch(&mut epoch, held, &epoch_gauge, &mut epoch_start);
                in_epoch = 0;
            }
            // Two epochs ahead of the job's slowest step: wait for it.
            if ctx.flow.less_than(&epoch.saturating_sub(1)) && !ctx.shared.stop.is_stopping() {
                activator.activate_after(BEHIND_RECHECK);
                return;
            }
            // Too far ahead of another worker of this source in event time.
            let marks = &ctx.shared.source_marks;
            if drift.is_some_and(|d| marks.ahead(&step, me, driver.watermark(), d))
                && !ctx.shared.stop.is_stopping()
            {
                activator.activate_after(BEHIND_RECHECK);
                return;
            }
            // A graceful stop ends the input here, exactly as a bounded
            // source's end does (its positions go into the last checkpoint).
            let polled = if ctx.shared.stop.is_stopping() {
                log::debug!("{step}: stopping at epoch {epoch}");
                Ok(Polled::Finished)
            } else {
                driver.poll(&mut batch)
            };
            if !batch.is_empty() {
                in_epoch += batch.len() as u64;
                out_counter.inc_by(batch.len() as u64);
                output
                    .activate()
                    .session(&held[0])
                    .give_container(&mut batch);
                batch.clear();
            }
            match polled {
                Ok(Polled::Data) => activator.activate(),
                Ok(Polled::Idle) => {
                    let left = interval.saturating_sub(epoch_start.elapsed());
                    activator.activate_after(left.min(IDLE_RECHECK));
                }
                Ok(Polled::Finished) => {
                    if let Err(e) = close(epoch, &mut driver, held) {
                        ctx.shared.fail(e);
                    }
                    // Its last mark must not hold the other workers back.
                    ctx.shared.source_marks.leave(&step, me);
                    caps = None;
                }
                Ok(Polled::CloseEpoch) => {
                    if let Err(e) = close(epoch, &mut driver, held) {
                        ctx.shared.fail(e);
                        caps = None;
                        return;
                    }
                    next_epoch(&mut epoch, held, &epoch_gauge, &mut epoch_start);
                    in_epoch = 0;
                    activator.activate();
                }
                Err(e) => {
                    ctx.shared.fail(e);
                    caps = None;
                }
            }
        }
    });
    (stream, progress, marks)
}
