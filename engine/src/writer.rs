//! The process's checkpoint writer: one thread that writes the checkpoint
//! batches of every worker of the process, off the workers' threads.
//!
//! Batches that arrive together, one per worker, are written as one
//! atomic, synced write (group commit): the workers of a process reach
//! the end of an epoch within a few milliseconds of each other, and one
//! write pays for one sync and, for a large batch, one table file instead
//! of one per worker.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rill_state::checkpoint::CheckpointWrite;
use rill_state::{Batch, KvStore, StoreError};
use timely::scheduling::SyncActivator;

use crate::JobArgs;

/// How long the writer waits for the other workers' batches once one
/// arrived. The workers of a process finish an epoch at about the same
/// time; a worker that is late only delays the others' write this long.
const GATHER: Duration = Duration::from_millis(5);

/// One worker's batch, how to answer it, and whom to wake with the answer.
pub(crate) struct WriteJob {
    pub write: CheckpointWrite,
    /// The worker's input has ended: this is its last batch, and the
    /// worker is idle until it is written.
    pub last: bool,
    pub reply: mpsc::Sender<Result<(), StoreError>>,
    pub wake: SyncActivator,
}

/// The writer thread of a process with durable state. Dropping it (or
/// [`ProcessWriter::close`]) waits for the thread, so the store is closed
/// once the job returns.
pub(crate) struct ProcessWriter {
    jobs: Mutex<Option<mpsc::Sender<WriteJob>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ProcessWriter {
    /// Starts the writer of `store` for the `args.workers` workers of this
    /// process (`resumed`: the store held a checkpoint to resume from).
    pub fn spawn(store: Arc<dyn KvStore>, args: &JobArgs, resumed: bool) -> std::io::Result<Self> {
        let (jobs, inbox) = mpsc::channel::<WriteJob>();
        let workers = args.workers.max(1);
        let job_workers = workers * args.processes.max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut copies = args.state_dir.as_deref().map(|dir| Copies {
            target: snapshot_path(dir, args.process_id),
            interval: args.state_copy_interval,
            resumed,
            last: Instant::now(),
        });
        let thread = std::thread::Builder::new()
            .name("rill-checkpoint".into())
            .spawn(move || {
                while let Some(jobs) = gather(&inbox, workers, GATHER) {
                    // When every worker is done and waiting for its last
                    // batch, their cores are free to build it.
                    let idle = jobs.iter().filter(|j| j.last).count() == workers;
                    let threads = if idle { cores } else { 1 };
                    // Last batches only: if another worker goes on, its
                    // next write files them first.
                    let last = jobs.iter().all(|j| j.last);
                    let mut replies = Vec::with_capacity(jobs.len());
                    let mut writes = Vec::with_capacity(jobs.len());
                    for job in jobs {
                        writes.push(job.write);
                        replies.push((job.reply, job.wake));
                    }
                    mark_complete_together(&mut writes, job_workers);
                    let result = if last {
                        write_last(store.as_ref(), writes, threads)
                    } else {
                        write_all(store.as_ref(), writes, threads)
                    };
                    for (reply, wake) in &replies {
                        // A worker that stopped no longer waits for it.
                        let _ = reply.send(result.clone());
                        let _ = wake.activate();
                    }
                    if let (Ok(()), Some(c)) = (&result, copies.as_mut()) {
                        c.after_write(store.as_ref());
                    }
                }
            })?;
        Ok(ProcessWriter {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Where a worker sends its batches (`None` once closed).
    pub fn sender(&self) -> Option<mpsc::Sender<WriteJob>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Lets the thread finish the batches it was given, and waits for it.
    /// The workers' own senders must be gone (their dataflows dropped).
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for ProcessWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// Waits for a job, then up to `wait` for more, until there are `most`
/// (each worker has at most one batch in flight, so `most` is the number
/// of workers). `None` once every sender is gone and nothing is left.
fn gather<T>(inbox: &mpsc::Receiver<T>, most: usize, wait: Duration) -> Option<Vec<T>> {
    let first = inbox.recv().ok()?;
    let mut jobs = Vec::with_capacity(most);
    jobs.push(first);
    let deadline = Instant::now() + wait;
    while jobs.len() < most {
        let left = deadline.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(left) {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

/// When the gathered writes prepare the same epoch for every worker of the
/// job (a single-process job whose workers reached the end of an epoch
/// together), writing them as one batch completes that checkpoint: they
/// need no undo records ([`CheckpointWrite::completes_checkpoint`]).
fn mark_complete_together(writes: &mut [CheckpointWrite], job_workers: usize) {
    let Some(epoch) = writes.first().and_then(CheckpointWrite::through) else {
        return;
    };
    let mut seen: Vec<u32> = writes.iter().map(CheckpointWrite::worker).collect();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() == job_workers && writes.iter().all(|w| w.through() == Some(epoch)) {
        for w in writes.iter_mut() {
            w.completes_checkpoint();
        }
    }
}

/// Finishes the gathered batches and writes them as one atomic batch, on
/// up to `threads` threads.
fn write_all(
    store: &dyn KvStore,
    writes: Vec<CheckpointWrite>,
    threads: usize,
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    for write in writes {
        batch.append(write.into_batch()?);
    }
    store.write_on(batch, threads)
}

/// Writes the last batches of every worker of the process: their versions
/// are deferred ([`KvStore::write_deferred`]), logged as one record per
/// worker that the next run files when it opens the store, so the job
/// ends after one synced log write instead of building and ingesting a
/// table file of every key it changed. The markers and records written
/// now are all that `rill checkpoints` and the choice of a resume epoch
/// read. A batch not worth deferring (large values, or more than 32 MiB)
/// is written at once, on up to `threads` threads.
fn write_last(
    store: &dyn KvStore,
    writes: Vec<CheckpointWrite>,
    threads: usize,
) -> Result<(), StoreError> {
    let mut now = Batch::new();
    // One part per worker: not appended, but each logged (and encoded, on
    // the idle cores) as a record of its own.
    let mut later = Vec::with_capacity(writes.len());
    for write in writes {
        let (n, l) = write.into_parts()?;
        now.append(n);
        later.push(l);
    }
    store.write_deferred(now, later, threads)
}

/// The copy of a process's store kept beside it (`DIR/process-N.snapshot`),
/// taken on the writer thread after a checkpoint write: after the first
/// one when the job resumed (not before, so as not to slow recovery), then
/// whenever `--state-copy-interval` has passed. If the store is ever
/// damaged, a single-process job can resume from the copy.
struct Copies {
    target: PathBuf,
    interval: Duration,
    resumed: bool,
    last: Instant,
}

impl Copies {
    fn after_write(&mut self, store: &dyn KvStore) {
        if std::mem::take(&mut self.resumed) || self.last.elapsed() >= self.interval {
            self.take(store);
        }
    }

    fn take(&mut self, store: &dyn KvStore) {
        self.last = Instant::now();
        let target = &self.target;
        let tmp = target.with_extension("snapshot.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let result = store
            .snapshot(&tmp)
            .map_err(|e| e.to_string())
            .and_then(|taken| {
                if !taken {
                    return Ok(());
                }
                let _ = std::fs::remove_dir_all(target);
                std::fs::rename(&tmp, target).map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => log::debug!(
                "checkpoint: copied the store to {} in {:.1?}",
                target.display(),
                self.last.elapsed()
            ),
            // A failed copy costs only the fallback; the job goes on.
            Err(e) => log::warn!(
                "could not copy the state store to {}: {e}",
                target.display()
            ),
        }
    }
}

/// Where process `process`'s copy of its store lives.
pub(crate) fn snapshot_path(dir: &Path, process: usize) -> PathBuf {
    dir.join(format!("process-{process}.snapshot"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathering_takes_what_is_queued_up_to_one_job_per_worker() {
        let (jobs, inbox) = mpsc::channel();
        for j in 0..5 {
            jobs.send(j).unwrap();
        }
        assert_eq!(
            gather(&inbox, 3, Duration::from_secs(60)),
            Some(vec![0, 1, 2])
        );
        // Two left for three workers: the third is waited for, then given up.
        let started = Instant::now();
        let wait = Duration::from_millis(50);
        assert_eq!(gather(&inbox, 3, wait), Some(vec![3, 4]));
        assert!(started.elapsed() >= wait);
    }

    #[test]
    fn gathering_waits_for_a_worker_that_is_about_to_send() {
        let (jobs, inbox) = mpsc::channel();
        jobs.send(1).unwrap();
        let late = jobs.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            late.send(2).unwrap();
        });
        assert_eq!(gather(&inbox, 2, Duration::from_secs(60)), Some(vec![1, 2]));
        sender.join().unwrap();
    }

    #[test]
    fn gathering_ends_once_every_sender_is_gone_and_nothing_is_left() {
        let (jobs, inbox) = mpsc::channel();
        jobs.send(7).unwrap();
        drop(jobs);
        assert_eq!(gather(&inbox, 2, Duration::from_secs(60)), Some(vec![7]));
        assert_eq!(gather(&inbox, 2, Duration::from_secs(60)), None);
    }

    /// A write of `worker` preparing `epoch`, with one version staged.
    fn write_of(store: &Arc<dyn KvStore>, worker: u32, epoch: u64) -> CheckpointWrite {
        let mut c = rill_state::Checkpointer::open(store.clone(), worker, None).unwrap();
        c.stage_version(epoch, (1, 0), &worker.to_be_bytes(), Some(b"1"));
        c.begin_prepare(epoch).unwrap().0
    }

    /// How many undo logs the writes store.
    fn undo_logs(writes: Vec<CheckpointWrite>) -> usize {
        let mut undo = 0;
        for w in writes {
            let (_, later) = w.into_parts().unwrap();
            undo += later.ops().filter(|op| op.key().starts_with(b"u")).count();
        }
        undo
    }

    #[test]
    fn writes_of_every_worker_at_one_epoch_complete_their_checkpoint() {
        let store: Arc<dyn KvStore> = Arc::new(rill_state::MemoryStore::new());
        let mut all = vec![write_of(&store, 0, 3), write_of(&store, 1, 3)];
        mark_complete_together(&mut all, 2);
        assert_eq!(undo_logs(all), 0, "no deletions: no undo log");
        // A worker missing (or in another process), or another epoch: the
        // checkpoint may still fail to complete, and the logs are kept.
        let mut some = vec![write_of(&store, 0, 3), write_of(&store, 1, 3)];
        mark_complete_together(&mut some, 3);
        assert_eq!(undo_logs(some), 2);
        let mut twice = vec![write_of(&store, 0, 3), write_of(&store, 0, 3)];
        mark_complete_together(&mut twice, 2);
        assert_eq!(undo_logs(twice), 2);
        let mut apart = vec![write_of(&store, 0, 3), write_of(&store, 1, 4)];
        mark_complete_together(&mut apart, 2);
        assert_eq!(undo_logs(apart), 2);
    }
}
