//! Filing deferred changes ([`crate::store::KvStore::write_deferred`]):
//! the records a run left are loaded at open, and pending changes are
//! written before the next read or write.

use super::RocksStore;
use crate::store::{deferred, prelude, record};
use crate::store::{Batch, KvStore, Op, StoreError};

impl RocksStore {
    /// Loads the deferred records a handle left unfiled and files them.
    pub(super) fn file_deferred_records(&self) -> Result<(), StoreError> {
        let records = self.scan(deferred::PREFIX, &[], usize::MAX)?;
        if records.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut pending = self.deferred.lock();
        for (key, value) in records {
            let (Some(seq), Some(batch)) = (deferred::record_seq(&key), record::decode(&value))
            else {
                return Err(StoreError::Corrupted {
                    location: self.path.display().to_string(),
                    detail: "a record of deferred changes is malformed".into(),
                });
            };
            self.deferred.seen(seq);
            pending.push((key, batch));
        }
        let count = pending.len();
        // Nothing else runs yet: every core can build table files.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        self.file_pending(&mut pending, cores)?;
        log::debug!(
            "store: filed {count} deferred record(s) left by the last run in {:.1?}",
            started.elapsed()
        );
        Ok(())
    }

    /// Files the batches of the store's prelude (see
    /// [`crate::store::FreshStore`]) in one synced write, then removes it.
    pub(super) fn file_prelude(&self, parts: Vec<Batch>) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut batch = Batch::new();
        batch.append_all(parts);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        self.write_now_on(&batch, cores)?;
        prelude::remove(&self.path)?;
        log::debug!(
            "store: filed the first write ({} changes) from its prelude in {:.1?}",
            batch.len(),
            started.elapsed()
        );
        Ok(())
    }

    /// Files every deferred change not yet filed, oldest first.
    pub(super) fn settle(&self) -> Result<(), StoreError> {
        if !self.deferred.any() {
            return Ok(());
        }
        let mut pending = self.deferred.lock();
        self.file_pending(&mut pending, 1)
    }

    /// Files the locked `pending` changes on up to `threads` threads, then
    /// deletes their records. Records without range deletions (those of a
    /// checkpoint's versions: one per worker, and the writes stacked on
    /// them) are filed together, as one batch in their order, so that the
    /// store gets one table file rather than one per record; any other is
    /// filed on its own, in order.
    pub(super) fn file_pending(
        &self,
        pending: &mut Vec<(Vec<u8>, Batch)>,
        threads: usize,
    ) -> Result<(), StoreError> {
        let ranged = |b: &Batch| b.ops().any(|op| matches!(op, Op::DeleteRange(..)));
        while !pending.is_empty() {
            let run = pending
                .iter()
                .take_while(|(_, b)| !ranged(b))
                .count()
                .max(1);
            if run == 1 {
                self.write_now_on(&pending[0].1, threads)?;
            } else {
                let mut together = Batch::new();
                for (_, batch) in &pending[..run] {
                    together.append(batch.clone());
                }
                self.write_now_on(&together, threads)?;
            }
            // A crash before this files the same changes again at open.
            let mut done = Batch::new();
            for (key, _) in &pending[..run] {
                done.delete(key);
            }
            self.write_now(&done)?;
            pending.drain(..run);
        }
        self.deferred.settled(pending);
        Ok(())
    }
}
