//! How [`RocksStore`] writes a batch: through its log, or as table files
//! built in key order (on several threads when it may) and ingested.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use rocksdb::{DBCompressionType, IngestExternalFileOptions, Options, SstFileWriter, WriteOptions};

use super::order::{heads, key_order, sort_heads, split_by_key, Ordered};
use super::{RocksStore, INCOMING};
use crate::store::{Batch, Op, StoreError};

impl RocksStore {
    /// Writes `batch` through the write-ahead log, its changes in `sorted`
    /// order, then each of `extra` (a key and its value).
    pub(super) fn write_logged(
        &self,
        batch: &Batch,
        sorted: &[Op<'_>],
        extra: &[(&[u8], &[u8])],
    ) -> Result<(), StoreError> {
        let extra_bytes: usize = extra.iter().map(|(k, v)| k.len() + v.len() + 16).sum();
        let mut wb = rocksdb::WriteBatch::with_capacity_bytes(
            batch.bytes() + 16 * batch.len() + extra_bytes,
        );
        for &op in sorted {
            match op {
                Op::Put(k, v) => wb.put(k, v),
                Op::Delete(k) => wb.delete(k),
                Op::DeleteRange(from, to) => wb.delete_range(from, to),
            }
        }
        for (k, v) in extra {
            wb.put(k, v);
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(wb, &opts).map_err(|e| self.err(e))
    }

    /// [`RocksStore::write_now`] on up to `threads` threads: a large batch
    /// without range deletions is split into table files built in parallel.
    pub(super) fn write_now_on(&self, batch: &Batch, threads: usize) -> Result<(), StoreError> {
        // Each part is worth a file of its own; ranges may span parts.
        let parts = threads.min(batch.len() / self.ingest_from.max(1));
        if parts < 2 || batch.ops().any(|op| matches!(op, Op::DeleteRange(..))) {
            return self.write_now(batch);
        }
        self.write_split(batch, parts)
    }

    /// Writes `batch`, through the log or as a table file by its size.
    pub(super) fn write_now(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // A table file needs its keys in order; so do fast memtable
        // inserts (RocksDB's skip list reuses its last splice). The sort
        // is stable, so a later change to the same key still wins.
        let started = std::time::Instant::now();
        let order = key_order(batch);
        // Fetched in one tight loop, whose cache misses overlap, rather
        // than one at a time between calls into RocksDB.
        let ops: Vec<Op<'_>> = order.iter().map(|&(_, i)| batch.op(i as usize)).collect();
        let sorted = started.elapsed();
        let (how, result) = if batch.len() >= self.ingest_from {
            (
                "ingested",
                self.build(&order, &ops).and_then(|f| self.ingest(vec![f])),
            )
        } else {
            ("logged", self.write_logged(batch, &ops, &[]))
        };
        if log::log_enabled!(log::Level::Debug) {
            // Ingested files land in level 0 until compaction merges them:
            // a growing count means compaction is falling behind.
            let level0 = self
                .db
                .property_int_value("rocksdb.num-files-at-level0")
                .ok()
                .flatten()
                .unwrap_or(0);
            log::debug!(
                "store: {how} {} changes ({} bytes) in {:.1?} (ordering {sorted:.1?}); \
                 {level0} files in level 0",
                batch.len(),
                batch.bytes(),
                started.elapsed()
            );
        }
        result
    }

    /// Builds changes (`sorted`, in key `order`) into a new table file, to
    /// ingest. Of several changes to one key only the last is kept, as a
    /// `WriteBatch` would.
    pub(super) fn build(
        &self,
        order: &[Ordered],
        sorted: &[Op<'_>],
    ) -> Result<PathBuf, StoreError> {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        let incoming = self.path.join(INCOMING);
        // Made on the first file: a new store has one directory fewer to
        // create while the job starts.
        std::fs::create_dir_all(&incoming).map_err(|e| StoreError::Io {
            location: incoming.display().to_string(),
            detail: e.to_string(),
        })?;
        let file = incoming.join(format!("{n}.sst"));
        let mut opts = Options::default();
        opts.set_compression_type(DBCompressionType::None);
        let mut writer = SstFileWriter::create(&opts);
        let built = (|| {
            writer.open(&file)?;
            for (at, &op) in sorted.iter().enumerate() {
                // Equal keys have equal heads: most changes are told apart
                // without reading the next key.
                let superseded = sorted.get(at + 1).is_some_and(|&next| {
                    order[at + 1].0 == order[at].0
                        && !matches!(next, Op::DeleteRange(..))
                        && next.key() == op.key()
                });
                match op {
                    // Ranges may come in any order (RocksDB's contract).
                    Op::DeleteRange(from, to) => writer.delete_range(from, to)?,
                    _ if superseded => {}
                    Op::Put(k, v) => writer.put(k, v)?,
                    Op::Delete(k) => writer.delete(k)?,
                }
            }
            writer.finish()
        })();
        match built {
            Ok(()) => Ok(file),
            Err(e) => {
                let _ = std::fs::remove_file(&file);
                Err(self.err(e))
            }
        }
    }

    /// Ingests table files, all or none, synced.
    pub(super) fn ingest(&self, files: Vec<PathBuf>) -> Result<(), StoreError> {
        let mut ingest = IngestExternalFileOptions::default();
        // Linked into the store, not copied; RocksDB removes these names
        // once the files are in (a failure leaves them to us).
        ingest.set_move_files(true);
        let result = self.db.ingest_external_file_opts(&ingest, files.clone());
        if result.is_err() {
            for file in &files {
                let _ = std::fs::remove_file(file);
            }
        }
        result.map_err(|e| self.err(e))
    }

    /// Writes a batch of at least `ingest_from` changes as `parts` table
    /// files of disjoint key ranges, each ordered and built on a thread of
    /// its own, then ingested together.
    pub(super) fn write_split(&self, batch: &Batch, parts: usize) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let split = split_by_key(heads(batch), parts);
        let files = std::thread::scope(|scope| {
            let build = |mut part: Vec<Ordered>| {
                sort_heads(&mut part, batch);
                let ops: Vec<Op<'_>> = part.iter().map(|&(_, i)| batch.op(i as usize)).collect();
                self.build(&part, &ops)
            };
            let mut rest = split.into_iter();
            let first = rest.next();
            // A thread that cannot be started fails the write (no panic).
            let others: Vec<_> = rest
                .enumerate()
                .map(|(n, part)| {
                    std::thread::Builder::new()
                        .name(format!("rill-build-{}", n + 1))
                        .spawn_scoped(scope, move || build(part))
                })
                .collect();
            let mut files = Vec::new();
            let mut failed = None;
            let mine = first.map(build);
            let failure = |detail: String| StoreError::Io {
                location: self.path.display().to_string(),
                detail,
            };
            let joined = others.into_iter().map(|started| match started {
                Ok(h) => h.join().unwrap_or_else(|_| {
                    Err(failure("a thread building a table file panicked".into()))
                }),
                Err(e) => Err(failure(format!(
                    "cannot start a thread to build a table file: {e}"
                ))),
            });
            for built in mine.into_iter().chain(joined) {
                match built {
                    Ok(file) => files.push(file),
                    Err(e) => failed = failed.or(Some(e)),
                }
            }
            match failed {
                None => Ok(files),
                Some(e) => {
                    for file in &files {
                        let _ = std::fs::remove_file(file);
                    }
                    Err(e)
                }
            }
        })?;
        let count = files.len();
        let built = started.elapsed();
        let result = self.ingest(files);
        log::debug!(
            "store: ingested {} changes ({} bytes) as {count} files, built in parallel in \
             {built:.1?}, in {:.1?}",
            batch.len(),
            batch.bytes(),
            started.elapsed()
        );
        result
    }
}
