//! The one sink operator every at-least-once sink runs in.
//!
//! It writes each batch as it arrives, tagged with its epoch. Once the
//! input frontier has passed an epoch (the epoch closed upstream), the
//! operator asks the driver whether everything written up to it is
//! delivered, without waiting: a driver whose deliveries are acknowledged
//! on another thread wakes the operator when they are. A delivery error
//! stops the job.
//!
//! Its data-less progress output follows the input frontier, but only once
//! delivered: a checkpoint of epoch `e` is never complete before the sink
//! has delivered every record of `e` (at-least-once after a resume).

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::scheduling::SyncActivator;

use crate::context::WorkerCtx;
use crate::Result;

/// The part of a sink that writes records.
pub(crate) trait SinkDriver<D>: 'static {
    /// Writes (or queues) a batch of records of `epoch`; may drain it.
    fn write(&mut self, epoch: u64, batch: &mut Vec<D>) -> Result<()>;
    /// Whether everything written with epochs up to `through` is durable
    /// at the destination. Must not block; a driver that answers `false`
    /// wakes the operator (see [`SinkDriver::set_wakeup`]) when that may
    /// have changed.
    fn delivered(&mut self, _through: u64) -> Result<bool> {
        Ok(true)
    }
    /// Gives the driver a way to wake the operator from another thread.
    fn set_wakeup(&mut self, _wake: SyncActivator) {}
}

/// Runs `driver` as a timely sink named `"{step}.sink"`; returns its
/// progress stream.
pub(crate) fn sink_stream<'s, D: 'static>(
    stream: StreamVec<'s, u64, D>,
    ctx: &WorkerCtx,
    step: &str,
    mut driver: Box<dyn SinkDriver<D>>,
) -> StreamVec<'s, u64, ()> {
    let ctx = ctx.clone();
    let worker = ctx.worker_label();
    let in_counter = ctx
        .shared
        .metrics
        .records_in
        .with_label_values(&[step, &worker]);
    let scope = stream.scope();
    let mut failed = false;
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        &format!("{step}.sink"),
        move |cap, info| {
            driver.set_wakeup(scope.worker().sync_activator_for(info.address.to_vec()));
            let mut hold = Some(cap);
            move |(input, frontier), _output| {
                input.for_each(|time, data| {
                    if failed {
                        data.clear();
                        return;
                    }
                    in_counter.inc_by(data.len() as u64);
                    if let Err(e) = driver.write(time.least().copied().unwrap_or_default(), data) {
                        failed = true;
                        ctx.shared.fail(e);
                    }
                });
                if failed {
                    hold = None;
                    return;
                }
                let Some(held) = hold.as_mut() else {
                    return;
                };
                // When the frontier passes an epoch, the progress output
                // lets it go once all of it is delivered.
                let low = frontier.frontier().first().copied();
                if low.is_some_and(|l| l <= *held.time()) {
                    return;
                }
                let through = low.map_or(u64::MAX, |l| l - 1);
                match driver.delivered(through) {
                    Ok(false) => {}
                    Ok(true) => match low {
                        Some(l) => held.downgrade(&l),
                        None => hold = None,
                    },
                    Err(e) => {
                        failed = true;
                        hold = None;
                        ctx.shared.fail(e);
                    }
                }
            }
        },
    )
}
