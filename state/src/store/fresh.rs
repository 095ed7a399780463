//! [`FreshStore`]: a new store whose RocksDB is created once it is needed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{prelude, Batch, Entries, KvStore, MemoryStore, RocksStore, StoreError, VersionGc};

/// How long after its first write a new store starts creating its
/// RocksDB, unless something needs it sooner. A job that ends within this
/// time of its first checkpoint never creates it: the next run does, when
/// it opens the store.
pub const CREATE_AFTER: Duration = Duration::from_millis(100);

/// The most key and value bytes a first write may have to go to the
/// prelude: a larger one goes to RocksDB, created first. Its creation is
/// then a small part of the write, and filing it later would write it
/// twice and hold it all in memory. The bound of a deferred write.
pub const PRELUDE_MOST_BYTES: usize = super::DEFER_MOST_BYTES;

type Created = Result<RocksStore, StoreError>;

/// The thread that creates the store's RocksDB: it waits up to
/// [`CREATE_AFTER`] for word (`true`: now; `false`: never), then creates it.
struct Creator {
    word: mpsc::Sender<bool>,
    thread: JoinHandle<Option<Created>>,
}

/// A store for a job starting with a new (missing or empty) directory.
///
/// Creating a RocksDB store costs 7–8 ms of CPU and 13 synced writes,
/// taken from the workers while the job starts. A new store has nothing to
/// read, so this one creates nothing at first: reads see an empty store
/// (holding only its format marker). Its first write (up to
/// [`PRELUDE_MOST_BYTES`]) goes to a plain,
/// checksummed file beside where RocksDB will be, the prelude (see
/// `prelude.rs`), synced like any write; RocksDB is created on another
/// thread [`CREATE_AFTER`] later, and the prelude filed into it. A read
/// or write after the first waits for that (starting it at once if it had
/// not started). A job that ends before then leaves the prelude, which
/// the next open of the directory files ([`RocksStore::open`]), and
/// `rill checkpoints` reads ([`super::open_for_reading`]).
///
/// Dropping the store stops the creation if it has not started, or waits
/// for it.
pub struct FreshStore {
    path: PathBuf,
    ingest_from: usize,
    gc: Arc<VersionGc>,
    /// What reads see before the first write.
    empty: MemoryStore,
    /// Set by the first write (to the prelude), or when RocksDB is needed
    /// before it: reads and writes then go to RocksDB.
    touched: AtomicBool,
    creator: Mutex<Option<Creator>>,
    created: OnceLock<Created>,
}

impl std::fmt::Debug for FreshStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshStore")
            .field("path", &self.path)
            .field("touched", &self.touched.load(Ordering::Relaxed))
            .field("created", &self.created.get().is_some())
            .finish()
    }
}

impl FreshStore {
    /// A new store in the directory `path`, which must exist and be empty
    /// ([`RocksStore::is_new`]); its RocksDB ingests batches of
    /// `ingest_from` changes or more ([`RocksStore::ingesting_from`]).
    pub fn new(path: &Path, ingest_from: usize) -> Self {
        FreshStore {
            path: path.to_owned(),
            ingest_from,
            gc: Arc::new(VersionGc::new()),
            empty: MemoryStore::new(),
            touched: AtomicBool::new(false),
            creator: Mutex::new(None),
            created: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Creator>> {
        self.creator.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True until the first write (reads see the empty store).
    fn untouched(&self) -> bool {
        !self.touched.load(Ordering::Acquire)
    }

    fn create(path: &Path, gc: Arc<VersionGc>, ingest_from: usize) -> Created {
        Ok(RocksStore::open_sharing(path, gc)?.ingesting_from(ingest_from))
    }

    /// The store's RocksDB, created now (or its creation waited for) if
    /// need be.
    fn store(&self) -> Result<&RocksStore, StoreError> {
        let created = self.created.get_or_init(|| {
            let mut creator = self.lock();
            // A first write not yet made now waits for the lock, then
            // finds the store touched and writes to RocksDB.
            self.touched.store(true, Ordering::Release);
            let Some(c) = creator.take() else {
                return FreshStore::create(&self.path, self.gc.clone(), self.ingest_from);
            };
            drop(creator);
            // The thread may have started already; then this is not read.
            let _ = c.word.send(true);
            match c.thread.join() {
                Ok(Some(created)) => created,
                Ok(None) => FreshStore::create(&self.path, self.gc.clone(), self.ingest_from),
                Err(_) => Err(StoreError::Io {
                    location: self.path.display().to_string(),
                    detail: "the thread creating the store panicked".into(),
                }),
            }
        });
        created.as_ref().map_err(Clone::clone)
    }

    /// Writes `now` and `later` as the first write, to the prelude, and
    /// starts the creation of RocksDB. If the store was written before, or
    /// they hold more than [`PRELUDE_MOST_BYTES`], hands them back (the
    /// caller then writes them to RocksDB).
    fn log_first(
        &self,
        now: Batch,
        later: Vec<Batch>,
        threads: usize,
    ) -> Result<Option<(Batch, Vec<Batch>)>, StoreError> {
        let bytes = now.bytes() + later.iter().map(Batch::bytes).sum::<usize>();
        if bytes > PRELUDE_MOST_BYTES {
            return Ok(Some((now, later)));
        }
        let mut creator = self.lock();
        if !self.untouched() {
            return Ok(Some((now, later)));
        }
        let mut parts = Vec::with_capacity(1 + later.len());
        parts.push(now);
        parts.extend(later);
        prelude::write(&self.path, &parts, threads)?;
        drop(parts);
        let (word, heard) = mpsc::channel();
        let (path, gc, ingest_from) = (self.path.clone(), self.gc.clone(), self.ingest_from);
        let started = std::thread::Builder::new()
            .name("rill-store-create".into())
            .spawn(move || {
                if let Ok(false) = heard.recv_timeout(CREATE_AFTER) {
                    return None;
                }
                Some(FreshStore::create(&path, gc, ingest_from))
            });
        match started {
            Ok(thread) => *creator = Some(Creator { word, thread }),
            // It is created when next needed, on the thread that needs it.
            Err(e) => log::warn!("cannot start the thread that creates the state store: {e}"),
        }
        self.touched.store(true, Ordering::Release);
        Ok(None)
    }
}

impl Drop for FreshStore {
    fn drop(&mut self) {
        if let Some(c) = self.lock().take() {
            let _ = c.word.send(false);
            let _ = c.thread.join();
        }
    }
}

impl KvStore for FreshStore {
    fn kind(&self) -> &'static str {
        "rocksdb"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if self.untouched() {
            return self.empty.get(key);
        }
        self.store()?.get(key)
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreError> {
        if self.untouched() {
            return self.empty.scan(prefix, from, limit);
        }
        self.store()?.scan(prefix, from, limit)
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        self.write_on(batch, 1)
    }

    fn write_on(&self, batch: Batch, threads: usize) -> Result<(), StoreError> {
        if !self.untouched() {
            return self.store()?.write_on(batch, threads);
        }
        match self.log_first(batch, Vec::new(), threads)? {
            None => Ok(()),
            Some((batch, _)) => self.store()?.write_on(batch, threads),
        }
    }

    fn write_deferred(
        &self,
        now: Batch,
        later: Vec<Batch>,
        threads: usize,
    ) -> Result<(), StoreError> {
        if !self.untouched() {
            return self.store()?.write_deferred(now, later, threads);
        }
        match self.log_first(now, later, threads)? {
            None => Ok(()),
            Some((now, later)) => self.store()?.write_deferred(now, later, threads),
        }
    }

    fn compact(&self) -> Result<(), StoreError> {
        if self.untouched() {
            return Ok(());
        }
        self.store()?.compact()
    }

    fn versions(&self) -> &VersionGc {
        &self.gc
    }

    fn live_bytes(&self) -> Result<u64, StoreError> {
        if self.untouched() {
            return Ok(0);
        }
        self.store()?.live_bytes()
    }

    fn snapshot(&self, to: &Path) -> Result<bool, StoreError> {
        self.store()?.snapshot(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(dir: &Path, file: &str) -> bool {
        dir.join(file).exists()
    }

    #[test]
    fn a_small_first_write_goes_to_the_prelude_and_a_large_one_to_rocksdb() {
        let small = tempfile::tempdir().unwrap();
        let store = FreshStore::new(small.path(), usize::MAX);
        let mut b = Batch::new();
        b.put(b"k", b"v");
        store.write(b).unwrap();
        assert!(has(small.path(), prelude::FILE) && !has(small.path(), "CURRENT"));

        let large = tempfile::tempdir().unwrap();
        let store = FreshStore::new(large.path(), usize::MAX);
        let value = vec![7u8; 1 << 20];
        let mut b = Batch::new();
        for k in 0..=(PRELUDE_MOST_BYTES >> 20) as u32 {
            b.put(k.to_be_bytes(), &value);
        }
        assert!(b.bytes() > PRELUDE_MOST_BYTES);
        store.write_deferred(Batch::new(), vec![b], 1).unwrap();
        assert!(!has(large.path(), prelude::FILE) && has(large.path(), "CURRENT"));
        assert_eq!(store.get(&3u32.to_be_bytes()).unwrap(), Some(value));
    }
}
