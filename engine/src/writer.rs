//! The process's checkpoint writer: one thread that writes the checkpoint
//! batches of every worker of the process, off the workers' threads.
//!
//! Batches that arrive together, one per worker, are written as one
//! atomic, synced write (group commit): the workers of a process reach
//! the end of an epoch within a few milliseconds of each other, and one
//! write pays for one sync instead of one per worker.

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
    /// process, whose stores are in `root` (`resumed`: the store held a
    /// checkpoint to resume from).
    pub fn spawn(
        store: Arc<dyn KvStore>,
        args: &JobArgs,
        root: Option<&Path>,
        resumed: bool,
    ) -> std::io::Result<Self> {
        let (jobs, inbox) = mpsc::channel::<WriteJob>();
        let workers = args.workers.max(1);
        let mut copies = root.map(|dir| Copies {
            target: snapshot_path(dir, args.process_id),
            interval: args.state_copy_interval,
            resumed,
            last: Instant::now(),
        });
        let thread = std::thread::Builder::new()
            .name("rill-checkpoint".into())
            .spawn(move || {
                while let Some(jobs) = gather(&inbox, workers, GATHER) {
                    let mut replies = Vec::with_capacity(jobs.len());
                    let mut batch = Batch::new();
                    for job in jobs {
                        batch.append(job.write.batch);
                        replies.push((job.reply, job.wake));
                    }
                    let result = store.write(batch);
                    crate::crash::reached("checkpoint");
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
}
