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
    let mut dirty_epoch: Option<u64> = None;
    let mut failed = false;
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        &format!("{step}.sink"),
        move |cap, _| {
            let mut hold = Some(cap);
            move |(input, frontier), _output| {
                input.for_each(|cap, data| {
                    if failed {
                        data.clear();
                        return;
                    }
                    if let Some(&t) = cap.stamp().iter().next() {
                        dirty_epoch = Some(dirty_epoch.map_or(t, |d: u64| d.max(t)));
                    }
                    in_counter.inc_by(data.len() as u64);
                    if let Err(e) = driver.write(data) {
                        failed = true;
                        ctx.shared.fail(e);
                    }
                });
                if let Some(epoch) = dirty_epoch {
                    if !failed && !frontier.less_equal(&epoch) {
                        dirty_epoch = None;
                        if let Err(e) = driver.flush() {
                            failed = true;
                            ctx.shared.fail(e);
                        }
                    }
                }
                if failed {
                    hold = None;
                } else if dirty_epoch.is_none() {
                    match (frontier.frontier().first(), hold.as_mut()) {
                        (Some(low), Some(h)) if low > h.time() => h.downgrade(low),
                        (None, _) => hold = None,
                        _ => {}
                    }
                }
            }
        },
    )
}
