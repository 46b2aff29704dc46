//! A durable append-only log of JSON lines: the state of every architecture that claims
//! durability is rebuilt from it after a kill.
//!
//! Records are written in the order the in-memory state changed (under the caller's lock)
//! and made durable with `fdatasync` afterwards, outside the lock: since the file is
//! sequential, a record that is synced implies every earlier record is too. A kill can
//! leave a torn last line; replay stops there, because that record was never acknowledged.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the sync task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub struct Wal {
    path: PathBuf,
    file: Mutex<File>,
    /// A second handle on the same file, so `fdatasync` runs without the append lock.
    sync_handle: Arc<File>,
}

impl Wal {
    /// Reads every intact record of `path` (none if it does not exist yet).
    pub fn replay<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, StorageError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut records = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line?;
            match serde_json::from_str(&line) {
                Ok(record) => records.push(record),
                // A torn tail from a kill mid-write: nothing after it was acknowledged.
                Err(_) => break,
            }
        }
        Ok(records)
    }

    /// Replaces `path` with exactly `records` (written, synced, renamed into place, the
    /// directory synced), then opens it for appending. Used at start to compact the log.
    pub fn rewrite<T: Serialize>(path: &Path, records: &[T]) -> Result<Wal, StorageError> {
        let tmp = path.with_extension("tmp");
        {
            let mut out = std::io::BufWriter::new(File::create(&tmp)?);
            for record in records {
                serde_json::to_writer(&mut out, record)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        let file = OpenOptions::new().append(true).open(path)?;
        let sync_handle = Arc::new(file.try_clone()?);
        Ok(Wal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            sync_handle,
        })
    }

    /// Opens a log of per-key records where the last record of a key wins: replays it into
    /// a map and rewrites it with one record per key (so the log does not grow across
    /// restarts). `split` and `join` convert between a record and its key and value.
    pub fn open_latest_per_key<R, V>(
        path: &Path,
        split: fn(R) -> (String, V),
        join: fn(&String, &V) -> R,
    ) -> Result<(std::collections::HashMap<String, V>, Wal), StorageError>
    where
        R: Serialize + DeserializeOwned,
    {
        let latest: std::collections::HashMap<String, V> =
            Wal::replay::<R>(path)?.into_iter().map(split).collect();
        let compacted: Vec<R> = latest.iter().map(|(k, v)| join(k, v)).collect();
        let wal = Wal::rewrite(path, &compacted)?;
        Ok((latest, wal))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record (not yet durable: call [`Wal::sync`] before acknowledging).
    pub fn append<T: Serialize>(&self, record: &T) -> Result<(), StorageError> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)?;
        Ok(())
    }

    /// Makes every record appended so far durable.
    pub async fn sync(&self) -> Result<(), StorageError> {
        let handle = Arc::clone(&self.sync_handle);
        tokio::task::spawn_blocking(move || handle.sync_data()).await??;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_survive_reopen_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let wal = Wal::rewrite::<u32>(&path, &[1, 2]).unwrap();
        wal.append(&3u32).unwrap();
        wal.sync().await.unwrap();
        drop(wal);
        // A kill in the middle of a write leaves half a record behind.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"torn")
            .unwrap();
        let records: Vec<u32> = Wal::replay(&path).unwrap();
        assert_eq!(records, vec![1, 2, 3]);
        assert!(Wal::replay::<u32>(&dir.path().join("absent"))
            .unwrap()
            .is_empty());
    }
}
