//! [`RocksStore`]: the durable store, one RocksDB database per process.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rocksdb::compaction_filter::{CompactionFilter, Decision};
use rocksdb::compaction_filter_factory::{CompactionFilterContext, CompactionFilterFactory};
use rocksdb::{
    DBCompressionType, Direction, ErrorKind, IngestExternalFileOptions, IteratorMode, Options,
    SstFileWriter, WriteOptions, DB,
};

use super::deferred::{self, Deferred};
use super::{check_format, Batch, Entries, KvStore, Op, StoreError};
use crate::versions::{VersionGc, VersionPass};

/// Batches with at least this many changes are ingested as a table file
/// rather than written through the memtable (see [`RocksStore`]).
pub const INGEST_FROM: usize = 8192;

/// Level-0 files that start a compaction (see [`RocksStore::open`]).
const L0_COMPACTION_TRIGGER: i32 = 8;

/// Where table files are built before they are ingested, inside the
/// store's directory (RocksDB leaves subdirectories alone).
const INCOMING: &str = "incoming";

/// A [`KvStore`] on RocksDB. Every batch is written atomically and is
/// durable once `write` returns, in one of two ways:
///
/// - a small batch is one `WriteBatch`, written with `sync` through the
///   write-ahead log into the memtable;
/// - a large one (a checkpoint of many keys) is built, in key order, into
///   a table file that RocksDB then ingests, atomically and synced. This
///   skips the memtable, whose inserts cost several times more than
///   writing the same entries to a file (see `benches/RESULTS.md`).
///
/// Given idle threads ([`KvStore::write_on`]), a large batch is split by
/// key range into several table files, each ordered and built on a thread
/// of its own, and ingested together, still atomically.
///
/// A table file left half-built by a crash was never ingested, so it is
/// never seen; the next open removes it. Table files are written
/// uncompressed: compaction compresses what it rewrites, and not
/// compressing cut the writer's CPU by about a sixth (0.25 to 0.21 s per
/// 300M-record 2-worker run) for about 1.3 times the bytes synced.
///
/// A deferred write ([`KvStore::write_deferred`]) logs its deferred part
/// as one record, in the same synced `WriteBatch` as the rest; the record
/// is filed, like any batch, before the next read or write, or by the
/// next writable open. Filing then deleting the record is idempotent: a
/// crash in between files the same changes again.
///
/// Garbage versions ([`VersionGc`]) are dropped by a compaction filter.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
    ingest_from: usize,
    next_file: AtomicU64,
    gc: Arc<VersionGc>,
    deferred: Deferred,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RocksStore {
    /// Opens the store at `path`, creating it (and its format marker) if the
    /// directory is missing or empty.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        let fresh = RocksStore::is_new(path);
        if !fresh {
            if let Err(e) = std::fs::read_dir(path) {
                return Err(StoreError::Io {
                    location,
                    detail: format!("cannot read the directory: {e}"),
                });
            }
        }
        if !fresh && !path.join("CURRENT").exists() {
            return Err(StoreError::Corrupted {
                location,
                detail: "the directory has files but no CURRENT file (truncated or not a Rill state store)".into(),
            });
        }
        let mut opts = Options::default();
        opts.create_if_missing(fresh);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_paranoid_checks(true);
        opts.set_keep_log_file_num(3);
        opts.set_max_log_file_size(1 << 20);
        // Every checkpoint adds a level-0 file holding the keys that
        // changed; compaction then rewrites the level below. Waiting for 8
        // files instead of RocksDB's 4 rewrites it half as often: compaction
        // CPU in a 2-worker job changing 100,000 keys per epoch fell from
        // 0.65 to 0.39 s per 1,000M records (benches/RESULTS.md).
        opts.set_level_zero_file_num_compaction_trigger(L0_COMPACTION_TRIGGER);
        let gc = Arc::new(VersionGc::new());
        opts.set_compaction_filter_factory(Collecting(gc.clone()));
        let db = DB::open(&opts, path).map_err(|e| map_err(&location, e))?;
        let incoming = path.join(INCOMING);
        // Files here were never ingested: a crash cut their batch short.
        let _ = std::fs::remove_dir_all(&incoming);
        std::fs::create_dir_all(&incoming).map_err(|e| StoreError::Io {
            location: incoming.display().to_string(),
            detail: e.to_string(),
        })?;
        let store = RocksStore {
            db,
            path: path.to_owned(),
            ingest_from: INGEST_FROM,
            next_file: AtomicU64::new(0),
            gc,
            deferred: Deferred::default(),
        };
        let empty = store.db.iterator(IteratorMode::Start).next().is_none();
        check_format(&store, &location, empty, true)?;
        store.file_deferred_records()?;
        Ok(store)
    }

    /// Ingests batches of at least `changes` changes as table files instead
    /// of [`INGEST_FROM`] (`0` or `1`: every batch; `usize::MAX`: none).
    pub fn ingesting_from(mut self, changes: usize) -> Self {
        self.ingest_from = changes;
        self
    }

    /// True when `path` is missing or an empty directory: opening it
    /// creates a store, and there is nothing in it to read. A directory
    /// that cannot be read is not new (opening it reports why).
    pub fn is_new(path: &Path) -> bool {
        match std::fs::read_dir(path) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }

    /// Opens an existing store for reading only (while a job may be running).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        if !path.join("CURRENT").exists() {
            return Err(StoreError::Corrupted {
                location,
                detail: "no CURRENT file: not a Rill state store, or truncated".into(),
            });
        }
        let opts = Options::default();
        let db = DB::open_for_read_only(&opts, path, false).map_err(|e| map_err(&location, e))?;
        let store = RocksStore {
            db,
            path: path.to_owned(),
            ingest_from: usize::MAX,
            next_file: AtomicU64::new(0),
            gc: Arc::new(VersionGc::new()),
            deferred: Deferred::default(),
        };
        check_format(&store, &location, false, false)?;
        Ok(store)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rocksdb::Error) -> StoreError {
        map_err(&self.path.display().to_string(), e)
    }

    /// Writes `batch` through the write-ahead log, its changes in `sorted`
    /// order, then `extra` (a key and its value).
    fn write_logged(
        &self,
        batch: &Batch,
        sorted: &[Op<'_>],
        extra: Option<(&[u8], &[u8])>,
    ) -> Result<(), StoreError> {
        let extra_bytes = extra.map_or(0, |(k, v)| k.len() + v.len() + 16);
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
        if let Some((k, v)) = extra {
            wb.put(k, v);
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(wb, &opts).map_err(|e| self.err(e))
    }

    /// Loads the deferred records a handle left unfiled and files them.
    fn file_deferred_records(&self) -> Result<(), StoreError> {
        let records = self.scan(deferred::PREFIX, &[], usize::MAX)?;
        if records.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut pending = self.deferred.lock();
        for (key, value) in records {
            let (Some(seq), Some(batch)) = (deferred::record_seq(&key), deferred::decode(&value))
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

    /// Files every deferred change not yet filed, oldest first.
    fn settle(&self) -> Result<(), StoreError> {
        if !self.deferred.any() {
            return Ok(());
        }
        let mut pending = self.deferred.lock();
        self.file_pending(&mut pending, 1)
    }

    /// Files the locked `pending` changes on up to `threads` threads, each
    /// then deleting its record.
    fn file_pending(
        &self,
        pending: &mut Vec<(Vec<u8>, Batch)>,
        threads: usize,
    ) -> Result<(), StoreError> {
        while let Some((key, batch)) = pending.first() {
            self.write_now_on(batch, threads)?;
            let mut done = Batch::new();
            done.delete(key);
            self.write_now(&done)?;
            pending.remove(0);
        }
        self.deferred.settled(pending);
        Ok(())
    }

    /// [`RocksStore::write_now`] on up to `threads` threads: a large batch
    /// without range deletions is split into table files built in parallel.
    fn write_now_on(&self, batch: &Batch, threads: usize) -> Result<(), StoreError> {
        // Each part is worth a file of its own; ranges may span parts.
        let parts = threads.min(batch.len() / self.ingest_from.max(1));
        if parts < 2 || batch.ops().any(|op| matches!(op, Op::DeleteRange(..))) {
            return self.write_now(batch);
        }
        self.write_split(batch, parts)
    }

    /// Writes `batch`, through the log or as a table file by its size.
    fn write_now(&self, batch: &Batch) -> Result<(), StoreError> {
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
            ("logged", self.write_logged(batch, &ops, None))
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
    fn build(&self, order: &[Ordered], sorted: &[Op<'_>]) -> Result<PathBuf, StoreError> {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        let file = self.path.join(INCOMING).join(format!("{n}.sst"));
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
    fn ingest(&self, files: Vec<PathBuf>) -> Result<(), StoreError> {
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
    fn write_split(&self, batch: &Batch, parts: usize) -> Result<(), StoreError> {
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

/// Makes each compaction's filter: a [`VersionPass`] with the rule as it
/// is when the compaction starts.
struct Collecting(Arc<VersionGc>);

/// One compaction's filter.
struct Collect(VersionPass);

impl CompactionFilterFactory for Collecting {
    type Filter = Collect;

    fn create(&mut self, _context: CompactionFilterContext) -> Collect {
        Collect(self.0.pass())
    }

    fn name(&self) -> &CStr {
        c"rill-versions"
    }
}

impl CompactionFilter for Collect {
    fn filter(&mut self, _level: u32, key: &[u8], _value: &[u8]) -> Decision {
        if self.0.drops(key) {
            Decision::Remove
        } else {
            Decision::Keep
        }
    }

    fn name(&self) -> &CStr {
        c"rill-versions"
    }
}

fn map_err(location: &str, e: rocksdb::Error) -> StoreError {
    let detail = e.to_string();
    match e.kind() {
        ErrorKind::Corruption => StoreError::Corrupted {
            location: location.to_owned(),
            detail,
        },
        _ => StoreError::Io {
            location: location.to_owned(),
            detail,
        },
    }
}

impl KvStore for RocksStore {
    fn kind(&self) -> &'static str {
        "rocksdb"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.settle()?;
        self.db.get(key).map_err(|e| self.err(e))
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreError> {
        self.settle()?;
        let start = if from > prefix { from } else { prefix };
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(start, Direction::Forward))
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(|e| self.err(e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        self.settle()?;
        self.write_now(&batch)
    }

    fn write_deferred(&self, now: Batch, later: Batch) -> Result<(), StoreError> {
        // Large values or a huge `later` are better filed at once. `now`
        // (markers and records, a few changes) always goes through the
        // log, with the record, whatever its size.
        if !deferred::worth_deferring(&later) {
            let mut batch = now;
            batch.append(later);
            return self.write(batch);
        }
        self.settle()?;
        let started = std::time::Instant::now();
        let mut pending = self.deferred.lock();
        let key = self.deferred.next_key();
        let record = deferred::encode(&later);
        let ops: Vec<Op<'_>> = now.ops().collect();
        let written = self.write_logged(&now, &ops, Some((&key, &record)));
        log::debug!(
            "store: logged {} changes and deferred {} ({} bytes) in {:.1?}",
            now.len(),
            later.len(),
            record.len(),
            started.elapsed()
        );
        match written {
            Ok(()) => pending.push((key, later)),
            Err(_) => self.deferred.settled(&pending),
        }
        written
    }

    fn write_on(&self, batch: Batch, threads: usize) -> Result<(), StoreError> {
        self.settle()?;
        self.write_now_on(&batch, threads)
    }

    fn compact(&self) -> Result<(), StoreError> {
        self.settle()?;
        self.db.flush().map_err(|e| self.err(e))?;
        self.db.compact_range::<&[u8], &[u8]>(None, None);
        Ok(())
    }

    fn versions(&self) -> &VersionGc {
        &self.gc
    }

    fn snapshot(&self, to: &Path) -> Result<bool, StoreError> {
        // Hard links of the table files plus a copy of the rest: cheap.
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(|e| self.err(e))?;
        checkpoint.create_checkpoint(to).map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn live_bytes(&self) -> Result<u64, StoreError> {
        let sst = self
            .db
            .property_int_value("rocksdb.total-sst-files-size")
            .map_err(|e| self.err(e))?
            .unwrap_or(0);
        let wal: u64 = std::fs::read_dir(&self.path)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        Ok(sst + wal)
    }
}

/// A change's place in key order: its key's first 24 bytes as integers
/// (zero-padded), and its index in the batch.
type Ordered = ((u64, u64, u64), u32);

/// The batch's changes in key order (stable: a later change to a key
/// stays after an earlier one). Changes are sorted by their key's first
/// 24 bytes held inline, as plain integers; only runs with equal heads
/// (the same key, or keys sharing 24 bytes) then compare whole keys.
fn key_order(batch: &Batch) -> Vec<Ordered> {
    let mut items = heads(batch);
    sort_heads(&mut items, batch);
    items
}

/// Every change's [`Ordered`] item, in batch order.
fn heads(batch: &Batch) -> Vec<Ordered> {
    fn head(key: &[u8]) -> (u64, u64, u64) {
        let mut padded = [0u8; 24];
        let n = key.len().min(24);
        padded[..n].copy_from_slice(&key[..n]);
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&padded[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        (word(0), word(1), word(2))
    }
    batch
        .ops()
        .enumerate()
        .map(|(i, op)| (head(op.key()), i as u32))
        .collect()
}

/// Sorts items of `batch` into key order, stably (see [`key_order`]).
fn sort_heads(items: &mut [Ordered], batch: &Batch) {
    items.sort_unstable_by_key(|item| item.0);
    let mut start = 0;
    while start < items.len() {
        let run = items[start..]
            .iter()
            .take_while(|item| item.0 == items[start].0)
            .count();
        if run > 1 {
            items[start..start + run].sort_unstable_by(|a, b| {
                let key = |i: u32| batch.op(i as usize).key();
                key(a.1).cmp(key(b.1)).then(a.1.cmp(&b.1))
            });
        }
        start += run;
    }
}

/// Splits items into up to `parts` non-empty groups of about equal size
/// whose key ranges do not overlap, in key order: every key of a group is
/// below every key of the next. The bounds are heads taken from a sample;
/// items with equal heads stay together, so a key's changes share a group.
/// (A head orders keys: if one key's head is below another's, so is the
/// key, since heads are keys cut or zero-padded to 24 bytes.)
fn split_by_key(items: Vec<Ordered>, parts: usize) -> Vec<Vec<Ordered>> {
    if parts < 2 || items.is_empty() {
        return vec![items];
    }
    let samples = (parts * 64).min(items.len());
    let step = items.len() / samples;
    let mut sample: Vec<_> = (0..samples).map(|s| items[s * step].0).collect();
    sample.sort_unstable();
    let mut bounds: Vec<_> = (1..parts).map(|p| sample[p * samples / parts]).collect();
    bounds.dedup();
    let mut groups: Vec<Vec<Ordered>> = (0..=bounds.len())
        .map(|_| Vec::with_capacity(items.len() / parts + items.len() / 8))
        .collect();
    for item in items {
        groups[bounds.partition_point(|b| *b <= item.0)].push(item);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_new_when_its_directory_is_missing_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("process-0");
        assert!(RocksStore::is_new(&path), "missing");
        std::fs::create_dir(&path).unwrap();
        assert!(RocksStore::is_new(&path), "empty");
        drop(RocksStore::open(&path).unwrap());
        assert!(!RocksStore::is_new(&path), "holding a store");
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        assert!(!RocksStore::is_new(&file), "not a directory");
        let err = RocksStore::open(&file).unwrap_err().to_string();
        assert!(err.contains("cannot read the directory"), "{err}");
    }

    #[test]
    fn a_split_makes_disjoint_key_ranges_in_order_and_keeps_equal_heads_together() {
        let mut batch = Batch::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("prefix-{:05}", x % 700);
            batch.put(key.as_bytes(), i.to_be_bytes());
        }
        for parts in [2, 3, 8] {
            let groups = split_by_key(heads(&batch), parts);
            assert!(groups.len() > 1 && groups.len() <= parts, "{parts}");
            assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), batch.len());
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            let fair = batch.len() / parts;
            assert!(
                sizes.iter().all(|&n| n < 3 * fair),
                "{parts} parts: {sizes:?}"
            );
            for pair in groups.windows(2) {
                let highest = pair[0].iter().map(|i| i.0).max().unwrap();
                let lowest = pair[1].iter().map(|i| i.0).min().unwrap();
                assert!(highest < lowest, "{parts} parts overlap");
            }
        }
        // One key only: nothing to split.
        let mut same = Batch::new();
        for i in 0..100u32 {
            same.put(b"one key", i.to_be_bytes());
        }
        assert_eq!(split_by_key(heads(&same), 4).len(), 1);
    }

    #[test]
    fn key_order_sorts_by_key_and_keeps_equal_keys_in_batch_order() {
        let mut batch = Batch::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut keys = Vec::new();
        for i in 0..2000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Long shared prefixes, lengths around the 24 inline bytes, and
            // repeated keys.
            let mut key = b"v-shared-prefix-".to_vec();
            key.extend_from_slice(&(x % 50).to_be_bytes()[..(x % 9) as usize]);
            batch.put(&key, i.to_be_bytes());
            keys.push(key);
        }
        let order: Vec<u32> = key_order(&batch).iter().map(|&(_, i)| i).collect();
        let mut expect: Vec<u32> = (0..keys.len() as u32).collect();
        expect.sort_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize]));
        assert_eq!(order, expect);
    }
}
