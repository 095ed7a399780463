//! [`RocksStore`]: the durable store, one RocksDB database per process.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::compaction_filter::{CompactionFilter, Decision};
use rocksdb::compaction_filter_factory::{CompactionFilterContext, CompactionFilterFactory};
use rocksdb::{
    DBCompressionType, Direction, ErrorKind, IngestExternalFileOptions, IteratorMode, Options,
    SstFileWriter, WriteOptions, DB,
};

use super::{check_format, Batch, Entries, KvStore, Op, StoreError};
use crate::versions::{VersionGc, VersionPass};

/// Level-0 files that start a compaction (see [`RocksStore::open`]).
const L0_COMPACTION_TRIGGER: i32 = 8;

/// Batches of at least this many changes are ingested as one table file
/// rather than written through the log and the memtable (see
/// [`RocksStore`]).
pub const INGEST_FROM: usize = 16_384;

/// RocksDB options set by name. The store's identity is kept in the
/// manifest: the IDENTITY file beside it is deprecated (and has no setter
/// in the crate), and writing it costs a new store more files and syncs.
/// Three info logs of 1 MiB at most. Blocks are cached in an LRU cache of
/// 256 MiB: RocksDB's default, a 32 MiB HyperClockCache, spent 87% of a
/// windowed job's CPU in its eviction once the blocks read outgrew it
/// (`benches/bounded_state.rs`).
const OPTIONS: &str = "write_identity_file=false;keep_log_file_num=3;max_log_file_size=1048576;\
                       block_based_table_factory={block_cache=256M}";

/// Where table files are built before they are ingested, inside the
/// store's directory (RocksDB leaves subdirectories alone).
const INCOMING: &str = "incoming";

/// A [`KvStore`] on RocksDB. A batch is written atomically and is durable
/// once `write` returns: a small one as one `WriteBatch` with `sync`
/// through the write-ahead log; one of [`INGEST_FROM`] changes or more (a
/// checkpoint of many keys) built in key order into one table file that
/// RocksDB ingests, atomically and synced — in steady state several times
/// cheaper than the memtable (`benches/RESULTS.md`). A table file a crash
/// left half-built was never ingested; the next open removes it. Garbage
/// versions ([`VersionGc`]) are dropped by a compaction filter.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
    gc: Arc<VersionGc>,
    next_file: std::sync::atomic::AtomicU64,
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
            if !path.join("CURRENT").exists() {
                return Err(StoreError::Corrupted {
                    location,
                    detail: "the directory has files but no CURRENT file (truncated or not a Rill state store)".into(),
                });
            }
        }
        let gc = Arc::new(VersionGc::new());
        let mut opts = Options::default()
            .get_options_from_string(OPTIONS)
            .map_err(|e| map_err(&location, e))?;
        opts.create_if_missing(fresh);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_paranoid_checks(true);
        // Every checkpoint adds a level-0 file holding the keys that
        // changed; compaction then rewrites the level below. Waiting for 8
        // files instead of RocksDB's 4 rewrites it half as often: compaction
        // CPU in a 2-worker job changing 100,000 keys per epoch fell from
        // 0.65 to 0.39 s per 1,000M records (benches/RESULTS.md).
        opts.set_level_zero_file_num_compaction_trigger(L0_COMPACTION_TRIGGER);
        opts.set_compaction_filter_factory(Collecting(gc.clone()));
        let db = DB::open(&opts, path).map_err(|e| map_err(&location, e))?;
        // Files here were never ingested: a crash cut their write short.
        let _ = std::fs::remove_dir_all(path.join(INCOMING));
        let store = RocksStore {
            db,
            path: path.to_owned(),
            gc,
            next_file: Default::default(),
        };
        let empty = store.db.iterator(IteratorMode::Start).next().is_none();
        check_format(&store, &location, empty)?;
        Ok(store)
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
            gc: Arc::new(VersionGc::new()),
            next_file: Default::default(),
        };
        check_format(&store, &location, false)?;
        Ok(store)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rocksdb::Error) -> StoreError {
        map_err(&self.path.display().to_string(), e)
    }

    /// Writes `batch` as one table file in key order (of several changes to
    /// a key, the last), then ingests it: all or nothing, synced.
    fn ingest(&self, batch: &Batch) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut order: Vec<u32> = (0..batch.len() as u32).collect();
        super::order::by_key(batch, &mut order, 0);
        let incoming = self.path.join(INCOMING);
        let io = |e: std::io::Error| StoreError::Io {
            location: incoming.display().to_string(),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(&incoming).map_err(io)?;
        let n = self
            .next_file
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = incoming.join(format!("{n}.sst"));
        let mut opts = Options::default();
        opts.set_compression_type(DBCompressionType::None);
        let mut writer = SstFileWriter::create(&opts);
        let built = (|| {
            writer.open(&file)?;
            for (at, &i) in order.iter().enumerate() {
                let op = batch.op(i as usize);
                let next = order.get(at + 1).map(|&j| batch.op(j as usize));
                let superseded = next.is_some_and(|next| {
                    !matches!(next, Op::DeleteRange(..)) && next.key() == op.key()
                });
                match op {
                    // A range never covers another change of its batch.
                    Op::DeleteRange(from, to) => writer.delete_range(from, to)?,
                    _ if superseded => {}
                    Op::Put(k, v) => writer.put(k, v)?,
                    Op::Delete(k) => writer.delete(k)?,
                }
            }
            writer.finish()
        })();
        let mut ingest = IngestExternalFileOptions::default();
        // Linked into the store, not copied.
        ingest.set_move_files(true);
        let result = built.and_then(|()| self.db.ingest_external_file_opts(&ingest, vec![&file]));
        if result.is_err() {
            let _ = std::fs::remove_file(&file);
        }
        log::debug!(
            "store: ingested {} changes ({} bytes) in {:.1?}",
            batch.len(),
            batch.bytes(),
            started.elapsed()
        );
        result.map_err(|e| self.err(e))
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
        self.db.get(key).map_err(|e| self.err(e))
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreError> {
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
        if batch.is_empty() {
            return Ok(());
        }
        if batch.len() >= INGEST_FROM {
            return self.ingest(&batch);
        }
        let mut wb = rocksdb::WriteBatch::with_capacity_bytes(batch.bytes() + 16 * batch.len());
        for op in batch.ops() {
            match op {
                Op::Put(k, v) => wb.put(k, v),
                Op::Delete(k) => wb.delete(k),
                Op::DeleteRange(from, to) => wb.delete_range(from, to),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(wb, &opts).map_err(|e| self.err(e))
    }

    fn compact(&self) -> Result<(), StoreError> {
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

    fn live_bytes(&self, range: Option<(&[u8], &[u8])>) -> Result<u64, StoreError> {
        if let Some((from, to)) = range {
            return Ok(self
                .db
                .get_approximate_sizes(&[rocksdb::Range::new(from, to)])[0]);
        }
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
    fn a_new_store_writes_no_identity_file() {
        let options = new_store_file("OPTIONS-");
        assert!(options.contains("write_identity_file=false\n"), "{options}");
        let dir = tempfile::tempdir().unwrap();
        drop(RocksStore::open(dir.path()).unwrap());
        assert!(!dir.path().join("IDENTITY").exists());
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
