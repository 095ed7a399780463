//! Publication: the buffered epochs whose checkpoint is complete are
//! produced one after another, each record with its identity headers; once
//! an epoch is all acknowledged, the writer's mark moves past it.

use std::collections::BTreeMap;

use rill_connectors::kafka::{identity_headers, KafkaWriter, Outgoing};

use super::buffer::{Mark, Rec};
use crate::{crash, Error, Result};

/// The most records produced in one activation, so that a large epoch
/// does not keep the worker from its other operators.
const PUBLISH_BUDGET: usize = 65_536;

/// A staged epoch's output, waiting for its checkpoint to complete.
pub(super) struct Buffered {
    pub records: Vec<Rec>,
    pub chunks: u32,
    /// Per partition, the highest sequence number already in the topic
    /// (found at resume).
    pub landed: BTreeMap<i32, u64>,
}

/// The epoch being published, and how far.
pub(super) struct Publishing {
    epoch: u64,
    buffered: Buffered,
    next: usize,
}

/// One writer's publication state.
pub(super) struct Publisher {
    pub writer: KafkaWriter,
    pub job: String,
    pub writer_id: u32,
    pub step: String,
    /// Staged epochs not yet published, in order.
    pub queue: BTreeMap<u64, Buffered>,
    pub current: Option<Publishing>,
    /// What is published; `mark_dirty` until staged.
    pub mark: Mark,
    pub mark_dirty: bool,
    /// Buffers of published epochs, removed with the next staged mark.
    pub covered: Vec<(u64, u32)>,
}

impl Publisher {
    /// Something is buffered or being published.
    pub fn busy(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty()
    }

    /// The last epoch buffered or being published.
    pub fn last_epoch(&self) -> Option<u64> {
        let queued = self.queue.keys().last().copied();
        queued.max(self.current.as_ref().map(|p| p.epoch))
    }

    /// Publishes the epochs complete through `complete`, as far as the
    /// budget allows; true when there is more to send at once.
    pub fn publish(&mut self, complete: Option<u64>) -> Result<bool> {
        let conn = |e| Error::connector(&self.step, e);
        loop {
            if self.current.is_none() {
                let Some(entry) = self.queue.first_entry() else {
                    return Ok(false);
                };
                if complete.is_none_or(|c| *entry.key() > c) {
                    return Ok(false);
                }
                let (epoch, buffered) = entry.remove_entry();
                crash::reached("prepared");
                log::debug!(
                    "{}: worker {} publishing epoch {epoch} ({} records)",
                    self.step,
                    self.writer_id,
                    buffered.records.len()
                );
                let next = 0;
                self.current = Some(Publishing {
                    epoch,
                    buffered,
                    next,
                });
            }
            let Some(p) = self.current.as_mut() else {
                return Ok(false);
            };
            let end = p.buffered.records.len().min(p.next + PUBLISH_BUDGET);
            for seq in p.next..end {
                let r = &p.buffered.records[seq];
                let landed = p.buffered.landed.get(&r.partition);
                if landed.is_some_and(|&s| seq as u64 <= s) {
                    continue;
                }
                let headers = identity_headers(&self.job, self.writer_id, p.epoch, seq as u64);
                let out = Outgoing {
                    key: r.key.as_deref(),
                    payload: &r.value,
                    partition: Some(r.partition),
                    headers: Some(headers),
                    timestamp: r.timestamp,
                };
                self.writer.send(p.epoch, out).map_err(conn)?;
            }
            p.next = end;
            if p.next < p.buffered.records.len() {
                return Ok(true);
            }
            if !self.writer.delivered_through(p.epoch).map_err(conn)? {
                return Ok(false);
            }
            crash::reached("published");
            log::debug!(
                "{}: worker {} published epoch {}",
                self.step,
                self.writer_id,
                p.epoch
            );
            self.mark.published = Some(p.epoch);
            for (part, end) in self.writer.ends() {
                self.mark.ends.insert(part, (end, true));
            }
            self.covered.push((p.epoch, p.buffered.chunks));
            self.mark_dirty = true;
            self.current = None;
        }
    }
}
