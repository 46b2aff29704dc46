//! The FUSE side of the lazy disk layer: kernel requests answered from [`LazyFs`].
//!
//! Entries and attributes are never cached by the kernel (a zero time to live) and opened
//! files do not keep the kernel's page cache, so what the node sees after its cache is
//! dropped is the disk's state, not the kernel's memory of the lost writes. Links, symlinks,
//! device nodes and extended attributes are refused; `fallocate` is not offered (the kernel
//! answers EOPNOTSUPP and programs fall back to writing); locks are the kernel's own.
//!
//! The mount admits every user, and the kernel checks each access against the owners and
//! modes the layer reports (`default_permissions`): a file or directory belongs to the user
//! and group of the process that created it (the parent's group under a set-group-ID
//! directory, as on ext4), and `chown`, `chmod` and `utimes` reach the backing entry.

use super::lazy_fs::{Attr, EntryKind, Ino, LazyFs};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

const TTL: Duration = Duration::ZERO;
const BLOCK: u32 = 4096;

/// The file system served for one node.
pub struct LazyFuse {
    pub state: Arc<Mutex<LazyFs>>,
    /// The backing directory, for `statfs`.
    pub backing: PathBuf,
}

fn to_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: BLOCK,
        flags: 0,
    }
}

fn file_type(kind: EntryKind) -> FileType {
    match kind {
        EntryKind::File => FileType::RegularFile,
        EntryKind::Dir => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::Other => FileType::NamedPipe,
    }
}

fn err(e: io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(nix::libc::EIO))
}

/// The owner a new entry in `parent` gets from the request that creates it: the caller's
/// user, and its group unless `parent` is set-group-ID (then the parent's group).
fn new_owner(fs: &LazyFs, req: &Request, parent: INodeNo) -> io::Result<(u32, u32, bool)> {
    let parent = fs.getattr(parent.0)?;
    let setgid = parent.perm & 0o2000 != 0;
    let gid = if setgid { parent.gid } else { req.gid() };
    Ok((req.uid(), gid, setgid))
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl LazyFuse {
    fn fs(&self) -> MutexGuard<'_, LazyFs> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A sync, delayed outside the lock when `slow-disk` is in force.
    fn sync(&self, ino: Ino, dir: bool, reply: ReplyEmpty) {
        let delay = self.fs().faults.fsync_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut fs = self.fs();
        let result = if dir {
            fs.fsync_dir(ino)
        } else {
            fs.fsync(ino)
        };
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }
}

impl Filesystem for LazyFuse {
    fn destroy(&mut self) {
        // A clean unmount: what the node wrote reaches the disk.
        let _ = self.fs().sync_all();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.fs().lookup(parent.0, name) {
            Ok(a) => reply.entry(&TTL, &to_attr(&a), Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs().getattr(ino.0) {
            Ok(a) => reply.attr(&TTL, &to_attr(&a)),
            Err(e) => reply.error(err(e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut fs = self.fs();
        let result = (|| {
            // The owner before the mode: chown clears set-user/group-ID bits.
            fs.set_owner(ino.0, uid, gid)?;
            if let Some(mode) = mode {
                fs.set_mode(ino.0, mode)?;
            }
            if let Some(size) = size {
                fs.set_size(ino.0, size)?;
            }
            if atime.is_some() || mtime.is_some() {
                fs.set_times(ino.0, atime.map(time_of), mtime.map(time_of))?;
            }
            fs.getattr(ino.0)
        })();
        match result {
            Ok(a) => reply.attr(&TTL, &to_attr(&a)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut fs = self.fs();
        let result = (|| {
            let (uid, gid, setgid) = new_owner(&fs, req, parent)?;
            // A directory made in a set-group-ID directory is set-group-ID too.
            let mode = (mode & !umask) | if setgid { 0o2000 } else { 0 };
            let a = fs.mkdir(parent.0, name, mode)?;
            fs.set_owner(a.ino, Some(uid), Some(gid))?;
            // chown clears the set-group-ID bit the mode asked for: put it back.
            fs.set_mode(a.ino, mode)?;
            fs.getattr(a.ino)
        })();
        match result {
            Ok(a) => reply.entry(&TTL, &to_attr(&a), Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.fs().unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.fs().rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            return reply.error(Errno::EINVAL);
        }
        match self
            .fs()
            .rename(parent.0, name, newparent.0, newname, no_replace)
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(err(e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs().getattr(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(err(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.fs().read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(err(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.fs().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(err(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(ino.0, false, reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.fs().readdir(ino.0) {
            Ok(entries) => entries,
            Err(e) => return reply.error(err(e)),
        };
        let dots = [
            (ino.0, EntryKind::Dir, ".".into()),
            (ino.0, EntryKind::Dir, "..".into()),
        ];
        for (i, (child, kind, name)) in dots
            .into_iter()
            .chain(entries)
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(child), (i + 1) as u64, file_type(kind), &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(ino.0, true, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match nix::sys::statvfs::statvfs(&self.backing) {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut fs = self.fs();
        let result = (|| {
            let (uid, gid, _) = new_owner(&fs, req, parent)?;
            let a = fs.create(parent.0, name, mode & !umask)?;
            fs.set_owner(a.ino, Some(uid), Some(gid))?;
            fs.set_mode(a.ino, mode & !umask)?;
            fs.getattr(a.ino)
        })();
        match result {
            Ok(a) => reply.created(
                &TTL,
                &to_attr(&a),
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            // O_CREAT without O_EXCL on an existing file opens it.
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists && flags & nix::libc::O_EXCL == 0 =>
            {
                match fs.lookup(parent.0, name) {
                    Ok(a) => reply.created(
                        &TTL,
                        &to_attr(&a),
                        Generation(0),
                        FileHandle(0),
                        FopenFlags::empty(),
                    ),
                    Err(e) => reply.error(err(e)),
                }
            }
            Err(e) => reply.error(err(e)),
        }
    }
}
