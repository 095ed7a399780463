//! The one sink operator every sink runs in.
//!
//! It writes each batch as it arrives and calls the driver's `flush` once the
//! input frontier has passed every epoch written so far (the epoch closed
//! upstream), and once more when the input ends. A flush error stops the job.

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

/// Runs `driver` as a timely sink named `"{step}.sink"`.
pub(crate) fn sink_stream<D: 'static>(
    stream: StreamVec<'_, u64, D>,
    ctx: &WorkerCtx,
    step: &str,
    mut driver: Box<dyn SinkDriver<D>>,
) {
    let ctx = ctx.clone();
    let worker = ctx.worker_label();
    let in_counter = ctx
        .shared
        .metrics
        .records_in
        .with_label_values(&[step, &worker]);
    let mut dirty_epoch: Option<u64> = None;
    let mut failed = false;
    stream.sink(
        Pipeline,
        &format!("{step}.sink"),
        move |(input, frontier)| {
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
        },
    );
}
