//! The two operators that end every dataflow with durable state.
//!
//! `checkpoint.prepare` takes the progress streams of every source, stateful
//! step and sink. When their frontier passes epoch `e` — every one of them,
//! on every worker, has staged (or delivered) all of `e` — it hands the
//! worker's batch up to `e` to the process's writer thread
//! ([`crate::writer`]), and holds its own output at
//! `e` until the batch is durable: writing never blocks the worker.
//! `checkpoint.complete` sees that output's frontier pass `e` once every
//! worker prepared `e`: the checkpoint is complete, and the versions it
//! replaced become garbage.

use std::sync::mpsc;
use std::time::Instant;

use rill_state::checkpoint::{CheckpointWrite, PendingPrepare};
use rill_state::StoreError;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Concatenate, ConnectLoop, Probe};
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

use crate::context::WorkerCtx;
use crate::stream::CompletionHandle;
use crate::writer::WriteJob;
use crate::Error;

/// A worker's link to the process's writer
/// ([`crate::writer::ProcessWriter`]).
struct Writer {
    jobs: mpsc::Sender<WriteJob>,
    wake: SyncActivator,
}

/// Where the result of a batch sent to the writer comes back: the writer
/// drops the sender unanswered only if it died.
type Answer = mpsc::Receiver<Result<(), StoreError>>;

impl Writer {
    /// Hands `write` to the writer; `None` if the writer is gone.
    fn send(&self, write: CheckpointWrite) -> Option<Answer> {
        let (reply, answer) = mpsc::channel();
        let job = WriteJob {
            write,
            reply,
            wake: self.wake.clone(),
        };
        self.jobs.send(job).ok().map(|()| answer)
    }
}

/// Adds `checkpoint.prepare` and `checkpoint.complete` after every
/// progress stream of the dataflow.
///
/// `completions` are the feedback edges of steps that must learn when a
/// checkpoint is complete: `checkpoint.prepare`'s output closes them.
pub(crate) fn checkpoint_operators<'s>(
    scope: Scope<'s, u64>,
    ctx: &WorkerCtx,
    progress: Vec<StreamVec<'s, u64, ()>>,
    completions: Vec<CompletionHandle<'s>>,
) {
    let progress: StreamVec<'s, u64, ()> = scope.concatenate(progress).probe_with(&ctx.flow);
    // Without checkpoints (a job that failed to start), a loose edge
    // follows the progress streams.
    let close = |stream: &StreamVec<'s, u64, ()>, completions: Vec<CompletionHandle<'s>>| {
        for handle in completions {
            stream.clone().connect_loop(handle);
        }
    };
    let Some(checkpointer) = ctx.checkpointer.clone() else {
        return close(&progress, completions);
    };
    if ctx.shared.aborted() {
        // A step already failed (and said why); do not pile errors on it.
        return close(&progress, completions);
    }
    if let Err(e) = checkpointer.borrow().check_steps() {
        ctx.shared.fail(Error::state("state", e));
        return close(&progress, completions);
    }
    let worker = ctx.worker_label();
    let metrics = &ctx.shared.metrics;
    let duration = metrics.checkpoint_duration.with_label_values(&[&worker]);
    let size = metrics.checkpoint_bytes.with_label_values(&[&worker]);
    let complete_gauge = metrics.checkpoint_complete.clone();
    let complete_time = metrics.checkpoint_complete_time.clone();
    let state_keys = metrics.state_keys.clone();
    let state_bytes = metrics.state_bytes.clone();
    // The store is the process's: its first worker reports its size.
    let sizes_store = ctx.index.is_multiple_of(ctx.shared.args.workers.max(1));
    let worker_label = worker.clone();
    let writer_ctx = ctx.clone();
    let cp = checkpointer.clone();
    let jobs = ctx.shared.writer.as_ref().and_then(|w| w.sender());
    let prepared = progress.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "checkpoint.prepare",
        move |cap, info| {
            let wake = scope.worker().sync_activator_for(info.address.to_vec());
            let mut writer = match jobs {
                Some(jobs) => Some(Writer { jobs, wake }),
                None => {
                    writer_ctx.shared.fail(Error::Runtime(
                        "the checkpoint writer is not running".into(),
                    ));
                    None
                }
            };
            // The output's frontier tells every worker which checkpoints
            // are complete (exactly-once sinks publish on it): once the job
            // failed, the capability is held, never let go, so that no
            // worker takes an epoch this one did not make durable for
            // complete.
            let mut cap = Some(cap);
            let mut in_flight: Option<(PendingPrepare, Instant, Answer)> = None;
            move |(input, frontier), _output| {
                input.for_each(|_, data: &mut Vec<()>| data.clear());
                let (Some(held), Some(w)) = (cap.as_mut(), writer.as_ref()) else {
                    return;
                };
                // A batch in flight: wait for it, then let its epoch go.
                if let Some((pending, started, answer)) = in_flight.take() {
                    match answer.try_recv() {
                        Err(mpsc::TryRecvError::Empty) => {
                            in_flight = Some((pending, started, answer));
                            return;
                        }
                        Ok(Ok(())) => {
                            let stats = cp.borrow_mut().finish_prepare(pending);
                            for (step, n) in cp.borrow().keys() {
                                state_keys
                                    .with_label_values(&[step.as_str(), &worker_label])
                                    .set(*n as i64);
                                if sizes_store {
                                    let bytes = step_bytes(&cp.borrow(), step);
                                    state_bytes.with_label_values(&[step]).set(bytes);
                                }
                            }
                            duration.observe(started.elapsed().as_secs_f64());
                            size.set(stats.bytes as i64);
                            log::debug!(
                                "checkpoint: prepared epoch {}: {} versions, {} bytes in {:.1?}",
                                stats.epoch,
                                stats.versions,
                                stats.bytes,
                                started.elapsed()
                            );
                            // At the end of the input the hold just goes
                            // (below), once nothing newer is staged.
                            if !frontier.is_empty() {
                                held.downgrade(&(stats.epoch + 1).max(*held.time()));
                            }
                        }
                        Ok(Err(e)) => {
                            writer_ctx.shared.fail(Error::state("checkpoint", e));
                            writer = None;
                            return;
                        }
                        Err(mpsc::TryRecvError::Disconnected) => {
                            writer_ctx
                                .shared
                                .fail(Error::Runtime("the checkpoint writer stopped".into()));
                            writer = None;
                            return;
                        }
                    }
                }
                if writer_ctx.shared.aborted() {
                    // A step failed: what it staged may be incomplete.
                    writer = None;
                    return;
                }
                let low = frontier.frontier().first().copied();
                let through = match low {
                    Some(l) if l > *held.time() => l - 1,
                    Some(_) => return,
                    // The input ended: write everything staged, whatever its epoch.
                    None => {
                        let staged = cp.borrow().staged_through();
                        staged.map_or(*held.time(), |s| s.max(*held.time()))
                    }
                };
                let already = cp.borrow().prepared();
                if already.is_some_and(|p| p >= through) {
                    match low {
                        Some(l) => held.downgrade(&l),
                        None => cap = None,
                    }
                    return;
                }
                let building = Instant::now();
                let begun = cp.borrow_mut().begin_prepare(through);
                log::debug!(
                    "checkpoint: writing epoch {through} (batch built in {:.1?})",
                    building.elapsed()
                );
                match begun {
                    Ok((batch, pending)) => {
                        let Some(answer) = w.send(batch) else {
                            writer_ctx
                                .shared
                                .fail(Error::Runtime("the checkpoint writer stopped".into()));
                            writer = None;
                            return;
                        };
                        in_flight = Some((pending, Instant::now(), answer));
                    }
                    Err(e) => {
                        writer_ctx.shared.fail(Error::state("checkpoint", e));
                        writer = None;
                    }
                }
            }
        },
    );
    close(&prepared, completions);
    let mut completed: Option<u64> = checkpointer.borrow().resume();
    let hooks = ctx.on_complete.clone();
    prepared.sink(Pipeline, "checkpoint.complete", move |(input, frontier)| {
        input.for_each(|_, data: &mut Vec<()>| data.clear());
        let done = match frontier.frontier().first() {
            Some(&l) if l > 0 => l - 1,
            Some(_) => return,
            None => match checkpointer.borrow().prepared() {
                Some(p) => p,
                None => return,
            },
        };
        if completed.is_some_and(|c| c >= done) && !frontier.is_empty() {
            return;
        }
        completed = Some(done);
        let mut c = checkpointer.borrow_mut();
        let collecting = Instant::now();
        c.complete(done);
        log::debug!(
            "checkpoint: epoch {done} complete; garbage listed in {:.1?}",
            collecting.elapsed()
        );
        complete_gauge.set(done as i64);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        complete_time.set(now.map_or(0, |d| d.as_secs() as i64));
        drop(c);
        for hook in hooks.borrow_mut().iter_mut() {
            hook(done, frontier.is_empty());
        }
        // At the end of the job the garbage of the last checkpoint stays
        // listed in its undo logs; the next start collects it.
    });
}

/// Bytes of `step`'s versions in the worker's store (0 if it cannot say).
fn step_bytes(cp: &rill_state::Checkpointer, step: &str) -> i64 {
    let id = rill_state::layout::step_hash(step);
    let (mut from, mut to) = (Vec::new(), Vec::new());
    rill_state::layout::write_head(&mut from, id, 0, 0);
    rill_state::layout::write_head(&mut to, id, u8::MAX, u32::MAX);
    to.push(u8::MAX);
    let bytes = cp.store().live_bytes(Some((&from, &to)));
    bytes.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX))
}
