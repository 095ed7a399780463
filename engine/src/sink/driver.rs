//! The one sink operator every sink runs in.
//!
//! It writes each batch as it arrives and calls the driver's `flush` once the
//! input frontier has passed every epoch written so far (the epoch closed
//! upstream), and once more when the input ends. A flush error stops the job.
//!
//! Its data-less progress output follows the input frontier, but only after
//! the flush: a checkpoint of epoch `e` is never complete before the sink
//! has delivered every record of `e` (at-least-once after a resume).

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use crate::context::WorkerCtx;
use crate::Result;

/// The part of a sink that writes records.
pub(crate) trait SinkDriver<D>: 'static {
    /// Writes (or queues) a batch; may drain it.
    fn write(&mut self, batch: &mut Vec<D>) -> Result<()>;
    /// Makes everything written so far durable at the destination.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
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
    // Whether anything was written since the last flush.
    let mut unflushed = false;
    let mut failed = false;
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        &format!("{step}.sink"),
        move |cap, _| {
            let mut hold = Some(cap);
            move |(input, frontier), _output| {
                input.for_each(|_, data| {
                    if failed {
                        data.clear();
                        return;
                    }
                    unflushed |= !data.is_empty();
                    in_counter.inc_by(data.len() as u64);
                    if let Err(e) = driver.write(data) {
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
                // When the frontier passes an epoch, everything written so
                // far (all of that epoch, perhaps some of the next) is
                // flushed before the progress output lets the epoch go.
                let low = frontier.frontier().first().copied();
                if low.is_some_and(|l| l <= *held.time()) {
                    return;
                }
                if unflushed {
                    unflushed = false;
                    if let Err(e) = driver.flush() {
                        failed = true;
                        hold = None;
                        ctx.shared.fail(e);
                        return;
                    }
                }
                match low {
                    Some(l) => held.downgrade(&l),
                    None => hold = None,
                }
            }
        },
    )
}
