//! The cache of the lazy disk layer: what a node wrote but did not sync.
//!
//! The backing directory plays the disk: what is there survives a crash. File data written
//! since the file's last `fsync` stays here, in memory (the writes in order, and the size the
//! file has since); directory entries changed since the last sync (create, mkdir, rename,
//! unlink, rmdir) are made in the backing directory at once but journaled, a removed or
//! overwritten entry being parked aside, so that dropping the cache takes them back in
//! reverse order. The node sees the file system it wrote; [`LazyFs::drop_unsynced`] leaves
//! the disk as the last syncs left it (a power loss), [`LazyFs::tear_unsynced`] also lets
//! each file's unsynced writes but the last reach the disk, the last cut at a block boundary.
//!
//! Syncs follow a journaling file system (ext4 with its default ordered journal):
//! `fsync`/`fdatasync` of a file writes its data and commits the directory journal up to
//! the entry that gave the file its name; `fsync` of a directory commits the journal up to
//! the last entry in that directory. Directory entries commit in the order they were made.
//! Syncs also sync the backing directory, so that they take as long as on a real disk.
//! When the cached data passes its limit, every dirty file is written back (unsynced data
//! reaching the disk, as the kernel's writeback does); the counts say how much.

use nix::libc;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An inode number as the kernel sees it.
pub type Ino = u64;
/// The root directory's inode number.
pub const ROOT: Ino = 1;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// The attributes the kernel asks for.
#[derive(Debug, Clone)]
pub struct Attr {
    pub ino: Ino,
    pub kind: EntryKind,
    pub size: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// Faults the layer injects while set (see the `disk` fault kind).
#[derive(Debug, Clone, Default)]
pub struct DiskFaults {
    /// `fsync`/`fdatasync`/directory syncs fail with EIO (nothing is synced).
    pub fsync_error: bool,
    /// Writes, creates and mkdirs fail with ENOSPC.
    pub enospc: bool,
    /// Each sync takes this much longer.
    pub fsync_delay: Duration,
}

/// What the cache holds now, or what dropping it lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsynced {
    /// Bytes of file data written and not synced.
    pub bytes: u64,
    /// Files with such data.
    pub files: usize,
    /// Directory entries changed and not synced.
    pub entries: usize,
}

/// What dropping the cache did.
#[derive(Debug, Clone, Default)]
pub struct Dropped {
    /// What was lost.
    pub lost: Unsynced,
    /// Bytes of unsynced writes that reached the disk after all (torn writes).
    pub kept_bytes: u64,
    /// Entries that could not be taken back (the backing directory changed under us).
    pub errors: Vec<String>,
}

/// Counters since the layer was mounted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub syncs: u64,
    /// Bytes written back because the cache passed its limit.
    pub written_back_bytes: u64,
    pub failed_syncs: u64,
}

#[derive(Debug, Clone)]
struct PendingWrite {
    offset: u64,
    data: Vec<u8>,
}

/// A file's unsynced data: its writes in order, its size now, and how much of the disk's
/// copy is still its content (a truncation hides the rest).
#[derive(Debug, Clone)]
struct DirtyFile {
    writes: Vec<PendingWrite>,
    size: u64,
    kept: u64,
}

impl DirtyFile {
    fn bytes(&self) -> u64 {
        self.writes.iter().map(|w| w.data.len() as u64).sum()
    }
}

/// One unsynced change of a directory entry, with what takes it back. Paths are relative to
/// the backing directory; a parked entry's path is absolute.
#[derive(Debug, Clone)]
enum DirOp {
    Created { path: PathBuf },
    Removed { path: PathBuf, parked: PathBuf },
    Renamed { from: PathBuf, to: PathBuf },
}

impl DirOp {
    /// Whether the op changed an entry of directory `dir`.
    fn touches_dir(&self, dir: &Path) -> bool {
        let parent_is = |p: &Path| p.parent() == Some(dir);
        match self {
            DirOp::Created { path } | DirOp::Removed { path, .. } => parent_is(path),
            DirOp::Renamed { from, to } => parent_is(from) || parent_is(to),
        }
    }

    /// Whether the op gave `path` its name.
    fn names(&self, path: &Path) -> bool {
        match self {
            DirOp::Created { path: p } | DirOp::Renamed { to: p, .. } => p == path,
            DirOp::Removed { .. } => false,
        }
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// The lazy file system's state: inode table, unsynced data, directory journal.
pub struct LazyFs {
    backing: PathBuf,
    parking: PathBuf,
    paths: HashMap<Ino, PathBuf>,
    inos: HashMap<PathBuf, Ino>,
    next_ino: Ino,
    dirty: HashMap<Ino, DirtyFile>,
    dirty_bytes: u64,
    limit: u64,
    journal: Vec<DirOp>,
    parked: u64,
    pub faults: DiskFaults,
    pub counters: Counters,
}

impl LazyFs {
    /// A layer over `backing` (the disk), parking removed entries in `parking` (outside
    /// it), caching at most `limit` bytes of unsynced data.
    pub fn new(backing: &Path, parking: &Path, limit: u64) -> io::Result<LazyFs> {
        let mut dirs = fs::DirBuilder::new();
        dirs.recursive(true).mode(0o755);
        dirs.create(backing)?;
        dirs.create(parking)?;
        let root = PathBuf::new();
        Ok(LazyFs {
            backing: backing.to_path_buf(),
            parking: parking.to_path_buf(),
            paths: HashMap::from([(ROOT, root.clone())]),
            inos: HashMap::from([(root, ROOT)]),
            next_ino: ROOT + 1,
            dirty: HashMap::new(),
            dirty_bytes: 0,
            limit,
            journal: Vec::new(),
            parked: 0,
            faults: DiskFaults::default(),
            counters: Counters::default(),
        })
    }

    /// What the cache holds now.
    pub fn unsynced(&self) -> Unsynced {
        Unsynced {
            bytes: self.dirty_bytes,
            files: self.dirty.len(),
            entries: self.journal.len(),
        }
    }

    fn full(&self, path: &Path) -> PathBuf {
        self.backing.join(path)
    }

    fn path(&self, ino: Ino) -> io::Result<PathBuf> {
        self.paths
            .get(&ino)
            .cloned()
            .ok_or_else(|| errno(libc::ENOENT))
    }

    fn child(&self, parent: Ino, name: &OsStr) -> io::Result<PathBuf> {
        if name.is_empty() || name == "." || name == ".." || name.as_encoded_bytes().contains(&b'/')
        {
            return Err(errno(libc::EINVAL));
        }
        Ok(self.path(parent)?.join(name))
    }

    fn ino_of(&mut self, path: &Path) -> Ino {
        if let Some(ino) = self.inos.get(path) {
            return *ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inos.insert(path.to_path_buf(), ino);
        self.paths.insert(ino, path.to_path_buf());
        ino
    }

    fn attr_of(&self, ino: Ino, meta: &fs::Metadata) -> Attr {
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            EntryKind::File
        } else if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        let time = |secs: i64, nanos: i64| {
            UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
        };
        Attr {
            ino,
            kind,
            size: self.dirty.get(&ino).map_or(meta.len(), |d| d.size),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The attributes of `name` in `parent`.
    pub fn lookup(&mut self, parent: Ino, name: &OsStr) -> io::Result<Attr> {
        let path = self.child(parent, name)?;
        let meta = fs::symlink_metadata(self.full(&path))?;
        let ino = self.ino_of(&path);
        Ok(self.attr_of(ino, &meta))
    }

    pub fn getattr(&self, ino: Ino) -> io::Result<Attr> {
        let meta = fs::symlink_metadata(self.full(&self.path(ino)?))?;
        Ok(self.attr_of(ino, &meta))
    }

    /// Changes the mode (at once: metadata other than the size is not cached).
    pub fn set_mode(&mut self, ino: Ino, mode: u32) -> io::Result<()> {
        let path = self.full(&self.path(ino)?);
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
    }

    /// Changes the owner and/or the group (at once, like the mode).
    pub fn set_owner(&mut self, ino: Ino, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        if uid.is_none() && gid.is_none() {
            return Ok(());
        }
        std::os::unix::fs::lchown(self.full(&self.path(ino)?), uid, gid)
    }

    /// Sets the access and/or modification times (at once, like the mode).
    pub fn set_times(
        &mut self,
        ino: Ino,
        accessed: Option<SystemTime>,
        modified: Option<SystemTime>,
    ) -> io::Result<()> {
        let mut times = fs::FileTimes::new();
        if let Some(t) = accessed {
            times = times.set_accessed(t);
        }
        if let Some(t) = modified {
            times = times.set_modified(t);
        }
        File::open(self.full(&self.path(ino)?))?.set_times(times)
    }

    fn dirty_entry(&mut self, ino: Ino) -> io::Result<&mut DirtyFile> {
        if !self.dirty.contains_key(&ino) {
            let meta = fs::metadata(self.full(&self.path(ino)?))?;
            if !meta.is_file() {
                return Err(errno(libc::EISDIR));
            }
            self.dirty.insert(
                ino,
                DirtyFile {
                    writes: Vec::new(),
                    size: meta.len(),
                    kept: meta.len(),
                },
            );
        }
        Ok(self.dirty.get_mut(&ino).expect("inserted above"))
    }

    /// Truncates or extends (unsynced, like a write).
    pub fn set_size(&mut self, ino: Ino, size: u64) -> io::Result<()> {
        let file = self.dirty_entry(ino)?;
        let before = file.bytes();
        file.size = size;
        file.kept = file.kept.min(size);
        for w in &mut file.writes {
            let end = w.offset + w.data.len() as u64;
            if end > size {
                w.data.truncate(size.saturating_sub(w.offset) as usize);
            }
        }
        file.writes.retain(|w| !w.data.is_empty());
        let after = file.bytes();
        self.dirty_bytes = self.dirty_bytes - before + after;
        Ok(())
    }

    /// Up to `len` bytes at `offset`, as the node last wrote them.
    pub fn read(&self, ino: Ino, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        let path = self.full(&self.path(ino)?);
        let file = File::open(&path)?;
        let (size, kept, writes) = match self.dirty.get(&ino) {
            Some(d) => (d.size, d.kept, d.writes.as_slice()),
            None => {
                let size = file.metadata()?.len();
                (size, size, &[][..])
            }
        };
        let end = size.min(offset.saturating_add(len as u64));
        if end <= offset {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        let disk_end = end.min(kept);
        if disk_end > offset {
            let want = (disk_end - offset) as usize;
            let mut done = 0;
            while done < want {
                let n = file.read_at(&mut buf[done..want], offset + done as u64)?;
                if n == 0 {
                    break;
                }
                done += n;
            }
        }
        for w in writes {
            let w_end = w.offset + w.data.len() as u64;
            let from = w.offset.max(offset);
            let to = w_end.min(end);
            if from < to {
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&w.data[(from - w.offset) as usize..(to - w.offset) as usize]);
            }
        }
        Ok(buf)
    }

    /// Caches a write; past the cache's limit, every dirty file is written back.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.faults.enospc {
            return Err(errno(libc::ENOSPC));
        }
        let file = self.dirty_entry(ino)?;
        file.size = file.size.max(offset + data.len() as u64);
        file.writes.push(PendingWrite {
            offset,
            data: data.to_vec(),
        });
        self.dirty_bytes += data.len() as u64;
        if self.dirty_bytes > self.limit {
            let inos: Vec<Ino> = self.dirty.keys().copied().collect();
            for ino in inos {
                self.counters.written_back_bytes += self.write_back(ino)?;
            }
        }
        Ok(())
    }

    /// Writes one file's cached data to the disk; returns the bytes written.
    fn write_back(&mut self, ino: Ino) -> io::Result<u64> {
        let Some(dirty) = self.dirty.get(&ino) else {
            return Ok(0);
        };
        let path = self.full(&self.path(ino)?);
        let file = OpenOptions::new().write(true).open(&path)?;
        if file.metadata()?.len() > dirty.kept {
            file.set_len(dirty.kept)?;
        }
        for w in &dirty.writes {
            file.write_all_at(&w.data, w.offset)?;
        }
        file.set_len(dirty.size)?;
        let bytes = dirty.bytes();
        self.dirty.remove(&ino);
        self.dirty_bytes -= bytes;
        Ok(bytes)
    }

    fn check_sync(&mut self) -> io::Result<()> {
        if self.faults.fsync_error {
            self.counters.failed_syncs += 1;
            return Err(errno(libc::EIO));
        }
        self.counters.syncs += 1;
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file (or of a directory: then as [`Self::fsync_dir`]).
    pub fn fsync(&mut self, ino: Ino) -> io::Result<()> {
        let path = self.path(ino)?;
        if fs::symlink_metadata(self.full(&path))?.is_dir() {
            return self.fsync_dir(ino);
        }
        self.check_sync()?;
        self.write_back(ino)?;
        // The backing file is synced too, so that a sync takes as long as on a real disk.
        File::open(self.full(&path))?.sync_data()?;
        if let Some(last) = self.journal.iter().rposition(|op| op.names(&path)) {
            self.commit(last + 1);
        }
        Ok(())
    }

    /// `fsync` of a directory: its entries (and every earlier one) become durable.
    pub fn fsync_dir(&mut self, ino: Ino) -> io::Result<()> {
        let dir = self.path(ino)?;
        self.check_sync()?;
        File::open(self.full(&dir))?.sync_all()?;
        if let Some(last) = self.journal.iter().rposition(|op| op.touches_dir(&dir)) {
            self.commit(last + 1);
        }
        Ok(())
    }

    /// Writes back everything and commits the whole journal (a clean unmount).
    pub fn sync_all(&mut self) -> io::Result<()> {
        let inos: Vec<Ino> = self.dirty.keys().copied().collect();
        for ino in inos {
            self.write_back(ino)?;
        }
        self.commit(self.journal.len());
        Ok(())
    }

    /// Makes the first `count` journal entries durable; parked entries nobody has open go.
    fn commit(&mut self, count: usize) {
        for op in self.journal.drain(..count).collect::<Vec<_>>() {
            if let DirOp::Removed { parked, .. } = op {
                if !self.paths.values().any(|p| *p == parked) {
                    let _ = remove_entry(&parked);
                }
            }
        }
    }

    fn check_space(&self) -> io::Result<()> {
        if self.faults.enospc {
            return Err(errno(libc::ENOSPC));
        }
        Ok(())
    }

    /// Creates an empty file (fails if it exists).
    pub fn create(&mut self, parent: Ino, name: &OsStr, mode: u32) -> io::Result<Attr> {
        self.check_space()?;
        let path = self.child(parent, name)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .open(self.full(&path))?;
        self.journal.push(DirOp::Created { path: path.clone() });
        self.lookup_path(path)
    }

    pub fn mkdir(&mut self, parent: Ino, name: &OsStr, mode: u32) -> io::Result<Attr> {
        self.check_space()?;
        let path = self.child(parent, name)?;
        fs::DirBuilder::new()
            .mode(mode & 0o7777)
            .create(self.full(&path))?;
        self.journal.push(DirOp::Created { path: path.clone() });
        self.lookup_path(path)
    }

    fn lookup_path(&mut self, path: PathBuf) -> io::Result<Attr> {
        let meta = fs::symlink_metadata(self.full(&path))?;
        let ino = self.ino_of(&path);
        Ok(self.attr_of(ino, &meta))
    }

    /// Moves the entry at `path` aside (journaled), keeping its inode readable.
    fn park(&mut self, path: &Path) -> io::Result<()> {
        self.parked += 1;
        let parked = self.parking.join(self.parked.to_string());
        fs::rename(self.full(path), &parked)?;
        if let Some(ino) = self.inos.remove(path) {
            self.paths.insert(ino, parked.clone());
        }
        self.journal.push(DirOp::Removed {
            path: path.to_path_buf(),
            parked,
        });
        Ok(())
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> io::Result<()> {
        let path = self.child(parent, name)?;
        if fs::symlink_metadata(self.full(&path))?.is_dir() {
            return Err(errno(libc::EISDIR));
        }
        self.park(&path)
    }

    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> io::Result<()> {
        let path = self.child(parent, name)?;
        let full = self.full(&path);
        if !fs::symlink_metadata(&full)?.is_dir() {
            return Err(errno(libc::ENOTDIR));
        }
        if fs::read_dir(&full)?.next().is_some() {
            return Err(errno(libc::ENOTEMPTY));
        }
        self.park(&path)
    }

    /// Renames, replacing the target (parked, so the rename can be taken back whole).
    /// `no_replace`: fail with EEXIST instead.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> io::Result<()> {
        let from = self.child(parent, name)?;
        let to = self.child(new_parent, new_name)?;
        let source = fs::symlink_metadata(self.full(&from))?;
        if from == to {
            return Ok(());
        }
        if to.starts_with(&from) {
            return Err(errno(libc::EINVAL));
        }
        if let Ok(target) = fs::symlink_metadata(self.full(&to)) {
            if no_replace {
                return Err(errno(libc::EEXIST));
            }
            match (source.is_dir(), target.is_dir()) {
                (false, true) => return Err(errno(libc::EISDIR)),
                (true, false) => return Err(errno(libc::ENOTDIR)),
                (true, true) if fs::read_dir(self.full(&to))?.next().is_some() => {
                    return Err(errno(libc::ENOTEMPTY))
                }
                _ => {}
            }
            self.park(&to)?;
        }
        fs::rename(self.full(&from), self.full(&to))?;
        self.move_paths(&from, &to);
        self.journal.push(DirOp::Renamed { from, to });
        Ok(())
    }

    /// Renames the inode table's entries at and below `from` to `to`.
    fn move_paths(&mut self, from: &Path, to: &Path) {
        let moved: Vec<(Ino, PathBuf)> = self
            .paths
            .iter()
            .filter_map(|(ino, p)| {
                let rest = p.strip_prefix(from).ok()?;
                Some((
                    *ino,
                    if rest.as_os_str().is_empty() {
                        to.to_path_buf()
                    } else {
                        to.join(rest)
                    },
                ))
            })
            .collect();
        for (ino, new) in moved {
            if let Some(old) = self.paths.insert(ino, new.clone()) {
                self.inos.remove(&old);
            }
            self.inos.insert(new, ino);
        }
    }

    /// The entries of a directory (without `.` and `..`).
    pub fn readdir(&mut self, ino: Ino) -> io::Result<Vec<(Ino, EntryKind, OsString)>> {
        let dir = self.path(ino)?;
        let mut entries = Vec::new();
        for entry in fs::read_dir(self.full(&dir))? {
            let entry = entry?;
            let ft = entry.file_type()?;
            let kind = if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else if ft.is_symlink() {
                EntryKind::Symlink
            } else {
                EntryKind::Other
            };
            let name = entry.file_name();
            let child = self.ino_of(&dir.join(&name));
            entries.push((child, kind, name));
        }
        entries.sort_by(|a, b| a.2.cmp(&b.2));
        Ok(entries)
    }

    /// Power loss: every unsynced write and entry is gone; the disk is as the syncs left it.
    pub fn drop_unsynced(&mut self) -> Dropped {
        let lost = self.unsynced();
        self.dirty.clear();
        self.dirty_bytes = 0;
        let errors = self.undo_journal();
        Dropped {
            lost,
            kept_bytes: 0,
            errors,
        }
    }

    /// Power loss in the middle of writing: each file's unsynced writes reach the disk but
    /// the last, which is cut at the last `block` boundary inside it; then the unsynced
    /// entries are taken back like [`Self::drop_unsynced`].
    pub fn tear_unsynced(&mut self, block: u64) -> Dropped {
        let block = block.max(1);
        let mut lost = self.unsynced();
        let mut kept_bytes = 0;
        let mut errors = Vec::new();
        let inos: Vec<Ino> = self.dirty.keys().copied().collect();
        for ino in inos {
            let file = self.dirty.get_mut(&ino).expect("listed above");
            if let Some(last) = file.writes.last_mut() {
                let end = last.offset + last.data.len() as u64;
                let cut = (end / block * block).max(last.offset);
                last.data.truncate((cut - last.offset) as usize);
                file.size = file
                    .writes
                    .iter()
                    .map(|w| w.offset + w.data.len() as u64)
                    .chain([file.kept])
                    .max()
                    .unwrap_or(0);
            }
            match self.write_back(ino) {
                Ok(written) => kept_bytes += written,
                Err(e) => errors.push(format!("writing the torn data back: {e}")),
            }
        }
        lost.bytes -= kept_bytes.min(lost.bytes);
        self.dirty.clear();
        self.dirty_bytes = 0;
        errors.extend(self.undo_journal());
        Dropped {
            lost,
            kept_bytes,
            errors,
        }
    }

    fn undo_journal(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for op in std::mem::take(&mut self.journal).into_iter().rev() {
            let result = match &op {
                DirOp::Created { path } => {
                    let result = remove_entry(&self.full(path));
                    if let Some(ino) = self.inos.remove(path) {
                        self.paths.remove(&ino);
                        self.dirty.remove(&ino);
                    }
                    result
                }
                DirOp::Removed { path, parked } => {
                    let result = fs::rename(parked, self.full(path));
                    self.move_paths(parked, path);
                    result
                }
                DirOp::Renamed { from, to } => {
                    let result = fs::rename(self.full(to), self.full(from));
                    self.move_paths(to, from);
                    result
                }
            };
            if let Err(e) = result {
                errors.push(format!("taking back {op:?}: {e}"));
            }
        }
        errors
    }
}

/// Removes a file or a directory tree.
fn remove_entry(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        backing: PathBuf,
        fs: LazyFs,
    }

    fn fixture(limit: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("backing");
        let fs = LazyFs::new(&backing, &dir.path().join("parked"), limit).unwrap();
        Fixture {
            _dir: dir,
            backing,
            fs,
        }
    }

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn read_all(fs: &LazyFs, ino: Ino) -> Vec<u8> {
        fs.read(ino, 0, 1 << 20).unwrap()
    }

    #[test]
    fn unsynced_writes_are_seen_then_lost_on_drop() {
        let mut f = fixture(1 << 20);
        let file = f.fs.create(ROOT, name("log"), 0o644).unwrap().ino;
        f.fs.write(file, 0, b"hello").unwrap();
        f.fs.write(file, 5, b" world").unwrap();
        assert_eq!(read_all(&f.fs, file), b"hello world");
        assert_eq!(f.fs.getattr(file).unwrap().size, 11);
        // The disk holds an empty file: the data is only in the cache.
        assert_eq!(fs::read(f.backing.join("log")).unwrap(), b"");
        let dropped = f.fs.drop_unsynced();
        assert_eq!(
            dropped.lost,
            Unsynced {
                bytes: 11,
                files: 1,
                entries: 1
            }
        );
        assert!(
            !f.backing.join("log").exists(),
            "the unsynced create is gone"
        );
        assert!(f.fs.lookup(ROOT, name("log")).is_err());
    }

    #[test]
    fn fsync_makes_data_and_its_name_durable() {
        let mut f = fixture(1 << 20);
        let file = f.fs.create(ROOT, name("log"), 0o644).unwrap().ino;
        f.fs.write(file, 0, b"synced").unwrap();
        f.fs.fsync(file).unwrap();
        f.fs.write(file, 6, b" lost").unwrap();
        f.fs.set_size(file, 3).unwrap();
        assert_eq!(read_all(&f.fs, file), b"syn");
        let dropped = f.fs.drop_unsynced();
        assert_eq!(dropped.lost.entries, 0);
        assert_eq!(fs::read(f.backing.join("log")).unwrap(), b"synced");
        let again = f.fs.lookup(ROOT, name("log")).unwrap();
        assert_eq!(read_all(&f.fs, again.ino), b"synced");
    }

    #[test]
    fn truncate_then_extend_reads_zeros_not_the_old_bytes() {
        let mut f = fixture(1 << 20);
        let file = f.fs.create(ROOT, name("f"), 0o644).unwrap().ino;
        f.fs.write(file, 0, b"abcdef").unwrap();
        f.fs.fsync(file).unwrap();
        f.fs.set_size(file, 2).unwrap();
        f.fs.set_size(file, 4).unwrap();
        assert_eq!(read_all(&f.fs, file), b"ab\0\0");
        f.fs.fsync(file).unwrap();
        assert_eq!(fs::read(f.backing.join("f")).unwrap(), b"ab\0\0");
    }

    #[test]
    fn rename_over_and_unlink_are_taken_back_until_the_directory_is_synced() {
        let mut f = fixture(1 << 20);
        fs::write(f.backing.join("state"), b"old").unwrap();
        fs::write(f.backing.join("victim"), b"v").unwrap();
        let tmp = f.fs.create(ROOT, name("state.tmp"), 0o644).unwrap().ino;
        f.fs.write(tmp, 0, b"new").unwrap();
        f.fs.fsync(tmp).unwrap();
        f.fs.rename(ROOT, name("state.tmp"), ROOT, name("state"), false)
            .unwrap();
        f.fs.unlink(ROOT, name("victim")).unwrap();
        let state = f.fs.lookup(ROOT, name("state")).unwrap().ino;
        assert_eq!(read_all(&f.fs, state), b"new");
        assert!(f.fs.lookup(ROOT, name("victim")).is_err());
        let names: Vec<OsString> =
            f.fs.readdir(ROOT)
                .unwrap()
                .into_iter()
                .map(|e| e.2)
                .collect();
        assert_eq!(names, vec![OsString::from("state")]);

        let dropped = f.fs.drop_unsynced();
        assert!(dropped.errors.is_empty(), "{:?}", dropped.errors);
        assert_eq!(
            dropped.lost.entries, 3,
            "the rename, its parked target, and the unlink"
        );
        assert_eq!(fs::read(f.backing.join("state")).unwrap(), b"old");
        assert_eq!(fs::read(f.backing.join("victim")).unwrap(), b"v");
        // The tmp file's creation was synced with its data: it is back under its own name.
        assert_eq!(fs::read(f.backing.join("state.tmp")).unwrap(), b"new");

        // Synced through the directory, the same changes survive.
        f.fs.rename(ROOT, name("state.tmp"), ROOT, name("state"), false)
            .unwrap();
        f.fs.unlink(ROOT, name("victim")).unwrap();
        f.fs.fsync_dir(ROOT).unwrap();
        assert_eq!(f.fs.drop_unsynced().lost, Unsynced::default());
        assert_eq!(fs::read(f.backing.join("state")).unwrap(), b"new");
        assert!(!f.backing.join("victim").exists());
    }

    #[test]
    fn directories_and_their_contents_go_with_an_unsynced_mkdir() {
        let mut f = fixture(1 << 20);
        let dir = f.fs.mkdir(ROOT, name("wal"), 0o755).unwrap().ino;
        let seg = f.fs.create(dir, name("0.seg"), 0o644).unwrap().ino;
        f.fs.write(seg, 0, b"entry").unwrap();
        f.fs.fsync(seg).unwrap();
        // The segment's own entry is durable, but the journal commits in order: `wal`
        // came first, so it is durable too.
        assert_eq!(f.fs.unsynced().entries, 0);
        let other = f.fs.mkdir(ROOT, name("snap"), 0o755).unwrap().ino;
        f.fs.create(other, name("s"), 0o644).unwrap();
        f.fs.drop_unsynced();
        assert!(f.backing.join("wal/0.seg").exists());
        assert!(!f.backing.join("snap").exists());
    }

    #[test]
    fn a_torn_write_keeps_the_earlier_writes_and_a_block_aligned_part_of_the_last() {
        let mut f = fixture(1 << 20);
        fs::write(f.backing.join("f"), b"").unwrap();
        let file = f.fs.lookup(ROOT, name("f")).unwrap().ino;
        f.fs.write(file, 0, &[1u8; 10]).unwrap();
        f.fs.write(file, 10, &[2u8; 20]).unwrap();
        let dropped = f.fs.tear_unsynced(16);
        // 10 bytes of the first write, 6 of the second (up to offset 16).
        assert_eq!(dropped.kept_bytes, 16);
        assert_eq!(dropped.lost.bytes, 14);
        let on_disk = fs::read(f.backing.join("f")).unwrap();
        assert_eq!(on_disk.len(), 16);
        assert_eq!(&on_disk[10..], &[2u8; 6]);
    }

    #[test]
    fn faults_fail_syncs_and_writes_and_the_cache_has_a_limit() {
        let mut f = fixture(8);
        let file = f.fs.create(ROOT, name("f"), 0o644).unwrap().ino;
        f.fs.faults.fsync_error = true;
        f.fs.write(file, 0, b"abc").unwrap();
        assert_eq!(
            f.fs.fsync(file).unwrap_err().raw_os_error(),
            Some(libc::EIO)
        );
        assert_eq!(f.fs.unsynced().bytes, 3, "a failed sync synced nothing");
        f.fs.faults.fsync_error = false;
        f.fs.faults.enospc = true;
        assert_eq!(
            f.fs.write(file, 3, b"d").unwrap_err().raw_os_error(),
            Some(libc::ENOSPC)
        );
        f.fs.faults.enospc = false;
        // Past 8 bytes, the cache writes back.
        f.fs.write(file, 3, b"defghi").unwrap();
        assert_eq!(f.fs.unsynced().bytes, 0);
        assert_eq!(f.fs.counters.written_back_bytes, 9);
        assert_eq!(fs::read(f.backing.join("f")).unwrap(), b"abcdefghi");
    }
}
