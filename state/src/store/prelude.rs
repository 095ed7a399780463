//! The prelude: the first write of a new store ([`super::FreshStore`]),
//! kept in a plain file beside where its RocksDB will be until that is
//! created.
//!
//! Creating a RocksDB store costs 7–8 ms of CPU and 13 synced writes. A
//! job starting with a new state directory has nothing to read from it,
//! and a job that ends within its first epoch needs the store only to
//! keep its one checkpoint. So a new store writes its first batch to
//! `PRELUDE`: written whole to `PRELUDE.tmp`, synced, renamed, and the
//! directory synced, so a `PRELUDE` is always complete. The next open of
//! the store (by this run, when it writes or reads again, or by the next
//! run) creates RocksDB, files the prelude in one synced write and
//! removes it. Until then RocksDB holds nothing but its format marker and
//! possibly the prelude's own changes, so a reader of a directory with a
//! prelude reads the prelude alone.
//!
//! The file: [`MAGIC`], the store format ([`super::FORMAT_VERSION`]) and
//! the number of records (both `u32`, little-endian), then per record its
//! length (`u64`), the XxHash64 of its bytes (`u64`) and the bytes: a
//! batch in the form of a record of deferred changes (`record.rs`). The
//! first record is the write's `now`, the others its deferred parts, in
//! order.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use twox_hash::XxHash64;

use super::{record, Batch, Entries, KvStore, MemoryStore, StoreError, VersionGc, FORMAT_VERSION};

/// The prelude's file name, in the store's directory.
pub(crate) const FILE: &str = "PRELUDE";
/// Where it is written before it is renamed.
const TMP: &str = "PRELUDE.tmp";
/// The first bytes of a prelude.
const MAGIC: &[u8; 8] = b"RILLPRE1";
const HEAD: usize = 8 + 4 + 4;

fn io(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::Io {
        location: path.display().to_string(),
        detail: format!("{what}: {e}"),
    }
}

fn corrupted(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupted {
        location: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Syncs the directory `dir`, so that a file created, renamed or removed
/// in it stays so after a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, "cannot sync the directory", e))
}

/// Writes `parts` (a write's `now`, then its deferred parts) as the
/// prelude of the store at `dir`, encoding them on up to `threads`
/// threads. Once this returns, the prelude survives a crash.
pub(crate) fn write(dir: &Path, parts: &[Batch], threads: usize) -> Result<(), StoreError> {
    let records = record::encode_parts(parts, threads);
    let tmp = dir.join(TMP);
    let mut head = Vec::with_capacity(HEAD);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&(records.len() as u32).to_le_bytes());
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&head)?;
        for r in &records {
            let mut frame = [0u8; 16];
            frame[..8].copy_from_slice(&(r.len() as u64).to_le_bytes());
            frame[8..].copy_from_slice(&XxHash64::oneshot(0, r).to_le_bytes());
            file.write_all(&frame)?;
            file.write_all(r)?;
        }
        file.sync_data()?;
        std::fs::rename(&tmp, dir.join(FILE))
    })();
    written.map_err(|e| io(&tmp, "cannot write the first checkpoint", e))?;
    sync_dir(dir)
}

/// Reads the prelude of the store at `dir`, if it has one: the write's
/// `now`, then its deferred parts. A damaged prelude is an error.
pub(crate) fn read(dir: &Path) -> Result<Option<Vec<Batch>>, StoreError> {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path, "cannot read", e)),
    };
    if bytes.len() < HEAD || &bytes[..8] != MAGIC {
        return Err(corrupted(&path, "not a Rill prelude (bad header)"));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let format = u32_at(8);
    if format != FORMAT_VERSION {
        return Err(StoreError::Format {
            location: path.display().to_string(),
            found: format,
            expected: FORMAT_VERSION,
        });
    }
    let count = u32_at(12) as usize;
    let mut parts = Vec::with_capacity(count.min(1024));
    let mut at = HEAD;
    for n in 0..count {
        let truncated = || corrupted(&path, format!("truncated in record {n} of {count}"));
        let frame = bytes.get(at..at + 16).ok_or_else(truncated)?;
        let len = u64::from_le_bytes(frame[..8].try_into().expect("8 bytes"));
        let hash = u64::from_le_bytes(frame[8..].try_into().expect("8 bytes"));
        let start = at + 16;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .ok_or_else(truncated)?;
        let body = bytes.get(start..end).ok_or_else(truncated)?;
        if XxHash64::oneshot(0, body) != hash {
            return Err(corrupted(&path, format!("record {n} fails its checksum")));
        }
        let batch = record::decode(body)
            .ok_or_else(|| corrupted(&path, format!("record {n} is malformed")))?;
        parts.push(batch);
        at = end;
    }
    if at != bytes.len() {
        return Err(corrupted(&path, "bytes after the last record"));
    }
    Ok(Some(parts))
}

/// Removes a prelude whose changes are now in RocksDB, durably: a crash
/// before this files them again, which changes nothing.
pub(crate) fn remove(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(FILE);
    std::fs::remove_file(&path).map_err(|e| io(&path, "cannot remove", e))?;
    sync_dir(dir)
}

/// Prepares the directory of a store with a prelude for creating its
/// RocksDB: removes a prelude left half-written (a crash during the
/// write, which never returned), and, when RocksDB was never completely
/// created (no `CURRENT`), what a creation cut short left. Returns the
/// prelude's batches, if it has one.
pub(crate) fn take_over(dir: &Path) -> Result<Option<Vec<Batch>>, StoreError> {
    let tmp = dir.join(TMP);
    if tmp.exists() {
        std::fs::remove_file(&tmp).map_err(|e| io(&tmp, "cannot remove", e))?;
    }
    let Some(parts) = read(dir)? else {
        return Ok(None);
    };
    if !dir.join("CURRENT").exists() {
        let entries = std::fs::read_dir(dir).map_err(|e| io(dir, "cannot read", e))?;
        for entry in entries.flatten() {
            if entry.file_name() == FILE {
                continue;
            }
            let p = entry.path();
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.map_err(|e| io(&p, "cannot remove a leftover of creating the store", e))?;
        }
    }
    Ok(Some(parts))
}

/// A store whose only write is still in its prelude, opened for reading
/// (see [`open_for_reading`]).
#[derive(Debug)]
struct Logged {
    path: PathBuf,
    changes: MemoryStore,
    bytes: u64,
}

impl KvStore for Logged {
    fn kind(&self) -> &'static str {
        "rocksdb"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.changes.get(key)
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreError> {
        self.changes.scan(prefix, from, limit)
    }

    fn write(&self, _batch: Batch) -> Result<(), StoreError> {
        Err(StoreError::Io {
            location: self.path.display().to_string(),
            detail: "opened for reading only".into(),
        })
    }

    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn versions(&self) -> &VersionGc {
        self.changes.versions()
    }

    fn live_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.bytes)
    }
}

/// Opens the store at `path` for reading only (while a job may be
/// running): its RocksDB, or, for a store whose first write is still in
/// its prelude, that write (RocksDB then holds no more than it).
///
/// A directory holding nothing but a half-written prelude (the first
/// write never returned) reads as an empty store.
pub fn open_for_reading(path: &Path) -> Result<Box<dyn KvStore>, StoreError> {
    let Some(parts) = read(path)? else {
        if only_a_half_written_prelude(path) {
            return Ok(Box::new(Logged {
                path: path.to_owned(),
                changes: MemoryStore::new(),
                bytes: 0,
            }));
        }
        return Ok(Box::new(super::RocksStore::open_read_only(path)?));
    };
    let changes = MemoryStore::new();
    for part in parts {
        changes.write(part)?;
    }
    let bytes = std::fs::metadata(path.join(FILE)).map_or(0, |m| m.len());
    Ok(Box::new(Logged {
        path: path.to_owned(),
        changes,
        bytes,
    }))
}

/// True when `dir` holds `PRELUDE.tmp` and nothing else.
fn only_a_half_written_prelude(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names == [TMP]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Op;

    fn sample() -> Vec<Batch> {
        let mut now = Batch::new();
        now.put(b"marker", b"1");
        now.delete(b"gone");
        let mut part = Batch::new();
        for k in 0..1000u32 {
            part.put(k.to_be_bytes(), (k * 3).to_le_bytes());
        }
        part.delete_range_with(
            |k| k.extend_from_slice(b"x0"),
            |k| k.extend_from_slice(b"x9"),
        );
        vec![now, part, Batch::new()]
    }

    #[test]
    fn a_prelude_reads_back_as_written_then_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let parts = sample();
        write(dir.path(), &parts, 2).unwrap();
        assert!(dir.path().join(FILE).exists());
        assert!(!dir.path().join(TMP).exists());
        let back = read(dir.path()).unwrap().unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in parts.iter().zip(&back) {
            assert_eq!(
                a.ops().collect::<Vec<Op<'_>>>(),
                b.ops().collect::<Vec<_>>()
            );
        }
        remove(dir.path()).unwrap();
        assert!(!dir.path().join(FILE).exists());
    }

    #[test]
    fn a_damaged_or_cut_prelude_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample(), 1).unwrap();
        let path = dir.path().join(FILE);
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let at = good.len() / 2;
        flipped[at] ^= 1;
        let cases = [
            (flipped, "checksum"),
            (good[..good.len() - 1].to_vec(), "truncated"),
            (good[..HEAD + 20].to_vec(), "truncated"),
            ([good.as_slice(), b"x"].concat(), "after the last record"),
            (b"RILLPREx".to_vec(), "bad header"),
        ];
        for (bytes, says) in cases {
            std::fs::write(&path, bytes).unwrap();
            let e = read(dir.path()).unwrap_err();
            assert!(matches!(e, StoreError::Corrupted { .. }), "{e}");
            assert!(
                e.to_string().contains(says) && e.to_string().contains(FILE),
                "{e}"
            );
        }
        let mut other = good.clone();
        other[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        std::fs::write(&path, other).unwrap();
        assert!(matches!(read(dir.path()), Err(StoreError::Format { .. })));
    }

    #[test]
    fn a_directory_with_only_a_half_written_prelude_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TMP), b"half").unwrap();
        let store = open_for_reading(dir.path()).unwrap();
        let entries = store.scan(b"", b"", usize::MAX).unwrap();
        assert_eq!(entries.len(), 1, "the format marker only");
        assert_eq!(store.live_bytes().unwrap(), 0);
        std::fs::write(dir.path().join("LOG"), b"something else").unwrap();
        assert!(
            open_for_reading(dir.path()).is_err(),
            "not a half-written prelude alone"
        );
    }

    #[test]
    fn taking_over_drops_a_half_written_prelude_and_a_cut_short_creation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TMP), b"half").unwrap();
        assert_eq!(take_over(dir.path()).unwrap(), None);
        assert!(!dir.path().join(TMP).exists());
        write(dir.path(), &sample(), 1).unwrap();
        std::fs::write(dir.path().join("LOG"), b"a creation cut short").unwrap();
        std::fs::create_dir(dir.path().join("incoming")).unwrap();
        assert!(take_over(dir.path()).unwrap().is_some());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(FILE)]);
    }
}
