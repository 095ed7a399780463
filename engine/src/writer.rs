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
                while let Some(gathered) = gather(&inbox, workers) {
                    // When every worker is done and waiting for its last
                    // batch, their cores are free to build it.
                    let idle = gathered.last == workers;
                    let threads = if idle { cores } else { 1 };
                    let Gathered {
                        writes, replies, ..
                    } = gathered;
                    let result = write_all(store.as_ref(), writes, threads);
                    for job in &replies {
                        // A worker that stopped no longer waits for it.
                        let _ = job.0.send(result.clone());
                        let _ = job.1.activate();
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

/// Batches written together, and the workers to answer.
struct Gathered {
    writes: Vec<CheckpointWrite>,
    /// How many of them are their worker's last.
    last: usize,
    replies: Vec<(mpsc::Sender<Result<(), StoreError>>, SyncActivator)>,
}

/// Waits for a batch, then up to [`GATHER`] for the other workers' (each
/// worker has at most one batch in flight). `None` once every sender is
/// gone and nothing is left.
fn gather(inbox: &mpsc::Receiver<WriteJob>, workers: usize) -> Option<Gathered> {
    let first = inbox.recv().ok()?;
    let mut gathered = Gathered {
        last: 0,
        writes: Vec::with_capacity(workers),
        replies: Vec::with_capacity(workers),
    };
    let mut add = |job: WriteJob| {
        gathered.last += usize::from(job.last);
        gathered.writes.push(job.write);
        gathered.replies.push((job.reply, job.wake));
    };
    add(first);
    let deadline = Instant::now() + GATHER;
    for _ in 1..workers {
        let left = deadline.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(left) {
            Ok(job) => add(job),
            Err(_) => break,
        }
    }
    Some(gathered)
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
