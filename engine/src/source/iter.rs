//! An in-memory source: each worker takes every `peers`-th item.

use super::{Polled, SourceDriver};
use crate::Result;

const BATCH: usize = 1024;

/// The partition under which `worker` keeps its position.
pub(crate) fn partition_of(worker: usize) -> i32 {
    i32::try_from(worker).unwrap_or(i32::MAX)
}

/// Emits the items with `index % peers == worker`, in order.
/// Its checkpointed position is the number of items this worker emitted,
/// under the worker's index as partition (each worker's share has a
/// position of its own); a resumed driver skips that many.
pub(crate) struct IterDriver<I: Iterator> {
    items: std::iter::StepBy<std::iter::Skip<I>>,
    partition: i32,
    emitted: i64,
}

impl<I: Iterator> IterDriver<I> {
    /// The driver of `worker`'s share, resumed after `saved` items (read
    /// from the position of [`partition_of`] `worker`).
    pub fn new(items: I, worker: usize, peers: usize, saved: Option<i64>) -> Self {
        let mut items = items.skip(worker).step_by(peers.max(1));
        let emitted = saved.unwrap_or(0).max(0);
        if emitted > 0 {
            items.nth(emitted as usize - 1);
        }
        IterDriver {
            items,
            partition: partition_of(worker),
            emitted,
        }
    }
}

impl<I: Iterator> IterDriver<I> {
    /// Keeps the position under `worker`'s partition.
    pub fn at_partition(mut self, worker: usize) -> Self {
        self.partition = partition_of(worker);
        self
    }
}

impl<I: Iterator + 'static> SourceDriver<I::Item> for IterDriver<I> {
    fn poll(&mut self, out: &mut Vec<I::Item>) -> Result<Polled> {
        let before = out.len();
        out.extend(self.items.by_ref().take(BATCH));
        self.emitted += (out.len() - before) as i64;
        Ok(if out.len() < BATCH {
            Polled::Finished
        } else {
            Polled::Data
        })
    }

    fn positions(&self) -> Vec<(i32, i64)> {
        vec![(self.partition, self.emitted)]
    }
}
