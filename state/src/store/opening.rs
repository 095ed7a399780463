//! [`OpeningStore`]: a store opened on a background thread.

use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

use super::{Entries, KvStore, StoreError, VersionGc};

type Opened = Result<Box<dyn KvStore>, StoreError>;

/// A store that is still being opened on another thread: every call waits
/// until it is open, then goes to it. Creating a RocksDB store takes
/// several synced writes (6–20 ms on a slow disk); a job starting with a
/// new state directory has nothing to read from it, so it can run while
/// the store is created and meet it at its first checkpoint.
///
/// If opening fails, every call returns the error. Dropping the store
/// waits for the thread, so the store is closed when this is dropped.
pub struct OpeningStore {
    location: String,
    thread: Mutex<Option<JoinHandle<Opened>>>,
    opened: OnceLock<Opened>,
}

impl std::fmt::Debug for OpeningStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpeningStore")
            .field("location", &self.location)
            .field("open", &self.opened.get().is_some())
            .finish()
    }
}

impl OpeningStore {
    /// Runs `open` on a new thread named for `location` (the store's
    /// directory, used in errors).
    pub fn spawn(
        location: String,
        open: impl FnOnce() -> Opened + Send + 'static,
    ) -> Result<Self, StoreError> {
        let thread = std::thread::Builder::new()
            .name("rill-store-open".into())
            .spawn(open)
            .map_err(|e| StoreError::Io {
                location: location.clone(),
                detail: format!("cannot start the thread that opens the store: {e}"),
            })?;
        Ok(OpeningStore {
            location,
            thread: Mutex::new(Some(thread)),
            opened: OnceLock::new(),
        })
    }

    /// Waits until the store is open.
    pub fn wait(&self) -> Result<&dyn KvStore, StoreError> {
        let opened = self.opened.get_or_init(|| {
            let thread = self.thread.lock().ok().and_then(|mut t| t.take());
            let failed = |detail: &str| StoreError::Io {
                location: self.location.clone(),
                detail: detail.into(),
            };
            match thread.map(JoinHandle::join) {
                Some(Ok(opened)) => opened,
                Some(Err(_)) => Err(failed("the thread opening the store panicked")),
                None => Err(failed("the store was never opened")),
            }
        });
        match opened {
            Ok(store) => Ok(store.as_ref()),
            Err(e) => Err(e.clone()),
        }
    }
}

impl Drop for OpeningStore {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// The garbage rule of a store that failed to open: nothing ever reaches
/// it, since every write fails.
static NEVER_OPENED: OnceLock<VersionGc> = OnceLock::new();

impl KvStore for OpeningStore {
    fn kind(&self) -> &'static str {
        self.wait().map_or("rocksdb", |s| s.kind())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.wait()?.get(key)
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreError> {
        self.wait()?.scan(prefix, from, limit)
    }

    fn write(&self, batch: super::Batch) -> Result<(), StoreError> {
        self.wait()?.write(batch)
    }

    fn write_on(&self, batch: super::Batch, threads: usize) -> Result<(), StoreError> {
        self.wait()?.write_on(batch, threads)
    }

    fn write_deferred(
        &self,
        now: super::Batch,
        later: Vec<super::Batch>,
        threads: usize,
    ) -> Result<(), StoreError> {
        self.wait()?.write_deferred(now, later, threads)
    }

    fn compact(&self) -> Result<(), StoreError> {
        self.wait()?.compact()
    }

    fn versions(&self) -> &VersionGc {
        match self.wait() {
            Ok(store) => store.versions(),
            Err(_) => NEVER_OPENED.get_or_init(VersionGc::new),
        }
    }

    fn live_bytes(&self) -> Result<u64, StoreError> {
        self.wait()?.live_bytes()
    }

    fn snapshot(&self, to: &std::path::Path) -> Result<bool, StoreError> {
        self.wait()?.snapshot(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, MemoryStore};

    #[test]
    fn calls_wait_for_the_store_and_then_reach_it() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let store = OpeningStore::spawn("test".into(), move || {
            // Opens only when the test says so.
            rx.recv().map_err(|e| StoreError::Io {
                location: "test".into(),
                detail: e.to_string(),
            })?;
            Ok(Box::new(MemoryStore::new()))
        })
        .unwrap();
        tx.send(()).unwrap();
        let mut batch = Batch::new();
        batch.put(b"k", b"v");
        store.write(batch).unwrap();
        assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(store.kind(), "memory");
    }

    #[test]
    fn a_failed_open_is_returned_by_every_call() {
        let store = OpeningStore::spawn("/nowhere".into(), || {
            Err(StoreError::Io {
                location: "/nowhere".into(),
                detail: "disk on fire".into(),
            })
        })
        .unwrap();
        for _ in 0..2 {
            let e = store.get(b"k").unwrap_err().to_string();
            assert_eq!(e, "state store /nowhere: disk on fire");
        }
        assert!(store.write(Batch::new()).is_err());
    }
}
