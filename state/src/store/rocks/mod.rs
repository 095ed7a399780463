//! [`RocksStore`]: the durable store, one RocksDB database per process.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use rocksdb::compaction_filter::{CompactionFilter, Decision};
use rocksdb::compaction_filter_factory::{CompactionFilterContext, CompactionFilterFactory};
use rocksdb::{DBCompressionType, Direction, ErrorKind, IteratorMode, Options, DB};

mod filing;
mod order;
mod writing;

use super::deferred::{self, Deferred};
use super::{check_format, write_together, Batch, Entries, KvStore, Op, StoreError};
use super::{prelude, record};
use crate::versions::{VersionGc, VersionPass};

/// Batches with at least this many changes are ingested as a table file
/// rather than written through the memtable (see [`RocksStore`]).
pub const INGEST_FROM: usize = 8192;

/// Level-0 files that start a compaction (see [`RocksStore::open`]).
const L0_COMPACTION_TRIGGER: i32 = 8;

/// Where table files are built before they are ingested, inside the
/// store's directory (RocksDB leaves subdirectories alone).
const INCOMING: &str = "incoming";

/// Threads to open the table files of the store at `path` with: one per
/// file, up to RocksDB's default of 16 (one for a new store).
fn file_opening_threads(path: &Path) -> i32 {
    let tables = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
                .take(16)
                .count()
        })
        .unwrap_or(0);
    tables.max(1) as i32
}

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
/// A deferred write ([`KvStore::write_deferred`]) logs each deferred part
/// as one record, in the same synced `WriteBatch` as the rest; the records
/// are filed in order, like any batch, before the next read or write, or
/// by the next writable open. Filing then deleting a record is
/// idempotent: a crash in between files the same changes again.
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
    ///
    /// A store whose first write is still in its prelude (see
    /// [`super::FreshStore`]) is created and the prelude filed into it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        RocksStore::open_sharing(path, Arc::new(VersionGc::new()))
    }

    /// [`RocksStore::open`], its garbage rule `gc` shared with the caller.
    pub(crate) fn open_sharing(path: &Path, gc: Arc<VersionGc>) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        let logged = if path.is_dir() {
            prelude::take_over(path)?
        } else {
            None
        };
        let fresh =
            RocksStore::is_new(path) || (logged.is_some() && !path.join("CURRENT").exists());
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
        // RocksDB keeps the store's identity in its manifest; the IDENTITY
        // file beside it is deprecated (and has no setter in the crate),
        // and writing it costs a new store more files and syncs.
        let mut opts = Options::default()
            .get_options_from_string("write_identity_file=false")
            .map_err(|e| map_err(&location, e))?;
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
        opts.set_compaction_filter_factory(Collecting(gc.clone()));
        // RocksDB opens table files on this many threads, and starts them
        // even when there is no file to open: a new store would spawn 15
        // threads for nothing, which cost about 2 ms of CPU per open.
        opts.set_max_file_opening_threads(file_opening_threads(path));
        let db = DB::open(&opts, path).map_err(|e| map_err(&location, e))?;
        if !fresh {
            // Files here were never ingested: a crash cut their batch short.
            let _ = std::fs::remove_dir_all(path.join(INCOMING));
        }
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
        if let Some(parts) = logged {
            store.file_prelude(parts)?;
        }
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

    fn write_deferred(
        &self,
        now: Batch,
        later: Vec<Batch>,
        threads: usize,
    ) -> Result<(), StoreError> {
        let later: Vec<Batch> = later.into_iter().filter(|p| !p.is_empty()).collect();
        // Large values or a huge `later` are better filed at once. `now`
        // (markers and records, a few changes) always goes through the
        // log, with the records, whatever its size.
        if !deferred::worth_deferring(&later) {
            return write_together(self, now, later, threads);
        }
        let started = std::time::Instant::now();
        let mut pending = self.deferred.lock();
        if !deferred::may_stack(&pending, &now, &later) {
            self.file_pending(&mut pending, threads)?;
        }
        let stacked = pending.len();
        // One record per part, numbered in order: they are filed in order.
        let keys: Vec<Vec<u8>> = later.iter().map(|_| self.deferred.next_key()).collect();
        let records = record::encode_parts(&later, threads);
        let encoded = started.elapsed();
        let logged: Vec<(&[u8], &[u8])> = keys
            .iter()
            .zip(&records)
            .map(|(k, r)| (k.as_slice(), r.as_slice()))
            .collect();
        let ops: Vec<Op<'_>> = now.ops().collect();
        let written = self.write_logged(&now, &ops, &logged);
        log::debug!(
            "store: logged {} changes and deferred {} in {} record(s) ({} bytes) in {:.1?} \
             (encoded in {encoded:.1?}), after {stacked} record(s) not yet filed",
            now.len(),
            later.iter().map(Batch::len).sum::<usize>(),
            records.len(),
            records.iter().map(Vec::len).sum::<usize>(),
            started.elapsed()
        );
        match written {
            Ok(()) => pending.extend(keys.into_iter().zip(later)),
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
    fn table_files_are_opened_on_a_thread_each_up_to_sixteen() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(file_opening_threads(&dir.path().join("missing")), 1);
        assert_eq!(file_opening_threads(dir.path()), 1, "no file");
        std::fs::write(dir.path().join("MANIFEST-000001"), b"").unwrap();
        std::fs::write(dir.path().join("000004.log"), b"").unwrap();
        assert_eq!(file_opening_threads(dir.path()), 1, "no table file");
        for i in 0..3 {
            std::fs::write(dir.path().join(format!("{i:06}.sst")), b"").unwrap();
        }
        assert_eq!(file_opening_threads(dir.path()), 3);
        for i in 3..40 {
            std::fs::write(dir.path().join(format!("{i:06}.sst")), b"").unwrap();
        }
        assert_eq!(file_opening_threads(dir.path()), 16);
    }

    /// The text of the one file whose name starts with `prefix` that
    /// RocksDB leaves in a new store's directory once it is closed.
    fn new_store_file(prefix: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        drop(RocksStore::open(dir.path()).unwrap());
        let path = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}* file in a new store"));
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn a_new_store_is_opened_with_one_file_opening_thread() {
        // RocksDB writes the options it opened with.
        let options = new_store_file("OPTIONS-");
        assert!(
            options.contains("max_file_opening_threads=1\n"),
            "{options}"
        );
    }

    #[test]
    fn a_new_store_writes_no_identity_file_and_no_incoming_directory() {
        let options = new_store_file("OPTIONS-");
        assert!(options.contains("write_identity_file=false\n"), "{options}");
        let dir = tempfile::tempdir().unwrap();
        drop(RocksStore::open(dir.path()).unwrap());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n == "IDENTITY" || n == INCOMING),
            "{names:?}"
        );
        // It still opens, and still has an identity (in its manifest).
        let store = RocksStore::open(dir.path()).unwrap();
        assert!(!store.db.get_db_identity().unwrap().is_empty());
    }

    /// `.cargo/config.toml` builds RocksDB for SSE4.2 and PCLMUL: its
    /// log records are then checksummed in hardware.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn rocksdb_checksums_in_hardware() {
        let log = new_store_file("LOG");
        assert!(
            log.contains("Fast CRC32 supported: Supported on x86"),
            "RocksDB was built without SSE4.2 (see .cargo/config.toml)"
        );
    }
}
