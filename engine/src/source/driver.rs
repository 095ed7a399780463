//! The one source operator every source runs in.
//!
//! It holds the capability for the current epoch and downgrades it every
//! `epoch_interval`, so an epoch closes everywhere downstream once every
//! source has moved past it. It reads batches from a [`SourceDriver`] without
//! blocking the worker, and reschedules itself: at once while data flows,
//! on the driver's wake-up, or at the next epoch boundary when idle.

use std::rc::Rc;
use std::time::{Duration, Instant};
use timely::dataflow::operators::generic::source;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

use crate::context::WorkerCtx;
use crate::Result;

/// What one poll of a driver produced.
pub(crate) enum Polled {
    /// Records were read; poll again soon.
    Data,
    /// Nothing now; more may come.
    Idle,
    /// The source is exhausted.
    Finished,
}

/// The part of a source that reads records.
pub(crate) trait SourceDriver<D>: 'static {
    /// Appends up to a batch of records to `out`.
    fn poll(&mut self, out: &mut Vec<D>) -> Result<Polled>;
    /// Called when the source closes an epoch and before it finishes.
    fn on_epoch_close(&mut self) -> Result<()> {
        Ok(())
    }
    /// Gives the driver a way to wake the operator from another thread.
    fn set_wakeup(&mut self, _wake: SyncActivator) {}
}

/// The longest an idle source sleeps before checking again.
const IDLE_RECHECK: Duration = Duration::from_millis(100);

/// Runs `driver` as a timely source operator named `"{step}.source"`.
pub(crate) fn source_stream<'s, D: 'static>(
    scope: Scope<'s, u64>,
    ctx: &WorkerCtx,
    step: &str,
    mut driver: Box<dyn SourceDriver<D>>,
) -> StreamVec<'s, u64, D> {
    let ctx = ctx.clone();
    let step = step.to_owned();
    let interval = ctx.shared.args.epoch_interval;
    let worker = ctx.worker_label();
    let out_counter = ctx
        .shared
        .metrics
        .records_out
        .with_label_values(&[&step, &worker]);
    let epoch_gauge = ctx.shared.metrics.epoch.with_label_values(&[&worker]);
    let name = format!("{step}.source");
    source(scope, &name, move |capability, info| {
        let activator = Rc::new(scope.activator_for(info.address.clone()));
        driver.set_wakeup(scope.worker().sync_activator_for(info.address.to_vec()));
        let mut capability = Some(capability);
        let mut epoch: u64 = 0;
        let mut epoch_start = Instant::now();
        let mut batch: Vec<D> = Vec::new();
        move |output| {
            let Some(cap) = capability.as_mut() else {
                return;
            };
            if ctx.shared.aborted() {
                capability = None;
                return;
            }
            let fail = |e| {
                ctx.shared.fail(e);
            };
            if epoch_start.elapsed() >= interval {
                if let Err(e) = driver.on_epoch_close() {
                    fail(e);
                    capability = None;
                    return;
                }
                epoch += 1;
                cap.downgrade(&epoch);
                epoch_gauge.set(epoch as i64);
                epoch_start = Instant::now();
            }
            let polled = driver.poll(&mut batch);
            if !batch.is_empty() {
                out_counter.inc_by(batch.len() as u64);
                output.session(&*cap).give_container(&mut batch);
                batch.clear();
            }
            match polled {
                Ok(Polled::Data) => activator.activate(),
                Ok(Polled::Idle) => {
                    let left = interval.saturating_sub(epoch_start.elapsed());
                    activator.activate_after(left.min(IDLE_RECHECK));
                }
                Ok(Polled::Finished) => {
                    if let Err(e) = driver.on_epoch_close() {
                        fail(e);
                    }
                    capability = None;
                }
                Err(e) => {
                    fail(e);
                    capability = None;
                }
            }
        }
    })
}
