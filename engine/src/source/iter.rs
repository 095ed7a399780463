//! An in-memory source: each worker takes every `peers`-th item.

use super::{Polled, SourceDriver};
use crate::Result;

const BATCH: usize = 1024;

/// Emits the items with `index % peers == worker`, in order.
pub(crate) struct IterDriver<I: Iterator> {
    items: std::iter::StepBy<std::iter::Skip<I>>,
}

impl<I: Iterator> IterDriver<I> {
    pub fn new(items: I, worker: usize, peers: usize) -> Self {
        IterDriver {
            items: items.skip(worker).step_by(peers.max(1)),
        }
    }
}

impl<I: Iterator + 'static> SourceDriver<I::Item> for IterDriver<I> {
    fn poll(&mut self, out: &mut Vec<I::Item>) -> Result<Polled> {
        out.extend(self.items.by_ref().take(BATCH));
        Ok(if out.len() < BATCH {
            Polled::Finished
        } else {
            Polled::Data
        })
    }
}
